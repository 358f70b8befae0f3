"""Head cards, the neuron card's input side and the why view's typed target, against the server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.ui.conftest import Lab, shot
from tests.ui.test_inline import open_why_in_tour

MODEL = "lenscope-gelu-1l"
NOT_SEEN = "not a token seen in this analysis; pick from the top-10"


def visible(s: str) -> str:
    return s.replace(" ", "\u00b7").replace("\t", "\u2192").replace("\r", "\u240d").replace("\n", "\u21b5")


def set_theme(page: Any, light: bool) -> None:
    theme = "JupyterLab Light" if light else "JupyterLab Dark"
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_selector(f'body[data-jp-theme-light="{str(light).lower()}"]', state="attached")
    time.sleep(0.5)


def type_target(page: Any, target: str, baseline: str = "") -> None:
    for selector, value in ((".ls-why-target-input", target), (".ls-why-baseline-input", baseline)):
        page.locator(f".ls-tooltip-pinned {selector}").fill(value)
    page.locator(".ls-tooltip-pinned .ls-why-target-input").press("Enter")


def test_head_card_neuron_inputs_and_typed_target(page: Any, lab: Lab) -> None:
    selected, context, _, texts, index = open_why_in_tour(page, lab)
    ready = '.ls-tooltip-pinned .ls-why[data-state="ready"]'
    base = {"text": selected, "context": context, "position": index}
    actual = lab.api("attribute", base)

    # a typed target: another top-10 prediction, typed as shown (whitespace as ·)
    rows = page.locator(".ls-tooltip-pinned .ls-topk-row")
    other = next(j for j in range(rows.count()) if int(rows.nth(j).get_attribute("data-token-id")) != actual["target"])
    other_id = int(rows.nth(other).get_attribute("data-token-id"))
    typed = rows.nth(other).locator("code").text_content()
    type_target(page, typed)
    page.wait_for_selector(f'{ready} .ls-why-body[data-target="{other_id}"]')
    server = lab.api("attribute", {**base, "target": other_id})
    shown = float(page.locator(".ls-tooltip-pinned .ls-why-body").get_attribute("data-value"))
    assert shown == pytest.approx(server["value"], rel=1e-6)
    # ... against the actual next token: the logit difference
    type_target(page, typed, visible(texts[index + 1]))
    page.wait_for_selector(f'{ready} .ls-why-body[data-target="{other_id}"][data-baseline="{actual["target"]}"]')
    server = lab.api("attribute", {**base, "target": other_id, "baseline": actual["target"]})
    body = page.locator(".ls-tooltip-pinned .ls-why-body")
    assert float(body.get_attribute("data-value")) == pytest.approx(server["value"], rel=1e-5, abs=1e-6)
    assert f"logit difference vs {visible(texts[index + 1])} {server['value']:.3f}" in body.locator(".ls-why-sum").text_content()
    shot(page, "cards-typed-target-light")
    # a token the analysis never saw: said so, nothing asked
    type_target(page, "zzqqxx-not-a-token")
    message = page.locator(".ls-tooltip-pinned .ls-why-typed-message")
    assert message.text_content() == f"“zzqqxx-not-a-token”: {NOT_SEEN}"
    assert page.locator(".ls-tooltip-pinned .ls-why-target-input").get_attribute("aria-invalid") == "true"
    assert page.locator(f'{ready} .ls-why-body[data-target="{other_id}"]').count() == 1

    # a head's card, by keyboard: Tab from its head button reaches its "card" button, Enter opens it
    head = page.locator(".ls-tooltip-pinned .ls-why-head").first
    layer, number = int(head.get_attribute("data-layer")), int(head.get_attribute("data-head"))
    head.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.classList.contains('ls-why-head-card')")
    page.keyboard.press("Enter")
    card = page.locator(f'.ls-head-view .ls-head-card[data-layer="{layer}"][data-head="{number}"]')
    card.wait_for()
    expected = lab.api(f"heads/{MODEL}/{layer}/{number}")
    strings = dict(zip(expected["strings"]["ids"], expected["strings"]["values"]))
    copying = card.locator('.ls-head-score[data-score="copying"]')
    assert float(copying.get_attribute("data-value")) == pytest.approx(expected["copying_score"], rel=1e-6)
    assert f"{expected['copying_score']:.3f}" in copying.text_content()
    positive = card.locator('.ls-head-score[data-score="positive"]')
    assert float(positive.get_attribute("data-value")) == pytest.approx(expected["positive_share"], rel=1e-6)
    for kind in ("ov_top", "ov_bottom", "qk_top"):
        pairs = card.locator(f'.ls-head-pairs[data-kind="{kind}"] .ls-pair')
        assert pairs.count() == len(expected[kind])
        first, row = expected[kind][0], pairs.first
        assert (int(row.get_attribute("data-source")), int(row.get_attribute("data-target"))) == (
            first["source"],
            first["target"],
        )
        assert float(row.get_attribute("data-value")) == pytest.approx(first["value"], rel=1e-5)
        assert row.locator("code").all_text_contents() == [visible(strings[first["source"]]), visible(strings[first["target"]])]
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", has_text=f"L{layer}.H{number} · {MODEL}")
    assert tab.count() == 1
    # opening the card closed the pinned tooltip (issue #24: it floated over the new tab)
    assert page.locator(".ls-tooltip-pinned").count() == 0
    shot(page, "cards-head-light")

    # the palette's command with arguments: the same tab, activated
    page.evaluate(
        f"() => window.jupyterapp.commands.execute('lenscope:open-head', {{model: '{MODEL}', layer: {layer}, head: {number}}})"
    )
    assert page.locator(".ls-head-view").count() == 1
    # ... without them (the palette): it asks for the head, typed as L0.H1
    other_head = (number + 1) % 4
    page.evaluate("() => { window.jupyterapp.commands.execute('lenscope:open-head'); }")
    page.locator(".jp-Dialog input").fill(f"L{layer}.H{other_head}")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'.ls-head-view .ls-head-card[data-layer="{layer}"][data-head="{other_head}"]')
    assert page.locator(".ls-head-view").count() == 2
    page.get_by_title(f"Close L{layer}.H{other_head} · {MODEL}").click()
    page.wait_for_function("() => document.querySelectorAll('.ls-head-view').length === 1")

    # a neuron's card: its inputs (from the weights) are the route's
    neuron = lab.api("attribute", base)["top_neurons"][0]
    n_layer, n_index = neuron["layer"], neuron["index"]
    args = f"{{model: '{MODEL}', layer: {n_layer}, index: {n_index}}}"
    page.evaluate(f"() => window.jupyterapp.commands.execute('lenscope:open-neuron', {args})")
    ncard = page.locator(f'.ls-card-view[data-layer="{n_layer}"][data-index="{n_index}"]')
    ncard.locator(".ls-input-row").first.wait_for()
    inputs = lab.api(f"neurons/{MODEL}/{n_layer}/{n_index}/inputs")["inputs"]
    rows = ncard.locator(".ls-input-row")
    assert rows.count() == len(inputs) > 0
    shown_ids = [int(rows.nth(j).get_attribute("data-id")) for j in range(rows.count())]
    assert shown_ids == [e["id"] for e in inputs]
    shown_values = [float(rows.nth(j).get_attribute("data-value")) for j in range(rows.count())]
    assert shown_values == pytest.approx([e["value"] for e in inputs], rel=1e-5)
    assert rows.first.locator("code").text_content() == visible(inputs[0]["token"])
    assert "ignores position and attention" in ncard.locator(".ls-inputs").text_content()
    # its one-line description (chosen on half the index's files, scored on the other), as the route gives it
    described = lab.api(f"neurons/{MODEL}/{n_layer}/{n_index}")["description"]
    line = ncard.locator(".ls-card-description")
    assert (line.text_content() if described else line.count()) == (described["text"] if described else 0)
    # and the panel's search takes words: neurons whose description is about closing brackets
    page.locator("#lenscope-panel .ls-search").fill("closing brackets")
    page.locator("#lenscope-panel .ls-search").press("Enter")
    found = page.locator("#lenscope-panel .ls-search-described")
    found.first.wait_for()
    expect = lab.api(f"neurons/{MODEL}/search?q=closing%20brackets&by=description")["neurons"]
    assert found.count() == len(expect) > 0 and expect[0]["description"]["text"] in found.first.text_content()
    hide = "const t = document.querySelector('.ls-tooltip-pinned'); if (t) t.parentElement.style.visibility = 'hidden';"
    page.evaluate(f"() => {{ {hide} }}")
    shot(page, "cards-neuron-light")

    set_theme(page, light=False)
    shot(page, "cards-neuron-dark")
    # the token's why view again (the text is coloured by the neuron now), typed target
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.click()
    page.keyboard.press("Alt+Shift+W")
    page.wait_for_selector(ready)
    type_target(page, typed, visible(texts[index + 1]))
    page.wait_for_selector(f'{ready} .ls-why-body[data-target="{other_id}"][data-baseline="{actual["target"]}"]')
    shot(page, "cards-typed-target-dark")
    page.evaluate(f"() => {{ {hide} }}")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=f"L{layer}.H{number} · {MODEL}").click()
    time.sleep(0.3)
    shot(page, "cards-head-dark")
    set_theme(page, light=True)
