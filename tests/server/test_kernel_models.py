"""lenscope.attach over HTTP: a model edited in a real kernel is listed, analyzed there (equal to
the kernel's own computation, and to the default model with the same neuron zero-ablated),
times out clearly while the kernel is busy, refuses a name another kernel holds, and is gone
when its kernel restarts."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import pytest
import torch

from lenscope.engine.plan import bos_id
from tests.server.helpers import body_of, decoded, error_of, post_analyze

NEURON = 7
TEXT = "def area(r):\n    return 3.14159 * r ** 2\n\nprint(area(2.0))\n"
ATTACH = f"""
import torch, lenscope
from lenscope.models.registry import load_model
m = load_model("lenscope-gelu-1l")
with torch.no_grad():
    for name, p in m.named_parameters():
        if name.endswith("mlp._original_component.fc_out._original_component.weight"):
            p[:, {NEURON}] = 0  # the neuron's output weights: [d_model, d_mlp]
assert float(m.W_out[0, {NEURON}].abs().sum()) == 0
lenscope.attach(m, "edited-gelu")
"""


@pytest.fixture
def lenscope_config() -> dict[str, Any]:
    return {"request_timeout_s": 6.0}


async def run(client: Any, code: str, timeout: float = 180) -> tuple[str, str]:
    """Execute in the kernel; its status and everything it printed (errors included)."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        c = msg["content"]
        if msg["msg_type"] == "stream":
            out.append(c["text"])
        elif msg["msg_type"] == "error":
            out.append(f"{c['ename']}: {c['evalue']}")

    reply = await client.execute_interactive(code, output_hook=hook, timeout=timeout)
    return reply["content"]["status"], "".join(out)


async def kernel(jp_serverapp: Any) -> tuple[str, Any]:
    km = jp_serverapp.kernel_manager
    kid = await km.start_kernel()
    client = km.get_kernel(kid).client()
    client.start_channels()
    await client.wait_for_ready(timeout=120)
    return kid, client


async def models(jp_fetch: Any) -> dict[str, dict[str, Any]]:
    r = await jp_fetch("lenscope", "api", "models")
    return {m["name"]: m for m in json.loads(r.body)["models"]}


async def test_attached_model_lives_in_its_kernel(jp_fetch: Any, jp_serverapp: Any, gelu: Any) -> None:
    kid, client = await kernel(jp_serverapp)
    try:
        status, out = await run(client, ATTACH)
        assert status == "ok", out
        listed = (await models(jp_fetch))["edited-gelu"]
        assert listed["source"] == "kernel" and listed["kernel"]["id"] == kid and listed["state"] == "loaded"
        assert listed["shape"]["d_mlp"] == 1024

        wire = decoded(await post_analyze(jp_fetch, {"model": "edited-gelu", "text": TEXT}))
        got = wire["predictions"]
        # the kernel's own computation, on its own model
        status, out = await run(client, f"from lenscope.analysis import analyze\nimport json\n"
                                         f"p = analyze(m, {TEXT!r}).predictions\n"
                                         f"print(json.dumps([p.actual_logprob.tolist(), p.top_ids.tolist()]))")  # fmt: skip
        assert status == "ok", out
        own_lp, own_ids = json.loads(out.strip().splitlines()[-1])
        n = len(got["actual_logprob"])
        np.testing.assert_allclose(got["actual_logprob"], np.asarray(own_lp, dtype=np.float32)[:n], atol=1e-3)
        assert got["top_ids"].tolist() == [row[: got["top_ids"].shape[1]] for row in own_ids][: len(got["top_ids"])]
        # what the edit predicts: the default model with the neuron's activation zeroed at every position
        # (the BOS's too), computed here with TransformerLens hooks; and not the plain default model
        ids = torch.tensor([[bos_id(gelu.tokenizer), *wire["tokens"]["ids"].tolist()]])

        def zero(act: torch.Tensor, hook: Any) -> torch.Tensor:
            act[:, :, NEURON] = 0
            return act

        with torch.inference_mode():
            logits = gelu.run_with_hooks(ids, fwd_hooks=[("blocks.0.mlp.hook_post", zero)])
        lp = torch.log_softmax(logits[0, :-1].double(), dim=-1)
        want = lp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].numpy()
        assert len(want) == n - 1  # the last token has no next token
        np.testing.assert_allclose(got["actual_logprob"][: n - 1], want, atol=2e-4)
        plain = decoded(await post_analyze(jp_fetch, {"text": TEXT}))["predictions"]
        assert np.nanmax(np.abs(got["actual_logprob"] - plain["actual_logprob"])) > 1e-3  # the check above can fail

        # busy: a long cell holds the kernel; the request times out with a message, the server stays responsive
        client.execute("import time; time.sleep(12)")
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        code, body, _ = await error_of(post_analyze(jp_fetch, {"model": "edited-gelu", "text": TEXT + "x = 1\n"}))
        assert code == 504 and body["error"]["code"] == "kernel_busy" and "running a cell" in body["error"]["message"]
        assert time.monotonic() - t0 < 15
        t1 = time.monotonic()
        assert "edited-gelu" in await models(jp_fetch)
        assert time.monotonic() - t1 < 3
        await asyncio.sleep(12)

        # a second kernel cannot take the name while the first holds it
        kid2, client2 = await kernel(jp_serverapp)
        try:
            status, out = await run(client2, ATTACH)
            assert status == "error" and "already attached by another running kernel" in out
        finally:
            client2.stop_channels()
            await jp_serverapp.kernel_manager.shutdown_kernel(kid2)

        # restart: the model is gone from the list, and a request for it says why
        await jp_serverapp.kernel_manager.restart_kernel(kid)
        assert "edited-gelu" not in await models(jp_fetch)
        code, body, _ = await error_of(post_analyze(jp_fetch, {"model": "edited-gelu", "text": TEXT}))
        assert code == 404 and "no longer attached" in body["error"]["message"]
    finally:
        client.stop_channels()
        await jp_serverapp.kernel_manager.shutdown_kernel(kid)


