"""The tooltip's "why" view (direct logit attribution) against the server's own answer."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from tests.ui.conftest import Lab, shot
from tests.ui.test_inline import open_why_in_tour


def array(wire: dict[str, Any]) -> np.ndarray:
    """A JSON wire array (flat list, NaN as null) as numpy."""
    return np.array([np.nan if x is None else x for x in wire["data"]], dtype=np.float64).reshape(wire["shape"])


def why_values(page: Any) -> dict[str, Any]:
    """What the pinned tooltip's why view shows, read from its DOM."""
    js = """() => {
        const body = document.querySelector('.ls-tooltip-pinned .ls-why-body');
        const heads = Array.from(body.querySelectorAll('.ls-why-head'));
        const neurons = Array.from(body.querySelectorAll('.ls-why-neuron'));
        return {
            target: Number(body.dataset.target), value: Number(body.dataset.value),
            sum: body.querySelector('.ls-why-sum').textContent,
            heads: heads.map(h => [Number(h.dataset.layer), Number(h.dataset.head), Number(h.dataset.value), h.textContent]),
            neurons: neurons.map(n => [Number(n.dataset.layer), Number(n.dataset.index), Number(n.dataset.value)]),
            sources: heads.length
                ? Array.from(heads[0].parentElement.querySelectorAll('.ls-why-source code')).map(c => c.textContent) : [],
        };
    }"""
    return page.evaluate(js)


def attention_marks(page: Any) -> dict[int, tuple[float, str]]:
    """Text token index -> (weight, computed background) of the attention layer's marks that have a weight."""
    js = """() => Array.from(document.querySelectorAll('.jp-FileEditor .ls-attn[style]')).map(e =>
        [Number(e.dataset.lsToken), Number(e.dataset.weight), getComputedStyle(e).backgroundColor])"""
    return {i: (w, bg) for i, w, bg in page.evaluate(js)}


def check_against_server(shown: dict[str, Any], server: dict[str, Any]) -> None:
    assert shown["target"] == server["target"]
    assert shown["value"] == pytest.approx(server["value"], rel=1e-6)
    assert f"centred logit {server['value']:.3f} = sum of parts {server['total']:.3f}" in shown["sum"]
    assert f"frozen at {server['ln_scale']:.3f}" in shown["sum"]
    # the neurons: the server's, largest |part| first, with its values
    expected = sorted(server["top_neurons"], key=lambda n: -abs(n["value"]))
    assert [(n[0], n[1]) for n in shown["neurons"]] == [(n["layer"], n["index"]) for n in expected]
    assert [n[2] for n in shown["neurons"]] == pytest.approx([n["value"] for n in expected], rel=1e-5)
    # the heads: the largest |part| first, each the server's value
    heads = array(server["heads"])
    order = sorted(np.ndindex(heads.shape), key=lambda lh: -abs(heads[lh]))
    assert [(h[0], h[1]) for h in shown["heads"]] == [tuple(map(int, lh)) for lh in order[: len(shown["heads"])]]
    for layer, head, value, label in shown["heads"]:
        assert value == pytest.approx(float(heads[layer, head]), rel=1e-5, abs=1e-6)
        assert label.startswith(f"L{layer}H{head} ")


