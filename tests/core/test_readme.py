"""The README's Python block runs as shown (its CLI commands run in test_cli.py)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_block_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "the README shows Python"
    for code in blocks:
        scope: dict[str, object] = {}
        exec(compile(code, "README.md", "exec"), scope)
        if "why" in scope:
            why = scope["why"]
            assert abs(why.total() - why.value) < 1e-4  # type: ignore[attr-defined]
