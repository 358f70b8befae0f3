"""Every view on a multi-layer model, against TransformerLens computed directly: the shipped
2-layer default model and a Hugging Face GPT-2 folder written by ``transformers``.

Views: analyze, the neuron index (cards name the layer, search), attribution per layer, the
two-model comparison, and the logit lens (whose last row is the model's own output).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from lenscope.attribution import attribute
from lenscope.compare import compare
from lenscope.index.build import BuildOptions, build_index
from lenscope.index.card import neuron_card, neurons_for_token
from lenscope.index.corpus import Document
from lenscope.index.store import open_index, write_index
from lenscope.logitlens import logit_lens
from lenscope.models.registry import load_model
from tests.core.reference import reference, save_tiny_gpt2

TEXT = "def area(r):\n    return 3.14 * r * r\n\nprint(area(2))\n"
DOCS = [
    "import os\n\nfor name in os.listdir('.'):\n    print(name)\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "values = [1, 2, 3]\ntotal = sum(values)\nprint(total / len(values))\n",
]


@pytest.fixture(scope="module", params=["lenscope-gelu-2l", "hf-gpt2-folder"])
def two(request, gelu, tmp_path_factory) -> tuple[str, Any]:
    if request.param == "lenscope-gelu-2l":
        return request.param, load_model("lenscope-gelu-2l")
    folder = tmp_path_factory.mktemp("models") / "tiny-gpt2"
    save_tiny_gpt2(folder, gelu.tokenizer)
    return request.param, load_model(str(folder))


def test_analyze_matches_a_direct_run(two) -> None:
    _, model = two
    assert model.cfg.n_layers == 2
    got = analyze(model, TEXT, top_neurons=8)
    ref = reference(model, TEXT)
    n = len(ref.ids)
    want = [float(ref.logprobs[j, t]) for j, t in enumerate(ref.ids)]
    np.testing.assert_allclose(got.predictions.actual_logprob[:n], want, atol=1e-4)
    assert got.predictions.actual_rank[:n].tolist() == ref.ranks
    top = ref.neurons.topk(8, dim=-1)
    d_mlp = model.cfg.d_mlp
    np.testing.assert_allclose(got.predictions.neuron_activation, top.values.numpy(), atol=1e-4)
    flat = got.predictions.neuron_layer * d_mlp + got.predictions.neuron_index
    assert (flat == top.indices.numpy()).mean() > 0.99  # ties aside
    assert set(got.predictions.neuron_layer.reshape(-1).tolist()) == {0, 1}  # both layers appear


def test_the_index_covers_both_layers_and_cards_name_them(two, tmp_path) -> None:
    name, model = two
    docs = [Document(path=f"d{i}.py", text=t, sha256=str(i)) for i, t in enumerate(DOCS)]
    arrays = build_index(model, docs, BuildOptions(k=3))
    d_mlp = model.cfg.d_mlp
    assert arrays.top_values.shape == (2 * d_mlp, 3)
    best = torch.cat([reference(model, d.text).neurons.max(0).values[None] for d in docs]).max(0).values
    np.testing.assert_allclose(arrays.max, best.numpy(), atol=1e-4)
    path = write_index(arrays, tmp_path / "ix", model=name, n_layers=2, tokenizer={}, docs=docs, skipped=[], root=".")
    index = open_index(path)
    neuron = int(np.argmax(arrays.max[d_mlp:]))  # the strongest layer-1 neuron
    card = neuron_card(index, 1, neuron)
    assert (card["layer"], card["index"]) == (1, neuron)
    ex = card["examples"][0]
    assert abs(ex["value"] - float(best[d_mlp + neuron])) < 1e-3
    # search by the token its best example peaks on finds it, with its layer
    hits = neurons_for_token(index, ex["tokens"][ex["max_token"]], limit=4 * d_mlp)
    assert any(h["layer"] == 1 and h["index"] == neuron for h in hits)
    # logit effects of a layer-1 neuron are its W_out row through W_U
    effect = model.W_out[1, neuron].detach().float() @ model.W_U.detach().float()
    assert card["logit_boosted"][0]["id"] == int(effect.argmax())


def test_attribution_per_layer_is_exact(two) -> None:
    _, model = two
    pos = 10
    result = attribute(model, TEXT, pos)
    assert abs(result.total() - result.value) < 1e-3
    # layer 1's neuron parts: activation x (centred W_out row) . (w_ln * u / scale), from a direct run
    ids = model.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    x = torch.tensor([[model.tokenizer.bos_token_id, *ids[: pos + 1]]])
    _, cache = model.run_with_cache(x, names_filter=["blocks.1.mlp.hook_post", "ln_final.hook_scale"])
    act = cache["blocks.1.mlp.hook_post"][0, -1].float()
    scale = float(cache["ln_final.hook_scale"][0, -1].reshape(-1)[0])
    w_u = model.W_U.detach().float()
    u = w_u[:, result.target] - w_u.mean(1)
    inner = getattr(model.ln_final, "_original_component", model.ln_final)
    w_ln = inner.weight.detach().float()
    w_out = model.W_out[1].detach().float()
    direct = (w_out - w_out.mean(-1, keepdim=True)) @ (w_ln * u / scale)
    np.testing.assert_allclose(result.neurons[1], (act * direct).numpy(), atol=1e-4)


def test_compare_against_the_one_layer_model(two, gelu) -> None:
    name, model = two
    docs = [Document(path="a.py", text=TEXT, sha256="a")]
    rows = compare(model, gelu, docs, (name, "lenscope-gelu-1l"))
    ref_a, ref_b = reference(model, TEXT), reference(gelu, TEXT)
    for r in rows[:10]:
        j = r.token_index
        assert abs(r.lp_a - float(ref_a.logprobs[j, ref_a.ids[j]])) < 1e-3
        assert abs(r.lp_b - float(ref_b.logprobs[j, ref_b.ids[j]])) < 1e-3


def test_the_logit_lens_ends_at_the_models_output(two) -> None:
    _, model = two
    lens = logit_lens(model, TEXT, top_k=5)
    assert lens.rows == ["embed", "L0", "L1"]
    plain = analyze(model, TEXT, top_k=5)
    n = len(lens.positions)
    np.testing.assert_allclose(lens.top_logprobs[-1], plain.predictions.top_logprobs[1 : n + 1], atol=1e-4)
    # after block 0: ln_final and the unembedding on the residual stream there, from a direct run
    ids = model.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    x = torch.tensor([[model.tokenizer.bos_token_id, *ids]])
    _, cache = model.run_with_cache(x, names_filter=["blocks.0.hook_resid_post"])
    with torch.no_grad():
        lp = torch.log_softmax(model.unembed(model.ln_final(cache["blocks.0.hook_resid_post"])).float(), -1)[0, 1:]
    np.testing.assert_allclose(lens.top_logprobs[1], lp.topk(5, -1).values.numpy(), atol=1e-4)
