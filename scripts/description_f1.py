"""Median held-out F1 of an index's unit descriptions, and the share above 0.5, so the figure
in docs/findings.md ("Unit descriptions") is reproducible:

    python scripts/description_f1.py python/lenscope/models/indexes/lenscope-gelu-1l

F1 is over the score half (text the patterns were not chosen on): 2 both / (occurs + fires).
"all units": a unit with no pattern (or "no simple pattern") counts as F1 0, the median is over
every unit. "scored": the median over units with a pattern that occurs and that fire on the
score half (how issue 26 quoted today's 0.06 and 0.22), "no simple pattern" units included
with their best pattern's F1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lenscope.index.store import open_index


def held_out_f1(path: Path) -> np.ndarray:
    """float64 [N]: each unit's held-out F1 (0 where it has no pattern or nothing to score)."""
    index = open_index(path)
    counts = np.asarray(index.arrays["describe_counts"], dtype=np.float64)
    occurs, fires, both = counts[:, 0], counts[:, 1], counts[:, 2]
    f1 = np.where(occurs + fires > 0, 2 * both / np.maximum(occurs + fires, 1), 0.0)
    if "describe_kind" in index.arrays:  # a unit whose best pattern is under the floor has none
        f1 = np.where(np.asarray(index.arrays["describe_kind"]) > 0, f1, 0.0)
    else:
        f1 = np.where(np.asarray(index.arrays["describe_token"]) >= 0, f1, 0.0)
    return f1


def scored_f1(path: Path) -> np.ndarray:
    """float64 [M]: held-out F1 of the units with a pattern (best one under the floor too) that
    occurs and that fire on the score half."""
    index = open_index(path)
    counts = np.asarray(index.arrays["describe_counts"], dtype=np.float64)
    occurs, fires, both = counts[:, 0], counts[:, 1], counts[:, 2]
    kind = index.arrays.get("describe_kind")
    has = np.asarray(kind) != 0 if kind is not None else np.asarray(index.arrays["describe_token"]) >= 0
    keep = has & (occurs > 0) & (fires > 0)
    f1: np.ndarray = 2 * both[keep] / (occurs[keep] + fires[keep])
    return f1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index", nargs="+", type=Path)
    args = ap.parse_args()
    print(f"{'index':<28} {'units':>6} {'median F1 (all units)':>22} {'share > 0.5':>12} {'median F1 (scored)':>19}")
    for path in args.index:
        f1, s = held_out_f1(path), scored_f1(path)
        print(f"{path.name:<28} {len(f1):>6} {np.median(f1):>22.3f} {(f1 > 0.5).mean():>12.3f} {np.median(s):>19.3f}")


if __name__ == "__main__":
    main()
