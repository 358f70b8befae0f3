"""Every route fuzzed from the OpenAPI spec the server itself serves (schemathesis + hypothesis),
against a real Jupyter server on loopback, bounded in time.

Each generated request must get no 5xx, a declared status, and a body that matches its schema.
Afterwards the server must still work: analyze answers, a job runs to the end, and the health
route shows an empty queue. ``LENSCOPE_FUZZ_SECONDS`` sets the time budget (default 120 s).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from benchmarks.server import PIDS, TOKEN, jupyter_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUDGET_S = float(os.environ.get("LENSCOPE_FUZZ_SECONDS", "120"))
AUTH = {"Authorization": f"token {TOKEN}"}
CHUNK = 10
"""Cases per hypothesis run: every operation and mode gets at least one run, whatever the budget."""


def call(base: str, route: str, body: dict[str, Any] | None = None, method: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"{base}lenscope/api/{route}",
        data=None if body is None else json.dumps(body).encode(),
        method=method or ("POST" if body is not None else "GET"),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("fuzz-root")
    for f in ("tour.py", "README.md"):
        shutil.copy(ROOT / "examples" / f, root / f)
    os.mkfifo(root / "pipe")  # a path the fuzzer may find: must be skipped, never opened
    (root / ".env").write_text("SECRET=1\n")
    with jupyter_server(root, "--LenscopeApp.worker_threads=2", "--LenscopeApp.cancel_grace_s=2") as base:
        yield base, root


def _msgpack_serializer() -> None:
    import schemathesis

    @schemathesis.serializer("application/msgpack")
    def to_msgpack(ctx: Any, value: Any) -> bytes:
        try:
            return msgpack.packb(value, use_bin_type=True)
        except (OverflowError, TypeError, ValueError):  # not expressible in msgpack: send malformed bytes instead
            return b"\xc1"

    @schemathesis.deserializer("application/msgpack")
    def from_msgpack(ctx: Any, response: Any) -> Any:
        return msgpack.unpackb(response.content, raw=False)


def _error_code(response: Any) -> str | None:
    try:
        body = json.loads(response.content) if response.content[:1] == b"{" else msgpack.unpackb(response.content)
        return str(body["error"]["code"])
    except Exception:  # not an error body of ours
        return None


def test_every_route_survives_fuzzing_from_the_served_spec(server: tuple[str, Path]) -> None:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    base, _ = server
    _msgpack_serializer()
    status, spec = call(base, "openapi.json")
    assert status == 200
    schema = schemathesis.openapi.from_dict(spec)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in spec["paths"].values())
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    assert call(base, "analyze", {"text": "warm"})[0] == 200  # the model loads once, outside the budget
    ran: dict[str, int] = {}
    started = time.monotonic()

    def fuzzer(operation: Any, mode: Any, label: str, chunk: int) -> Any:
        """CHUNK cases of one operation and mode, from seed ``chunk`` (reproducible)."""

        @seed(chunk)
        @settings(
            max_examples=CHUNK,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            response = case.call(base_url=base.rstrip("/"), headers=AUTH, timeout=120)
            if response.status_code == 503 and _error_code(response) == "model_unavailable":
                # a real hub model name the fuzzer found (e.g. "gelu-1l"), not cached offline: a documented 503
                case.validate_response(response, checks=[c for c in checks if c is not not_a_server_error])
            else:
                case.validate_response(response, checks=checks)
            ran[label] += 1

        return fuzz

    runs = [(op, mode) for op in operations for mode in GenerationMode]  # valid requests, then invalid ones
    for i, (operation, mode) in enumerate(runs):
        label = f"{operation.method.upper()} {operation.path} ({mode.value})"
        ran[label] = 0
        stop_at = started + BUDGET_S * (i + 1) / len(runs)  # an equal share of the budget each, unused time carried on
        try:
            chunk = 0
            while chunk == 0 or time.monotonic() < stop_at:
                before = ran[label]
                fuzzer(operation, mode, label, chunk)()
                chunk += 1
                if ran[label] == before:  # the strategy has nothing new to give (no parameters)
                    break
        except Unsatisfiable:  # no parameters or body to make invalid (GET /models, ...)
            assert mode is GenerationMode.NEGATIVE, label
            del ran[label]
    total = sum(ran.values())
    print(f"\nfuzz: {total} requests, {len(operations)} operations x 2 modes, {time.monotonic() - started:.0f} s: {ran}")
    assert all(n > 0 for label, n in ran.items() if "positive" in label), ran
    assert {label.rsplit(" ", 1)[0] for label in ran} == {f"{op.method.upper()} {op.path}" for op in operations}

    # and afterwards everything still works, and nothing is left queued
    status, body = call(base, "analyze", {"text": "def f(x):\n    return x\n"})
    assert status == 200 and body["model"] == "lenscope-gelu-1l", body
    deadline = time.monotonic() + 120
    while any(j["state"] in ("queued", "running") for j in call(base, "jobs")[1]["jobs"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    status, job = call(base, "indexes", {"paths": ["tour.py"], "name": "after-fuzz"})
    assert status == 202, job
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = call(base, f"jobs/{job['id']}")[1]
    assert job["state"] == "done", job
    health = call(base, "health")[1]
    assert health["queue"]["depth"] == 0 and health["worker"]["state"] == "ready", health


def test_the_jupyter_server_process_never_loads_torch(server: tuple[str, Path]) -> None:
    """Cards, indexes, the spec and analyses are served without torch in the server process
    (the worker has it): checked on the process's own memory map, after using every route."""
    base, _ = server
    assert call(base, "analyze", {"text": "x = 1"})[0] == 200
    assert call(base, "neurons/lenscope-gelu-1l/0/7")[0] == 200
    assert call(base, "neurons/lenscope-gelu-1l/search?q=self")[0] == 200
    assert call(base, "indexes")[0] == 200 and call(base, "models")[0] == 200 and call(base, "openapi.json")[0] == 200
    maps = Path(f"/proc/{PIDS[base]}/maps").read_text()
    assert "libtorch" not in maps and "/torch/" not in maps
    worker = call(base, "health")[1]["worker"]["pid"]
    assert "libtorch" in Path(f"/proc/{worker}/maps").read_text()  # the check can fail: the worker does load it
