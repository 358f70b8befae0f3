"""Notebook views: circuitsvis components with the inline bundle, no network."""

from __future__ import annotations

import json
import re

from lenscope.analysis import analyze, neuron_activations
from lenscope.compare import compare
from lenscope.index.corpus import Document
from lenscope.notebook import neuron_activations as activations_view
from lenscope.notebook import table, token_log_probs

TEXT = "def f(x):\n    return x + 1\n"


def props_of(markup: str, element: str) -> dict:
    match = re.search(rf"CircuitsVis\.{element},\s*(\{{.*\}})\s*\)", markup, re.S)
    assert match, f"no {element} render call"
    return json.loads(match.group(1))


def test_token_log_probs_view_is_offline_and_carries_the_analysis(gelu) -> None:
    r = analyze(gelu, TEXT)
    markup = token_log_probs(r)._repr_html_()
    assert "CircuitsVis.render" in markup and "<script src=" not in markup  # inline bundle, no fetch
    props = props_of(markup, "TokenLogProbs")
    n = len(r.token_texts)
    assert props["prompt"] == ["<bos>", *r.token_texts]
    assert props["correctTokenRank"] == (r.predictions.actual_rank[:n] - 1).tolist()
    assert props["topKTokens"][0][0] == r.strings[int(r.predictions.top_ids[0, 0])]


def test_activation_view_and_tables(gelu, attn_only) -> None:
    acts = neuron_activations(gelu, TEXT, [(0, 1), (0, 2)])
    props = props_of(activations_view(acts)._repr_html_(), "TextNeuronActivations")
    assert props["tokens"] == acts.token_texts and len(props["activations"][0][0]) == 2
    rows = compare(gelu, attn_only, [Document("a.py", TEXT, "h")], ("a", "b"))
    markup = str(table(rows, ["path", "line", "token", "lp_a", "lp_b", "diff"]))
    assert markup.count("<tr>") == len(rows) + 1
    assert "·return" in markup  # whitespace visible


def test_attention_view_is_hook_pattern_over_bos_and_the_text(gelu) -> None:
    import torch

    from lenscope.attention import attend
    from lenscope.notebook import attention

    r = attend(gelu, TEXT, k=1024)
    props = props_of(attention(r)._repr_html_(), "AttentionHeads")
    assert props["tokens"] == ["<bos>", *r.token_texts]
    assert props["attentionHeadNames"][0].startswith("L0H0 (")
    _, cache = gelu.run_with_cache(torch.tensor([[gelu.tokenizer.bos_token_id, *r.tokens.ids.tolist()]]))
    want = cache["blocks.0.attn.hook_pattern"][0].float().numpy()
    got = torch.tensor(props["attention"]).numpy()
    assert got.shape == want.shape
    assert abs(got - want).max() < 1e-6
