"""HTTP analyze (msgpack) vs a bare in-process forward on the same tokens; msgpack vs JSON bytes.

    python -m benchmarks.bench_http [--repeat 5] [--models lenscope-gelu-1l] [--threads 2]

Starts a real Jupyter server with lenscope (its worker with 2 torch threads, the response cache
off so every request computes), on loopback. The bare forward runs in this process, also with
2 threads, on the same windows, with no hooks and nothing derived. ``--threads 1`` gives both
sides one thread: on a machine other processes keep busy, two OpenMP threads spin at every
barrier while one of them waits for a core, and milliseconds become hundreds. Both are timed alternately
in one run; the ratio is end-to-end HTTP analyze time over bare forward time.

Requests go over one kept-alive connection, as a browser's do (the ratio's figure); the same
request on a fresh connection per request (``urllib``: TCP connect, a new handler chain, the
server closing after it) is timed beside it, and shows what a one-shot client adds.

The ratio is of the medians; beside it, the median of each repetition's own ratio (a request
and the bare forward timed under a second apart share the load of the moment) and the ratio of the
fastest of each, the nearest to an idle machine when other processes come and go.

analyze unembeds only the positions it reports (the bare forward computes logits at every
position of every window); the response's own forward time is reported beside the ratio, and
the ratio with that forward replaced by the bare one, which is lenscope's overhead alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_analyze import windows_batch
from benchmarks.common import bare_forward, default_model, gpt2_small_shaped, save_gpt2_small_shaped, text_of_tokens
from benchmarks.server import TOKEN, jupyter_server
from lenscope.wire_codec import decode_msgpack

MSGPACK = "application/msgpack"
MODELS = ("lenscope-gelu-1l", "gpt2-small-shaped")


class KeepAlive:
    """One HTTP/1.1 connection to the server, reused for every request."""

    def __init__(self, base: str) -> None:
        host, port = base.split("//", 1)[1].rstrip("/").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)

    def post(self, body: dict[str, Any], accept: str) -> tuple[bytes, float]:
        headers = {"Authorization": f"token {TOKEN}", "Content-Type": "application/json", "Accept": accept}
        t = time.perf_counter()
        self.conn.request("POST", "/lenscope/api/analyze", body=json.dumps(body).encode(), headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        ms = (time.perf_counter() - t) * 1000
        if response.status != 200:
            raise RuntimeError(f"analyze answered {response.status}: {payload[:200]!r}")
        return payload, ms

    def close(self) -> None:
        self.conn.close()


def post(base: str, body: dict[str, Any], accept: str) -> tuple[bytes, float]:
    req = urllib.request.Request(
        base + "lenscope/api/analyze",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json", "Accept": accept},
        method="POST",
    )
    t = time.perf_counter()
    payload = urllib.request.urlopen(req, timeout=600).read()
    return payload, (time.perf_counter() - t) * 1000


def run(repeat: int, models: tuple[str, ...] = MODELS, threads: int = 2) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    torch.set_num_threads(threads)
    gelu = default_model()
    rows, sizes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save_gpt2_small_shaped(root / "models" / "gpt2-small-shaped")
        extra = ("--LenscopeApp.model_dirs=models", "--LenscopeApp.cache_size=0", f"--LenscopeApp.worker_threads={threads}")
        with jupyter_server(root, *extra) as base:
            client = KeepAlive(base)
            built = {"lenscope-gelu-1l": lambda: gelu, "gpt2-small-shaped": lambda: gpt2_small_shaped(gelu.tokenizer)}
            for name in models:
                model = built[name]()
                for n in (256, 1024):
                    text = text_of_tokens(model.tokenizer, n)
                    body = {"text": text, "model": name}
                    x = windows_batch(model, text)
                    client.post(body, MSGPACK)  # load the model in the worker, warm up
                    post(base, body, MSGPACK)
                    bare_forward(model, x)
                    t_http, t_fresh, t_fw, t_own = [], [], [], []
                    # Each timing follows the other process's work (bare, request, bare, request):
                    # one that followed its own (a request after a request) would find its
                    # weights still in cache, which is worth ~5 ms of a 17 ms forward here.
                    for _ in range(repeat):
                        for _ in range(2):
                            time.sleep(0.3)  # let the other process's idle OpenMP threads stop spinning
                            t = time.perf_counter()
                            bare_forward(model, x)
                            t_fw.append((time.perf_counter() - t) * 1000)
                            time.sleep(0.3)
                            if len(t_fw) % 2:
                                payload, ms = client.post(body, MSGPACK)
                                t_http.append(ms)
                                t_own.append(decode_msgpack(payload)["timings_ms"]["forward"])
                            else:
                                t_fresh.append(post(base, body, MSGPACK)[1])
                    http, fresh, own = (sorted(t)[repeat // 2] for t in (t_http, t_fresh, t_own))
                    fw = statistics.median(t_fw)
                    paired = sorted(h / f for h, f in zip(t_http, t_fw[0::2]))[repeat // 2]  # each with the one before it
                    rows.append(
                        {"model": name, "tokens": n, "windows": x.shape[0], "http_ms": http, "fresh_ms": fresh, "forward_ms": fw}
                        | {"own_forward_ms": own, "paired": paired, "fastest": min(t_http) / min(t_fw)}
                    )
                    mp, _ = client.post(body, MSGPACK)
                    js, _ = client.post(body, "application/json")
                    sizes.append({"model": name, "tokens": n, "msgpack": len(mp), "json": len(js)})
            client.close()
    return rows, sizes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--threads", type=int, default=2, help="torch threads, in the worker and for the bare forward")
    args = ap.parse_args()
    rows, sizes = run(args.repeat, tuple(args.models.split(",")), args.threads)
    print(
        "| model | tokens | windows | HTTP analyze, msgpack (ms) | bare forward (ms) | ratio | target "
        "| median of the per-repetition ratios | ratio of the fastest runs "
        "| analyze's own forward (ms) | ratio with it replaced by the bare forward "
        "| on a fresh connection per request (ms) | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio, fresh = r["http_ms"] / r["forward_ms"], r["fresh_ms"] / r["forward_ms"]
        same = (r["http_ms"] - r["own_forward_ms"] + r["forward_ms"]) / r["forward_ms"]
        cells = [r["model"], r["tokens"], r["windows"], f"{r['http_ms']:.1f}", f"{r['forward_ms']:.1f}", f"{ratio:.2f}x"]
        cells += [f"<= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'}", f"{r['paired']:.2f}x", f"{r['fastest']:.2f}x"]
        cells += [f"{r['own_forward_ms']:.1f}", f"{same:.2f}x"]
        cells += [f"{r['fresh_ms']:.1f}", f"{fresh:.2f}x"]
        print("| " + " | ".join(map(str, cells)) + " |")
    print()
    print("| model | tokens | msgpack bytes | JSON bytes | msgpack / JSON | target |")
    print("|---|---:|---:|---:|---:|---|")
    for s in sizes:
        share = s["msgpack"] / s["json"]
        cells = [s["model"], s["tokens"], f"{s['msgpack']:,}", f"{s['json']:,}", f"{share:.1%}"]
        print("| " + " | ".join(map(str, cells)) + f" | <= 30%: {'met' if share <= 0.3 else 'NOT met'} |")


if __name__ == "__main__":
    main()
