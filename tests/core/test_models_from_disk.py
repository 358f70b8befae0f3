"""Models from disk, for real: a Hugging Face GPT-2 folder written by ``transformers`` loads through
the registry (as a user's download would) and every lenscope computation is exact on it; a
folder missing a part is named with what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from lenscope.attention import attend
from lenscope.attribution import attribute
from lenscope.errors import ModelUnavailable
from lenscope.interventions import Intervention
from lenscope.models.registry import list_models, load_model, resolve
from tests.core.reference import save_tiny_gpt2

TEXT = "def area(r):\n    return 3.14 * r * r\n"


@pytest.fixture(scope="module")
def hf(gelu, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    reference = save_tiny_gpt2(root / "tiny-gpt2", gelu.tokenizer)
    return root, reference, load_model(str(root / "tiny-gpt2"))


def test_log_probs_equal_the_hugging_face_models_own(hf) -> None:
    _, reference, model = hf
    got = analyze(model, TEXT * 6)  # longer than the 64-token context: windows
    ids = got.tokens.ids.tolist()
    window = ids[:63]
    with torch.no_grad():
        lp = torch.log_softmax(reference(torch.tensor([[model.tokenizer.bos_token_id, *window]])).logits[0], -1)
    want = [float(lp[j, window[j]]) for j in range(len(window))]
    np.testing.assert_allclose(got.predictions.actual_logprob[: len(window)], want, atol=1e-4)
    assert got.windowed and model.cfg.n_layers == 2


def test_attribution_attention_and_interventions_work_on_it(hf) -> None:
    _, _, model = hf
    why = attribute(model, TEXT, 6)
    assert why.total() == pytest.approx(why.value, abs=1e-4) and why.neurons.shape == (2, 256)
    att = attend(model, TEXT, k=1024)
    ids = att.tokens.ids.tolist()
    _, cache = model.run_with_cache(torch.tensor([[model.tokenizer.bos_token_id, *ids]]))
    pattern = cache["blocks.1.attn.hook_pattern"][0, :, 1:].float().numpy()  # [heads, text rows, keys]
    np.testing.assert_allclose(att.weights[1, :, :, 0], pattern.max(-1), atol=1e-6)
    changed = analyze(model, TEXT, interventions=[Intervention("neuron", 1, 3, "zero"), Intervention("head", 0, 2, "scale", 0.0)])
    assert changed.interventions[1]["label"] == "L0.H2 x0"


def test_listed_with_its_shape_and_missing_parts_are_named(hf, tmp_path: Path) -> None:
    root, _, _ = hf
    listed = {m.name: m for m in list_models((root,))}
    shape = listed["tiny-gpt2"].shape
    assert listed["tiny-gpt2"].loadable and shape is not None
    assert (shape.n_layers, shape.d_model, shape.d_mlp, shape.n_ctx) == (2, 64, 256, 64)
    broken = tmp_path / "broken"
    shutil.copytree(root / "tiny-gpt2", broken)
    (broken / "model.safetensors").unlink()
    info = resolve(str(broken))
    assert not info.loadable and str(broken) in info.reason and "no weights" in info.reason
    with pytest.raises(ModelUnavailable, match="no weights"):
        load_model(str(broken))
    shutil.copy(root / "tiny-gpt2" / "model.safetensors", broken)
    (broken / "tokenizer.json").unlink()
    assert "no tokenizer" in resolve(str(broken)).reason
    (broken / "config.json").write_text("{}", encoding="utf-8")
    assert "names no model_type" in resolve(str(broken)).reason


def test_a_tilde_name_of_an_unknown_user_is_an_unknown_model() -> None:
    """``~user`` of a user this machine does not know made ``expanduser`` raise (a 500 the fuzzer found)."""
    from lenscope.errors import UnknownModel
    from lenscope.models.registry import resolve

    with pytest.raises(UnknownModel, match="unknown model"):
        resolve("~no-such-user-here/model")
    with pytest.raises(UnknownModel, match="unknown model"):
        resolve("~no-such-user-here/model", allow_paths=False)
