"""Rank by causal effect, at what cost: ``sweep`` (every neuron and head zero-ablated at one
prediction) against one plain forward of the same prefix, in one process, alternated, median of
5, as a ratio (the machine's load moves both alike; the ratio is the number to compare).

    python -m benchmarks.bench_sweep [--tokens 64]

Per model: the exact sweep (the default 1-layer model: 1,024 neurons through the tail, 8 heads
widened), the estimate (gradient x activation: one forward and backward), and the direct
attribution ``sweep`` also computes (reported apart in ``timings_ms``). The 2-layer model's exact
sweep widens layer 0's 1,024 neurons through layer 1: the costly case. GPT-2-small-shaped: the
estimate only (its exact sweep is over the work limit beyond a few tokens).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from benchmarks.common import default_model, gpt2_small_shaped, text_of_tokens
from lenscope.models.registry import load_model
from lenscope.sweep import sweep


@torch.inference_mode()
def forward(model: Any, tokens: list[int]) -> None:
    model(torch.tensor([tokens]))


def timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=64, help="the prediction is made after this many tokens")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    gelu = default_model()
    text = text_of_tokens(gelu.tokenizer, args.tokens + 1)
    position = args.tokens - 1
    models = [
        ("lenscope-gelu-1l", gelu, ("exact", "estimate")),
        ("lenscope-gelu-2l", load_model("lenscope-gelu-2l"), ("exact", "estimate")),
        ("gpt2-small-shaped", gpt2_small_shaped(gelu.tokenizer), ("estimate",)),
    ]
    print(f"prediction after {args.tokens} tokens; median of {args.repeat}, alternated with a forward of the same tokens")
    print()
    print("| model | method | units | forward (ms) | sweep (ms) | of which direct attribution (ms) | sweep / forward |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, model, methods in models:
        tokens = [gelu.tokenizer.bos_token_id, *gelu.tokenizer(text, add_special_tokens=False)["input_ids"][: position + 1]]
        n_units = model.cfg.n_layers * (model.cfg.d_mlp + model.cfg.n_heads)
        for method in methods:
            sweep(model, text, position, method=method)  # warm up
            forwards, sweeps, direct = [], [], []
            for _ in range(args.repeat):
                forwards.append(timed(lambda model=model, tokens=tokens: forward(model, tokens)))
                result: list[Any] = []
                sweeps.append(timed(lambda m=model, how=method, out=result: out.append(sweep(m, text, position, method=how))))
                direct.append(result[0].timings_ms["direct"])
            f, s = statistics.median(forwards), statistics.median(sweeps)
            print(f"| {name} | {method} | {n_units:,} | {f:,.1f} | {s:,.0f} | {statistics.median(direct):,.0f} | {s / f:.1f}x |")


if __name__ == "__main__":
    main()
