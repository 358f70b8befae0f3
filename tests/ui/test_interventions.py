"""Interventions on the analyzed text: ablate from a tooltip chip, a why view and a card; the Δ colours,
the tooltip's before / after and a steering coefficient against ``POST analyze`` with and without them."""

from __future__ import annotations

import json
import math
import urllib.request
from typing import Any

import numpy as np
import pytest

from lenscope.wire_codec import decode_json
from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme
from tests.ui.test_inline import select_tour_lines, server_analysis


def analyze_with(lab: Lab, text: str, context: str, interventions: list[dict[str, Any]]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{lab.url}lenscope/api/analyze",
        data=json.dumps({"text": text, "context": context, "interventions": interventions}).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=120).read())


def shown_deltas(page: Any) -> dict[int, float]:
    """Text token index -> the Δ the editor's marks carry (NaN kept as NaN)."""
    js = """() => Array.from(document.querySelectorAll('.jp-FileEditor .ls-token-delta')).map(e =>
        [Number(e.dataset.lsToken), e.dataset.lsDelta])"""
    return {i: float(d) for i, d in page.evaluate(js)}


def backgrounds(page: Any) -> dict[int, str]:
    js = """() => Array.from(document.querySelectorAll('.jp-FileEditor .ls-token')).map(e =>
        [Number(e.dataset.lsToken), getComputedStyle(e).backgroundColor])"""
    return {i: bg for i, bg in page.evaluate(js)}


def check_deltas(page: Any, plain: dict[str, Any], intervened: dict[str, Any]) -> None:
    expected = np.asarray(intervened["predictions"]["actual_logprob"], dtype=np.float64) - np.asarray(
        plain["predictions"]["actual_logprob"], dtype=np.float64
    )
    shown = shown_deltas(page)
    assert shown, "no Δ-coloured tokens"
    changed = 0
    for i, d in shown.items():
        if math.isnan(expected[i]):
            assert math.isnan(d)
        else:
            assert d == pytest.approx(expected[i], abs=2e-3), i  # float16 on the wire
            changed += abs(expected[i]) > 1e-3
    assert changed > 0, "the intervention changed nothing shown"
    # the panel's tokens carry the same Δs
    panel = page.evaluate(
        "() => Array.from(document.querySelectorAll('.ls-flow-token[data-delta]')).map(e => [Number(e.dataset.lsToken), e.dataset.delta])"  # noqa: E501
    )
    assert panel
    for i, d in panel:
        if i in shown and not math.isnan(shown[i]):
            assert float(d) == pytest.approx(shown[i])


def wait_applied(page: Any, label: str) -> None:
    page.wait_for_function(
        """label => { const s = document.querySelector('.ls-iv-status');
            return s && s.dataset.state === 'done' && s.textContent.includes(label); }""",
        arg=label,
    )


