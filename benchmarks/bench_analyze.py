"""analyze() vs a bare TransformerLens forward on the same tokens, measured side by side.

    python -m benchmarks.bench_analyze [--repeat 5] [--models lenscope-gelu-1l] [--threads 2]

For each model and length, the bare forward runs the very windows ``analyze`` runs ([BOS] +
tokens, split as ``lenscope.engine.windows`` splits them), with no hooks and nothing derived. The
ratio is what lenscope adds: hooks on the MLP, log-softmax, top-k, ranks, entropy, top
neurons, tokenization with spans, and building the result. The last column is analyze's own
account of its time (medians): its forward unembeds only the positions it reports, so on
overlapping windows it can be cheaper than the bare forward, which computes every position's
logits.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from benchmarks.common import bare_forward, default_model, gpt2_small_shaped, median_ms, text_of_tokens
from lenscope.analysis import analyze
from lenscope.engine.plan import bos_id
from lenscope.engine.windows import plan_windows

MODELS = ("lenscope-gelu-1l", "gpt2-small-shaped")


def windows_batch(model: Any, text: str) -> torch.Tensor:
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    body = model.cfg.n_ctx - 1
    plan = plan_windows(len(ids), body)
    width = max(w.stop - w.start for w in plan) + 1
    x = torch.full((len(plan), width), bos_id(model.tokenizer), dtype=torch.int64)
    for b, w in enumerate(plan):
        x[b, 1 : 1 + w.stop - w.start] = torch.tensor(ids[w.start : w.stop])
    return x


def run(repeat: int, models: tuple[str, ...] = MODELS, threads: int = 2) -> list[dict[str, Any]]:
    torch.set_num_threads(threads)
    gelu = default_model()
    rows = []
    built = {"lenscope-gelu-1l": lambda: gelu, "gpt2-small-shaped": lambda: gpt2_small_shaped(gelu.tokenizer)}
    for label in models:
        model = built[label]()
        for n in (256, 1024):
            text = text_of_tokens(model.tokenizer, n)
            x = windows_batch(model, text)
            analyze(model, text)  # warm-up both paths
            bare_forward(model, x)
            t_an, t_fw, parts = [], [], []
            for _ in range(repeat):  # interleaved so drift hits both alike
                t = time.perf_counter()
                result = analyze(model, text)
                t_an.append((time.perf_counter() - t) * 1000)
                parts.append(result.timings_ms)
                t_fw.append(median_ms(lambda m=model, x=x: bare_forward(m, x), 1))
            an, fw = sorted(t_an)[len(t_an) // 2], sorted(t_fw)[len(t_fw) // 2]
            own = {k: statistics.median(p[k] for p in parts) for k in ("tokenize", "forward", "derive")}
            rows.append(
                {"model": label, "tokens": n, "windows": x.shape[0], "analyze_ms": an, "forward_ms": fw, "ratio": an / fw, **own}
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 is steadier on a busy machine)")
    args = ap.parse_args()
    rows = run(args.repeat, tuple(args.models.split(",")), args.threads)
    print(
        "| model | tokens | windows | analyze (ms) | bare forward (ms) | ratio | analyze's tokenize / forward / derive (ms) "
        "| ratio with analyze's forward replaced by the bare one |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        cells = [r["model"], r["tokens"], r["windows"], f"{r['analyze_ms']:.1f}", f"{r['forward_ms']:.1f}", f"{r['ratio']:.2f}x"]
        cells.append(f"{r['tokenize']:.1f} / {r['forward']:.1f} / {r['derive']:.1f}")
        cells.append(f"{(r['analyze_ms'] - r['forward'] + r['forward_ms']) / r['forward_ms']:.2f}x")
        print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
