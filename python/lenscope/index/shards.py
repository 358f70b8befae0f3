"""An index build cut into shards: what each shard is, what it computes, and the exact merge.

A *shard* is a run of consecutive files (or a piece of one long file) whose windows are reduced
on their own: per unit, its top examples (sorted by value, highest first, ties by the earlier
window), the sum and max of its activations and its histogram. Merging shards is a stable sort
of their examples in shard order plus sums, so the merged index equals the one-stream result of
the same reduction whatever computed the shards, in which order, in how many processes.

Files are grouped into shards by a rule that looks at each file alone: a group ends after a
file with probability ``windows / GROUP_WINDOWS``, decided by a hash of the file's path (so
groups hold about :data:`GROUP_WINDOWS` windows, and a long file ends its group). A shard's key
is a digest of its files' paths and contents plus the build's settings. Editing a file changes
its own group's key and at most merges or splits that group with the next one; every other
shard is reused by an update.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lenscope.index.arrays import HIST_EDGES

GROUP_WINDOWS = 64
"""Files are grouped into shards of about this many windows (64 windows of 256 tokens: ~16k tokens)."""
SHARD_WINDOWS = 256
"""A group of more windows (a long file) is cut into pieces of at most this many."""
N_BINS = len(HIST_EDGES) + 1


@dataclass(frozen=True)
class Shard:
    key: str  # hex digest of the build's settings and the shard's files (paths and contents)
    first_window: int  # index of the shard's first window among all the build's windows
    windows: np.ndarray  # int32 [w, 3]: (document, first token, tokens), document indices global

    @property
    def n_tokens(self) -> int:
        return int(self.windows[:, 2].sum())


@dataclass
class ShardResult:
    """One shard's reduction; ``windows`` are local (0 = the shard's first window)."""

    values: np.ndarray  # float32 [N, m], m = min(k, windows): sorted, highest first, ties by window
    windows: np.ndarray  # int32 [N, m]
    positions: np.ndarray  # int32 [N, m]
    context: np.ndarray  # float16 [N, m, before + 1 + after]
    act_sum: np.ndarray  # float64 [N]
    act_max: np.ndarray  # float32 [N]
    hist: np.ndarray  # int64 [N, N_BINS]
    count: int

    FIELDS = ("values", "windows", "positions", "context", "act_sum", "act_max", "hist")

    def arrays(self) -> dict[str, np.ndarray]:
        return {**{f: getattr(self, f) for f in self.FIELDS}, "count": np.asarray(self.count, dtype=np.int64)}

    @classmethod
    def from_arrays(cls, a: Any, n_units: int, ctx: int) -> ShardResult:
        """From a loaded ``.npz``; raises ValueError when a shape is not the one expected."""
        r = cls(**{f: np.asarray(a[f]) for f in cls.FIELDS}, count=int(a["count"]))
        m = r.values.shape[1] if r.values.ndim == 2 else -1
        want = {"values": (n_units, m), "windows": (n_units, m), "positions": (n_units, m), "context": (n_units, m, ctx),
                "act_sum": (n_units,), "act_max": (n_units,), "hist": (n_units, N_BINS)}  # fmt: skip
        for f, shape in want.items():
            if getattr(r, f).shape != shape:
                raise ValueError(f"{f} has shape {getattr(r, f).shape}, expected {shape}")
        return r


def _path_hash(path: str) -> int:
    return int.from_bytes(hashlib.sha256(path.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def plan_shards(paths: list[str], sha256s: list[str], windows: np.ndarray, settings_key: str) -> list[Shard]:
    """Cut the build's windows (in document order) into shards; see the module's docstring."""
    doc_windows: list[list[int]] = [[] for _ in paths]
    for w, d in enumerate(windows[:, 0].tolist()):
        doc_windows[d].append(w)
    groups: list[list[int]] = []
    current: list[int] = []
    for d, path in enumerate(paths):
        current.append(d)
        # a group ends after a file with probability (its windows / GROUP_WINDOWS), decided by a
        # hash of its path: a file's edit moves at most the boundary after it, never others
        if _path_hash(path) < min(1.0, len(doc_windows[d]) / GROUP_WINDOWS) * 2**64 or d == len(paths) - 1:
            groups.append(current)
            current = []
    shards: list[Shard] = []
    for group in groups:
        ids = [w for d in group for w in doc_windows[d]]
        files = json.dumps([[paths[d], sha256s[d]] for d in group], ensure_ascii=False)
        for piece, at in enumerate(range(0, len(ids), SHARD_WINDOWS)):
            part = ids[at : at + SHARD_WINDOWS]
            key = hashlib.sha256(f"{settings_key}\n{files}\n{piece}".encode("utf-8", "surrogatepass")).hexdigest()
            shards.append(Shard(key[:32], part[0], windows[part[0] : part[-1] + 1]))
    return shards


def settings_key(**settings: Any) -> str:
    """A digest of everything a shard's result depends on besides its files."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def fold(store: ShardResult | None, shard: ShardResult, window_offset: int, k: int) -> ShardResult:
    """``store`` (all its windows before ``window_offset``) merged with the next shard's result:
    a stable sort, so ties stay in window order and the result does not depend on how the
    windows were cut into shards."""
    windows = np.where(shard.windows >= 0, shard.windows + window_offset, -1).astype(np.int32)
    if store is None:
        return ShardResult(shard.values, windows, shard.positions, shard.context, shard.act_sum.copy(),
                           shard.act_max.copy(), shard.hist.astype(np.int64), shard.count)  # fmt: skip
    values = np.concatenate([store.values, shard.values], axis=1)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    rows = np.arange(values.shape[0])[:, None]
    return ShardResult(
        values[rows, order],
        np.concatenate([store.windows, windows], axis=1)[rows, order],
        np.concatenate([store.positions, shard.positions], axis=1)[rows, order],
        np.concatenate([store.context, shard.context], axis=1)[rows, order],
        store.act_sum + shard.act_sum,
        np.maximum(store.act_max, shard.act_max),
        store.hist + shard.hist,
        store.count + shard.count,
    )


