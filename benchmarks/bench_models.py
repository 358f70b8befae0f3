"""Multi-layer and SAE costs, side by side in one run (issue #13's figures).

    python -m benchmarks.bench_models [--repeat 5] [--index-tokens 20000]

* ``analyze`` vs a bare forward over the same windows on the 2-layer default model.
* Index build throughput vs a bare forward over the same batches, 2-layer model.
* SAE features: ``analyze(..., sae=)`` vs ``analyze`` on the GELU model with its shipped SAE
  (encoding 1,024 -> 2,048 inside the hook, top-10 features per token), and a feature index
  build vs a neuron index build over the same documents.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from benchmarks.bench_analyze import windows_batch
from benchmarks.bench_index import bare_forward_tps, held_out_docs
from benchmarks.common import bare_forward, median_ms, text_of_tokens
from lenscope.analysis import analyze
from lenscope.index.build import BuildOptions, build_index
from lenscope.models.registry import load_model
from lenscope.models.sae_registry import load_named_sae

SAE = "lenscope-gelu-1l-mlp-topk"


def interleaved(a: Any, b: Any, repeat: int) -> tuple[float, float]:
    """Medians of ``a`` and ``b`` timed alternately (drift hits both alike)."""
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(median_ms(a, 1))
        tb.append(median_ms(b, 1))
    return sorted(ta)[len(ta) // 2], sorted(tb)[len(tb) // 2]


def build_tps(model: Any, docs: list[Any], sae: Any = None) -> float:
    marks: list[tuple[float, int]] = []
    t = time.perf_counter()
    arrays = build_index(
        model, docs, BuildOptions(), progress=lambda p: marks.append((time.perf_counter(), p["tokens_done"])), sae=sae
    )
    return arrays.count / (marks[-1][0] - t)  # the streaming pass: the one-time logit effects after it are apart


def run(repeat: int, index_tokens: int) -> dict[str, list[dict[str, Any]]]:
    torch.set_num_threads(2)
    two, gelu = load_model("lenscope-gelu-2l"), load_model("lenscope-gelu-1l")
    sae = load_named_sae(SAE)
    out: dict[str, list[dict[str, Any]]] = {"analyze": [], "index": [], "sae": [], "features_index": []}
    for n in (256, 1024):
        text = text_of_tokens(two.tokenizer, n)
        x = windows_batch(two, text)
        analyze(two, text), bare_forward(two, x)  # warm-up
        an, fw = interleaved(lambda t=text: analyze(two, t), lambda x=x: bare_forward(two, x), repeat)
        out["analyze"].append({"model": "lenscope-gelu-2l", "tokens": n, "windows": x.shape[0], "a_ms": an, "b_ms": fw})
        analyze(gelu, text, sae=sae)
        with_sae, plain = interleaved(lambda t=text: analyze(gelu, t, sae=sae), lambda t=text: analyze(gelu, t), repeat)
        out["sae"].append({"tokens": n, "a_ms": with_sae, "b_ms": plain})
    docs = held_out_docs(index_tokens, two.tokenizer)
    bare_forward_tps(two, docs[:1], 8)
    out["index"].append(
        {"model": "lenscope-gelu-2l", "build_tps": build_tps(two, docs), "forward_tps": bare_forward_tps(two, docs, 8)}
    )
    out["features_index"].append(
        {"model": "lenscope-gelu-1l", "build_tps": build_tps(gelu, docs, sae), "forward_tps": build_tps(gelu, docs)}
    )
    return out


def _ratio_row(*cells: object, a: float, b: float) -> str:
    return "| " + " | ".join([*map(str, cells), f"{a / b:.2f}x"]) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--index-tokens", type=int, default=20_000)
    args = ap.parse_args()
    r = run(args.repeat, args.index_tokens)
    print("| model | tokens | windows | analyze (ms) | bare forward (ms) | ratio |\n|---|---:|---:|---:|---:|---:|")
    for w in r["analyze"]:
        print(_ratio_row(w["model"], w["tokens"], w["windows"], f"{w['a_ms']:.1f}", f"{w['b_ms']:.1f}", a=w["a_ms"], b=w["b_ms"]))
    print("\n| model | index build (tokens/s) | bare forward (tokens/s) | ratio |\n|---|---:|---:|---:|")
    for w in r["index"]:
        print(_ratio_row(w["model"], f"{w['build_tps']:,.0f}", f"{w['forward_tps']:,.0f}", a=w["build_tps"], b=w["forward_tps"]))
    print("\n| lenscope-gelu-1l, tokens | analyze + top-10 SAE features (ms) | analyze (ms) | ratio |\n|---:|---:|---:|---:|")
    for w in r["sae"]:
        print(_ratio_row(w["tokens"], f"{w['a_ms']:.1f}", f"{w['b_ms']:.1f}", a=w["a_ms"], b=w["b_ms"]))
    print("\n| model | feature index build (tokens/s) | neuron index build (tokens/s) | ratio |\n|---|---:|---:|---:|")
    for w in r["features_index"]:
        print(_ratio_row(w["model"], f"{w['build_tps']:,.0f}", f"{w['forward_tps']:,.0f}", a=w["build_tps"], b=w["forward_tps"]))


if __name__ == "__main__":
    main()
