"""The "Copy as code": every view's Python cell, built by the frontend's own `lib/snippets.js` (run
with node), runs in a real Jupyter kernel and prints the numbers the server returned for the
same request over HTTP.

One server (one test: pytest-jupyter's server is per test, and each starts a worker) and one
kernel for the module. Arrays the wire sends as float16 (top-k log-probs, attention weights) are
compared after rounding the cell's numbers to float16 the way the server does; everything else at 1e-4.
"""

from __future__ import annotations

import asyncio
import json
import math
import queue
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lenscope.wire_codec import decode_json
from tests.server.helpers import body_of

REPO = Path(__file__).resolve().parents[2]
SNIPPETS_JS = REPO / "labextension" / "lib" / "snippets.js"
TOUR = (REPO / "examples" / "tour.py").read_text(encoding="utf-8")
GELU, ATTN = "lenscope-gelu-1l", "lenscope-attn-only-1l"
# the Stack class of the tour, with everything before it as the context
START, END = TOUR.index("class Stack"), TOUR.index("    def __len__")
TEXT, CONTEXT = TOUR[START:END], TOUR[:START]


def snippet(function: str, request: dict[str, Any], tmp: Path) -> str:
    """The cell the frontend copies: `lib/snippets.js`'s `function(request)`, run by node."""
    if not SNIPPETS_JS.exists():
        pytest.fail("labextension/lib/snippets.js is missing: run `jlpm build:lib`")
    module = tmp / "snippets.mjs"  # lib/ is ES modules without a "type": "module" package.json
    shutil.copyfile(SNIPPETS_JS, module)
    script = (
        f"import * as s from {json.dumps(module.as_uri())};"
        "import { readFileSync } from 'node:fs';"
        f"process.stdout.write(s[{json.dumps(function)}](JSON.parse(readFileSync(0, 'utf8'))));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], input=json.dumps(request), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run_cell(kc: Any, code: str) -> dict[str, Any]:
    """Execute a cell; its `LENSCOPE_RESULT` line, parsed (the cell's error, if any, fails the test)."""
    out: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            errors.append("\n".join(content["traceback"]))

    try:
        reply = kc.execute_interactive(code, output_hook=hook, timeout=300)
    except queue.Empty:  # pragma: no cover
        pytest.fail("the kernel did not answer in 300 s")
    assert reply["content"]["status"] == "ok" and not errors, "\n".join(errors) + "".join(out)
    lines = [line for line in "".join(out).splitlines() if line.startswith("LENSCOPE_RESULT ")]
    assert len(lines) == 1, "".join(out)
    assert len("".join(out).splitlines()) > 1  # a human-readable table before it
    return json.loads(lines[0][len("LENSCOPE_RESULT ") :])


async def post(jp_fetch: Any, route: str, body: dict[str, Any]) -> Any:
    response = await jp_fetch(
        "lenscope", "api", route, method="POST", body=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )  # fmt: skip
    return response


async def get(jp_fetch: Any, *parts: str) -> dict[str, Any]:
    return body_of(await jp_fetch("lenscope", "api", *parts))  # type: ignore[no-any-return]


def close(got: Any, want: Any, tol: float = 1e-4) -> None:
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert g.shape == w.shape and np.allclose(g, w, atol=tol, rtol=0, equal_nan=True), (got, want)


def as_f16(got: Any, wire: Any) -> None:
    """A float16 wire array is the float32 value rounded: the cell's numbers, rounded the same way, equal it."""
    g = np.asarray(nan_none(got), dtype=np.float32).astype(np.float16)
    assert g.shape == wire.shape and np.array_equal(g, wire, equal_nan=True), (got, wire)


def nan_none(x: Any) -> Any:
    return [nan_none(v) for v in x] if isinstance(x, list) else (math.nan if x is None else x)


async def check_analysis(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    request = {"model": GELU, "text": TEXT, "context": CONTEXT, "top_k": 10, "top_neurons": 10}
    got = run_cell(kc, snippet("analysisSnippet", request, tmp))
    wire = decode_json((await post(jp_fetch, "analyze", request)).body)
    p = wire["predictions"]
    n = len(got["tokens"])
    assert n == len(wire["tokens"]["ids"]) and [t["id"] for t in got["tokens"]] == wire["tokens"]["ids"].tolist()
    close([t["logprob"] for t in got["tokens"]], p["actual_logprob"][:n])
    assert [t["rank"] for t in got["tokens"]] == p["actual_rank"][:n].tolist()
    as_f16([t["entropy"] for t in got["tokens"]], p["entropy"][:n])
    assert [[i for i, _ in t["next"]] for t in got["tokens"]] == p["top_ids"][1:].tolist()
    as_f16([[v for _, v in t["next"]] for t in got["tokens"]], p["top_logprobs"][1:])
    assert [i for i, _ in got["first"]] == p["top_ids"][0].tolist()


async def check_comparison(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    request = {"model": GELU, "model_b": ATTN, "clamp": -6, "text": TEXT, "context": CONTEXT, "top_k": 10}
    got = run_cell(kc, snippet("comparisonSnippet", request, tmp))
    plain = {k: v for k, v in request.items() if k not in ("model_b", "clamp")}
    a = decode_json((await post(jp_fetch, "analyze", {**plain, "top_neurons": 10})).body)
    b = decode_json((await post(jp_fetch, "analyze", {**plain, "model": ATTN, "top_neurons": 0})).body)
    n = len(a["tokens"]["ids"])
    lp_a, lp_b = a["predictions"]["actual_logprob"][:n], b["predictions"]["actual_logprob"][:n]
    close([t["diff"] for t in got["tokens"]], lp_a - np.maximum(lp_b, -6))
    assert min(t["logprob_b"] for t in got["tokens"]) < -6  # the clamp matters on this text


async def check_attribution(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    for request in (
        {"model": GELU, "text": TEXT, "context": CONTEXT, "position": 5, "target": None, "baseline": None, "top": 10},
        {"model": GELU, "text": TEXT, "context": CONTEXT, "position": 9, "target": 287, "baseline": 88, "top": 7},
        {"model": ATTN, "text": TEXT, "context": "", "position": 3, "top": 10},
    ):
        got = run_cell(kc, snippet("attributionSnippet", request, tmp))
        wire = decode_json((await post(jp_fetch, "attribute", request)).body)
        for key in (
            "value",
            "total",
            "ln_scale",
            "embed",
            "pos_embed",
            "constant",
            "attn_bias",
            "mlp_bias",
            "heads",
            "mlp_total",
        ):
            close(got[key], wire[key])
        assert (got["target"], got["baseline"], got["position"]) == (wire["target"], wire["baseline"], wire["position"])
        assert [(n["layer"], n["index"]) for n in got["top_neurons"]] == [(n["layer"], n["index"]) for n in wire["top_neurons"]]
        close([n["value"] for n in got["top_neurons"]], [n["value"] for n in wire["top_neurons"]])


async def check_attention(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    request = {"model": ATTN, "text": TEXT, "context": CONTEXT, "k": 16, "layers": None, "token": 7}
    got = run_cell(kc, snippet("attentionSnippet", request, tmp))
    wire = decode_json((await post(jp_fetch, "attention", {k: v for k, v in request.items() if k != "token"})).body)
    close(got["positional_share"], wire["positional_share"])
    for li, layer in enumerate(wire["layers"]):
        for h in range(wire["n_heads"]):
            sources, weights = wire["sources"][li, h, 7], wire["weights"][li, h, 7]
            keep = sources != -3
            row = got["rows"][f"{layer}.{h}"]
            assert [s for s, _ in row] == sources[keep].tolist()
            as_f16([w for _, w in row], weights[keep])


async def check_logit_lens(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    request = {"model": GELU, "text": TEXT, "context": CONTEXT, "position": 9, "top_k": 5}
    got = run_cell(kc, snippet("logitLensSnippet", request, tmp))
    body = {"model": GELU, "text": TEXT, "context": CONTEXT, "positions": [9], "top_k": 5}
    wire = decode_json((await post(jp_fetch, "logit_lens", body)).body)
    assert [r["name"] for r in got["rows"]] == wire["rows"] and got["next"] == int(wire["actual_ids"][0])
    for r, row in enumerate(got["rows"]):
        assert [t for t, _ in row["top"]] == wire["top_ids"][r, 0].tolist()
        as_f16([v for _, v in row["top"]], wire["top_logprobs"][r, 0])
        assert row["rank"] == int(wire["actual_rank"][r, 0])
        close(row["logprob"], wire["actual_logprob"][r, 0])


async def check_intervention(jp_fetch: Any, kc: Any, tmp: Path, root: Path) -> None:
    interventions = [
        {"component": "neuron", "layer": 0, "index": 23, "op": "zero", "value": 0, "positions": None, "source": None},
        {"component": "head", "layer": 0, "index": 1, "op": "scale", "value": 0.5, "positions": [3], "source": None},
        {"component": "neuron", "layer": 0, "index": 5, "op": "steer", "value": 3, "positions": None, "source": None},
        {"component": "neuron", "layer": 0, "index": 729, "op": "mean", "value": 0, "positions": None, "source": None},
    ]
    request = {"model": GELU, "text": TEXT, "context": CONTEXT, "top_k": 10, "top_neurons": 10, "interventions": interventions}
    got = run_cell(kc, snippet("interventionSnippet", {**request, "root": str(root)}, tmp))
    after = decode_json((await post(jp_fetch, "analyze", request)).body)
    before = decode_json((await post(jp_fetch, "analyze", {**request, "interventions": []})).body)
    n = len(before["tokens"]["ids"])
    delta = after["predictions"]["actual_logprob"][:n] - before["predictions"]["actual_logprob"][:n]
    close([t["delta"] for t in got["tokens"]], delta)
    assert max(abs(t["delta"]) for t in got["tokens"]) > 1e-3
    # the neuron's mean from the model's index (the shipped one here), as the server took it
    assert got["applied"] == after["interventions"] and got["applied"][-1]["mean_from"] == "index"


async def check_patch(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    clean, corrupted = "x = 'cat'\nprint(", "y = 'cat'\nprint("
    ids = [
        decode_json((await post(jp_fetch, "analyze", {"model": GELU, "text": t})).body)["tokens"]["ids"][0]
        for t in (clean, corrupted)
    ]
    request = {
        "model": GELU,
        "clean": clean,
        "corrupted": corrupted,
        "target": int(ids[0]),
        "baseline": int(ids[1]),
        "position": None,
    }
    got = run_cell(kc, snippet("patchSnippet", request, tmp))
    wire = decode_json((await post(jp_fetch, "patch", request)).body)
    for key in ("clean_value", "corrupted_value", "heads"):
        close(nan_none(got[key]), wire[key])
    for component in ("resid_pre", "attn_out", "mlp_out"):
        close(nan_none(got["restored"][component]), wire[component])
    assert got["position"] == wire["position"]


async def check_corpus_compare(jp_fetch: Any, kc: Any, tmp: Path, root: Path) -> None:
    (root / "ex").mkdir()
    (root / "ex" / "tour.py").write_text(TOUR, encoding="utf-8")
    body = {"model_a": GELU, "model_b": ATTN, "paths": ["ex"], "clamp": -6, "min_count": 5}
    job = body_of(await post(jp_fetch, "compare", body))
    got = run_cell(kc, snippet("corpusCompareSnippet", {**body, "root": str(root), "rows": 20}, tmp))
    for _ in range(1200):
        job = await get(jp_fetch, "jobs", job["id"])
        if job["state"] in ("done", "failed", "cancelled"):
            break
        await asyncio.sleep(0.1)
    assert job["state"] == "done", job
    result = job["result"]
    assert (got["files"], got["tokens"]) == (result["files"], result["tokens"])
    rows = result["rows"][:20]
    assert [(r["path"], r["token_index"], r["token"]) for r in got["rows"]] == [
        (r["path"], r["token_index"], r["token"]) for r in rows
    ]
    close([r["diff"] for r in got["rows"]], [r["diff"] for r in rows])
    close([r["mlp_a"] for r in got["rows"]], [r["mlp_a"] for r in rows])
    assert [(c["layer"], c["index"], c["rows"]) for c in got["carriers"]] == [
        (c["layer"], c["index"], c["rows"]) for c in result["carriers"]
    ]
    close([c["total"] for c in got["carriers"]], [c["total"] for c in result["carriers"]])


async def check_neuron_card(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    got = run_cell(kc, snippet("neuronCardSnippet", {"model": GELU, "layer": 0, "index": 5}, tmp))
    card = await get(jp_fetch, "neurons", GELU, "0", "5")
    inputs = await get(jp_fetch, "neurons", GELU, "0", "5", "inputs")
    for key in ("logit_boosted", "logit_suppressed"):
        assert [e["id"] for e in got[key]] == [e["id"] for e in card[key]]
        close([e["value"] for e in got[key]], [e["value"] for e in card[key]])
    assert [e["id"] for e in got["inputs"]] == [e["id"] for e in inputs["inputs"]]
    close([e["value"] for e in got["inputs"]], [e["value"] for e in inputs["inputs"]])


async def check_feature_card(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    """The shipped SAE's feature card: the decoder direction's logit effects equal the card's (the shipped feature index)."""
    sae = "lenscope-gelu-1l-mlp-topk"
    got = run_cell(kc, snippet("featureCardSnippet", {"model": GELU, "sae": sae, "index": 7}, tmp))
    card = await get(jp_fetch, "features", GELU, sae, "7")
    assert (got["sae"], got["index"], card["sae"], card["index"]) == (sae, 7, sae, 7)
    for key in ("logit_boosted", "logit_suppressed"):
        assert [e["id"] for e in got[key]] == [e["id"] for e in card[key]]
        close([e["value"] for e in got[key]], [e["value"] for e in card[key]])


async def check_head_card(jp_fetch: Any, kc: Any, tmp: Path) -> None:
    got = run_cell(kc, snippet("headCardSnippet", {"model": ATTN, "layer": 0, "head": 1}, tmp))
    card = await get(jp_fetch, "heads", ATTN, "0", "1")
    close([got["copying_score"], got["positive_share"]], [card["copying_score"], card["positive_share"]])
    close([got["copying_score_frequent"]], [card["copying_score_frequent"]])  # the pairs: over the frequent tokens, as the card
    for key in ("ov_top", "ov_bottom", "qk_top"):
        assert [(p["source"], p["target"]) for p in got[key]] == [(p["source"], p["target"]) for p in card[key]]
        close([p["value"] for p in got[key]], [p["value"] for p in card[key]])


async def test_every_views_code_prints_the_servers_numbers(jp_fetch, jp_root_dir: Path, kernel, tmp_path: Path) -> None:
    await check_analysis(jp_fetch, kernel, tmp_path)
    await check_comparison(jp_fetch, kernel, tmp_path)
    await check_attribution(jp_fetch, kernel, tmp_path)
    await check_attention(jp_fetch, kernel, tmp_path)
    await check_logit_lens(jp_fetch, kernel, tmp_path)
    await check_intervention(jp_fetch, kernel, tmp_path, jp_root_dir)
    await check_patch(jp_fetch, kernel, tmp_path)
    await check_neuron_card(jp_fetch, kernel, tmp_path)
    await check_feature_card(jp_fetch, kernel, tmp_path)
    await check_head_card(jp_fetch, kernel, tmp_path)
    await check_corpus_compare(jp_fetch, kernel, tmp_path, jp_root_dir)


def test_tricky_text_survives_the_python_literal(tmp_path: Path, kernel) -> None:
    """Quotes, backslashes, newlines (all kinds), tabs, NUL-free control characters, emoji,
    combining marks and RTL text come back from the cell exactly."""
    text = "a'b\"c\\d\\n\r\n\r\t\x0b\x0c\x1b\x7f\x85\u2028\u2029é😀👩‍👩‍👧e\u0301 שלום '''\"\"\"{x}"
    code = snippet("analysisSnippet", {"model": GELU, "text": text, "context": "ctx\\'\n"}, tmp_path)
    assert code.isascii()
    code = code.split("\nr = analyze(")[0] + '\nprint("LENSCOPE_RESULT " + json.dumps({"text": TEXT, "context": CONTEXT}))\n'
    got = run_cell(kernel, code.replace("model = load_model(MODEL)", "print(MODEL)"))
    assert got == {"text": text, "context": "ctx\\'\n"}
