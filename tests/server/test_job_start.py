"""The first job does not wait for a worker to start: with ``preload`` (a user's server), the job
worker is started, and the default model loaded in it, in the background once the model worker
has its model. On a real server: ``preload`` runs when the server starts."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.server import TOKEN, jupyter_server


def call(base: str, route: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        f"{base}lenscope/api/{route}",
        data=None if body is None else json.dumps(body).encode(),
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def until(predicate: Any, timeout: float = 300) -> Any:
    """No deadline is asserted (only the order of things): the timeout only ends a hung test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met")


def test_the_job_worker_is_started_before_the_first_job(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f(x):\n    return x + 1\n" * 20)
    with jupyter_server(tmp_path, "--LenscopeApp.worker_threads=2", preload=True) as base:
        health = until(lambda: (h := call(base, "health"))["job_worker"]["state"] == "ready" and h)
        assert health["models"]["loaded"] == ["lenscope-gelu-1l"]  # the model worker's came first
        assert not call(base, "jobs")["jobs"]  # no job started it
        pid = health["job_worker"]["pid"]
        job = call(base, "indexes", {"paths": ["a.py"], "name": "first"})
        seen = [until(lambda: (j := call(base, f"jobs/{job['id']}"))["state"] != "queued" and j)]
        while seen[-1]["state"] == "running":
            time.sleep(0.02)
            seen.append(call(base, f"jobs/{job['id']}"))
        assert seen[-1]["state"] == "done", seen[-1]
        assert call(base, "health")["job_worker"]["pid"] == pid  # the preloaded worker ran it
        total = seen[-1]["result"]["tokens"]
        assert all(j["progress"]["tokens_total"] == total for j in seen if j["progress"])


def test_without_preload_jobs_the_job_worker_waits_for_a_job(tmp_path: Path) -> None:
    with jupyter_server(tmp_path, "--LenscopeApp.worker_threads=2", "--LenscopeApp.preload_jobs=False", preload=True) as base:
        until(lambda: call(base, "health")["models"]["loaded"])
        time.sleep(1)
        assert call(base, "health")["job_worker"]["state"] == "stopped"
