"""The corpus the default models are trained on: this Python's own standard library source.

Every machine with CPython has it, so training, evaluation and the shipped index need no
download. The file list is sorted and tests are excluded; one file in ``HOLDOUT_EVERY`` is held
out (by position in the sorted list) for evaluation.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

HOLDOUT_EVERY = 20
_TEST_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"})


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def _is_test_or_vendored(rel: Path) -> bool:
    if any(part in _TEST_DIRS for part in rel.parts[:-1]):
        return True
    name = rel.name
    return name.startswith("test_") or name.endswith("_test.py")


def stdlib_files(root: Path | None = None) -> list[str]:
    """Sorted POSIX paths (relative to ``root``) of the non-test ``.py`` files."""
    root = root or stdlib_root()
    rels = (p.relative_to(root) for p in root.rglob("*.py") if p.is_file())
    return sorted(r.as_posix() for r in rels if not _is_test_or_vendored(r))


@dataclass(frozen=True)
class Split:
    root: Path
    train: list[str]
    held_out: list[str]


def split_files(root: Path | None = None) -> Split:
    root = root or stdlib_root()
    files = stdlib_files(root)
    held = [f for i, f in enumerate(files) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    train = [f for i, f in enumerate(files) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
    return Split(root=root, train=train, held_out=held)


def read_text(root: Path, rel: str) -> str | None:
    """The file's text, or None when it is not valid UTF-8 (a few stdlib files are not)."""
    try:
        return (root / rel).read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
