"""Direct logit attribution against TransformerLens computed directly in the test: the parts sum
to the centred logit, and every head's and neuron's part equals an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lenscope.attribution import attribute, top_parts
from lenscope.errors import InvalidInput
from tests.core.reference import random_multi_layer

CODE = "import os\n\ndef home(path):\n    return os.path.join(path, 'x')\n"
UNICODE = "# café 😀 日本語\nname = 'naïve'\n"


def reference(model, tokens: list[int], target: int) -> dict:
    """Per-part direct effects from a full run_with_cache, by another route: the heads through
    ``hook_z`` (TransformerLens's mixed values), neurons through ``W_out`` rows."""
    logits, cache = model.run_with_cache(torch.tensor([tokens]))
    w = model.ln_final._original_component.weight.float()
    scale = cache["ln_final.hook_scale"][0, -1, 0]
    u = model.W_U[:, target] - model.W_U.mean(1)

    def direct(vec: torch.Tensor) -> torch.Tensor:
        return ((vec - vec.mean(-1, keepdim=True)) / scale * w) @ u

    out = {"value": float(logits[0, -1, target] - logits[0, -1].mean()), "heads": [], "neurons": [], "sources": []}
    for layer in range(model.cfg.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][0, -1]  # [heads, d_head]: the heads' mixed values
        result = torch.einsum("hd,hdm->hm", z, model.W_O[layer])
        out["heads"].append(direct(result))
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0, :, -1]  # [heads, sources]
        v = cache[f"blocks.{layer}.attn.hook_v"][0]  # [sources, heads, d_head]
        per_source = torch.einsum("hs,shd,hdm->hsm", pattern, v, model.W_O[layer])
        out["sources"].append(direct(per_source))
        if f"blocks.{layer}.mlp.hook_post" in cache:
            post = cache[f"blocks.{layer}.mlp.hook_post"][0, -1]
            out["neurons"].append(direct(post[:, None] * model.W_out[layer]))
    return out


@pytest.mark.parametrize("text", [CODE, UNICODE])
@pytest.mark.parametrize("which", ["gelu", "attn_only"])
def test_parts_sum_to_the_centred_logit_and_match_the_reference(request, which: str, text: str) -> None:
    model = request.getfixturevalue(which)
    context = "import sys\n"
    n = len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    for position in range(0, n - 1, 3):
        got = attribute(model, text, position, context=context)
        assert got.total() == pytest.approx(got.value, abs=1e-4)
        tokens = got.source_tokens
        ref = reference(model, tokens, got.target)
        assert got.value == pytest.approx(ref["value"], abs=1e-4)
        for layer in range(model.cfg.n_layers):
            assert torch.allclose(torch.from_numpy(got.heads[layer]), ref["heads"][layer].float(), atol=1e-4)
            assert torch.allclose(torch.from_numpy(got.head_sources[layer]), ref["sources"][layer].float(), atol=1e-4)
            if ref["neurons"]:
                assert torch.allclose(torch.from_numpy(got.neurons[layer]), ref["neurons"][layer].float(), atol=1e-4)
        assert got.source_text_index[0] == -1 and got.source_text_index[-1] == position


def test_target_baseline_and_bad_input(gelu) -> None:
    got = attribute(gelu, CODE, 4, target=10, baseline=20)
    assert (got.target, got.baseline) == (10, 20) and got.total() == pytest.approx(got.value, abs=1e-4)
    parts = top_parts(got, k=5)
    assert len(parts["neurons"]) == 5 and abs(parts["neurons"][0][1]) >= abs(parts["neurons"][-1][1])
    for kwargs, words in (
        ({"position": 10_000}, "position must be between 0"),
        ({"position": 1, "target": gelu.cfg.d_vocab}, "target must be between 0"),
        ({"position": 1, "baseline": -1}, "baseline must be between 0"),
    ):
        with pytest.raises(InvalidInput, match=words):
            attribute(gelu, CODE, **kwargs)


def test_a_random_multi_layer_model_with_windows(gelu) -> None:
    """Three layers, random weights (LayerNorm weights too), a text longer than the context:
    still exact against the reference, layer by layer, in whichever window holds the position."""
    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)
    text = CODE * 3
    n = len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert n > model.cfg.n_ctx  # several windows
    for position in (0, n // 2, n - 2):
        got = attribute(model, text, position)
        assert got.total() == pytest.approx(got.value, abs=1e-4)
        ref = reference(model, got.source_tokens, got.target)
        assert got.value == pytest.approx(ref["value"], abs=1e-4)
        for layer in range(3):
            assert torch.allclose(torch.from_numpy(got.heads[layer]), ref["heads"][layer].float(), atol=1e-4)
            assert torch.allclose(torch.from_numpy(got.neurons[layer]), ref["neurons"][layer].float(), atol=1e-4)


@pytest.mark.parametrize("which", ["gelu", "attn_only"])
def test_every_position_at_once_equals_one_at_a_time(request, which: str) -> None:
    from lenscope.attribution import attribute_all

    model = request.getfixturevalue(which)
    text = CODE * 12  # longer than the context: several windows
    every = attribute_all(model, text, context="import sys\n", top=5)
    n = len(every.value)
    assert n > model.cfg.n_ctx and np.allclose(every.total(), every.value, atol=1e-4)
    for position in (0, 7, n // 2, n - 2, n - 1):
        one = attribute(model, text, position, context="import sys\n")
        assert every.targets[position] == one.target
        assert every.value[position] == pytest.approx(one.value, abs=1e-4)
        assert np.allclose(every.heads[position], one.heads, atol=1e-4)
        assert np.allclose(every.mlp_total[position], one.neurons.sum(1), atol=1e-4)
        assert every.embed[position] == pytest.approx(one.embed, abs=1e-4)
        if one.neurons.size:
            best = top_parts(one, 5)["neurons"]
            assert [(int(la), int(ix)) for la, ix in zip(every.neuron_layer[position], every.neuron_index[position])] == [
                key for key, _ in best
            ]
