"""SAE features and multi-layer models in the UI, against the server's own answers: a layer-1
neuron of the 2-layer model (tooltip chip, card from an index built here), and the shipped SAE's
features (picker, tooltip chips, the panel's Features section, the feature card, search)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import numpy as np
import pytest

from lenscope.wire_codec import decode_json
from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme, visible
from tests.ui.test_inline import open_in_lab, select_lines

GELU, GELU2 = "lenscope-gelu-1l", "lenscope-gelu-2l"
SAE = "lenscope-gelu-1l-mlp-topk"


def analyze(lab: Lab, body: dict[str, Any]) -> dict[str, Any]:
    """POST analyze as JSON, its arrays decoded (numpy)."""
    req = urllib.request.Request(
        f"{lab.url}lenscope/api/analyze",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=300).read())  # type: ignore[no-any-return]


def build_index(lab: Lab, body: dict[str, Any]) -> dict[str, Any]:
    """POST indexes (a job) and wait for it: the job, done."""
    job = lab.api("indexes", body)
    deadline = time.monotonic() + 300
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = lab.api(f"jobs/{job['id']}")
    assert job["state"] == "done", job
    return job  # type: ignore[no-any-return]


def tour_selection(page: Any, lab: Lab, model: str) -> tuple[str, str]:
    """tour.py open, the panel shown, `model` picked, lines 8-15 selected and analyzed: (text, context)."""
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    page.wait_for_selector("#lenscope-panel .ls-model-select option[value='lenscope-gelu-2l']", state="attached")
    page.locator("#lenscope-panel .ls-model-select").select_option(model)
    page.wait_for_selector(f"#lenscope-panel .ls-header[data-model='{model}']", state="attached")
    select_lines(page, ".jp-FileEditor", 8, 15)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(f"#lenscope-panel .ls-analysis-title:has-text('{model}')", state="attached")
    page.wait_for_selector(".ls-token")
    lines = (lab.root / "tour.py").read_text(encoding="utf-8").split("\n")
    return "\n".join(lines[7:15]), "\n".join(lines[:7]) + "\n"


def hover(page: Any, index: int) -> Any:
    page.mouse.move(0, 0)
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.hover()
    return page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"]')


def check_card_numbers(card: Any, want: dict[str, Any]) -> None:
    """A card's shown numbers (stats line, examples, logit effects, histogram) equal the route's."""
    stats = card.query_selector("p.ls-muted").text_content()
    assert f"max {want['stats']['max']:.2f}, mean {want['stats']['mean']:.3f}" in stats, stats
    assert f"“{want['index_path']}”" in stats
    examples = card.query_selector_all(".ls-example")
    assert len(examples) == len(want["examples"]) > 0
    for shown, ex in zip(examples, want["examples"]):
        assert shown.query_selector(".ls-example-head .ls-num").text_content().strip() == f"{ex['value']:.2f}"
        assert shown.query_selector(".ls-max").text_content() == visible(ex["tokens"][ex["max_token"]])
    boxes = card.query_selector_all(".ls-effects > .ls-effect:not(.ls-inputs):not(.ls-histogram-box)")
    for box, key in zip(boxes, ("logit_boosted", "logit_suppressed")):
        rows = box.query_selector_all(".ls-effect-row")
        assert [r.query_selector("code").text_content() for r in rows] == [visible(e["token"]) for e in want[key]]
        assert [r.query_selector(".ls-num").text_content().strip() for r in rows] == [f"{e['value']:.2f}" for e in want[key]]
    assert len(card.query_selector_all(".ls-bar")) == len(want["histogram"]["counts"])


def test_two_layer_model_layer_one_neuron(page: Any, lab: Lab) -> None:
    selected, context = tour_selection(page, lab, GELU2)
    # the picker says what the model is, from its shape
    entry = next(m for m in lab.api("models")["models"] if m["name"] == GELU2)
    s = entry["shape"]
    shape = page.locator("#lenscope-panel .ls-model-shape").text_content()
    assert shape == f"{s['n_layers']} layers · d_model {s['d_model']} · {s['d_mlp']} neurons/layer · vocab {s['d_vocab']}"
    assert s["n_layers"] == 2

    server = analyze(lab, {"model": GELU2, "text": selected, "context": context})
    layers, indices = server["predictions"]["neuron_layer"], server["predictions"]["neuron_index"]
    acts = server["predictions"]["neuron_activation"]
    token = next(i for i in range(6, len(layers)) if (layers[i] == 1).any())
    tip = hover(page, token)
    chips = tip.query_selector_all(".ls-tooltip-neurons .ls-neuron-chip")
    assert [c.text_content() for c in chips] == [
        f"L{lay}.N{idx} {a:.2f}" for lay, idx, a in zip(layers[token], indices[token], acts[token].astype(np.float32))
    ]
    j = next(j for j, c in enumerate(chips) if c.get_attribute("data-layer") == "1")
    neuron = int(indices[token][j])
    assert chips[j].text_content().startswith(f"L1.N{neuron} ")
    shot(page, "features-gelu-2l-tooltip-light")

    # a neuron index of the 2-layer model over a small folder, through the API
    build_index(lab, {"model": GELU2, "paths": ["tour.py", "tour.ipynb"], "name": "gelu-2l-test", "k": 8})
    tip = hover(page, token)
    tip.query_selector_all(".ls-tooltip-neurons .ls-neuron-chip")[j].dispatch_event("mousedown")
    card = page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="1"][data-index="{neuron}"]')
    want = lab.api(f"neurons/{GELU2}/1/{neuron}")
    assert card.query_selector("h2").text_content() == f"Neuron L1.N{neuron} of {GELU2}"
    check_card_numbers(card, want)
    tab = page.locator(".lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel", has_text=f"L1.N{neuron}")
    assert tab.count() >= 1 and tab.first.text_content() == f"L1.N{neuron} · {GELU2}"
    page.mouse.move(0, 0)
    shot(page, "features-gelu-2l-card-light")
    set_theme(page, False)
    shot(page, "features-gelu-2l-card-dark")
    set_theme(page, True)


def feature_indexes(lab: Lab) -> list[str]:
    """The feature indexes of the shipped SAE (the shipped one; without it, one built here over a small folder)."""

    def names() -> list[str]:
        return [e["name"] for e in lab.api("indexes")["indexes"] if e.get("sae") == SAE and e["model"] == GELU]

    if not names():
        build_index(lab, {"model": GELU, "sae": SAE, "paths": ["tour.py", "tour.ipynb"], "name": "features-test", "k": 8})
    return names()


def test_sae_features_tooltip_panel_and_card(page: Any, lab: Lab) -> None:
    saes = {s["name"]: s for s in lab.api("models")["saes"]}
    assert SAE in saes and saes[SAE]["loadable"] and saes[SAE]["shipped"], saes
    # the picker's default ("auto"): the model's shipped SAE, its shape in the option's tooltip
    selected, context = tour_selection(page, lab, GELU)
    picker = page.locator("#lenscope-panel .ls-sae-select")
    assert picker.input_value() == SAE
    option = picker.locator(f"option[value='{SAE}']")
    s = saes[SAE]
    assert option.get_attribute("title") == (
        f"hook {s['hook_point']} · {s['d_sae']:,} features · k={s['k']} · {s['format']} format · of {GELU} · shipped"
    )
    assert picker.locator("option").first.get_attribute("value") == "none"

    server = analyze(lab, {"model": GELU, "text": selected, "context": context, "sae": SAE})
    f = server["features"]
    assert f["sae"] == SAE and f["index"].shape[0] == len(server["tokens"]["ids"])
    token = next(i for i in range(8, f["index"].shape[0]) if (f["index"][i] >= 0).sum() >= 3)
    tip = hover(page, token)
    row = tip.query_selector(".ls-tooltip-features")
    assert row.query_selector(".ls-muted").text_content() == f"features ({SAE}): "
    chips = row.query_selector_all(".ls-feature-chip")
    fire = f["index"][token] >= 0
    want = list(zip(f["index"][token][fire].tolist(), f["activation"][token][fire].astype(np.float32).tolist()))
    assert [(int(c.get_attribute("data-index")), float(c.get_attribute("data-activation"))) for c in chips] == [
        (i, pytest.approx(a, abs=0)) for i, a in want
    ]
    assert [c.text_content() for c in chips] == [f"F{i} {a:.2f}" for i, a in want]
    assert chips[0].get_attribute("aria-label") == f"open the card of feature F{want[0][0]} ({SAE})"
    # neuron chips still say neuron, with the layer
    assert tip.query_selector(".ls-tooltip-neurons .ls-neuron-chip").text_content().startswith("L0.N")
    shot(page, "features-tooltip-light")

    # the panel's Features section: the selection's strongest, from the same arrays
    section = page.locator("#lenscope-panel .ls-features")
    section.wait_for()
    best: dict[int, float] = {}
    for i in range(f["index"].shape[0]):
        for idx, a in zip(f["index"][i].tolist(), f["activation"][i].astype(np.float32).tolist()):
            if idx >= 0:
                best[idx] = max(best.get(idx, -np.inf), a)
    top = max(best.items(), key=lambda kv: (kv[1], -kv[0]))
    first = section.locator(".ls-feature-chip").first
    assert first.text_content() == f"F{top[0]}"
    assert f"max {top[1]:.2f}" in section.locator("li").first.text_content()

    # the feature card from the tooltip chip, against GET features/...
    names = feature_indexes(lab)
    feature = want[0][0]
    tip = hover(page, token)
    tip.query_selector(".ls-feature-chip").dispatch_event("mousedown")
    view = page.wait_for_selector(f'.ls-feature-card-view[data-index="{feature}"] .ls-card[data-sae="{SAE}"]')
    card = lab.api(f"features/{GELU}/{SAE}/{feature}")
    assert card["sae"] == SAE and card["layer"] == 0 and card["index_path"] in names, (card["index_path"], names)
    assert view.query_selector("h2").text_content() == f"Feature F{feature} · {SAE}"
    check_card_numbers(view, card)
    heads = [h.text_content() for h in view.query_selector_all(".ls-effect h4")]
    assert "Direct effect on the logits (decoder direction → W_out → W_U): boosts" in heads
    tab = page.locator(".lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    assert f"F{feature} · {SAE}" in [t.text_content() for t in tab.all()]
    assert page.locator(".jp-MainAreaWidget:has(.ls-feature-card-view) .ls-copy-card").count() == 1  # Copy JSON
    # the feature on the current text: the analysis' own numbers where it is among the top features
    on_text = view.query_selector('.ls-feature-on-text[data-state="shown"]')
    column = [
        (float(f["activation"][i][list(f["index"][i]).index(feature)]) if feature in f["index"][i] else None)
        for i in range(f["index"].shape[0])
    ]
    assert int(on_text.get_attribute("data-count")) == sum(v is not None for v in column)
    spans = on_text.query_selector_all(".ls-flow-token")
    assert len(spans) == len(column)
    for span, v in zip(spans, column):
        if v is None:
            assert "ls-feature-absent" in span.get_attribute("class")
        else:
            assert float(span.get_attribute("data-activation")) == pytest.approx(np.float32(v), abs=0)
    page.mouse.move(0, 0)
    shot(page, "features-card-light")
    set_theme(page, False)
    on_text.scroll_into_view_if_needed()  # the feature on the text and the first examples
    shot(page, "features-card-dark")
    hover(page, token)
    shot(page, "features-tooltip-dark")
    set_theme(page, True)
    # Copy as code: the feature card's snippet and request
    copy = view.query_selector(".ls-copy-code")
    copy.click()
    assert copy.get_attribute("data-snippet") == "featureCardSnippet"
    assert json.loads(copy.get_attribute("data-request")) == {"model": GELU, "sae": SAE, "index": feature}

    # by keyboard: the caret's tooltip pinned (Alt+Shift+K), into it (again), Tab to the second feature chip, Enter
    if len(want) > 1:
        page.locator(f'.ls-token[data-ls-token="{token}"]').first.click()
        page.keyboard.press("Alt+Shift+K")
        page.wait_for_selector(f'.ls-tooltip-pinned[data-ls-token="{token}"] .ls-tooltip-features')
        page.keyboard.press("Alt+Shift+K")
        for _ in range(60):
            on = "document.activeElement.classList.contains('ls-feature-chip') && document.activeElement.dataset.index"
            if page.evaluate(f"() => {on}") == str(want[1][0]):
                break
            page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_selector(f'.ls-feature-card-view[data-index="{want[1][0]}"] .ls-card')
        page.locator(f'.ls-token[data-ls-token="{token}"]').first.click()  # back in the editor: Esc closes the pinned tooltip
        page.keyboard.press("Escape")
        page.wait_for_function("() => !document.querySelector('.ls-tooltip-pinned')")

    # search by token for features: the route's answer, chips that open cards
    page.locator("#lenscope-panel .ls-search-kind").select_option("features")
    search = page.locator("#lenscope-panel .ls-search")
    search.fill("self")
    search.press("Enter")
    found = lab.api(f"features/{GELU}/{SAE}/search?q=self")["neurons"]
    results = page.locator("#lenscope-panel .ls-search-results")
    if found:  # one word is searched both ways: the chips of the token's group are the route's token answer
        by_token = results.locator(".ls-search-group[data-by='token']")
        by_token.locator(".ls-feature-chip").first.wait_for()
        assert [c.text_content() for c in by_token.locator(".ls-feature-chip").all()] == [
            f"F{h['index']} ×{h['hits']}" for h in found
        ]
    else:
        results.locator("p").wait_for()
        assert "No feature's top examples" in results.text_content()

    # "none" in the picker: the next analysis has no features, the tooltip says neurons only
    picker.select_option("none")
    select_lines(page, ".jp-FileEditor", 8, 15)  # the same selection, its editor current again
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector("#lenscope-panel .ls-neuron-list")
    page.wait_for_function("() => !document.querySelector('#lenscope-panel .ls-features')")
    tip = hover(page, token)
    assert tip.query_selector(".ls-tooltip-features") is None
