"""Where heads attend, for a whole selection: ``attend`` (every token's top-16 sources for every
head, and the positional shares) against ``analyze`` on the same 1,000 tokens, in one process,
alternated, median of 5. The layers are those the panel asks for: all of a model with up to 4
layers, else one (all 12 of GPT-2 at k=16 is over the response bound).

    python -m benchmarks.bench_attention
"""

from __future__ import annotations

import torch

from benchmarks.common import default_model, gpt2_small_shaped, median_ms, text_of_tokens
from lenscope.analysis import analyze
from lenscope.attention import attend


def main() -> None:
    torch.set_num_threads(2)
    gelu = default_model()
    text = text_of_tokens(gelu.tokenizer, 1000)
    print("| model | analyze 1,000 tokens (ms) | attend, k=16, the panel's layers (ms) | ratio |")
    print("|---|---:|---:|---:|")
    for name, model in (("lenscope-gelu-1l", gelu), ("gpt2-small-shaped", gpt2_small_shaped(gelu.tokenizer))):
        analyze(model, text)
        layers = None if model.cfg.n_layers <= 4 else [0]
        attend(model, text, layers=layers)  # warm up
        t_a = median_ms(lambda model=model: analyze(model, text), 5)
        t_att = median_ms(lambda model=model, layers=layers: attend(model, text, layers=layers), 5)
        print(f"| {name} | {t_a:,.0f} | {t_att:,.0f} | {t_att / t_a:.2f}x |")


if __name__ == "__main__":
    main()
