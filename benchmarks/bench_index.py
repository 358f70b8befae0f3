"""Neuron index: build throughput vs bare forward, peak memory vs corpus size, card lookup latency.

    python -m benchmarks.bench_index

* Throughput: ``build_index`` over held-out stdlib files vs a bare forward over exactly the
  same window batches (no hooks, nothing kept), tokens per second, side by side.
* Peak memory: the build's peak RSS in a fresh subprocess for two corpus sizes.
* Lookup: ``GET neurons/...`` over HTTP on a GPT-2-small-sized index (36,864 neurons x 20
  examples, random values) served by a real Jupyter server, 500 random neurons.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import default_model, gpt2_small_shaped
from benchmarks.server import TOKEN, jupyter_server
from lenscope.index.build import HIST_EDGES, BuildOptions, IndexArrays, build_index
from lenscope.index.corpus import Document, read_documents
from lenscope.index.corpus_store import CorpusWriter
from lenscope.index.store import write_index
from lenscope.models.registry import DEFAULT_DIR
from lenscope.models.stdlib_corpus import stdlib_root


def held_out_docs(max_tokens: int, tokenizer: Any) -> list[Document]:
    files = (DEFAULT_DIR / "held_out_files.txt").read_text(encoding="utf-8").split()
    docs, _ = read_documents(stdlib_root(), files)
    out, total = [], 0
    for d in docs:
        out.append(d)
        total += len(tokenizer(d.text, add_special_tokens=False)["input_ids"])
        if total >= max_tokens:
            break
    return out


@torch.inference_mode()
def bare_forward_tps(model: Any, docs: list[Document], batch: int, window: int | None = None) -> float:
    """Tokens per second of a bare forward over the windows build_index runs."""
    from lenscope.engine.plan import bos_id
    from lenscope.index.build import _windows_of

    body = (window or model.cfg.n_ctx) - 1
    ids = [model.tokenizer(d.text, add_special_tokens=False)["input_ids"] for d in docs]
    wins = _windows_of([len(i) for i in ids], body)
    bos = bos_id(model.tokenizer)
    start, tokens = time.perf_counter(), 0
    for b0 in range(0, len(wins), batch):
        part = wins[b0 : b0 + batch]
        x = torch.full((len(part), body + 1), bos, dtype=torch.int64)
        for i, (d, s, n) in enumerate(part.tolist()):
            x[i, 1 : 1 + n] = torch.tensor(ids[d][s : s + n])
            tokens += n
        model(x)
    return tokens / (time.perf_counter() - start)


def throughput(model: Any, label: str, max_tokens: int, batch: int) -> dict[str, Any]:
    docs = held_out_docs(max_tokens, model.tokenizer)
    bare_forward_tps(model, docs[:1], batch)  # warm up
    fw = bare_forward_tps(model, docs, batch)
    # the streaming pass is timed by its own progress reports; what follows it (the merge, the
    # one-time logit effects W_out @ W_U, the descriptions' scoring pass) is reported apart
    marks: list[tuple[float, int]] = []
    t = time.perf_counter()
    arrays = build_index(
        model, docs, BuildOptions(batch_windows=batch), progress=lambda p: marks.append((time.perf_counter(), p["tokens_done"]))
    )
    total = time.perf_counter() - t
    stream = marks[-1][0] - t
    build = arrays.count / stream
    return {"model": label, "tokens": arrays.count, "build_tps": build, "forward_tps": fw, "finish_s": total - stream}


PEAK_SCRIPT = """
import os, sys, torch
torch.set_num_threads(2)
from benchmarks.bench_index import held_out_docs
from benchmarks.common import default_model
from lenscope.index.build import build_index

def status(key):  # kB; VmHWM is this process's own peak (ru_maxrss would carry the parent's over exec)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key + ":"))

