"""The demo workspace that the browser, packaging and CLI tests start from.

`examples/` is also where a user follows the README tour: `make lab` serves it, and the tour
builds an index into `examples/.lenscope/`; JupyterLab leaves `.ipynb_checkpoints/` there too.
Tests copy only the demo files themselves, so neither a user's work nor its leftovers reach (or
break) a test's workspace: in a git checkout, the files git tracks under `examples/`; elsewhere (an
unpacked sdist), every file except hidden ones, checkpoints and caches.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path, PurePosixPath

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SKIP_DIRS = frozenset({".ipynb_checkpoints", "__pycache__", "node_modules"})


def _kept(rel: PurePosixPath) -> bool:
    return not any(part.startswith(".") or part in SKIP_DIRS for part in rel.parts)


def _tracked(src: Path) -> list[PurePosixPath] | None:
    """The files git tracks under `src`, relative to it; None when `src` is not in a git work tree."""
    if shutil.which("git") is None:
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "ls-files", "-z", "--", "."], capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [PurePosixPath(p) for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def demo_files(src: Path = EXAMPLES) -> list[PurePosixPath]:
    """The demo files under `src` (relative paths), without the user's index, checkpoints or caches."""
    files = _tracked(src)
    if files is None:
        files = [PurePosixPath(p.relative_to(src).as_posix()) for p in src.rglob("*") if p.is_file()]
    return sorted(f for f in files if _kept(f) and (src / f).is_file())  # tracked but deleted: skip


def copy_demo(dst: Path, src: Path = EXAMPLES) -> list[PurePosixPath]:
    """Copy the demo files of `src` into `dst` (created if missing); returns what it copied."""
    files = demo_files(src)
    for rel in files:
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, target)
    dst.mkdir(parents=True, exist_ok=True)
    return files