def padded(r: ShardResult, k: int) -> ShardResult:
    """Widen to ``k`` examples per unit: -inf values, window -1, position 0, NaN context."""
    n, m = r.values.shape
    if m >= k:
        return r
    extra = k - m
    return ShardResult(
        np.concatenate([r.values, np.full((n, extra), -np.inf, np.float32)], axis=1),
        np.concatenate([r.windows, np.full((n, extra), -1, np.int32)], axis=1),
        np.concatenate([r.positions, np.zeros((n, extra), np.int32)], axis=1),
        np.concatenate([r.context, np.full((n, extra, r.context.shape[2]), np.nan, np.float16)], axis=1),
        r.act_sum, r.act_max, r.hist, r.count,
    )  # fmt: skip


def merge(results: Iterable[tuple[Shard, ShardResult]], k: int) -> ShardResult:
    """All shards' results, given in window order (an iterator may load them one at a time:
    memory stays one shard plus the store), folded into one store of ``k`` examples per unit."""
    store: ShardResult | None = None
    last = -1
    for shard, result in results:
        if shard.first_window <= last:
            raise ValueError("shards must be merged in window order")
        last = shard.first_window
        store = fold(store, result, shard.first_window, k)
    if store is None:
        raise ValueError("no shards to merge")
    return padded(store, k)


class OrderedFold:
    """:func:`merge`, done as results arrive (in any order): each is folded as soon as every
    shard before it has been, so memory is the store plus the results that came early, not every
    shard's result until the end. The shards not in ``computed`` (stored by an earlier build)
    are read with ``load`` when their turn comes; the fold order, and so the index, is the same."""

    def __init__(self, plan: list[Shard], computed: set[str], k: int, load: Callable[[str], ShardResult]) -> None:
        self.plan, self.computed, self.k, self.load = plan, computed, k, load
        self.waiting: dict[str, ShardResult] = {}
        self.store: ShardResult | None = None
        self.next = 0

    def add(self, key: str, result: ShardResult) -> None:
        self.waiting[key] = result
        self._advance(lambda s: s.key in self.waiting or s.key not in self.computed)

    def result(self) -> ShardResult:
        self._advance(lambda s: True)
        if self.store is None:
            raise ValueError("no shards to merge")
        return padded(self.store, self.k)

    def _advance(self, ready: Callable[[Shard], bool]) -> None:
        while self.next < len(self.plan) and ready(self.plan[self.next]):
            shard = self.plan[self.next]
            found = self.waiting.pop(shard.key, None)
            self.store = fold(self.store, found if found is not None else self.load(shard.key), shard.first_window, self.k)
            self.next += 1
