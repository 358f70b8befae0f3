"""Issue #24's defects outside the browser: descriptions scored on too few tokens, word search
over whitespace ("indentation"), no TqdmWarning in a notebook, the shipped notebook's metadata as
JupyterLab writes it, and a quiet set-up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lenscope.index import descriptions
from lenscope.index.descriptions import categories, describe_row, search_descriptions
from lenscope.index.store import open_index

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "python" / "lenscope" / "models" / "indexes" / "lenscope-gelu-1l"


def one_unit(token: int, prev: int = -1, counts: tuple[int, int, int] = (2, 10, 2)) -> dict[str, np.ndarray]:
    return {
        "describe_token": np.array([token], dtype=np.int32),
        "describe_prev": np.array([prev], dtype=np.int32),
        "describe_threshold": np.array([1.0], dtype=np.float32),
        "describe_counts": np.array([counts], dtype=np.int64),
        "describe_examples": np.array([[5, 8]], dtype=np.int32),
    }


def test_a_description_scored_on_too_few_tokens_says_so() -> None:
    arrays, strings = one_unit(7), {7: ")"}
    few = describe_row(0, arrays, strings, score_tokens=300)  # type: ignore[call-arg,unused-ignore]
    assert few is not None and few["too_few_tokens"] and few["score_tokens"] == 300
    assert "too few tokens to score" in few["text"] and "precision" not in few["text"], few["text"]
    assert f"{descriptions.MIN_SCORE_TOKENS:,}" in few["text"]
    enough = describe_row(0, arrays, strings, score_tokens=84_398)
    assert enough is not None and not enough["too_few_tokens"] and "recall 1.00" in enough["text"]  # P(fires | pattern)


def test_whitespace_tokens_are_found_by_their_names() -> None:
    # a newline followed by the next line's indent is indentation (and whitespace), not only a newline
    assert {"newline", "whitespace", "indentation"} <= set(categories("\n    "))
    assert "indentation" not in categories("\n") and "tab" in categories("\n\t")
    index = open_index(SHIPPED)
    for query in ("indentation", "indent", "newline", "space"):
        rows = search_descriptions(index.arrays, index.strings, query)
        assert rows, query
    rows = search_descriptions(index.arrays, index.strings, "indentation")
    for r, _ in rows:  # a token set of which one is indentation, or the class, or a context token
        d = describe_row(r, index.arrays, index.strings)
        assert d is not None and "indentation" in d["categories"], d
    texts = [t for r, _ in rows for t in (describe_row(r, index.arrays, index.strings) or {})["pattern"]]
    assert any("\n" in t and t.endswith(" ") for t in texts) or "whitespace indentation" in texts, texts


def test_loading_a_model_in_a_notebook_prints_no_tqdm_warning() -> None:
    """In a kernel without ipywidgets, transformers' ``tqdm.auto`` import warned "IProgress not found"."""
    jupyter_client = pytest.importorskip("jupyter_client")
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    try:
        out: list[dict] = []
        code = "import lenscope\nfrom lenscope import load_model\nm = load_model('lenscope-gelu-1l')\nprint('loaded')"
        kc.execute_interactive(code, output_hook=out.append, timeout=300)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    streams = [m["content"] for m in out if m["msg_type"] in ("stream", "error")]
    stderr = "".join(c.get("text", "") for c in streams if c.get("name") == "stderr")
    assert "Tqdm" not in stderr and "IProgress" not in stderr, stderr
    assert "loaded" in "".join(c.get("text", "") for c in streams if c.get("name") == "stdout"), streams


def test_the_shipped_notebook_has_the_metadata_jupyterlab_writes() -> None:
    """Opening examples/tour.ipynb must not mark it modified: JupyterLab rewrites the kernelspec and
    language_info from the kernel unless they are already what it would write."""
    nb = json.loads((ROOT / "examples" / "tour.ipynb").read_text(encoding="utf-8"))
    spec = json.loads((Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json").read_text())
    assert nb["metadata"]["kernelspec"] == {"display_name": spec["display_name"], "language": spec["language"], "name": "python3"}
    info = nb["metadata"]["language_info"]
    assert info["name"] == "python" and info["version"].split(".")[:2] == [str(x) for x in sys.version_info[:2]]
    assert {"codemirror_mode", "file_extension", "mimetype", "nbconvert_exporter", "pygments_lexer"} <= set(info)


def make_n(target: str) -> str:
    env = dict(os.environ, MAKEFLAGS="")
    out = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    return out.stdout


def test_set_up_is_quiet_and_the_url_stands_out() -> None:
    """`make install` / `make lab` printed ~4,100 lines (yarn's fetch notices, peer-dependency and
    deprecation warnings) before the URL."""
    install = make_n("install")
    pip = [line for line in install.splitlines() if re.search(r"\bpip install\b", line)]
    assert pip and all(" -q" in line for line in pip), pip
    yarn = [line for line in install.splitlines() if "jlpm install" in line]
    assert yarn and all("YARN_ENABLE_PROGRESS_BARS=0" in line for line in yarn), yarn
    # yarn's fetch notices (~3,800 lines), peer-dependency and deprecation warnings are filtered out
    rc = (ROOT / ".yarnrc.yml").read_text(encoding="utf-8")
    discarded = set(re.findall(r"code: (YN\d{4})[^\n]*\n\s*level: discard", rc))
    assert {"YN0013", "YN0002", "YN0060", "YN0061"} <= discarded, discarded
    lab = make_n("lab")
    assert "open: " in lab and "lab?token=" in lab, lab[-2000:]
