"""SAEs over HTTP: listed (broken ones with their problem), features in analyze and attribute,
feature indexes built as jobs and read as cards, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lenscope.analysis import analyze
from lenscope.index.card import neuron_card
from lenscope.index.store import open_index
from lenscope.sae import load_sae
from tests.core.test_sae import CODE, saelens_folder, sparsify_folder
from tests.server.helpers import body_of, decoded, error_of, post_analyze
from tests.server.test_indexes import wait_job

HOOK = "blocks.0.mlp.hook_post"


@pytest.fixture
def lenscope_config(jp_root_dir: Path) -> dict[str, Any]:
    saes = jp_root_dir / "saes"
    sparsify_folder(saes / "mlp-topk", 1024, 96, 8, HOOK)
    (saes / "mlp-topk" / "lenscope.json").write_text(json.dumps({"name": "mlp-topk", "model": "lenscope-gelu-1l"}))
    saelens_folder(saes / "resid", 256, 32, "standard", "blocks.0.hook_resid_pre", model="lenscope-gelu-1l")
    saelens_folder(saes / "narrow", 128, 32, "standard", "blocks.0.hook_resid_pre")  # another model's width
    sparsify_folder(saes / "broken", 1024, 32, 4, HOOK)
    (saes / "broken" / HOOK / "cfg.json").unlink()
    (jp_root_dir / "code").mkdir()
    for i in range(3):
        (jp_root_dir / "code" / f"m{i}.py").write_text(CODE * (i + 1))
    return {"model_dirs": ["saes"]}


async def test_saes_are_listed_with_their_shape_and_problems(jp_fetch, jp_root_dir: Path) -> None:
    listing = body_of(await jp_fetch("lenscope", "api", "models"))
    saes = {s["name"]: s for s in listing["saes"]}
    top = saes["mlp-topk"]
    assert (top["model"], top["hook_point"], top["d_sae"], top["k"], top["format"], top["loadable"]) == (
        "lenscope-gelu-1l", HOOK, 96, 8, "sparsify", True)  # fmt: skip
    assert saes["resid"]["format"] == "saelens" and saes["resid"]["d_in"] == 256
    assert not saes["broken"]["loadable"] and "has no cfg.json" in saes["broken"]["reason"]
    assert str(jp_root_dir) not in json.dumps(listing)
    assert not any(m["name"] in saes for m in listing["models"])  # SAE folders are not listed as models


async def test_analyze_and_attribute_with_features(jp_fetch, jp_root_dir: Path, gelu) -> None:
    got = decoded(await post_analyze(jp_fetch, {"text": CODE, "sae": "mlp-topk", "top_features": 5}))
    want = analyze(gelu, CODE, sae=load_sae(jp_root_dir / "saes" / "mlp-topk"), top_features=5)
    f = got["features"]
    assert (f["sae"], f["hook_point"], f["d_sae"]) == ("mlp-topk", HOOK, 96)
    assert (f["index"] == want.predictions.feature_index).all()
    np.testing.assert_allclose(f["activation"], want.predictions.feature_activation, atol=2e-3, rtol=2e-3)  # float16
    plain = decoded(await post_analyze(jp_fetch, {"text": CODE}))
    assert plain["features"] is None  # cached apart: the plain analysis is not the featured one
    body = json.dumps({"text": CODE, "position": 12, "sae": "mlp-topk"}).encode()
    headers = {"Content-Type": "application/json"}
    attr = decoded(await jp_fetch("lenscope", "api", "attribute", method="POST", body=body, headers=headers))
    fa = attr["features"]
    assert fa["sae"] == "mlp-topk" and abs(fa["total"] + fa["bias"] + fa["error"] - attr["mlp_total"][0]) < 1e-3


ERRORS = [
        ({"sae": "nope"}, 404, "unknown_model", "no SAE named 'nope'"),
        ({"sae": "broken"}, 503, "sae_unavailable", "has no cfg.json"),
        ({"sae": "narrow"}, 400, "invalid_input", "expects d_in=128 at 'blocks.0.hook_resid_pre'"),
        ({"sae": "mlp-topk", "model": "lenscope-attn-only-1l"}, 400, "invalid_input", "does not have"),
        ({"sae": "mlp-topk", "top_features": 97}, 400, "invalid_input", "top_features"),
]  # fmt: skip


async def test_sae_errors_are_clear(jp_fetch, jp_root_dir: Path) -> None:
    for body, status, code, message in ERRORS:  # one server for all: each start costs ~20 s here
        got_status, error, _ = await error_of(post_analyze(jp_fetch, {"text": CODE, **body}))
        assert (got_status, error["error"]["code"]) == (status, code) and message in error["error"]["message"], body
        assert str(jp_root_dir) not in error["error"]["message"]


async def test_a_feature_index_job_then_feature_cards(jp_fetch, jp_root_dir: Path) -> None:
    body = json.dumps({"paths": ["code"], "name": "features", "k": 4, "sae": "mlp-topk"}).encode()
    job = body_of(
        await jp_fetch("lenscope", "api", "indexes", method="POST", body=body, headers={"Content-Type": "application/json"})
    )
    done = await wait_job(jp_fetch, job["id"])
    assert done["state"] == "done", done
    listed = {i["name"]: i for i in body_of(await jp_fetch("lenscope", "api", "indexes"))["indexes"]}
    assert listed["features"]["sae"] == "mlp-topk"
    index = open_index(jp_root_dir / ".lenscope" / "indexes" / "features")
    feature = int(np.argmax(np.asarray(index.arrays["max"])))
    card = body_of(await jp_fetch("lenscope", "api", "features", "lenscope-gelu-1l", "mlp-topk", str(feature)))
    want = neuron_card(index, 0, feature, lambda p: True)
    assert card["sae"] == "mlp-topk" and card["index"] == feature
    assert [e["value"] for e in card["examples"]] == pytest.approx([e["value"] for e in want["examples"]])
    assert card["examples"][0]["available"]  # the workspace's own file
    ex = card["examples"][0]
    hits = body_of(await jp_fetch("lenscope", "api", "features", "lenscope-gelu-1l", "mlp-topk", "search",
                                  params={"q": ex["tokens"][ex["max_token"]]}))  # fmt: skip
    assert any(h["index"] == feature for h in hits["neurons"]) or len(hits["neurons"]) == 20
    # the neuron routes still read the neuron index, and another SAE has no feature index yet
    neuron = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "5"))
    assert neuron.get("sae") is None and neuron["index_path"] != "features"
    status, error, _ = await error_of(jp_fetch("lenscope", "api", "features", "lenscope-gelu-1l", "resid", "0"))
    assert status == 404 and "no feature index for SAE 'resid'" in error["error"]["message"]
