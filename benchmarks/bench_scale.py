"""Index builds at scale (issue 14), every figure side by side in one run:

* Ray engine on 1 vs 2 worker processes (and the local engine) over the same corpus;
* an update after editing one 1,000-line file vs a full rebuild of the same workspace;
* card lookup p50/p99 and the lookup process's peak memory on synthetic indexes of 1M and 10M
  tokens (default-model shape: 1,024 neurons x 20 examples), and their size on disk against the
  corpus and the top-k arrays;
* a build's peak memory at 1M and 10M tokens of synthetic text (a small random-init model, so
  that 10M tokens take minutes, not hours).

``python -m benchmarks.bench_scale [--skip-ray] [--skip-big]``; prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bench_index import held_out_docs
from benchmarks.common import default_model
from lenscope.index.arrays import HIST_EDGES, IndexArrays
from lenscope.index.build import BuildOptions, build_index
from lenscope.index.corpus import Document
from lenscope.index.corpus_store import CorpusWriter
from lenscope.index.store import write_index
from lenscope.workspace import build_index_over, read_corpus


def ray_rows(model: Any, docs: list[Document]) -> list[dict[str, Any]]:
    import ray

    from lenscope.index.ray_engine import ray_engine_for

    rows = []
    t = time.perf_counter()
    local = build_index(model, docs, BuildOptions())
    rows.append({"engine": "local (this process)", "workers": 1, "seconds": time.perf_counter() - t, "shards_s": None,
                 "first_s": None})  # fmt: skip
    for workers in (1, 2):
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        engine = ray_engine_for("lenscope-gelu-1l", workers=workers)
        engine.threads_per_worker = 2 // workers  # the same 2 cores in both runs
        t = time.perf_counter()
        on_ray = build_index(model, docs, BuildOptions(), engine=engine)
        rows.append({"engine": "ray", "workers": workers, "seconds": time.perf_counter() - t, "shards_s": engine.info["seconds"],
                     "first_s": engine.info["first_shard_s"]})  # fmt: skip
        assert on_ray.top_values.tobytes() == local.top_values.tobytes()
        ray.shutdown()
    return rows


def thousand_line_file() -> str:
    return "".join(f"def handler_{i}(request, payload):\n    return request.send(payload * {i})\n" for i in range(500))


def update_rows(model: Any, docs: list[Document]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        for i, d in enumerate(docs):
            (root / f"{i:03d}_{Path(d.path).name}").parent.mkdir(parents=True, exist_ok=True)
            (root / f"{i:03d}_{Path(d.path).name}").write_text(d.text, encoding="utf-8")
        big = root / "zz_big.py"
        big.write_text(thousand_line_file())
        out = Path(tmp) / "idx"
        t = time.perf_counter()
        full = build_index_over(lambda: model, "m", read_corpus(root, ["."]), out)
        full_s = time.perf_counter() - t
        big.write_text(big.read_text().replace("handler_250(", "handler_two_fifty("))
        t = time.perf_counter()
        upd = build_index_over(lambda: model, "m", read_corpus(root, ["."]), out)
        update_s = time.perf_counter() - t
    return {"tokens": full["tokens"], "files": full["files"], "full_s": full_s, "update_s": update_s,
            "shards": upd["shards"], "reused": upd["shards_reused"]}  # fmt: skip


def synthetic_index(folder: Path, n_tokens: int, n_units: int = 1024, k: int = 20) -> dict[str, int]:
    """An index of the default model's shape over ``n_tokens`` of synthetic text (4 ASCII
    characters a token), written by the real writer; returns its sizes."""
    rng = np.random.default_rng(0)
    doc_tokens = 20_000
    n_docs = n_tokens // doc_tokens
    docs = [Document(f"doc{i:05d}.txt", "", "0" * 64) for i in range(n_docs)]
    chars = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz _\n.", dtype=np.uint8)
    body = 255
    writer = CorpusWriter(None, body, table=np.full(4096, 4, dtype=np.int16))  # 4 ASCII bytes a token
    spans = np.arange(doc_tokens, dtype=np.int32) * 4
    for _ in range(n_docs):
        text = rng.choice(chars, size=doc_tokens * 4).tobytes().decode("ascii")
        writer.add_tokens(text, rng.integers(0, 4096, doc_tokens), spans, spans + 4)
    corpus = writer.finish()
    windows = writer.windows_array()
    n_win = len(windows)

    def ids() -> np.ndarray:
        return rng.integers(0, 4096, (n_units, 10), dtype=np.int32)

    arrays = IndexArrays(
        k=k, before=50, after=10, window_tokens=256,
        top_values=-np.sort(-rng.random((n_units, k), dtype=np.float32), axis=1),
        top_windows=rng.integers(0, n_win, (n_units, k), dtype=np.int32),
        top_positions=rng.integers(50, 100, (n_units, k), dtype=np.int32),  # the 61-token context inside every window
        top_context=rng.random((n_units, k, 61), dtype=np.float32).astype(np.float16),
        windows=windows, corpus=corpus,
        count=n_tokens, mean=rng.random(n_units, dtype=np.float32), max=rng.random(n_units, dtype=np.float32),
        hist=rng.integers(0, 1000, (n_units, len(HIST_EDGES) + 1)),
        logit_top_ids=ids(), logit_top_values=rng.random((n_units, 10), dtype=np.float32),
        logit_bottom_ids=ids(), logit_bottom_values=rng.random((n_units, 10), dtype=np.float32),
        strings={i: f"t{i}" for i in range(4096)},
    )  # fmt: skip
    write_index(arrays, folder, model="synthetic", n_layers=1, tokenizer={}, docs=docs, skipped=[], root=".")
    topk = sum(getattr(arrays, f).nbytes for f in ("top_values", "top_windows", "top_positions", "top_context"))
    disk = sum(f.stat().st_size for f in folder.iterdir())
    return {"tokens": n_tokens, "corpus_bytes": n_tokens * 4, "topk_bytes": topk, "disk_bytes": disk}


LOOKUP_SCRIPT = """
import random, sys, time, json
from pathlib import Path
from lenscope.index.card import neuron_card
from lenscope.index.store import open_index

