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


def test_show_bundle_is_the_servers_json_schema_with_the_text(gelu) -> None:
    from IPython.core.formatters import DisplayFormatter

    from lenscope.notebook import ANALYSIS_MIME, MIME_VERSION, show
    from lenscope.wire import AnalyzeResponse
    from lenscope.wire_codec import decode_json, encode_json, wire_equal
    from lenscope.wire_convert import to_wire

    r = analyze(gelu, TEXT)
    out = show(r)
    bundle = out._repr_mimebundle_()
    assert set(bundle) == {ANALYSIS_MIME, "text/html", "text/plain"}
    data = bundle[ANALYSIS_MIME]
    assert data["version"] == MIME_VERSION and data["text"] == TEXT and data["context"] == ""
    # exactly what POST analyze answers as JSON (the same encoder), and valid against its schema
    assert data["analysis"] == json.loads(encode_json(to_wire(r)))
    AnalyzeResponse.model_validate(data["analysis"])
    assert wire_equal(decode_json(json.dumps(data["analysis"])), decode_json(encode_json(to_wire(r))))
    # the spans index into the text carried beside them
    spans = zip(data["analysis"]["tokens"]["start_utf16"]["data"], data["analysis"]["tokens"]["end_utf16"]["data"])
    assert [TEXT[s:e] for s, e in spans] == r.token_texts
    json.dumps(bundle, allow_nan=False)  # a notebook stores it as JSON: no NaN
    assert bundle["text/plain"].startswith(f"lenscope analysis · {r.model} · {len(r.token_texts)} tokens")
    # what IPython displays (and a notebook saves) is this bundle
    formatted, _ = DisplayFormatter().format(out)
    assert formatted[ANALYSIS_MIME] == data and "CircuitsVis.TokenLogProbs" in formatted["text/html"]
    assert "text/html" not in show(r, html=False)._repr_mimebundle_()


def test_show_says_when_the_context_is_unknown(gelu) -> None:
    from lenscope.notebook import ANALYSIS_MIME, show

    r = analyze(gelu, TEXT, context="import os\n")
    assert r.context_tokens > 0
    assert show(r, html=False).data["context"] is None  # the tooltip's "Why?" then does not ask the server
    assert show(r, context="import os\n", html=False)._repr_mimebundle_()[ANALYSIS_MIME]["context"] == "import os\n"


def test_show_comparison_of_two_models(gelu, attn_only) -> None:
    import numpy as np
    import pytest

    from lenscope.notebook import COMPARISON_MIME, show
    from lenscope.wire_codec import encode_json
    from lenscope.wire_convert import to_wire

    a, b = analyze(gelu, TEXT), analyze(attn_only, TEXT, model_name="b")
    bundle = show(a, compare=b, clamp=-4)._repr_mimebundle_()
    data = bundle[COMPARISON_MIME]
    assert data["a"] == json.loads(encode_json(to_wire(a))) and data["b"] == json.loads(encode_json(to_wire(b)))
    assert data["clamp"] == -4 and data["text"] == TEXT
    props = props_of(bundle["text/html"], "ColoredTokensMulti")
    n = len(a.token_texts)
    lp_a, lp_b = a.predictions.actual_logprob[:n], b.predictions.actual_logprob[:n]
    assert np.allclose([v[0] for v in props["values"]], lp_a - np.maximum(lp_b, -4), atol=1e-4)
    with pytest.raises(ValueError, match="same text"):
        show(a, compare=analyze(attn_only, TEXT + "x"))


def test_circuitsvis_bundle_is_guarded_and_token_text_cannot_end_the_script(gelu) -> None:
    from lenscope.notebook import CIRCUITSVIS_LOADS

    r = analyze(gelu, "x = '</script><b>'\n")
    one, two = token_log_probs(r).markup, token_log_probs(r).markup
    # the bundle runs only where the page has no CircuitsVis yet, and counts its runs
    assert one.count("if (!window.CircuitsVis)") == 1 and f"window.{CIRCUITSVIS_LOADS} =" in one
    assert re.search(r'id="(circuits-vis-\w+)"', one).group(1) != re.search(r'id="(circuits-vis-\w+)"', two).group(1)
    # one script element: a "</script" inside the bundle or a token would end it early
    assert one.count("</script") == 1 and one.rstrip().endswith("</script>")
    assert "<script src=" not in one and "sourceMappingURL" not in one
    assert "</script><b>" in "".join(props_of(one, "TokenLogProbs")["prompt"])


def test_show_a_neuron_card_from_the_shipped_index() -> None:
    from lenscope.notebook import CARD_MIME, neuron_card, show
    from lenscope.wire import NeuronCardResponse

    card = neuron_card(0, 5)  # the default model's shipped index
    bundle = show(card)._repr_mimebundle_()
    data = bundle[CARD_MIME]
    assert data["card"] == json.loads(json.dumps(card)) | {"timings_ms": {}, "sae": None}  # the route's schema
    NeuronCardResponse.model_validate(data["card"])
    assert bundle["text/plain"].startswith("lenscope card · L0.N5 of lenscope-gelu-1l · ")
    props = props_of(bundle["text/html"], "TextNeuronActivations")
    assert props["tokens"] == [e["tokens"] for e in card["examples"]]
    assert [a[0][0] for a in props["activations"][0]] == card["examples"][0]["activations"]