async def test_attach_outside_a_kernel_says_so() -> None:
    from lenscope_server.kernel_side import AttachError, attach

    with pytest.raises(AttachError, match="must be 1-64"):
        attach(object(), "no spaces allowed")
    with pytest.raises(AttachError, match="not a TransformerLens model"):
        attach(object(), "thing")


async def test_index_of_a_kernel_model_is_built_in_its_kernel(jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Any) -> None:
    """The build runs in the kernel (progress, cancel), and its cards show the edit: the zeroed
    neuron's direct effect on the logits is exactly zero, another neuron's is not."""
    (jp_root_dir / "a.py").write_text("def add(a, b):\n    return a + b\n" * 100)
    (jp_root_dir / "big.py").write_text("".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(3000)))
    kid, client = await kernel(jp_serverapp)
    try:
        status, out = await run(client, ATTACH)
        assert status == "ok", out
        job = await post_job(jp_fetch, {"model": "edited-gelu", "paths": ["a.py"], "name": "edited-ix", "k": 4})
        done = await wait_job(jp_fetch, job["id"])
        assert done["state"] == "done", done
        assert any(j["progress"] for j in done["history"])  # progress came back over the comm
        zeroed = body_of(await jp_fetch("lenscope", "api", "neurons", "edited-gelu", "0", str(NEURON)))
        assert zeroed["index_path"] == "edited-ix" and zeroed["examples"]
        assert {e["value"] for e in zeroed["logit_boosted"] + zeroed["logit_suppressed"]} == {0.0}
        other = body_of(await jp_fetch("lenscope", "api", "neurons", "edited-gelu", "0", str(NEURON + 1)))
        assert max(abs(e["value"]) for e in other["logit_boosted"]) > 1e-3

        # cancel a longer build midway: it stops in the kernel, no index is written, the kernel still answers
        job = await post_job(jp_fetch, {"model": "edited-gelu", "paths": ["big.py"], "name": "edited-big"})
        for _ in range(600):
            state = body_of(await jp_fetch("lenscope", "api", "jobs", job["id"]))
            if state["progress"] and state["progress"]["tokens_done"] > 0:
                break
            await asyncio.sleep(0.05)
        await jp_fetch("lenscope", "api", "jobs", job["id"], method="DELETE")
        done = await wait_job(jp_fetch, job["id"])
        assert done["state"] == "cancelled"
        assert not (jp_root_dir / ".lenscope" / "indexes" / "edited-big").exists()
        status, out = await run(client, "print(lenscope.attach(m, 'edited-gelu').name)")
        assert status == "ok" and "edited-gelu" in out
    finally:
        client.stop_channels()
        await jp_serverapp.kernel_manager.shutdown_kernel(kid)


async def post_job(jp_fetch: Any, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    r = await jp_fetch("lenscope", "api", "indexes", method="POST", body=json.dumps(body), headers=headers)
    assert r.code == 202
    return body_of(r)  # type: ignore[no-any-return]


async def wait_job(jp_fetch: Any, job_id: str, timeout: float = 300) -> dict[str, Any]:
    seen = []
    for _ in range(int(timeout / 0.2)):
        job = body_of(await jp_fetch("lenscope", "api", "jobs", job_id))
        seen.append(job)
        if job["state"] in ("done", "failed", "cancelled"):
            return {**job, "history": seen}
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} still {seen[-1]['state']}")