def test_why_view_matches_the_server_and_a_head_colours_its_sources(page: Any, lab: Lab) -> None:
    # caret into a token, Alt+Shift+W: its tooltip, pinned, with the why of the actual next token
    selected, context, analysis, texts, index = open_why_in_tour(page, lab)
    assert page.evaluate("() => document.activeElement.classList.contains('ls-why-toggle')")
    server = lab.api("attribute", {"text": selected, "context": context, "position": index})
    assert server["target"] == analysis["tokens"]["ids"][index + 1]
    shown = why_values(page)
    check_against_server(shown, server)
    # the top head's 3 sources, whitespace visible
    top_layer, top_head = shown["heads"][0][0], shown["heads"][0][1]
    parts = array(server["head_sources"])[top_layer, top_head]
    strings = dict(zip(server["strings"]["ids"], server["strings"]["values"]))
    ids = array(server["source_ids"]).astype(int)
    best = sorted(range(len(parts)), key=lambda s: -abs(parts[s]))[:3]
    visible = [strings[int(ids[s])].replace(" ", "\u00b7").replace("\n", "\u21b5").replace("\t", "\u2192") for s in best]
    assert shown["sources"] == visible

    # another of the top-10 predictions: the why view follows it
    rows = page.locator(".ls-tooltip-pinned .ls-topk-row")
    other = next(j for j in range(rows.count()) if int(rows.nth(j).get_attribute("data-token-id")) != server["target"])
    other_id = int(rows.nth(other).get_attribute("data-token-id"))
    rows.nth(other).click()
    page.wait_for_selector(f'.ls-tooltip-pinned .ls-why[data-state="ready"] .ls-why-body[data-target="{other_id}"]')
    asked = {"text": selected, "context": context, "position": index, "target": other_id}
    check_against_server(why_values(page), lab.api("attribute", asked))
    page.locator(".ls-tooltip-pinned .ls-tooltip-actual").click()  # and back to the actual next token
    page.wait_for_selector(f'.ls-tooltip-pinned .ls-why[data-state="ready"] .ls-why-body[data-target="{server["target"]}"]')

    # a head: the text tokens it attends to from the position get its attention weight as background
    pattern = array(server["pattern"])[top_layer, top_head]
    text_index = array(server["source_text_index"]).astype(int)
    expected = {int(i): float(pattern[s]) for s, i in enumerate(text_index) if i >= 0 and texts[i]}
    button = page.locator(f'.ls-tooltip-pinned .ls-why-head[data-layer="{top_layer}"][data-head="{top_head}"]')
    button.click()
    page.wait_for_selector(".jp-FileEditor .ls-attn")
    assert button.get_attribute("aria-pressed") == "true"
    marks = attention_marks(page)
    assert marks and set(marks) <= set(expected)
    # every token on screen with a visible part is coloured (newline-only tokens have no element)
    assert {i for i in expected if texts[i].replace("\n", "")} == set(marks)
    for i, (weight, bg) in marks.items():
        assert weight == pytest.approx(expected[i], abs=1e-3)
        alpha = float(bg.rsplit(",", 1)[1].rstrip(")")) if bg.startswith("rgba") else 1.0
        assert alpha == pytest.approx(min(1.0, expected[i]), abs=0.01), (i, bg)  # Chromium keeps 8 bits of alpha
    # the log-prob colours stepped back while it is shown; the query token is outlined
    assert page.locator(".jp-FileEditor .cm-editor.ls-attending").count() == 1
    assert page.locator(f'.jp-FileEditor .ls-attn-query[data-ls-token="{index}"]').count() >= 1
    shot(page, "why-tooltip-light")
    tip = ".ls-tooltip-pinned"
    # the text under the tooltip, for the eye
    page.evaluate(f"() => document.querySelector('{tip}').parentElement.style.visibility = 'hidden'")
    shot(page, "why-head-light")
    page.evaluate(f"() => document.querySelector('{tip}').parentElement.style.visibility = ''")
    page.locator(".ls-tooltip-pinned .ls-why-toggle").focus()  # hidden, it lost the focus

    button.click()  # the same head again: cleared
    page.wait_for_selector(".jp-FileEditor .ls-attn", state="detached")
    assert button.get_attribute("aria-pressed") == "false"
    button.click()
    page.wait_for_selector(".jp-FileEditor .ls-attn")
    page.keyboard.press("Escape")  # Esc clears it (first), the tooltip stays
    page.wait_for_selector(".jp-FileEditor .ls-attn", state="detached")
    assert page.locator(".ls-tooltip-pinned .ls-why-body").count() == 1

    # keyboard: Tab from the toggle reaches the why view's entries; Enter on a head shows it
    page.locator(".ls-tooltip-pinned .ls-why-toggle").focus()
    for _ in range(30):  # each neuron chip is followed by its ablate button
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('ls-why-head')"):
            break
    assert page.evaluate("() => document.activeElement.classList.contains('ls-why-head')")
    page.keyboard.press("Enter")
    page.wait_for_selector(".jp-FileEditor .ls-attn")

    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_selector('body[data-jp-theme-light="false"]', state="attached")
    time.sleep(0.5)
    shot(page, "why-tooltip-dark")
    page.evaluate(f"() => document.querySelector('{tip}').parentElement.style.visibility = 'hidden'")
    shot(page, "why-head-dark")
    page.evaluate(f"() => document.querySelector('{tip}').parentElement.style.visibility = ''")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_selector('body[data-jp-theme-light="true"]', state="attached")

    # with the mouse: the hover tooltip's "Why?" of another token
    page.locator(".ls-tooltip-pinned .ls-why-toggle").focus()
    page.keyboard.press("Escape")  # clears the head's attention
    page.keyboard.press("Escape")  # closes the pinned tooltip
    page.wait_for_selector(".ls-tooltip-pinned", state="detached")
    other_index = next(i for i, t in enumerate(texts) if t.strip() and i > index + 5 and i < len(texts) - 1)
    page.mouse.move(0, 0)
    page.locator(f'.ls-token[data-ls-token="{other_index}"]').first.hover()
    hover = f'.ls-tooltip[data-ls-token="{other_index}"]'
    page.locator(f"{hover} .ls-why-toggle").click()
    page.wait_for_selector(f'{hover} .ls-why[data-state="ready"]')
    value = float(page.locator(f"{hover} .ls-why-body").get_attribute("data-value"))
    expected_value = lab.api("attribute", {"text": selected, "context": context, "position": other_index})["value"]
    assert value == pytest.approx(expected_value, rel=1e-6)
