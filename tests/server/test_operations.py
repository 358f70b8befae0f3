"""The text operations are declared once (``lenscope.operations``): each has one route, is served
by the one generic handler and service method, and runs as a worker op of its own name; and a
client that gives up on a request while the worker is stalled gives its queue slot back."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lenscope.operations import BY_NAME, OPERATIONS, _load
from lenscope.routes import ROUTES
from tests.server.helpers import body_of, post_analyze

BODIES: dict[str, dict[str, Any]] = {
    "analyze": {"text": "x = 1"},
    "activations": {"text": "x = 1", "neurons": [{"layer": 0, "index": 7}]},
    "unit_activations": {"text": "x = 1", "units": ["L0.N7"]},
    "attribute": {"text": "x = 1", "position": 1},
    "attention": {"text": "x = 1"},
    "logit_lens": {"text": "x = 1"},
    "patch": {"clean": "a = 1\n", "corrupted": "b = 1\n", "target": 5, "baseline": 6},
    "head_scores_text": {"text": "x = 1\nx = 1\n"},
    "sweep": {"text": "x = 1", "position": 1},
}
"""A small valid request of each operation (a new operation adds one)."""


def test_each_operation_has_one_route_the_generic_handler_and_a_worker_op() -> None:
    from lenscope_server.handlers import HANDLERS, OperationHandler, route_table
    from lenscope_server.service import LenscopeService
    from lenscope_server.worker.process import Worker

    assert set(BODIES) == set(BY_NAME) and len(BY_NAME) == len(OPERATIONS)
    table = dict(route_table())
    worker = Worker(io.BytesIO(), device=None, memory_limit_mb=0, idle_unload_s=0, model_dirs=[])
    for op in OPERATIONS:
        routes = [r for r in ROUTES if r.path == op.path]
        assert len(routes) == 1, op.name
        (route,) = routes
        assert (route.method, route.operation_id, route.summary) == ("post", op.operation_id, op.summary)
        assert (route.request, route.response, route.errors) == (op.request, op.response, op.errors)
        handler = table[route.regex()]
        assert issubclass(handler, OperationHandler) and handler.operation is op
        assert handler.methods == ("POST",)
        # the worker runs it from the table under its name; nothing is written per operation
        assert worker.find_op(op.name) is not None and not hasattr(worker, f"op_{op.name}")
        assert not hasattr(LenscopeService, op.name)
        assert callable(_load(op.compute)) and callable(_load(op.to_wire))
        assert set(op.wire_args) <= set(op.request.model_fields)
        for field, other in op.only_with:
            assert {field, other} <= set(op.request.model_fields)
    # every route with a text request is a table entry; no other handler is the generic one
    text_routes = {r.path for r in ROUTES if r.request is not None and "text" in r.request.model_fields}
    assert text_routes <= {op.path for op in OPERATIONS}
    others = [h for path, h in HANDLERS.items() if path not in {op.path for op in OPERATIONS}]
    assert not any(issubclass(h, OperationHandler) for h in others)
    assert worker.find_op("no_such_op") is None


def test_arguments_drop_unset_fields_and_those_that_mean_nothing_alone() -> None:
    analyze = BY_NAME["analyze"]
    model, args = analyze.arguments(analyze.request.model_validate({"text": "x", "top_features": 3}))
    assert model is None and "sae" not in args and "top_features" not in args and args["interventions"] == []
    model, args = analyze.arguments(analyze.request.model_validate({"text": "x", "model": "m", "sae": "s", "top_features": 3}))
    assert model == "m" and args["sae"] == "s" and args["top_features"] == 3


@pytest.fixture
def lenscope_config() -> dict:
    # the stall must outlast the test: neither the heartbeat nor the deadline ends it
    return {"queue_limit": 4, "heartbeat_timeout_s": 120.0, "request_timeout_s": 120.0}


async def _health(jp_fetch) -> dict:
    return body_of(await jp_fetch("lenscope", "api", "health"))


async def _until(predicate, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await predicate():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def _abandoned_request(port: int, base_url: str, auth: dict[str, str], body: dict[str, Any]):
    """A POST whose client will give up: the open connection (close it to give up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    head = f"POST {base_url}lenscope/api/analyze HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in auth.items())
    head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    writer.write(head.encode() + data)
    await writer.drain()
    return reader, writer


async def test_clients_that_give_up_on_a_stalled_worker_give_their_queue_slots_back(
    jp_fetch, jp_http_port, jp_base_url, jp_auth_header
) -> None:
    assert (await post_analyze(jp_fetch, {"text": "warm up"})).code == 200
    pid = (await _health(jp_fetch))["worker"]["pid"]
    limit = (await _health(jp_fetch))["queue"]["limit"]
    os.kill(pid, signal.SIGSTOP)  # stalled: it reads nothing and answers nothing
    try:
        gone = [
            await _abandoned_request(jp_http_port, jp_base_url, jp_auth_header, {"text": f"abandoned {i}"}) for i in range(limit)
        ]

        async def full() -> bool:
            return bool((await _health(jp_fetch))["queue"]["depth"] == limit)

        await _until(full)  # every slot taken by a request whose client is still there
        for _, writer in gone:
            writer.close()  # the clients give up

        async def empty() -> bool:
            return bool((await _health(jp_fetch))["queue"]["depth"] == 0)

        await _until(empty, timeout=10)  # ... and their slots come back at once, the worker still stalled
        later = asyncio.ensure_future(post_analyze(jp_fetch, {"text": "a request after they gave up"}))

        async def queued() -> bool:
            return bool((await _health(jp_fetch))["queue"]["depth"] == 1)

        await _until(queued, timeout=10)
        assert not later.done()  # queued, not refused with queue_full
    finally:
        os.kill(pid, signal.SIGCONT)
    response = await asyncio.wait_for(later, 60)
    assert response.code == 200 and json.loads(response.body)["model"] == "lenscope-gelu-1l"
    h = await _health(jp_fetch)
    assert h["queue"]["depth"] == 0 and h["worker"]["pid"] == pid and h["worker"]["restarts"] == 0, h
    assert (await post_analyze(jp_fetch, {"text": "and the next"})).code == 200


@pytest.mark.slow
def test_every_operation_is_served_without_torch_in_the_jupyter_server(tmp_path: Path) -> None:
    """Each table entry, /models and /health answered by a real server whose own process never
    maps torch (the worker does): the table names core functions without importing them."""
    from benchmarks.server import PIDS, TOKEN, jupyter_server

    def call(base: str, route: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{base}lenscope/api/{route}",
            data=None if body is None else json.dumps(body).encode(),
            method="GET" if body is None else "POST",
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with jupyter_server(tmp_path, "--LenscopeApp.worker_threads=2") as base:
        assert call(base, "models")[0] == 200
        for op in OPERATIONS:
            status, body = call(base, op.name, BODIES[op.name])
            assert status == 200, (op.name, body)
            op.response.model_validate(body)
        health = call(base, "health")[1]
        assert health["queue"]["depth"] == 0 and health["worker"]["state"] == "ready"
        maps = Path(f"/proc/{PIDS[base]}/maps").read_text()
        assert "libtorch" not in maps and "/torch/" not in maps
        assert "libtorch" in Path(f"/proc/{health['worker']['pid']}/maps").read_text()  # the check can fail


def test_a_request_cancelled_while_it_waited_in_the_worker_is_answered_without_running() -> None:
    import threading

    import msgpack

    from lenscope_server.worker.process import Worker

    out = io.BytesIO()
    worker = Worker(out, device=None, memory_limit_mb=0, idle_unload_s=0, model_dirs=[])
    worker.cancel_events[5] = threading.Event()
    worker.cancel_events[5].set()  # the server's cancel frame arrived before the op started
    worker.handle({"id": 5, "op": "analyze", "args": {"model": "lenscope-gelu-1l", "text": "x", "encoding": "json"}})
    reply = msgpack.unpackb(out.getvalue()[4:], raw=False)
    assert reply["id"] == 5 and not reply["ok"] and reply["error"]["code"] == "cancelled", reply
    assert worker.models == {}  # nothing was loaded or run
