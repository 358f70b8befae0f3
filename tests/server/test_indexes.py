"""Index builds as jobs over HTTP: progress, cards from the new index, path safety, faults."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from lenscope.wire import IndexesResponse, JobResponse
from tests.server.helpers import body_of, error_of


@pytest.fixture
def workspace(jp_root_dir: Path) -> Path:
    (jp_root_dir / "src").mkdir()
    (jp_root_dir / "src" / "a.py").write_text("def add(a, b):\n    return a + b\n" * 200)
    (jp_root_dir / "src" / "b.md").write_text("# Title\n\nSome prose about the code. 😀\n" * 20)
    (jp_root_dir / "src" / "img.bin").write_bytes(b"\x89PNG\x00\x00binary")
    big = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(4000))
    (jp_root_dir / "big.py").write_text(big)  # ~100k tokens: long enough to interrupt
    return jp_root_dir


async def post_json(jp_fetch, route: str, body: dict):
    return await jp_fetch(
        "lenscope", "api", route, method="POST", body=json.dumps(body), headers={"Content-Type": "application/json"}
    )


async def wait_job(jp_fetch, job_id: str, until=("done", "failed", "cancelled"), timeout: float = 120) -> dict:
    seen = []
    for _ in range(int(timeout / 0.1)):
        job = body_of(await jp_fetch("lenscope", "api", "jobs", job_id))
        JobResponse.model_validate(job)
        seen.append(job)
        if job["state"] in until:
            job["history"] = seen
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} still {seen[-1]['state']}")


async def test_build_index_job_then_neuron_card(jp_fetch, workspace: Path) -> None:
    response = await post_json(jp_fetch, "indexes", {"paths": ["src"], "name": "demo", "k": 8})
    assert response.code == 202
    job = body_of(response)
    assert job["state"] in ("queued", "running") and job["kind"] == "index"
    done = await wait_job(jp_fetch, job["id"])
    assert done["state"] == "done", done
    assert done["result"]["files"] == 2 and done["result"]["skipped"] == [{"path": "src/img.bin", "reason": "binary (NUL bytes)"}]
    progress = [j["progress"] for j in done["history"] if j["progress"]]
    assert progress and progress[-1]["tokens_done"] == progress[-1]["tokens_total"] == done["result"]["tokens"]
    listing = body_of(await jp_fetch("lenscope", "api", "indexes"))
    IndexesResponse.model_validate(listing)
    names = {i["name"]: i for i in listing["indexes"]}
    assert names["demo"]["shipped"] is False and names["lenscope-gelu-1l"]["shipped"] is True
    # by default the model's index with the most tokens answers (the shipped one), not the newest
    card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "3"))
    assert card["index_path"] == "lenscope-gelu-1l"
    # named, the workspace index answers this model's cards, with examples from the workspace
    card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "3", params={"index": "demo"}))
    assert card["index_path"] == "demo" and len(card["examples"]) == 8
    assert {e["file"] for e in card["examples"]} <= {"src/a.py", "src/b.md"}
    # its descriptions were scored on a few hundred tokens: they say so instead of a precision
    if card["description"] is not None:
        assert card["description"]["too_few_tokens"] and "too few tokens to score" in card["description"]["text"]
    search = ("lenscope", "api", "neurons", "lenscope-gelu-1l", "search")
    found = body_of(await jp_fetch(*search, params={"q": "return", "index": "demo"}))
    assert found["index"] == "demo"
    found = body_of(await jp_fetch(*search, params={"q": "return"}))
    assert found["index"] == "lenscope-gelu-1l"
    # an index of another model is not read for this one
    status, error, _ = await error_of(
        jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "3", params={"index": "lenscope-gelu-2l"})
    )
    assert status == 404 and "not an index of model" in error["error"]["message"], error


@pytest.mark.parametrize(
    "paths,message",
    [
        (["../etc"], "'..' segment"),
        (["/etc/passwd"], "is absolute"),
        (["src/../../x"], "'..' segment"),
        (["escape"], "outside the server root"),
        (["missing"], "does not exist"),
    ],
)
async def test_paths_outside_the_root_are_refused(jp_fetch, workspace: Path, paths, message: str) -> None:
    os.symlink("/etc", workspace / "escape")
    status, error, _ = await error_of(post_json(jp_fetch, "indexes", {"paths": paths}))
    assert status == 403 and error["error"]["code"] == "forbidden_path" and message in error["error"]["message"], error


async def test_symlink_inside_a_folder_is_not_followed_out(jp_fetch, workspace: Path) -> None:
    os.symlink("/etc/passwd", workspace / "src" / "passwd.txt")
    job = body_of(await post_json(jp_fetch, "indexes", {"paths": ["src"], "name": "safe"}))
    done = await wait_job(jp_fetch, job["id"])
    assert done["state"] == "done" and done["result"]["files"] == 2


@pytest.mark.parametrize(
    "body,message",
    [
        ({"paths": []}, "paths: List should have at least 1"),
        ({"paths": ["src"], "name": "a/b"}, "name: String should match pattern"),
        ({"paths": ["src"], "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"paths": ["src"], "model": "\ud800"}, "model: Input should be a valid string"),
    ],
)
async def test_bad_build_requests(jp_fetch, workspace: Path, body: dict, message: str) -> None:
    status, error, _ = await error_of(post_json(jp_fetch, "indexes", body))
    assert status == 400 and message in error["error"]["message"], error


async def running(jp_fetch, job_id: str) -> dict:
    for _ in range(600):
        job = body_of(await jp_fetch("lenscope", "api", "jobs", job_id))
        if job["progress"] and job["progress"]["tokens_done"] > 0:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("the build never made progress")


def no_index_named(root: Path, name: str) -> bool:
    index_dir = root / ".lenscope" / "indexes"
    return not (index_dir / name).exists() and not any((p / "manifest.json").exists() for p in index_dir.glob(f".{name}*"))


async def test_cancel_midway_leaves_no_index_and_a_new_build_works(jp_fetch, workspace: Path) -> None:
    job = body_of(await post_json(jp_fetch, "indexes", {"paths": ["big.py"], "name": "big"}))
    await running(jp_fetch, job["id"])
    cancelled = body_of(await jp_fetch("lenscope", "api", "jobs", job["id"], method="DELETE"))
    assert cancelled["id"] == job["id"]
    done = await wait_job(jp_fetch, job["id"])
    assert done["state"] == "cancelled" and done["error"]["code"] == "cancelled"
    assert no_index_named(workspace, "big")
    card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "0"))
    assert card["index_path"] == "lenscope-gelu-1l"  # the shipped index still serves
    again = body_of(await post_json(jp_fetch, "indexes", {"paths": ["src"], "name": "big"}))
    assert (await wait_job(jp_fetch, again["id"]))["state"] == "done"


async def test_worker_killed_midway_leaves_no_index_and_a_new_build_works(jp_fetch, workspace: Path, jp_serverapp) -> None:
    job = body_of(await post_json(jp_fetch, "indexes", {"paths": ["big.py"], "name": "big"}))
    await running(jp_fetch, job["id"])
    app = next(ext for ext in jp_serverapp.extension_manager.extension_apps["lenscope_server"])
    os.kill(app.jobs.worker.pid, signal.SIGKILL)
    done = await wait_job(jp_fetch, job["id"])
    assert done["state"] == "failed" and done["error"]["code"] == "worker_died" and "signal 9" in done["error"]["message"]
    assert no_index_named(workspace, "big")
    again = body_of(await post_json(jp_fetch, "indexes", {"paths": ["src"], "name": "big"}))
    assert (await wait_job(jp_fetch, again["id"]))["state"] == "done"
    card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "0", params={"index": "big"}))
    assert card["index_path"] == "big"


async def test_unknown_job(jp_fetch) -> None:
    status, error, _ = await error_of(jp_fetch("lenscope", "api", "jobs", "job-999"))
    assert status == 404 and error["error"]["code"] == "job_not_found"


async def test_compare_over_files_as_a_job(jp_fetch, workspace: Path, gelu, attn_only) -> None:
    from lenscope.compare import compare
    from lenscope.index.corpus import read_documents

    body = {"model_b": "lenscope-attn-only-1l", "paths": ["src"], "min_count": 5}
    job = body_of(await post_json(jp_fetch, "compare", body))
    assert job["kind"] == "compare"
    done = await wait_job(jp_fetch, job["id"])
    assert done["state"] == "done", done
    result = done["result"]
    docs, _ = read_documents(workspace, ["src"])
    expected = compare(gelu, attn_only, docs, ("lenscope-gelu-1l", "lenscope-attn-only-1l"))
    assert result["tokens"] == len(expected)
    for got, want in zip(result["rows"][:50], expected[:50]):
        assert (got["path"], got["start"]) == (want.path, want.start)
        assert got["diff"] == pytest.approx(want.diff, abs=1e-4)
    assert result["groups_token"] and result["groups_previous"]
    # the comparison explained: A's MLP part and neurons at each row, and the neurons that carry A's advantage
    from lenscope.attribution import attribute
    from lenscope.explain import explain

    texts = {d.path: d.text for d in docs}
    row = next(r for r in result["rows"] if r["token_index"] >= 1)
    ref = attribute(gelu, texts[row["path"]], row["token_index"] - 1)
    assert row["mlp_a"] == pytest.approx(float(ref.neurons.sum()), abs=1e-4)
    assert [n["index"] for n in row["neurons_a"]] == np.argsort(-np.abs(ref.neurons[0]))[:3].tolist()
    top = [r for r in expected[:100] if r.diff > 0]
    carriers = explain(gelu, texts, [], top).carriers
    assert [(c["layer"], c["index"]) for c in result["carriers"]] == [(c.layer, c.index) for c in carriers]
    assert result["carriers"][0]["total"] == pytest.approx(carriers[0].total, abs=1e-3)
    import csv
    import io

    exports = {e["format"]: e for e in result["exports"]}
    # the exports live under .lenscope/ (hidden from Jupyter's contents API): served by lenscope, as downloads
    got_csv = await jp_fetch("lenscope", "api", *exports["csv"]["url"].split("/"))
    assert got_csv.headers["Content-Disposition"] == f'attachment; filename="{exports["csv"]["name"]}"'
    assert got_csv.headers["Content-Type"].startswith("text/csv")
    assert len(list(csv.reader(io.StringIO(got_csv.body.decode())))) == len(expected) + 1  # tokens may hold newlines: quoted
    got_jsonl = await jp_fetch("lenscope", "api", *exports["jsonl"]["url"].split("/"))
    assert len(got_jsonl.body.decode().splitlines()) == len(expected)
    status, error, _ = await error_of(jp_fetch("lenscope", "api", "exports", "nothing.csv"))
    assert status == 404 and "run a comparison first" in error["error"]["message"]
    assert sorted(p.name for p in (workspace / ".lenscope" / "scans").iterdir()) == [
        "lenscope-attn-only-1l.npz",
        "lenscope-gelu-1l.npz",
    ]
    status, error, _ = await error_of(post_json(jp_fetch, "compare", {"model_b": "x", "paths": ["../x"]}))
    assert status == 403 and error["error"]["code"] == "forbidden_path"
