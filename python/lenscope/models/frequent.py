"""The most frequent tokens of a model's corpus: what weight-reading views and probes draw from.

Over the whole vocabulary, a head's OV/QK extremes and a probe's random tokens are dominated by
rare tokens (``' 0' <- 'xD'``); over the tokens a corpus actually uses they read plainly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lenscope.models.shape import shape_of

FREQUENT_TOKENS = 1000


def frequent_tokens(model: Any, n: int = FREQUENT_TOKENS, counts: np.ndarray | None = None) -> np.ndarray:
    """The ``n`` most frequent token ids by ``counts`` (e.g. an index corpus's token counts);
    without counts, ids in merge order after the 256 byte tokens (a byte-level BPE's ids follow
    its merges, which follow frequency), special tokens left out."""
    d_vocab = shape_of(model).d_vocab
    special = {int(t) for t in getattr(model.tokenizer, "all_special_ids", [])}
    if counts is not None:
        counts = counts.astype(np.float64).copy()
        counts[[s for s in special if s < len(counts)]] = -1
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] > 0]
    else:
        order = np.array([i for i in range(min(256, d_vocab), d_vocab) if i not in special] or range(d_vocab))
    return order[: min(n, len(order))].astype(np.int64)


def shipped_token_counts(name: str, d_vocab: int) -> np.ndarray | None:
    """Token counts of the shipped index's corpus for ``name`` (the embedded models share one
    tokenizer and corpus: the GELU model's index stands for all of them); None for other models."""
    from lenscope.models.registry import DEFAULT_MODEL, EMBEDDED

    base = Path(__file__).resolve().parent / "indexes"
    folder = base / name if (base / name / "tokens.npy").is_file() else base / DEFAULT_MODEL if name in EMBEDDED else None
    if folder is None or not (folder / "tokens.npy").is_file():
        return None
    tokens = np.load(folder / "tokens.npy", mmap_mode="r")
    return np.bincount(np.asarray(tokens, dtype=np.int64), minlength=d_vocab)[:d_vocab]