def test_ablate_from_a_tooltip_chip_toggle_and_steer(page: Any, lab: Lab) -> None:
    _, selected, context = select_tour_lines(page, lab)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    plain = server_analysis(lab, selected, context)
    before = backgrounds(page)
    starts, ends = plain["tokens"]["start_utf16"].tolist(), plain["tokens"]["end_utf16"].tolist()
    texts = [selected[s:e] for s, e in zip(starts, ends)]
    index = next(i for i, t in enumerate(texts) if t.strip() and 12 <= i < len(texts) - 1)

    # the caret's tooltip, pinned; its first neuron chip's ablate button, from the keyboard
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.click()
    page.keyboard.press("Alt+Shift+K")
    tip = page.wait_for_selector(f'.ls-tooltip-pinned[data-ls-token="{index}"]')
    chip = tip.query_selector(".ls-tooltip-neurons .ls-neuron-chip")
    layer, neuron = int(chip.get_attribute("data-layer")), int(chip.get_attribute("data-index"))
    button = tip.query_selector(".ls-tooltip-neurons .ls-ablate")
    assert button.get_attribute("aria-label") == f"ablate L{layer}.N{neuron}"
    button.focus()
    page.keyboard.press("Enter")
    wait_applied(page, f"L{layer}.N{neuron} zero")
    page.wait_for_selector(".jp-FileEditor .ls-token-delta")
    zero = [{"component": "neuron", "layer": layer, "index": neuron, "op": "zero"}]
    ablated = analyze_with(lab, selected, context, zero)
    assert [x["label"] for x in ablated["interventions"]] == [f"L{layer}.N{neuron} zero"]
    check_deltas(page, plain, ablated)
    assert page.locator('.ls-legend[data-legend="delta"]').count() == 1
    assert "Δ log-prob of the actual token" in page.locator('.ls-legend[data-legend="delta"]').text_content()

    # the tooltip (rebuilt over the new colours): before and after side by side, and this token's Δ
    page.keyboard.press("Escape")
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.click()
    page.keyboard.press("Alt+Shift+K")
    page.wait_for_selector(f'.ls-tooltip-pinned[data-ls-token="{index}"] .ls-intervened')
    sides = page.evaluate(
        """() => Object.fromEntries(
            Array.from(document.querySelectorAll('.ls-tooltip-pinned .ls-intervened .ls-compare-side')).map(c =>
            [c.dataset.side, Array.from(c.querySelectorAll('.ls-topk-row')).map(r => Number(r.dataset.tokenId))]))"""
    )
    assert sides["plain"] == plain["predictions"]["top_ids"][index + 1].tolist()
    assert sides["intervened"] == ablated["predictions"]["top_ids"][index + 1].tolist()
    delta = float(page.locator(".ls-tooltip-pinned .ls-tooltip-delta").get_attribute("data-delta"))
    expected = float(ablated["predictions"]["actual_logprob"][index]) - float(plain["predictions"]["actual_logprob"][index])
    assert delta == pytest.approx(expected, abs=2e-3)
    set_theme(page, light=True)
    shot(page, "interventions-tooltip-light")
    set_theme(page, light=False)
    shot(page, "interventions-tooltip-dark")
    page.keyboard.press("Escape")

    # toggled off: the plain log-prob colours come back, unchanged
    page.locator(".ls-iv-enable").uncheck()
    page.wait_for_selector(".jp-FileEditor .ls-token-delta", state="detached")
    assert page.locator('.ls-legend[data-legend="logprob"]').count() == 1
    set_theme(page, light=True)
    assert backgrounds(page) == before

    # on again, steered from the panel: the Δs are those of POST analyze with that coefficient
    page.locator(".ls-iv-enable").check()
    wait_applied(page, "zero")
    page.locator(".ls-iv-op").select_option("steer")
    # the op change re-runs at once (steer by the default value) and re-renders the list: type the
    # coefficient after that, not into an input the re-render replaces (a loaded machine showed "+13")
    wait_applied(page, "steer")
    page.locator(".ls-iv-value").fill("3")
    page.locator(".ls-iv-value").press("Enter")
    page.wait_for_function(
        """() => { const s = document.querySelector('.ls-iv-status');
            return s && s.dataset.state === 'done' && !s.textContent.includes('zero'); }"""
    )
    steered = analyze_with(
        lab, selected, context, [{"component": "neuron", "layer": layer, "index": neuron, "op": "steer", "value": 3}]
    )
    assert page.locator(".ls-iv-status").text_content() == f"applied: {steered['interventions'][0]['label']}"
    check_deltas(page, plain, steered)
    shot(page, "interventions-steer-light")
    set_theme(page, light=False)
    shot(page, "interventions-steer-dark")
    set_theme(page, light=True)

    # clear all: back to the plain colours, the list empty
    page.locator(".ls-iv-clear").click()
    page.wait_for_selector(".jp-FileEditor .ls-token-delta", state="detached")
    assert page.locator(".ls-iv").count() == 0
    assert backgrounds(page) == before


