"""SAE features as units in the browser, against the routes' own answers: a tooltip's feature chip
colours the editor by the feature (every token's value is ``POST unit_activations``'), its ✕
ablates it (the Δ log-prob colours are those of ``POST analyze`` with and without the feature
zeroed), and a card's "Test on text" shows the unit's activations on a text beside its
description's prediction, with counts recomputed here. Screenshots (1400x900) go to
test-artifacts/feature-units-*."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import numpy as np
import pytest

from lenscope.wire_codec import decode_json
from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme
from tests.ui.test_features import GELU, SAE, feature_indexes, hover, tour_selection
from tests.ui.test_inline import open_why_in_tour


def post(lab: Lab, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a route as JSON, its arrays decoded (numpy)."""
    req = urllib.request.Request(
        f"{lab.url}lenscope/api/{route}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=300).read())  # type: ignore[no-any-return]


def editor_values(page: Any, attribute: str) -> dict[int, str]:
    """Each annotated token's `attribute` in the editor (a token drawn in pieces: its first)."""
    return {  # type: ignore[no-any-return]
        int(k): v
        for k, v in page.evaluate(
            f"""() => {{ const out = {{}};
                for (const e of document.querySelectorAll('.jp-FileEditor .ls-token')) {{
                  const i = e.dataset.lsToken; if (!(i in out)) out[i] = e.getAttribute('{attribute}'); }}
                return out; }}"""
        ).items()
    }


def fits(page: Any, selector: str) -> None:
    """Nothing of `selector` is wider than its box, and the window does not scroll."""
    over = page.evaluate(
        f"""() => Array.from(document.querySelectorAll('{selector}')).filter(e => e.scrollWidth > e.clientWidth + 1).length"""
    )
    assert over == 0
    assert page.evaluate("() => document.documentElement.scrollHeight <= window.innerHeight + 1")


def predictable(d: dict[str, Any]) -> bool:
    """A pattern the card predicts: a token or a (previous, token) pair, or a token set (kind 'tokens')."""
    return d.get("kind") == "tokens" if "kind" in d else len(d["pattern_ids"]) in (1, 2)


def predicted_here(d: dict[str, Any], ids: list[int]) -> list[bool]:
    """Where description `d` says the unit fires on tokens `ids` (the text's own tokens only)."""
    pat = d["pattern_ids"]
    if "kind" not in d:
        return [ids[i] == pat[-1] and (len(pat) == 1 or (i > 0 and ids[i - 1] == pat[0])) for i in range(len(ids))]
    ctx, within = d.get("context_id"), d.get("within") or 1
    return [ids[i] in pat and (ctx is None or ctx in ids[max(0, i - within) : i]) for i in range(len(ids))]


def test_feature_chip_colours_then_ablates(page: Any, lab: Lab) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    selected, context = tour_selection(page, lab, GELU)
    assert page.locator("#lenscope-panel .ls-sae-select").input_value() == SAE
    server = post(lab, "analyze", {"model": GELU, "text": selected, "context": context, "sae": SAE})
    f = server["features"]
    token = next(i for i in range(8, f["index"].shape[0]) if (f["index"][i] >= 0).sum() >= 2)
    feature = int(f["index"][token][0])

    # the chip: the editor coloured by the feature at every token, the route's values
    tip = hover(page, token)
    chip = tip.query_selector(f'.ls-tooltip-features .ls-feature-chip[data-index="{feature}"]')
    chip.dispatch_event("mousedown")
    page.wait_for_selector(".jp-FileEditor .ls-token-neuron")
    page.wait_for_selector(f"#lenscope-panel .ls-neuron[data-kind='feature'][data-index='{feature}']")
    units = post(
        lab, "unit_activations", {"model": GELU, "text": selected, "context": context, "units": [f"F{feature}"], "sae": SAE}
    )
    assert [u["name"] for u in units["units"]] == [f"F{feature}"] and units["sae"]["name"] == SAE
    want = units["activations"][:, 0].astype(np.float32)
    shown = editor_values(page, "data-ls-activation")
    assert sorted(shown) == list(range(len(want)))
    assert [float(shown[i]) for i in range(len(want))] == [float(v) for v in want]
    # coloured also where the feature is not among the token's top features (its value is known now)
    assert any(v > 0 for v in want) and any(feature not in f["index"][i] for i in range(len(want)))
    heading = page.locator("#lenscope-panel .ls-neuron h4").text_content()
    assert heading == f"Text coloured by feature F{feature} of {SAE} ({GELU})"
    copy = page.locator("#lenscope-panel .ls-analysis .ls-copy-code").first
    page.mouse.move(0, 0)
    shot(page, "feature-units-coloured-light")

    # its ✕: zeroed at every position; the Δ colours are the routes' intervened − plain
    tip = hover(page, token)
    tip.query_selector(f'.ls-tooltip-features .ls-ablate[data-component="feature"][data-index="{feature}"]').dispatch_event(
        "mousedown"
    )
    page.wait_for_selector(".jp-FileEditor .ls-token-delta")
    label = page.locator("#lenscope-panel .ls-iv .ls-iv-label").first.text_content()
    assert label == f"F{feature}"
    zeroed = {"component": "feature", "layer": None, "index": feature, "op": "zero"}
    after = post(lab, "analyze", {"model": GELU, "text": selected, "context": context, "sae": SAE, "interventions": [zeroed]})
    plain = post(lab, "analyze", {"model": GELU, "text": selected, "context": context})
    a, p = after["predictions"]["actual_logprob"], plain["predictions"]["actual_logprob"]
    deltas = editor_values(page, "data-ls-delta")
    assert set(deltas) <= set(range(len(p))) and len(deltas) >= len(p) - 2  # the editor draws what is in view
    for i in sorted(set(deltas) - {0}):
        assert float(deltas[i]) == pytest.approx(float(a[i]) - float(p[i]), abs=1e-6)
    assert any(abs(float(a[i]) - float(p[i])) > 1e-4 for i in range(1, len(p)))  # the feature matters here
    assert [x["label"] for x in after["interventions"]] == [f"F{feature} zero"]
    # Copy as code: analyze(..., sae=) with the feature intervention
    copy.click()
    assert copy.get_attribute("data-snippet") == "interventionSnippet"
    request = json.loads(copy.get_attribute("data-request"))
    assert request["sae"] == SAE and request["interventions"][0]["component"] == "feature"
    assert request["interventions"][0]["layer"] is None and request["interventions"][0]["index"] == feature
    page.mouse.move(0, 0)
    shot(page, "feature-units-ablated-light")
    set_theme(page, False)
    shot(page, "feature-units-ablated-dark")
    set_theme(page, True)


def test_card_test_on_text(page: Any, lab: Lab) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    tour_selection(page, lab, GELU)
    feature_indexes(lab)
    # a feature whose description is a pattern the UI predicts: [token] or [previous, token]
    hits = lab.api(f"features/{GELU}/{SAE}/search?q=self")["neurons"] or lab.api(f"features/{GELU}/{SAE}/search?q=(")["neurons"]
    feature = next(h["index"] for h in hits if h.get("description") and predictable(h["description"]))
    card = lab.api(f"features/{GELU}/{SAE}/{feature}")
    d = card["description"]
    page.evaluate(
        f"() => window.jupyterapp.commands.execute('lenscope:open-feature', {{model: '{GELU}', sae: '{SAE}', index: {feature}}})"
    )
    view = page.wait_for_selector(f'.ls-feature-card-view[data-index="{feature}"] .ls-card')
    tester = view.query_selector(".ls-test-on-text")
    # picked: the card's first top example (the description was chosen on such text)
    tester.query_selector(".ls-test-source").select_option("0")
    text = "".join(card["examples"][0]["tokens"])
    assert tester.query_selector(".ls-test-input").input_value() == text
    tester.query_selector(".ls-test-run").click()
    page.wait_for_selector(f'.ls-feature-card-view[data-index="{feature}"] .ls-test-on-text[data-state="ready"]')
    units = post(lab, "unit_activations", {"model": GELU, "text": text, "units": [f"F{feature}"], "sae": SAE})
    values = units["activations"][:, 0].astype(np.float32)
    cells = tester.query_selector_all(".ls-test-token")
    assert [float(c.get_attribute("data-activation")) for c in cells] == [float(v) for v in values]
    # the prediction, recomputed here from the description and the route's token ids
    occurs = predicted_here(d, units["tokens"]["ids"].tolist())
    fires = [float(v) > d["threshold"] for v in values]
    assert ["ls-test-predicted" in c.get_attribute("class") for c in cells] == occurs
    score = tester.query_selector(".ls-test-score")
    both = sum(o and f_ for o, f_ in zip(occurs, fires))
    assert (
        int(score.get_attribute("data-fires")),
        int(score.get_attribute("data-occurs")),
        int(score.get_attribute("data-both")),
    ) == (sum(fires), sum(occurs), both)
    assert "Precision P(pattern | fires)" in score.text_content()
    tester.scroll_into_view_if_needed()
    fits(page, ".ls-test-on-text")
    page.mouse.move(0, 0)
    shot(page, "feature-units-test-on-text-light")
    set_theme(page, False)
    shot(page, "feature-units-test-on-text-dark")
    set_theme(page, True)

    # a neuron card: typed text
    page.evaluate(f"() => window.jupyterapp.commands.execute('lenscope:open-neuron', {{model: '{GELU}', layer: 0, index: 5}})")
    ncard = page.wait_for_selector('.ls-card-view[data-layer="0"][data-index="5"]:not(.ls-feature-card-view) .ls-card')
    ntester = ncard.query_selector(".ls-test-on-text")
    typed = "def f(self):\n    return self.x is not None\n"
    ntester.query_selector(".ls-test-input").fill(typed)
    ntester.query_selector(".ls-test-run").click()
    page.wait_for_selector('.ls-card-view[data-index="5"]:not(.ls-feature-card-view) .ls-test-on-text[data-state="ready"]')
    nunits = post(lab, "unit_activations", {"model": GELU, "text": typed, "units": ["L0.N5"]})
    cells = ntester.query_selector_all(".ls-test-token")
    assert [float(c.get_attribute("data-activation")) for c in cells] == [
        float(v) for v in nunits["activations"][:, 0].astype(np.float32)
    ]
    ntester.scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    shot(page, "feature-units-neuron-test-light")


def test_ablate_a_feature_from_the_why_waterfall(page: Any, lab: Lab) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    open_why_in_tour(page, lab)
    page.locator(".ls-tooltip-pinned .ls-why-waterfall").click()
    page.wait_for_selector(".ls-waterfall-view[data-state='ready']")
    page.locator(".ls-waterfall-view .ls-wf-expand").first.click()
    row = page.locator(".ls-waterfall-view .ls-wf-children:not([hidden]) .ls-wf-row[data-kind='feature']").first
    feature = int(row.get_attribute("data-index"))
    row.locator(".ls-wf-ablate").click()
    page.wait_for_selector(".jp-FileEditor .ls-token-delta")
    assert page.locator("#lenscope-panel .ls-iv .ls-iv-label").first.text_content() == f"F{feature}"
    fits(page, ".ls-wf-row")
    shot(page, "feature-units-why-ablated-light")
