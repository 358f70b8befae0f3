"""What if, at what cost: ``analyze`` with interventions against the plain ``analyze`` of the same
1,000 tokens (in one process, alternated, median of 5), and ``patch_grid`` over two 40-token texts.

    python -m benchmarks.bench_interventions
"""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.common import default_model, gpt2_small_shaped, median_ms, text_of_tokens
from lenscope.analysis import analyze
from lenscope.interventions import Intervention
from lenscope.patching import patch_grid

CASES = {
    "zero one neuron": [Intervention("neuron", 0, 5, "zero")],
    "mean-ablate one head (a plain pass for the mean)": [Intervention("head", 0, 1, "mean")],
    "steer a neuron + scale a layer": [Intervention("neuron", 0, 5, "steer", 3.0), Intervention("attn", 0, None, "scale", 0.5)],
}


def corrupt(tokenizer: Any, text: str) -> str:
    """``text`` with its second token swapped for another that keeps the token count."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for other in range(100, 4000):
        candidate = tokenizer.decode([ids[0], other, *ids[2:]])
        word = tokenizer.decode([other])
        if other == ids[1] or not word.strip().isalpha():
            continue
        if len(tokenizer(candidate, add_special_tokens=False)["input_ids"]) == len(ids):
            return str(candidate)
    raise RuntimeError("no corrupted text of the same token count")


def main() -> None:
    torch.set_num_threads(2)
    gelu = default_model()
    text = text_of_tokens(gelu.tokenizer, 1000)
    print("| model | interventions | analyze (ms) | with them (ms) | ratio |")
    print("|---|---|---:|---:|---:|")
    for name, model in (("lenscope-gelu-1l", gelu), ("gpt2-small-shaped", gpt2_small_shaped(gelu.tokenizer))):
        analyze(model, text)
        t_plain = median_ms(lambda model=model: analyze(model, text), 5)
        for label, ivs in CASES.items():
            analyze(model, text, interventions=ivs)
            t = median_ms(lambda model=model, ivs=ivs: analyze(model, text, interventions=ivs), 5)
            print(f"| {name} | {label} | {t_plain:,.0f} | {t:,.0f} | {t / t_plain:.2f}x |")
    print()
    clean = text_of_tokens(gelu.tokenizer, 40)
    corrupted = corrupt(gelu.tokenizer, clean)
    for name, model in (("lenscope-gelu-1l", gelu), ("gpt2-small-shaped", gpt2_small_shaped(gelu.tokenizer))):
        n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
        t0 = time.perf_counter()
        patch_grid(model, clean, corrupted, 5, 9)
        print(f"patch_grid, 40 tokens, {name}: {(time.perf_counter() - t0) * 1000:,.0f} ms "
              f"({n_layers * (3 + n_heads)} batched forwards of 40 rows)")  # fmt: skip


if __name__ == "__main__":
    main()
