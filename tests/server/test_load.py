"""Many concurrent clients on loopback: every request answered correctly, Jupyter stays responsive."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

from tornado.simple_httpclient import SimpleAsyncHTTPClient

from lenscope.analysis import analyze
from lenscope.wire_codec import wire_equal
from lenscope.wire_convert import to_wire
from tests.server.helpers import MSGPACK, decoded, post_analyze, token_texts

CLIENTS = 24
REQUESTS_EACH = 3


def text_for(client: int, i: int) -> str:
    # every third request is shared by all clients (coalesced or cached); the rest are distinct
    if i == 0:
        return "def shared(x):\n    return x\n" * 20
    body = "".join(f"    total += value * {client + i} + {j}\n" for j in range(30))
    return f"def client_{client}_{i}(value):\n    total = 0\n{body}    return total\n"


async def test_concurrent_clients(jp_fetch, gelu, http_server_client, jp_base_url, jp_auth_header) -> None:
    await post_analyze(jp_fetch, {"text": "warm up"})
    # tornado's shared client runs at most 10 requests at once: one client with room for all,
    # and a separate one for /api/status so its latency is the server's, not a client queue's.
    pool = SimpleAsyncHTTPClient(force_instance=True, max_clients=CLIENTS + 8)
    status_client = SimpleAsyncHTTPClient(force_instance=True)
    analyze_url = http_server_client.get_url(f"{jp_base_url}lenscope/api/analyze")
    status_url = http_server_client.get_url(f"{jp_base_url}api/status")
    results: dict[tuple[int, int], dict] = {}
    status_latencies: list[float] = []
    done = asyncio.Event()

    async def client(c: int) -> None:
        for i in range(REQUESTS_EACH):
            accept = MSGPACK if c % 2 else "application/json"
            headers = {**jp_auth_header, "Content-Type": "application/json", "Accept": accept}
            body = json.dumps({"text": text_for(c, i)})
            response = await pool.fetch(analyze_url, method="POST", body=body, headers=headers, request_timeout=200)
            results[(c, i)] = decoded(response)

    async def watch_status() -> None:
        while not done.is_set():
            t = time.perf_counter()
            assert (await status_client.fetch(status_url, headers=jp_auth_header)).code == 200
            status_latencies.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch_status())
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(CLIENTS))), timeout=240)
    elapsed = time.perf_counter() - start
    done.set()
    await watcher
    pool.close()
    status_client.close()

    assert len(results) == CLIENTS * REQUESTS_EACH  # none lost
    for (c, i), got in results.items():
        assert "".join(token_texts(got, text_for(c, i))) == text_for(c, i)
    for c, i in [(0, 0), (3, 1), (CLIENTS - 1, 2)]:  # spot-check full equality with the core
        expected = to_wire(analyze(gelu, text_for(c, i), model_name="lenscope-gelu-1l"))
        got = {k: v for k, v in results[(c, i)].items() if k != "timings_ms"}
        assert wire_equal(got, {k: v for k, v in expected.items() if k != "timings_ms"})
    assert len(status_latencies) >= 3
    p50 = statistics.median(status_latencies)
    worst = max(status_latencies)
    print(
        f"\n{CLIENTS * REQUESTS_EACH} analyze requests from {CLIENTS} clients in {elapsed:.1f}s; "
        f"/api/status during load: {len(status_latencies)} calls, p50 {p50:.1f} ms, max {worst:.1f} ms"
    )
    assert worst < 1000, "Jupyter's own API stalled under load"
