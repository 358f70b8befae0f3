"""The server's model_dirs: a Hugging Face folder or a TransformerLens legacy checkpoint folder
under the root is listed with its shape and served; a broken one is listed as unavailable with its
problem, and asking for it is a 503 naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from lenscope.models.registry import load_model
from tests.core.reference import random_multi_layer, save_tiny_gpt2, save_tl_legacy
from tests.server.helpers import body_of, decoded, error_of, post_analyze


def _legacy_original(gelu: Any) -> Any:
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same random model each time
        return random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)


@pytest.fixture
def lenscope_config(jp_root_dir: Path, gelu: Any) -> dict[str, Any]:
    save_tiny_gpt2(jp_root_dir / "models" / "tiny-gpt2", gelu.tokenizer)
    shutil.copytree(jp_root_dir / "models" / "tiny-gpt2", jp_root_dir / "models" / "no-weights")
    (jp_root_dir / "models" / "no-weights" / "model.safetensors").unlink()
    save_tl_legacy(jp_root_dir / "models" / "legacy-3l", _legacy_original(gelu))
    misfit = shutil.copytree(jp_root_dir / "models" / "legacy-3l", jp_root_dir / "models" / "legacy-misfit")
    config = json.loads((misfit / "config.json").read_text(encoding="utf-8"))
    (misfit / "config.json").write_text(json.dumps({**config, "n_heads": 8, "d_head": 4}), encoding="utf-8")
    return {"model_dirs": ["models"]}


async def test_a_model_folder_is_listed_and_served(jp_fetch, jp_root_dir: Path) -> None:
    listing = {m["name"]: m for m in body_of(await jp_fetch("lenscope", "api", "models"))["models"]}
    tiny = listing["tiny-gpt2"]
    assert tiny["loadable"] and tiny["shape"]["n_layers"] == 2 and tiny["shape"]["d_mlp"] == 256
    assert not listing["no-weights"]["loadable"] and "no weights" in listing["no-weights"]["reason"]
    assert str(jp_root_dir) not in json.dumps(listing)  # server paths stay on the server
    text = "def area(r):\n    return 3.14 * r * r\n"
    got = decoded(await post_analyze(jp_fetch, {"text": text, "model": "tiny-gpt2"}))
    want = analyze(load_model(str(jp_root_dir / "models" / "tiny-gpt2")), text)
    np.testing.assert_allclose(got["predictions"]["actual_logprob"], want.predictions.actual_logprob, atol=1e-5, equal_nan=True)
    status, error, _ = await error_of(post_analyze(jp_fetch, {"text": text, "model": "no-weights"}))
    assert status == 503 and error["error"]["code"] == "model_unavailable" and "no weights" in error["error"]["message"]


async def test_a_legacy_checkpoint_folder_is_listed_and_served(jp_fetch, jp_root_dir: Path, gelu: Any) -> None:
    listing = {m["name"]: m for m in body_of(await jp_fetch("lenscope", "api", "models"))["models"]}
    shape = listing["legacy-3l"]["shape"]
    assert listing["legacy-3l"]["loadable"] and (shape["n_layers"], shape["d_mlp"], shape["n_ctx"]) == (3, 64, 24)
    text = "def area(r):\n    return 3.14 * r * r\n"
    got = decoded(await post_analyze(jp_fetch, {"text": text, "model": "legacy-3l"}))
    want = analyze(_legacy_original(gelu), text)  # the model the folder was written from
    np.testing.assert_allclose(got["predictions"]["actual_logprob"], want.predictions.actual_logprob, atol=1e-4, equal_nan=True)
    np.testing.assert_array_equal(got["predictions"]["top_ids"], want.predictions.top_ids)
    status, error, _ = await error_of(post_analyze(jp_fetch, {"text": text, "model": "legacy-misfit"}))
    message = error["error"]["message"]
    assert status == 503 and error["error"]["code"] == "model_unavailable", error
    assert "models/legacy-misfit/model_final.pth does not fit models/legacy-misfit/config.json" in message
    assert "blocks.0.attn.W_Q" in message and str(jp_root_dir) not in message and "Traceback" not in message
