"""``lenscope sweep``, run as a user would: its JSON is the core's sweep of the same place, its
table lists the same units with both ranks, the estimate says it is one, bad places are messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from lenscope.sweep import sweep

SOURCE = "import os\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n\nprint(read('x.txt'))\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lenscope.cli", "sweep", *args], capture_output=True, text=True, timeout=300)


def token_at(model, offset: int) -> int:
    """The text token holding character ``offset`` (by the tokenizer's own offsets)."""
    enc = model.tokenizer(SOURCE, add_special_tokens=False, return_offsets_mapping=True)
    return next(i for i, (a, b) in enumerate(enc["offset_mapping"]) if a <= offset < b)


def test_json_and_table_of_one_prediction(tmp_path: Path, gelu) -> None:
    f = tmp_path / "m.py"
    f.write_text(SOURCE, encoding="utf-8")
    offset = SOURCE.index("open(") + 1  # line 4, the "open" token
    line, col = SOURCE[:offset].count("\n") + 1, offset - SOURCE[:offset].rfind("\n")
    out = run(str(f), "--line", str(line), "--col", str(col), "--json", "--top", "5")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    position = token_at(gelu, offset)
    core = sweep(gelu, SOURCE, position)
    assert got["positions"] == [position] and got["method"] == "exact" and got["targets"] == core.targets
    assert [u["unit"] for u in got["units"]] == [u.label for u in core.units()[:5]]
    assert np.allclose([u["effect"] for u in got["units"]], [u.effect for u in core.units()[:5]], atol=1e-5)
    table = run(str(f), "--line", str(line), "--col", str(col), "--top", "5")
    assert table.returncode == 0, table.stderr
    assert "Units by causal effect" in table.stdout and "exact: each unit zero-ablated alone" in table.stdout
    assert f"{core.rank_correlation():.3f}" in table.stdout
    for u in core.units()[:5]:
        assert f"│ {u.label} " in table.stdout and f"{u.effect:+.4f}" in table.stdout


def test_a_selection_and_the_estimate(tmp_path: Path, gelu) -> None:
    f = tmp_path / "m.py"
    f.write_text(SOURCE, encoding="utf-8")
    out = run(str(f), "--lines", "4:5", "--estimate", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    first, last = token_at(gelu, SOURCE.index("    with")), token_at(gelu, SOURCE.index("read()\n") + 6)
    assert got["positions"] == list(range(first, last + 1))
    assert got["method"] == "estimate" and got["measure"] == "mean_abs_delta_logprob"
    table = run(str(f), "--lines", "4:5", "--estimate", "--top", "3")
    assert "estimate: gradient x activation" in table.stdout and "estimated" in table.stdout


def test_bad_places_are_messages(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(SOURCE, encoding="utf-8")
    for args, words in (
        (["--line", "99", "--col", "1"], "--line/--col 99:1 is outside the file (7 lines)"),
        ([], "say where: --line L --col C"),
        (["--lines", "3:99"], "--lines 3:99 is outside the file's 7 lines"),
        (["--line", "4", "--col", "5", "--target", "hello world"], "tokens; give the text of exactly one token"),
        (["--lines", "3:4", "--target", "("], "--target goes with one prediction"),
    ):
        out = run(str(f), *args)
        assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)


def test_readme_sweep_commands(gelu) -> None:
    """The README's `lenscope sweep` commands, exactly as shown (from the repository root): the
    units printed are the core's, at the token the place names."""
    import re

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\.venv/bin/lenscope (sweep [^#\n]*?)\s*(?:#.*)?$", readme, re.M)
    assert len(commands) == 2, commands
    text = (root / "examples" / "tour.py").read_text(encoding="utf-8")
    enc = gelu.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    holding = lambda offset: next(i for i, (a, b) in enumerate(enc["offset_mapping"]) if a <= offset < b)  # noqa: E731
    lines = text.splitlines(keepends=True)
    for command in commands:
        words = command.split()
        out = subprocess.run(
            [sys.executable, "-m", "lenscope.cli", *words], capture_output=True, text=True, timeout=300, cwd=root
        )
        assert out.returncode == 0, out.stderr
        if "--line" in words:
            line, col = int(words[words.index("--line") + 1]), int(words[words.index("--col") + 1])
            core = sweep(gelu, text, holding(sum(map(len, lines[: line - 1])) + col - 1))
            # what the README says of it: heads with near-zero direct parts among the largest effects
            assert sum(u.kind == "head" and abs(u.direct or 0.0) < 0.1 for u in core.units()[:3]) >= 2
        else:
            a, b = map(int, words[words.index("--lines") + 1].split(":"))
            first, last = holding(sum(map(len, lines[: a - 1]))), holding(sum(map(len, lines[:b])) - 1)
            core = sweep(gelu, text, first, last=last, method="estimate" if "--estimate" in words else "exact")
            assert "estimate: gradient x activation" in out.stdout
        for u in core.units()[:20]:
            assert f"│ {u.label} " in out.stdout, (command, u)
