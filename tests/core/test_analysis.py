"""``analyze`` against an independent TransformerLens computation on the default models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from tests.core.reference import reference

TEXTS = {
    "ascii": "The quick brown fox jumps over the lazy dog. It was not amused, and said so twice.",
    "code": 'def mean(xs):\n    """Average."""\n    if not xs:\n        raise ValueError("e")\n    return sum(xs) / len(xs)\n',
    "unicode": "# café 😀 naïve e\u0301 — 日本語のテキスト 🧪🧬 “quotes” \u00a0end\n",
}


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_matches_independent_computation(gelu, kind: str) -> None:
    text = TEXTS[kind]
    got = analyze(gelu, text, top_k=10, top_neurons=10)
    ref = reference(gelu, text)
    p = got.predictions
    n = len(ref.ids)
    assert got.tokens.ids.tolist() == ref.ids
    assert p.top_ids.shape == (n + 1, 10) and p.neuron_index.shape == (n, 10)
    # top-k: identical ids, log-probs within float tolerance
    ref_top = ref.logprobs.topk(10, dim=-1)
    assert p.top_ids.tolist() == ref_top.indices.tolist()
    np.testing.assert_allclose(p.top_logprobs, ref_top.values.numpy(), atol=1e-4)
    # actual token: log-prob and rank from a full sort, last row has none
    actual = ref.logprobs[torch.arange(n), torch.tensor(ref.ids)].numpy()
    np.testing.assert_allclose(p.actual_logprob[:n], actual, atol=1e-4)
    assert p.actual_rank[:n].tolist() == ref.ranks
    assert np.isnan(p.actual_logprob[n]) and p.actual_rank[n] == 0
    entropy = -(ref.logprobs.exp() * ref.logprobs).sum(-1).numpy()
    np.testing.assert_allclose(p.entropy, entropy, atol=1e-3)
    # top neurons: identical (layer, index), activations within tolerance
    ref_n = ref.neurons.topk(10, dim=-1)
    d_mlp = gelu.cfg.d_mlp
    assert (p.neuron_layer * d_mlp + p.neuron_index).tolist() == ref_n.indices.tolist()
    np.testing.assert_allclose(p.neuron_activation, ref_n.values.numpy(), atol=1e-4)
    # spans slice the text back into the tokens, and tile it
    assert "".join(got.token_texts) == text
    assert got.token_texts == [text[s:e] for s, e in zip(got.tokens.start.tolist(), got.tokens.end.tolist())]
    assert not got.windowed and got.windows == 1


def test_context_conditions_but_is_not_reported(gelu) -> None:
    context, text = "import os\nimport sys\n\n", "def main():\n    print(sys.argv)\n"
    got = analyze(gelu, text, context=context, top_neurons=5)
    ref = reference(gelu, text, context)
    assert got.token_texts[0] == "def" and "".join(got.token_texts) == text
    assert got.context_tokens == len(ref.context_ids)
    assert got.tokens.ids.tolist() == ref.ids
    assert got.predictions.top_ids.tolist() == ref.logprobs.topk(10, dim=-1).indices.tolist()
    assert got.predictions.actual_rank[: len(ref.ids)].tolist() == ref.ranks
    # and the context really matters: the first token's prediction differs without it
    bare = analyze(gelu, text, top_neurons=5)
    assert not np.allclose(bare.predictions.actual_logprob[0], got.predictions.actual_logprob[0])


def test_boundary_tokens_are_the_ones_the_model_sees_in_the_file(gelu) -> None:
    """A selection that starts after an indent: the indent's last space belongs to the word."""
    context, text = "def f(x):\n    ", "return x + 1\n"
    got = analyze(gelu, text, context=context)
    tok = gelu.tokenizer
    joint = tok(context + text, add_special_tokens=False)["input_ids"]
    assert joint[-len(got.tokens.ids) :] == got.tokens.ids.tolist()
    assert tok.convert_ids_to_tokens(int(got.tokens.ids[0])) == "Ġreturn"  # " return", as in training
    assert got.token_texts[0] == "return" and "".join(got.token_texts) == text
    # tokenized apart, the context would end in a 4-space token the model never saw before "return"
    apart = tok(context, add_special_tokens=False)["input_ids"] + tok(text, add_special_tokens=False)["input_ids"]
    assert apart != joint
    ref = reference(gelu, text, context)
    assert got.predictions.actual_rank[: len(ref.ids)].tolist() == ref.ranks
    assert got.predictions.actual_rank[0] <= 5  # "return" after an indent is an easy guess, this way


def test_selection_starting_mid_token_clips_the_straddling_token(gelu) -> None:
    context, text = "result = compu", "te_total(values)\n"
    got = analyze(gelu, text, context=context)
    assert "".join(got.token_texts) == text and got.tokens.start[0] == 0
    joint = gelu.tokenizer(context + text, add_special_tokens=False, return_offsets_mapping=True)
    straddling = [i for i, (s, e) in zip(joint["input_ids"], joint["offset_mapping"]) if s < len(context) < e]
    if straddling:  # the tokenizer merged across the cut: that token is the text's first
        assert got.tokens.ids[0] == straddling[0]


def test_first_row_is_predicted_from_bos(gelu) -> None:
    got = analyze(gelu, "import os\n")
    ref = reference(gelu, "import os\n")
    np.testing.assert_allclose(got.predictions.actual_logprob[0], float(ref.logprobs[0, ref.ids[0]]), atol=1e-4)


def test_attention_only_model_has_no_neurons(attn_only) -> None:
    got = analyze(attn_only, TEXTS["code"], top_neurons=10)
    ref = reference(attn_only, TEXTS["code"])
    assert got.predictions.neuron_index.shape == (len(ref.ids), 0)
    assert got.predictions.actual_rank[:-1].tolist() == ref.ranks


def test_strings_cover_every_id(gelu) -> None:
    got = analyze(gelu, TEXTS["code"])
    ids = set(got.predictions.top_ids.reshape(-1).tolist()) | set(got.tokens.ids.tolist())
    assert ids == set(got.strings)
    assert got.strings[int(got.tokens.ids[0])] == got.token_texts[0]
