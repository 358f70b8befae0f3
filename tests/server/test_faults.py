"""Worker death mid-request, a full queue: clear 503s, and the next request works."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.server.helpers import body_of, decoded, error_of, post_analyze, token_texts

LONG_TEXT = "".join(f"def f{i}(x):\n    return x * {i} + len(str(x))\n\n" for i in range(2500))  # ~75k tokens


async def health(jp_fetch) -> dict:
    return body_of(await jp_fetch("lenscope", "api", "health"))


async def test_worker_killed_mid_request(jp_fetch) -> None:
    await post_analyze(jp_fetch, {"text": "warm up"})  # worker up, model loaded
    before = await health(jp_fetch)
    pid = before["worker"]["pid"]
    in_flight = asyncio.ensure_future(error_of(post_analyze(jp_fetch, {"text": LONG_TEXT})))
    for _ in range(100):
        if (await health(jp_fetch))["queue"]["depth"] == 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # inside the forward pass by now
    assert not in_flight.done()
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    status, error, response = await in_flight
    latency = time.monotonic() - killed_at
    assert status == 503 and error["error"]["code"] == "worker_died", error
    assert "signal 9" in error["error"]["message"] and response.headers["Retry-After"]
    assert latency < 2.0, f"the in-flight request took {latency:.2f}s to fail"
    # Jupyter itself never went down, and the next request works on a fresh worker.
    assert (await jp_fetch("api", "status")).code == 200
    got = decoded(await post_analyze(jp_fetch, {"text": "after the crash"}))
    assert "".join(token_texts(got, "after the crash")) == "after the crash"
    after = await health(jp_fetch)
    assert after["worker"]["pid"] != pid and after["worker"]["restarts"] == 1 and after["worker"]["last_exit"] == "signal 9"


@pytest.fixture
def lenscope_config() -> dict:
    return {"queue_limit": 2}


async def test_full_queue_answers_503_with_retry_after(jp_fetch) -> None:
    await post_analyze(jp_fetch, {"text": "warm up"})
    texts = [LONG_TEXT[: 20000 + i] for i in range(6)]
    results = await asyncio.gather(*(post_analyze(jp_fetch, {"text": t}) for t in texts), return_exceptions=True)
    refused = [r for r in results if isinstance(r, Exception)]
    answered = [r for r in results if not isinstance(r, Exception)]
    assert len(answered) >= 2 and refused, results
    for exc in refused:
        status, error, response = await error_of(_raise(exc))
        assert status == 503 and error["error"]["code"] == "queue_full" and response.headers["Retry-After"] == "1"
        assert "limit 2" in error["error"]["message"]
    # once the queue drains, requests are accepted again
    assert (await post_analyze(jp_fetch, {"text": "later"})).code == 200


async def _raise(exc: BaseException) -> None:
    raise exc
