"""The ``lenscope analyze`` command, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lenscope.cli import select_lines

SOURCE = "import os\n\n\ndef home():\n    return os.environ['HOME']\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lenscope.cli", *args], capture_output=True, text=True, timeout=300)


def test_select_lines_gives_earlier_lines_as_context() -> None:
    assert select_lines(SOURCE, (4, 5)) == ("import os\n\n\n", "def home():\n    return os.environ['HOME']\n")


def test_table_and_json(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(SOURCE, encoding="utf-8")
    table = run("analyze", str(f), "--lines", "4:5")
    assert table.returncode == 0, table.stderr
    assert "environ" in table.stdout and "top-5 next" in table.stdout and "forward" in table.stdout
    out = run("analyze", str(f), "--lines", "4:5", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    starts, ends = payload["tokens"]["start"]["data"], payload["tokens"]["end"]["data"]
    selection = "def home():\n    return os.environ['HOME']\n"
    assert "".join(selection[s:e] for s, e in zip(starts, ends)) == selection
    assert payload["context_tokens"] > 0


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    f = tmp_path / "empty.py"
    f.write_text("   \n", encoding="utf-8")
    out = run("analyze", str(f))
    assert out.returncode == 2 and "only whitespace" in out.stderr and "Traceback" not in out.stderr
    out = run("analyze", str(tmp_path / "missing.py"))
    assert out.returncode == 2 and "cannot read" in out.stderr
    out = run("analyze", str(f), "--model", "nope")
    assert out.returncode == 2 and "unknown model 'nope'" in out.stderr
