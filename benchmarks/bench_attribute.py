"""Direct logit attribution over HTTP: one position's cost, and every position of a selection
against one analysis of it.

    python -m benchmarks.bench_attribute [--requests 40]

A real Jupyter server with lenscope on loopback (worker with 2 torch threads). For the default
model and a GPT-2-small-shaped one (random weights of the real shape): ``POST attribute`` at
random positions of a 256-token text (p50, p99 of the wall time), then, on a 1,000-token text,
the time to attribute every position one request at a time against one ``POST analyze`` of the
same text (both msgpack, sequential, cache off); and, in process, ``attribute_all`` (every
position from one pass) against ``analyze`` on the same 1,000 tokens, alternated, median of 5.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import default_model, gpt2_small_shaped, median_ms, save_gpt2_small_shaped, text_of_tokens
from benchmarks.server import TOKEN, jupyter_server
from lenscope.analysis import analyze
from lenscope.attribution import attribute_all

MSGPACK = "application/msgpack"


def post(base: str, route: str, body: dict[str, Any]) -> float:
    req = urllib.request.Request(
        f"{base}lenscope/api/{route}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json", "Accept": MSGPACK},
    )  # fmt: skip
    t = time.perf_counter()
    urllib.request.urlopen(req, timeout=600).read()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=40)
    args = ap.parse_args()
    tokenizer = default_model().tokenizer
    rng = random.Random(0)
    one, every = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save_gpt2_small_shaped(root / "models" / "gpt2-small-shaped")
        extra = ("--LenscopeApp.model_dirs=models", "--LenscopeApp.cache_size=0", "--LenscopeApp.worker_threads=2")
        with jupyter_server(root, *extra) as base:
            for name in ("lenscope-gelu-1l", "gpt2-small-shaped"):
                text = text_of_tokens(tokenizer, 256)
                post(base, "attribute", {"text": text, "model": name, "position": 0})  # load and warm up
                times = sorted(post(base, "attribute", {"text": text, "model": name, "position": rng.randrange(255)})
                               for _ in range(args.requests))  # fmt: skip
                one.append((name, times[len(times) // 2], times[min(len(times) - 1, int(0.99 * len(times)))]))
                long_text = text_of_tokens(tokenizer, 1000)
                t_analyze = post(base, "analyze", {"text": long_text, "model": name})
                positions = range(0, 1000, 10)  # a sample of 100 positions, scaled to all 1,000
                t_sample = sum(post(base, "attribute", {"text": long_text, "model": name, "position": p}) for p in positions)
                every.append((name, t_analyze, t_sample * 1000 / len(positions)))
    print("| model | attribute one position, p50 (ms) | p99 (ms) | requests |")
    print("|---|---:|---:|---:|")
    for name, p50, p99 in one:
        print(f"| {name} | {p50:.1f} | {p99:.1f} | {args.requests} |")
    print()
    print("| model | analyze 1,000 tokens, in process (ms) | attribute_all, every position (ms) | ratio | target <= 1.5x |")
    print("|---|---:|---:|---:|---|")
    torch.set_num_threads(2)
    gelu = default_model()
    text = text_of_tokens(tokenizer, 1000)
    for name, model in (("lenscope-gelu-1l", gelu), ("gpt2-small-shaped", gpt2_small_shaped(tokenizer))):
        analyze(model, text)
        attribute_all(model, text)  # warm up
        t_a = median_ms(lambda model=model: analyze(model, text), 5)
        t_all = median_ms(lambda model=model: attribute_all(model, text), 5)
        print(f"| {name} | {t_a:.0f} | {t_all:.0f} | {t_all / t_a:.2f}x | {'met' if t_all / t_a <= 1.5 else 'NOT met'} |")
    print()
    print("| model | analyze 1,000 tokens (ms) | attribute every position, one request each (ms) | ratio | target <= 1.5x |")
    print("|---|---:|---:|---:|---|")
    for name, t_a, t_all in every:
        ratio = t_all / t_a
        print(f"| {name} | {t_a:.0f} | {t_all:.0f} | {ratio:.1f}x | {'met' if ratio <= 1.5 else 'NOT met'} |")


if __name__ == "__main__":
    main()
