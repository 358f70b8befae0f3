"""Saving a file in an indexed workspace updates the index in the background: only the edited
files' shards run again, and the cards then show the new text."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lenscope.index.store import open_index
from tests.server.helpers import body_of, decoded, post_analyze
from tests.server.test_indexes import post_json, wait_job

NEW_BLOCK = "".join(f"<tr><td>zebra {i}</td><td>quagga &amp; okapi</td></tr>\n" for i in range(40))


@pytest.fixture
def lenscope_config() -> dict[str, Any]:
    return {"update_on_save_max_files": 100}


@pytest.fixture
def workspace(jp_root_dir: Path) -> Path:
    (jp_root_dir / "src").mkdir()
    for i in range(24):  # several shards: an edit re-runs one of them
        body = "".join(f"def f{i}_{j}(x):\n    return x * {j} + {i}\n\n" for j in range(150))
        (jp_root_dir / "src" / f"m{i:02d}.py").write_text(body)
    (jp_root_dir / "notes.txt").write_text("outside the indexed folder\n")
    return jp_root_dir


async def build_ws(jp_fetch: Any) -> dict[str, Any]:
    job = body_of(await post_json(jp_fetch, "indexes", {"paths": ["src"], "name": "ws", "k": 8}))
    return await wait_job(jp_fetch, job["id"])


async def save(jp_fetch: Any, path: str, text: str) -> None:
    """The contents API's PUT: what JupyterLab's save does."""
    body = json.dumps({"type": "file", "format": "text", "content": text})
    await jp_fetch("api", "contents", *path.split("/"), method="PUT", body=body)


async def save_jobs(jp_fetch: Any, n: int, timeout: float = 120) -> list[dict[str, Any]]:
    for _ in range(int(timeout / 0.1)):
        jobs = [j for j in body_of(await jp_fetch("lenscope", "api", "jobs"))["jobs"] if j["trigger"] == "save"]
        if len(jobs) >= n and all(j["state"] not in ("queued", "running") for j in jobs):
            return jobs
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {n} save-triggered updates ended")


async def test_saving_a_covered_file_updates_its_cards(jp_fetch: Any, workspace: Path) -> None:
    built = await build_ws(jp_fetch)
    assert built["state"] == "done" and built["result"]["shards"] >= 2, built
    await save(jp_fetch, "notes.txt", "not covered by any index\n")  # outside the sources: no update
    edited = (workspace / "src" / "m05.py").read_text() + NEW_BLOCK
    await save(jp_fetch, "src/m05.py", edited)
    [job] = await save_jobs(jp_fetch, 1)
    assert job["state"] == "done" and job["trigger"] == "save", job
    assert 0 < job["result"]["shards_reused"] < job["result"]["shards"]
    # the neurons that fire most on the new text now show it in their cards
    wire = decoded(await post_analyze(jp_fetch, {"text": edited, "top_neurons": 5}))
    start = len(edited) - len(NEW_BLOCK)
    inside = wire["tokens"]["start"] >= start
    acts = wire["predictions"]["neuron_activation"][inside].astype(np.float32)
    order = np.argsort(-acts.reshape(-1))[:40]
    neurons = list(dict.fromkeys(int(n) for n in wire["predictions"]["neuron_index"][inside].reshape(-1)[order]))[:5]
    shown = []
    for n in neurons:
        card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", str(n), params={"index": "ws"}))
        assert card["index_path"] == "ws"
        shown += [e for e in card["examples"] if e["file"] == "src/m05.py" and e["char_end"] > start]
    assert shown and any("zebra" in "".join(e["tokens"]) or "quagga" in "".join(e["tokens"]) for e in shown)
    index = open_index(workspace / ".lenscope" / "indexes" / "ws")
    assert "m05.py" in json.dumps(index.manifest["files"]) and index.manifest["sources"] == ["src"]


async def test_saves_during_an_update_are_not_lost(jp_fetch: Any, workspace: Path) -> None:
    built = await build_ws(jp_fetch)
    assert built["state"] == "done"
    for i in range(3):  # while the first update runs, the next saves wait; the last text wins
        await save(jp_fetch, "src/m01.py", f"# edit {i}\n" + NEW_BLOCK * (i + 1))
    jobs = await save_jobs(jp_fetch, 2)
    assert all(j["state"] == "done" for j in jobs)
    index = open_index(workspace / ".lenscope" / "indexes" / "ws")
    [entry] = [f for f in index.manifest["files"] if f["path"] == "src/m01.py"]
    assert entry["sha256"] == hashlib.sha256(("# edit 2\n" + NEW_BLOCK * 3).encode()).hexdigest()
