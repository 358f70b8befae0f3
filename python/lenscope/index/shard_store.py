"""Shard results on disk, so that a build resumes after a kill and an update re-runs only the
shards whose files changed.

One ``.npz`` per shard, named by its key, in a hidden folder beside the index
(``.{index}.shards/``). Each is written to a temporary name and renamed into place, so a file
under a shard's name is always whole; one that does not load (truncated by a full disk, from
another version) is treated as missing and computed again. Score counts of the descriptions
are kept the same way (``score-{shard}-{patterns}.npy``).
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from lenscope.errors import StorageFailed
from lenscope.index.shards import ShardResult

SUFFIX = ".npz"


def shards_dir_for(index: Path) -> Path:
    return index.with_name(f".{index.name}.shards")


def counts_key(shard_key: str, patterns_digest: str) -> str:
    return f"score-{shard_key}-{patterns_digest[:16]}"


class ShardStore:
    def __init__(self, folder: Path, n_units: int, ctx: int) -> None:
        self.folder = folder
        self.n_units = n_units
        self.ctx = ctx
        self.kept_counts: set[str] = set()  # score counts the current build used: kept by prune
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(".tmp-*"):  # left by a killed build: never complete
            stale.unlink(missing_ok=True)

    def has(self, key: str) -> bool:
        """A stored result whose archive is whole: its zip directory (at the end of the file, so a
        truncated write fails here) names every field. Reads the directory only, not the arrays,
        which the merge reads once; a shard damaged inside is reported there."""
        try:
            with np.load(self.folder / f"{key}{SUFFIX}", allow_pickle=False) as a:
                return set(ShardResult.FIELDS) | {"count"} <= set(a.files)
        except (OSError, ValueError, EOFError):
            return False

    def load(self, key: str) -> ShardResult | None:
        try:
            with np.load(self.folder / f"{key}{SUFFIX}", allow_pickle=False) as a:
                return ShardResult.from_arrays(a, self.n_units, self.ctx)
        except (OSError, ValueError, KeyError, EOFError):
            return None

    def save(self, key: str, result: ShardResult) -> None:
        arrays: dict[str, Any] = result.arrays()
        self._write(f"{key}{SUFFIX}", lambda f: np.savez(f, **arrays))

    def load_counts(self, key: str) -> np.ndarray | None:
        """``key``: :func:`counts_key` of a shard and the patterns scored."""
        try:
            counts = np.load(self.folder / f"{key}.npy", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        return counts if counts.shape == (self.n_units, 3) and counts.dtype == np.int64 else None

    def save_counts(self, key: str, counts: np.ndarray) -> None:
        self._write(f"{key}.npy", lambda f: np.save(f, counts.astype(np.int64), allow_pickle=False))

    def _write(self, name: str, write: object) -> None:
        tmp = self.folder / f".tmp-{uuid.uuid4().hex[:8]}-{name}"
        try:
            with open(tmp, "wb") as f:
                write(f)  # type: ignore[operator]
            os.replace(tmp, self.folder / name)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            why = "the disk is full" if full else (exc.strerror or str(exc))
            where = f"index shard {name} in {self.folder.name}"
            raise StorageFailed(f"cannot write {where}: {why}; the index was not changed") from None

    def prune(self, keep: set[str]) -> int:
        """Remove the files not named in ``keep`` (shard results and score counts of shards no
        longer in the build, or of patterns no longer chosen)."""
        removed = 0
        for f in self.folder.iterdir():
            if f.name.removesuffix(SUFFIX).removesuffix(".npy") not in keep:
                f.unlink(missing_ok=True)
                removed += 1
        return removed