def status(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key + ":"))

base, anon = status("VmRSS"), status("RssAnon")
index = open_index(Path(sys.argv[1]))
rng = random.Random(0)
neuron_card(index, 0, 0)
times = []
for _ in range(1000):
    t = time.perf_counter()
    neuron_card(index, 0, rng.randrange(1024))
    times.append((time.perf_counter() - t) * 1000)
times.sort()
# file-backed pages of the mapped arrays count in RSS once touched (reclaimable page cache);
# what the lookups themselves allocate is the anonymous part
print(json.dumps({"p50": times[500], "p99": times[989], "peak_mib": (status("VmHWM") - base) / 1024,
                  "anon_mib": (status("RssAnon") - anon) / 1024}))
"""


def lookup_row(folder: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", LOOKUP_SCRIPT, str(folder)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


BUILD_SCRIPT = """
import sys, json, time, torch
torch.set_num_threads(2)
from pathlib import Path
from benchmarks.common import default_model
from lenscope.index.build import BuildOptions, build_index
from lenscope.index.corpus import Document
from lenscope.models.native import new_native_model, wrap_native

def status(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key + ":"))

tok = default_model().tokenizer
config = dict(d_model=64, n_layers=1, n_heads=2, d_head=32, d_mlp=256, n_ctx=256, d_vocab=len(tok), act_fn="gelu_new",
              normalization_type="LN", seed=0, default_prepend_bos=True)
model = wrap_native(new_native_model(config), config, tok, "small-random").eval()
n = int(sys.argv[1])
words = ["def", "return", "self", "x", "(", ")", ":", "\\n", "    ", "import", "for", "in", "if", "=", "1", "+"]
import random
rng = random.Random(0)
docs = [Document(f"d{i}.py", " ".join(rng.choice(words) for _ in range(20_000)), str(i)) for i in range(n // 20_000)]
base = status("VmRSS")
t = time.perf_counter()
a = build_index(model, docs, BuildOptions(batch_windows=32))
print(json.dumps({"tokens": a.count, "seconds": time.perf_counter() - t, "peak_mib": (status("VmHWM") - base) / 1024}))
"""


def build_memory_row(tokens: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(tokens)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="ray,update,lookup,build", help="which tables (comma-separated)")
    parser.add_argument("--skip-big", action="store_true", help="no 10M-token rows")
    parser.add_argument("--tokens", type=int, default=60_000, help="corpus of the Ray and update rows")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = default_model()
    docs = held_out_docs(args.tokens, model.tokenizer)
    parts = set(args.parts.split(","))
    if "ray" in parts:
        print("| engine | workers | build (s) | of which shards (s) | until the first shard: workers up, model loaded (s) |")
        print("|---|---:|---:|---:|---:|")
        for r in ray_rows(model, docs):
            shards = "" if r["shards_s"] is None else f"{r['shards_s']:.1f}"
            first = "" if r["first_s"] is None else f"{r['first_s']:.1f}"
            print(f"| {r['engine']} | {r['workers']} | {r['seconds']:.1f} | {shards} | {first} |")
        print()
    if "update" in parts:
        update_table(model, docs)
    sizes = [1_000_000] + ([] if args.skip_big else [10_000_000])
    if "lookup" in parts:
        lookup_table(sizes)
    if "build" in parts:
        print("| tokens (synthetic) | build (s) | build peak RSS above the model (MiB) |\n|---:|---:|---:|")
        for n in sizes:
            b = build_memory_row(n)
            print(f"| {int(b['tokens']):,} | {b['seconds']:.0f} | {b['peak_mib']:.0f} |", flush=True)


def update_table(model: Any, docs: list[Document]) -> None:
    u = update_rows(model, docs)
    print("| workspace | full build (s) | update after editing the 1,000-line file (s) | shards reused | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {u['files']} files, {u['tokens']:,} tokens | {u['full_s']:.2f} | {u['update_s']:.2f} | "
          f"{u['reused']} of {u['shards']} | {u['update_s'] / u['full_s']:.2f}x |")  # fmt: skip
    print()


def lookup_table(sizes: list[int]) -> None:
    print("| tokens | card p50 (ms) | card p99 (ms) | lookup peak RSS, mapped pages included (MiB) "
          "| lookup anonymous memory (MiB) | index on disk (MB) | corpus (MB) | top-k (MB) | disk / (2 x corpus + top-k) |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            s = synthetic_index(Path(tmp) / "idx", n)
            lk = lookup_row(Path(tmp) / "idx")
            shutil.rmtree(tmp, ignore_errors=True)
        mb = 1e6
        print(f"| {n:,} | {lk['p50']:.2f} | {lk['p99']:.2f} | {lk['peak_mib']:.0f} | {lk['anon_mib']:.0f} | "
              f"{s['disk_bytes'] / mb:.0f} | "
              f"{s['corpus_bytes'] / mb:.0f} | {s['topk_bytes'] / mb:.1f} | "
              f"{s['disk_bytes'] / (2 * s['corpus_bytes'] + s['topk_bytes']):.2f} |")  # fmt: skip
    print()


if __name__ == "__main__":
    main()