def test_show_with_attention_carries_the_attention_routes_schema(gelu) -> None:
    import pytest

    from lenscope.attention import attend, attention_to_wire
    from lenscope.notebook import ANALYSIS_MIME, show
    from lenscope.wire import AttentionResponse
    from lenscope.wire_codec import encode_json

    r, att = analyze(gelu, TEXT), attend(gelu, TEXT)
    bundle = show(r, attention=att)._repr_mimebundle_()
    data = bundle[ANALYSIS_MIME]
    assert data["attention"] == json.loads(encode_json(attention_to_wire(att)))
    AttentionResponse.model_validate(data["attention"])
    assert "CircuitsVis.TokenLogProbs" in bundle["text/html"] and "CircuitsVis.AttentionHeads" in bundle["text/html"]
    assert bundle["text/html"].count("if (!window.CircuitsVis)") == 2  # each view stands alone; one runs the bundle
    assert show(r, html=False).data["attention"] is None
    with pytest.raises(ValueError, match="same tokens"):
        show(r, attention=attend(gelu, TEXT + "y = 2\n"))


def test_pictures_are_the_routes_json_with_the_text(gelu) -> None:
    """lens_heatmap / waterfall / attention_heads (and show() of their results): the server's JSON
    (the same encoders, valid against the routes' schemas), the text its spans index into, no NaN."""
    from lenscope.attention import attend, attention_to_wire
    from lenscope.attribution import attribute, attribution_to_wire
    from lenscope.logitlens import logit_lens, logit_lens_to_wire
    from lenscope.notebook import (
        ATTENTION_MIME,
        ATTRIBUTION_MIME,
        LENS_MIME,
        MIME_VERSION,
        attention_heads,
        lens_heatmap,
        show,
        waterfall,
    )
    from lenscope.wire import AttentionResponse, AttributionResponse, LogitLensResponse
    from lenscope.wire_codec import encode_json

    lens = logit_lens(gelu, TEXT)
    bundle = show(lens, context="")._repr_mimebundle_()
    assert set(bundle) == {LENS_MIME, "text/html", "text/plain"}
    data = bundle[LENS_MIME]
    assert (data["version"], data["text"], data["context"]) == (MIME_VERSION, TEXT, "")
    assert data["lens"] == json.loads(encode_json(logit_lens_to_wire(lens)))
    LogitLensResponse.model_validate(data["lens"])
    assert data["lens"]["positions"] == list(range(len(lens.token_texts)))  # every token: the whole heatmap
    spans = zip(data["lens"]["tokens"]["start_utf16"]["data"], data["lens"]["tokens"]["end_utf16"]["data"])
    assert [TEXT[s:e] for s, e in spans] == lens.token_texts
    assert bundle["text/html"].count("<tr>") == len(lens.rows) + 1 and "·return" in bundle["text/html"]
    assert lens_heatmap(lens, html=False)._repr_mimebundle_().keys() == {LENS_MIME, "text/plain"}

    a = attribute(gelu, TEXT, 3)
    bundle = waterfall(a, TEXT, context="")._repr_mimebundle_()
    data = bundle[ATTRIBUTION_MIME]
    assert data["attribution"] == json.loads(encode_json(attribution_to_wire(a, 30)))
    AttributionResponse.model_validate(data["attribution"])
    assert data["text"] == TEXT and len(data["attribution"]["top_neurons"]) == 30
    assert f"{a.value:+.3f}" in bundle["text/html"] and bundle["text/plain"].endswith(f"{a.value:+.3f}")
    assert set(show(a)._repr_mimebundle_()) == {ATTRIBUTION_MIME, "text/html", "text/plain"}

    at = attend(gelu, TEXT, k=1024)
    bundle = attention_heads(at)._repr_mimebundle_()
    data = bundle[ATTENTION_MIME]
    assert data["attention"] == json.loads(encode_json(attention_to_wire(at)))
    AttentionResponse.model_validate(data["attention"])
    assert data["text"] == TEXT and "CircuitsVis.AttentionHeads" in bundle["text/html"]
    assert show(at)._repr_mimebundle_()[ATTENTION_MIME] == data
    json.dumps(bundle, allow_nan=False)


def test_head_scores_output_is_the_routes_json_and_a_table(gelu) -> None:
    from lenscope.headscores import ROLES, induction_probe, scores_to_wire, text_scores
    from lenscope.notebook import HEAD_SCORES_MIME, head_scores, show

    probe = induction_probe(gelu, length=10, batch=2, seed=1)
    bundle = show(probe)._repr_mimebundle_()
    data = bundle[HEAD_SCORES_MIME]
    assert data["scores"] == json.loads(json.dumps(scores_to_wire(probe)))  # the route's JSON
    markup = bundle["text/html"]
    n_layers, n_heads = probe.scores["induction"].shape
    assert markup.count("<tr><td>L") == n_layers * n_heads
    _, _, score = probe.top("induction", 1)[0]
    assert f"{score:.2f}" in markup and "in-context gain" in bundle["text/plain"]
    assert f"{probe.in_context_gain:.2f}" in bundle["text/plain"]
    # strongest role first; a text has no gain and a role with no target shows as a dash
    text = head_scores(text_scores(gelu, "abc"), html=True)._repr_mimebundle_()
    assert "in-context gain" not in text["text/plain"] and "–" in text["text/html"]
    assert set(ROLES) == set(data["scores"]["roles"])