m = default_model()
docs = held_out_docs(int(sys.argv[1]), m.tokenizer)
base = status("VmRSS")
a = build_index(m, docs)
print(a.count, base, status("VmHWM"))
"""


def peak_memory(tokens: int) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tokens)], capture_output=True, text=True, check=True)
    count, base, peak = (int(x) for x in out.stdout.split()[-3:])
    return count, (peak - base) / 1024  # MiB above the loaded model


def random_gpt2_index(folder: Path) -> None:
    n, k, ctx = 12 * 3072, 20, 61
    rng = np.random.default_rng(0)
    text = "def f(x):\n    return x\n" * 2000
    tokens = np.arange(len(text) // 4, dtype=np.int32) % 50257
    writer = CorpusWriter(None, 1023, table=np.full(50257, 4, dtype=np.int16))  # 4 ASCII bytes a token
    writer.add_tokens(text, tokens, np.arange(len(tokens)) * 4, np.arange(len(tokens)) * 4 + 4)
    arrays = IndexArrays(
        k=k, before=50, after=10, window_tokens=1024,
        top_values=np.sort(rng.random((n, k), dtype=np.float32), axis=1)[:, ::-1].copy(),
        top_windows=rng.integers(0, 8, (n, k), dtype=np.int32),
        top_positions=rng.integers(60, 900, (n, k), dtype=np.int32),
        top_context=rng.random((n, k, ctx), dtype=np.float32).astype(np.float16),
        windows=writer.windows_array(), corpus=writer.finish(),
        count=len(tokens), mean=rng.random(n, dtype=np.float32), max=rng.random(n, dtype=np.float32),
        hist=rng.integers(0, 1000, (n, len(HIST_EDGES) + 1)),
        logit_top_ids=rng.integers(0, 50257, (n, 10), dtype=np.int32),
        logit_top_values=rng.random((n, 10), dtype=np.float32),
        logit_bottom_ids=rng.integers(0, 50257, (n, 10), dtype=np.int32),
        logit_bottom_values=rng.random((n, 10), dtype=np.float32),
        strings={i: f"t{i}" for i in range(50257)},
    )  # fmt: skip
    doc = Document("random.py", text, "0" * 64)
    write_index(arrays, folder, model="gpt2-small-shaped", n_layers=12, tokenizer={}, docs=[doc], skipped=[], root=".")


def lookup_latency(samples: int = 500) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        random_gpt2_index(root / ".lenscope" / "indexes" / "gpt2-random")
        with jupyter_server(root) as base:
            rng = random.Random(0)

            def get(layer: int, index: int) -> float:
                req = urllib.request.Request(
                    f"{base}lenscope/api/neurons/gpt2-small-shaped/{layer}/{index}",
                    headers={"Authorization": f"token {TOKEN}", "Accept": "application/msgpack"},
                )
                t = time.perf_counter()
                urllib.request.urlopen(req, timeout=30).read()
                return (time.perf_counter() - t) * 1000

            get(0, 0)
            times = sorted(get(rng.randrange(12), rng.randrange(3072)) for _ in range(samples))
    return {"p50": statistics.median(times), "p99": times[int(0.99 * len(times)) - 1], "samples": samples}


def main() -> None:
    torch.set_num_threads(2)
    gelu = default_model()
    rows = [
        throughput(gelu, "lenscope-gelu-1l", 60_000, 8),
        throughput(gpt2_small_shaped(gelu.tokenizer), "gpt2-small-shaped", 4_000, 1),
    ]
    print("| model | tokens | index build (tok/s) | bare forward (tok/s) | ratio | target >= 0.85x "
          "| after the pass: merge, logit effects, descriptions (s) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|---:|")
    for r in rows:
        ratio = r["build_tps"] / r["forward_tps"]
        cells = [r["model"], f"{r['tokens']:,}", f"{r['build_tps']:,.0f}", f"{r['forward_tps']:,.0f}", f"{ratio:.2f}x"]
        print("| " + " | ".join(cells) + f" | {'met' if ratio >= 0.85 else 'not met'} | {r['finish_s']:.1f} |")
    print()
    print("| corpus tokens | peak RSS above the loaded model (MiB) |")
    print("|---:|---:|")
    for size in (40_000, 160_000):
        count, mib = peak_memory(size)
        print(f"| {count:,} | {mib:.0f} |")
    print()
    lat = lookup_latency()
    print(
        f"card lookup over HTTP, GPT-2-sized index: p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms ({lat['samples']} lookups)"
    )
    print(json.dumps(lat))


if __name__ == "__main__":
    main()
