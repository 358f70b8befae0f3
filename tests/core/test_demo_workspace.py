"""The demo workspace the browser and packaging tests start from: a copy of examples/'s demo files only.

A user who followed the README tour has an index under `examples/.lenscope/`, and JupyterLab may have
left `.ipynb_checkpoints/` there: neither may break the copy or reach the tests' workspace.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.demo import EXAMPLES, copy_demo

DEMO = sorted(p.name for p in EXAMPLES.iterdir() if p.is_file() and not p.name.startswith("."))


def _user_work(src: Path) -> None:
    """What `make lab` and the README tour leave in the demo workspace."""
    index = src / ".lenscope" / "indexes" / "workspace"
    index.mkdir(parents=True)
    (index / "manifest.json").write_text('{"files": []}')
    (index / "values.npy").write_bytes(b"\x93NUMPY")
    (src / ".lenscope" / "scans").mkdir()
    checkpoints = src / ".ipynb_checkpoints"
    checkpoints.mkdir()
    (checkpoints / "tour-checkpoint.ipynb").write_text("{}")


def test_copy_skips_the_users_index_and_checkpoints(tmp_path: Path) -> None:
    src = tmp_path / "examples"
    shutil.copytree(EXAMPLES, src, ignore=shutil.ignore_patterns(".*"))
    _user_work(src)
    dst = tmp_path / "workspace"
    dst.mkdir()
    copy_demo(dst, src)
    assert sorted(p.name for p in dst.iterdir()) == DEMO
    assert (dst / "tour.py").read_bytes() == (EXAMPLES / "tour.py").read_bytes()


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_copy_in_a_checkout_takes_the_tracked_files_only(tmp_path: Path) -> None:
    repo = tmp_path / "clone"
    src = repo / "examples"
    shutil.copytree(EXAMPLES, src, ignore=shutil.ignore_patterns(".*"))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "examples"], check=True)
    subprocess.run([*git, "commit", "-qm", "demo"], check=True)
    _user_work(src)
    (src / "scratch.py").write_text("print('mine')\n")  # the user's own untracked file
    dst = tmp_path / "workspace"
    copy_demo(dst, src)
    assert sorted(p.name for p in dst.iterdir()) == DEMO


def test_the_real_examples_copy(tmp_path: Path) -> None:
    """Whatever this checkout's examples/ holds now, the copy has exactly the demo files."""
    copy_demo(tmp_path / "ws")
    assert {"tour.py", "tour.ipynb", "README.md"} <= {p.name for p in (tmp_path / "ws").iterdir()}
    assert not any(p.name.startswith(".") for p in (tmp_path / "ws").rglob("*"))