def test_ablate_a_head_from_the_why_view_and_add_by_name(page: Any, lab: Lab) -> None:
    _, selected, context = select_tour_lines(page, lab)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    plain = server_analysis(lab, selected, context)
    starts, ends = plain["tokens"]["start_utf16"].tolist(), plain["tokens"]["end_utf16"].tolist()
    texts = [selected[s:e] for s, e in zip(starts, ends)]
    index = next(i for i, t in enumerate(texts) if t.strip() and 12 <= i < len(texts) - 1)
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.click()
    page.keyboard.press("Alt+Shift+W")
    page.wait_for_selector('.ls-tooltip-pinned .ls-why[data-state="ready"]')
    head = page.locator(".ls-tooltip-pinned .ls-why-head-line .ls-ablate").first
    layer, h = int(head.get_attribute("data-layer")), int(head.get_attribute("data-index"))
    head.click()
    wait_applied(page, f"L{layer}.H{h} zero")
    check_deltas(
        page, plain, analyze_with(lab, selected, context, [{"component": "head", "layer": layer, "index": h, "op": "zero"}])
    )

    # "this token only": only the token it came from is changed
    page.locator(".ls-iv-positions").select_option("one")
    page.wait_for_function("() => document.querySelector('.ls-iv-status').textContent.includes('@')")
    only = analyze_with(
        lab, selected, context, [{"component": "head", "layer": layer, "index": h, "op": "zero", "positions": [index]}]
    )
    check_deltas(page, plain, only)

    # add the MLP by name, mean-ablated: the note says where the mean came from
    page.locator(".ls-iv-add-input").fill("l0.mlp")
    page.locator(".ls-iv-add-input").press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('.ls-iv').length === 2 && document.querySelector('.ls-iv-status').dataset.state === 'done'"  # noqa: E501
    )
    page.locator(".ls-iv").nth(1).locator(".ls-iv-op").select_option("mean")
    page.wait_for_selector(".ls-iv-mean")
    both = analyze_with(
        lab,
        selected,
        context,
        [
            {"component": "head", "layer": layer, "index": h, "op": "zero", "positions": [index]},
            {"component": "mlp", "layer": 0, "index": None, "op": "mean"},
        ],
    )
    check_deltas(page, plain, both)
    note = page.locator(".ls-iv-mean").text_content()
    assert (
        note
        == {"index": "mean over the workspace index", "selection": "mean over the selection"}[
            both["interventions"][1]["mean_from"]
        ]
    )
    # a bad name says so
    page.locator(".ls-iv-add-input").fill("L0.X1")
    page.locator(".ls-iv-add-input").press("Enter")
    page.wait_for_selector('.ls-iv-status[data-state="error"]')
    shot(page, "interventions-panel-light")


def test_ablate_from_the_neuron_and_head_cards(page: Any, lab: Lab) -> None:
    _, selected, context = select_tour_lines(page, lab)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    plain = server_analysis(lab, selected, context)
    page.evaluate(
        "() => window.jupyterapp.commands.execute('lenscope:open-head', {model: 'lenscope-gelu-1l', layer: 0, head: 1})"
    )
    page.locator(".ls-head-view .ls-ablate-card").click()
    wait_applied(page, "L0.H1 zero")
    check_deltas(page, plain, analyze_with(lab, selected, context, [{"component": "head", "layer": 0, "index": 1, "op": "zero"}]))
    page.evaluate(
        "() => window.jupyterapp.commands.execute('lenscope:open-neuron', {model: 'lenscope-gelu-1l', layer: 0, index: 7})"
    )
    page.locator('.ls-card-view[data-index="7"] .ls-ablate-card').click()
    wait_applied(page, "L0.N7 zero")
    both = [
        {"component": "head", "layer": 0, "index": 1, "op": "zero"},
        {"component": "neuron", "layer": 0, "index": 7, "op": "zero"},
    ]
    check_deltas(page, plain, analyze_with(lab, selected, context, both))
    shot(page, "interventions-card-light")
