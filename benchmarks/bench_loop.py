"""Jupyter stays responsive while lenscope serves the largest response it allows.

    python -m benchmarks.bench_loop

Starts a real Jupyter server with lenscope on loopback, then sends the largest analysis the
limits allow (``tokens x (top_k + top_neurons)`` at ``MAX_RESPONSE_CELLS``, top_k and
top_neurons at their maxima), once as JSON and once as msgpack, while a second thread polls
Jupyter's own ``/api/status`` every 20 ms. Prints the status latencies seen during each
request (and, as the side-by-side baseline, with lenscope idle) and the response size.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks.server import TOKEN, jupyter_server
from lenscope.validation import MAX_RESPONSE_CELLS, MAX_TOP_K, MAX_TOP_NEURONS

AUTH = {"Authorization": f"token {TOKEN}"}


def status_latencies(base: str, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        urllib.request.urlopen(urllib.request.Request(base + "api/status", headers=AUTH), timeout=60).read()
        out.append((time.perf_counter() - t) * 1000)
        time.sleep(0.02)


def largest_text() -> tuple[str, int]:
    """A text of exactly as many tokens as the response bound allows at the maximum top_k and top_neurons."""
    from transformers import AutoTokenizer

    import lenscope.models

    tokenizer = AutoTokenizer.from_pretrained(Path(lenscope.models.__file__).parent / "default" / "tokenizer")
    tokens = MAX_RESPONSE_CELLS // (MAX_TOP_K + MAX_TOP_NEURONS)
    line = "value = compute(item, 42)\n"
    per_line = len(tokenizer(line * 10, add_special_tokens=False)["input_ids"]) / 10
    text = line * int(tokens / per_line)
    return text, len(tokenizer(text, add_special_tokens=False)["input_ids"])


def measure(base: str, body: dict | None, accept: str) -> tuple[list[float], int, float]:
    seen: list[float] = []
    stop = threading.Event()
    poller = threading.Thread(target=status_latencies, args=(base, stop, seen))
    poller.start()
    size, took = 0, 0.0
    try:
        if body is None:
            time.sleep(3)
        else:
            req = urllib.request.Request(
                base + "lenscope/api/analyze", data=json.dumps(body).encode(), method="POST",
                headers={**AUTH, "Content-Type": "application/json", "Accept": accept},
            )  # fmt: skip
            t = time.perf_counter()
            size = len(urllib.request.urlopen(req, timeout=600).read())
            took = time.perf_counter() - t
    finally:
        stop.set()
        poller.join()
    return seen, size, took


def main() -> None:
    text, n_tokens = largest_text()
    with tempfile.TemporaryDirectory() as root, jupyter_server(Path(root), "--LenscopeApp.worker_threads=2") as base:
        warm = {"text": "warm up", "top_k": 1}
        measure(base, warm, "application/json")
        print(f"largest allowed analysis: {n_tokens:,} tokens x (top_k {MAX_TOP_K} + top_neurons {MAX_TOP_NEURONS})\n")
        print("| lenscope is serving | response | took (s) | /api/status p50 (ms) | p99 (ms) | max (ms) | polls |")
        print("|---|---|---|---|---|---|---|")
        cases = [("nothing (baseline)", None, ""), ("largest analysis, JSON", "application/json", "json"),
                 ("largest analysis, msgpack", "application/msgpack", "msgpack")]  # fmt: skip
        for label, accept, _ in cases:
            body = None if accept is None else {"text": text, "top_k": MAX_TOP_K, "top_neurons": MAX_TOP_NEURONS}
            seen, size, took = measure(base, body, accept or "")
            seen.sort()
            p99 = seen[min(len(seen) - 1, int(0.99 * len(seen)))]
            cells = f"{statistics.median(seen):.1f} | {p99:.1f} | {seen[-1]:.1f} | {len(seen)}"
            print(f"| {label} | {size / 2**20:.1f} MiB | {took:.1f} | {cells} |")


if __name__ == "__main__":
    main()
