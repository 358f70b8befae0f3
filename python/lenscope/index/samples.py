"""Examples of a unit beyond its top ones (numpy only): from each activation interval, and at
random where it fires, with the share of tokens where it fires; recorded by the build's
description pass (:mod:`lenscope.index.describe`), read by the card.

Intervals: ``(0, max]`` cut into :data:`INTERVALS` equal parts (``max`` the unit's maximum over
the corpus); a token is in interval ``i`` when ``i/10 < a/max <= (i+1)/10``. In each interval the
:data:`PER_INTERVAL` tokens of smallest :func:`priority` are kept (a seeded random order of the
corpus's tokens, the same for every unit), so the choice is reproducible and spread over the
corpus; the random firing examples are the :data:`RANDOM` tokens of smallest priority among those
above the unit's firing threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INTERVALS, PER_INTERVAL, RANDOM = 10, 5, 5
SEED = 0
ARRAYS = ("quantile_positions", "quantile_values", "random_positions", "random_values", "fire_counts")
SAMPLES_META = {"intervals": INTERVALS, "per_interval": PER_INTERVAL, "random": RANDOM, "seed": SEED, "arrays": list(ARRAYS)}
"""The manifest's ``"samples"`` entry: an index without it (built before them) has no samples."""


def priority(n_tokens: int) -> np.ndarray:
    """int64 [T]: each corpus token's rank in a seeded random order."""
    return np.random.default_rng(SEED).permutation(n_tokens).astype(np.int64)


@dataclass
class Samples:
    quantile_positions: np.ndarray  # int32 [N, INTERVALS, PER_INTERVAL]: corpus token index, -1: none
    quantile_values: np.ndarray  # float32 [N, INTERVALS, PER_INTERVAL]
    random_positions: np.ndarray  # int32 [N, RANDOM]
    random_values: np.ndarray  # float32 [N, RANDOM]
    fire_counts: np.ndarray  # int64 [N, 2]: tokens above zero, above the firing threshold

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}
