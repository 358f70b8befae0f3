"""What a user sends or keeps in the workspace never breaks lenscope (issue 9), over raw HTTP on
a real Jupyter server: stalled workers, deadlines, jobs over FIFOs and odd names, broken
indexes, hidden files, and the small things (Allow, Retry-After, log levels, cache bytes)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from lenscope.wire import HealthResponse, IndexesResponse
from tests.server.helpers import body_of, error_of, post_analyze
from tests.server.test_indexes import post_json, wait_job

SHIPPED = Path(__file__).resolve().parents[2] / "python" / "lenscope" / "models" / "indexes" / "lenscope-gelu-1l"


@pytest.fixture
def lenscope_config() -> dict:
    return {"heartbeat_timeout_s": 8.0, "request_timeout_s": 3.0, "cancel_grace_s": 1.0, "cache_mb": 1}


async def health(jp_fetch) -> dict:
    out = body_of(await jp_fetch("lenscope", "api", "health"))
    HealthResponse.model_validate(out)
    return out


async def until(predicate, timeout: float = 60.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError("condition not met in time")


async def warm(jp_fetch) -> dict:
    """The default model loaded (loading has no deadline; the short one here covers the work)."""
    assert (await post_analyze(jp_fetch, {"text": "warm up"})).code == 200
    return await health(jp_fetch)


async def test_a_stalled_worker_misses_its_deadline_then_its_heartbeat_and_is_replaced(jp_fetch) -> None:
    pid = (await warm(jp_fetch))["worker"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        status, error, _ = await error_of(post_analyze(jp_fetch, {"text": "stalled"}))
        assert status == 504 and error["error"]["code"] == "worker_timeout", error
        assert "within 3 s" in error["error"]["message"] and time.monotonic() - started < 6
        assert (await health(jp_fetch))["queue"]["depth"] == 0  # the timed-out request gave its slot back

        async def replaced():
            h = await health(jp_fetch)
            return h if h["worker"]["pid"] not in (None, pid) and h["worker"]["state"] == "ready" else None

        after = await until(replaced, timeout=30)
    finally:
        os.kill(pid, signal.SIGCONT) if _alive(pid) else None
    assert "no heartbeat" in after["worker"]["last_exit"] and after["worker"]["restarts"] == 1, after
    assert (await post_analyze(jp_fetch, {"text": "after the stall"})).code == 200


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


async def test_a_cancelled_job_that_does_not_stop_has_its_worker_killed(jp_fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "a.py").write_text("def f(x):\n    return x\n" * 50)
    job = body_of(await post_json(jp_fetch, "indexes", {"paths": ["a.py"], "name": "stuck"}))

    async def job_worker_pid():
        return (await health(jp_fetch))["job_worker"]["pid"]

    pid = await until(job_worker_pid)
    os.kill(pid, signal.SIGSTOP)  # stuck: it can neither work nor hear the cancel
    try:
        cancelled = body_of(await jp_fetch("lenscope", "api", "jobs", job["id"], method="DELETE"))
        assert cancelled["state"] in ("queued", "running")
        done = await wait_job(jp_fetch, job["id"], timeout=30)
    finally:
        os.kill(pid, signal.SIGCONT) if _alive(pid) else None
    assert done["state"] == "cancelled" and done["error"]["code"] == "cancelled", done
    assert not (jp_root_dir / ".lenscope" / "indexes" / "stuck").exists()
    h = await health(jp_fetch)
    assert "did not stop" in h["job_worker"]["last_exit"]
    again = body_of(await post_json(jp_fetch, "indexes", {"paths": ["a.py"], "name": "after"}))
    assert (await wait_job(jp_fetch, again["id"]))["state"] == "done"


async def test_fifos_odd_names_loops_and_hidden_files_are_skipped_or_refused(jp_fetch, jp_root_dir: Path) -> None:
    src = jp_root_dir / "src"
    src.mkdir()
    (src / "a.py").write_text("x = 1\n" * 30)
    os.mkfifo(src / "pipe")
    (src / ".env").write_text("SECRET=1\n")
    os.symlink("loop", src / "loop")  # a symlink to itself
    with open(os.path.join(os.fsencode(src), b"bad\xff.py"), "w") as f:
        f.write("y = 2\n")
    job = body_of(await post_json(jp_fetch, "indexes", {"paths": ["src"], "name": "odd"}))
    done = await wait_job(jp_fetch, job["id"])
    assert done["state"] == "done" and done["result"]["files"] == 1, done
    skipped = {s["path"]: s["reason"] for s in done["result"]["skipped"]}
    assert skipped == {
        "src/bad\ufffd.py": "file name is not valid UTF-8",
        "src/loop": "a link that leaves the root or loops",
        "src/pipe": "not a regular file (a FIFO, socket or device)",
    }
    for paths, status, words in (
        (["src/pipe"], 400, "not a regular file or a folder"),
        (["src/loop"], 403, "cannot be resolved"),
        (["x" * 300], 403, "cannot be read"),
        (["src/.env"], 403, "hidden"),
        ([".lenscope/indexes"], 403, "hidden"),
    ):
        got, error, _ = await error_of(post_json(jp_fetch, "indexes", {"paths": paths}))
        assert got == status and words in error["error"]["message"], (paths, error)
        got, error, _ = await error_of(post_json(jp_fetch, "compare", {"model_b": "lenscope-attn-only-1l", "paths": paths}))
        assert got == status, (paths, error)
    assert not any(j["state"] == "running" for j in body_of(await jp_fetch("lenscope", "api", "jobs"))["jobs"])


async def test_broken_indexes_are_listed_and_skipped(jp_fetch, jp_root_dir: Path) -> None:
    indexes = jp_root_dir / ".lenscope" / "indexes"
    indexes.mkdir(parents=True)
    (indexes / "garbled").mkdir()
    (indexes / "garbled" / "manifest.json").write_text("{not json")
    shutil.copytree(SHIPPED, indexes / "missing")
    (indexes / "missing" / "top_values.npy").unlink()
    shutil.copytree(SHIPPED, indexes / "truncated")
    hist = indexes / "truncated" / "hist.npy"
    hist.write_bytes(hist.read_bytes()[:1000])
    shutil.copytree(SHIPPED, indexes / "mislabelled")
    manifest = json.loads((indexes / "mislabelled" / "manifest.json").read_text())
    del manifest["files"]
    (indexes / "mislabelled" / "manifest.json").write_text(json.dumps(manifest))

    listing = body_of(await jp_fetch("lenscope", "api", "indexes"))
    IndexesResponse.model_validate(listing)
    state = {i["name"]: (i["state"], i["problem"] or "") for i in listing["indexes"]}
    assert state["lenscope-gelu-1l"] == ("ok", "")
    assert state["garbled"][0] == state["missing"][0] == state["truncated"][0] == state["mislabelled"][0] == "broken"
    assert "top_values.npy" in state["missing"][1] and "lacks files" in state["mislabelled"][1]
    # every neuron route still works, from the shipped index
    card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "5"))
    assert card["index_path"] == "lenscope-gelu-1l" and card["examples"]
    assert all(e["available"] is False for e in card["examples"])  # the shipped corpus is not in this workspace
    example = card["examples"][0]
    doc = body_of(await jp_fetch("lenscope", "api", "indexes", "lenscope-gelu-1l", "document", params={"path": example["file"]}))
    assert "".join(example["tokens"]) == doc["text"][example["char_start"] : example["char_end"]]
    found = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "search", params={"q": "self"}))
    assert found["neurons"]
    status, error, _ = await error_of(
        jp_fetch("lenscope", "api", "indexes", "truncated", "document", params={"path": example["file"]})
    )
    assert status == 404 and "broken" in error["error"]["message"]


async def test_the_small_things(jp_fetch, caplog: pytest.LogCaptureFixture) -> None:
    await warm(jp_fetch)
    status, error, response = await error_of(jp_fetch("lenscope", "api", "analyze"))
    assert status == 405 and response.headers["Allow"] == "POST" and "allowed: POST" in error["error"]["message"]
    status, _, response = await error_of(jp_fetch("lenscope", "api", "jobs", "job-1", method="POST", body=b"{}"))
    assert status == 405 and response.headers["Allow"] == "GET, DELETE"
    status, error, response = await error_of(post_analyze(jp_fetch, {"text": "x", "model": "gpt2"}))
    assert status == 503 and error["error"]["code"] == "model_unavailable" and int(response.headers["Retry-After"]) > 0
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await error_of(post_analyze(jp_fetch, {"text": ""}))
    # one line (ours at INFO, Jupyter's access log at WARNING), no ERROR, no traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], [r.getMessage() for r in caplog.records]
    assert any("-> 400: text is empty" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    # the cache is bounded in bytes (cache_mb = 1 here): big responses evict, or are not kept
    for i in range(4):
        await post_analyze(jp_fetch, {"text": f"v{i} = " + "1 + " * 400, "top_k": 100, "top_neurons": 100}, accept="msgpack")
    cache = (await health(jp_fetch))["cache"]
    assert cache["max_bytes"] == 2**20 and 0 < cache["bytes"] <= cache["max_bytes"] and cache["size"] < 5
