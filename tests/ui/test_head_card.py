"""A head card read from its weights (issue #25 item 3): the positional QK heatmap (hover numbers
from the route's matrix), the frequent / whole-vocabulary toggle, the two per-token questions and
a bad token's named error. Screenshots (light and dark, 1400x900) go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme
from tests.ui.test_inline import open_in_lab

MODEL = "lenscope-gelu-2l"
LAYER, HEAD = 0, 0


def test_head_card_heatmap_toggle_and_token_questions(page: Any, lab: Lab) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")  # opened first, so that it does not take the head card's place
    page.evaluate(
        f"() => window.jupyterapp.commands.execute('lenscope:open-head', {{model: '{MODEL}', layer: {LAYER}, head: {HEAD}}})"
    )
    view = page.locator(f'.ls-head-view[data-layer="{LAYER}"][data-head="{HEAD}"]')
    card = view.locator(".ls-head-card")
    card.wait_for()
    route = lab.api(f"heads/{MODEL}/{LAYER}/{HEAD}")
    assert card.get_attribute("data-vocab") == "frequent" == route["vocab"]
    freq = card.locator('.ls-head-score[data-score="copying_frequent"]')
    assert float(freq.get_attribute("data-value")) == pytest.approx(route["copying_score_frequent"], rel=1e-6)
    whole = card.locator('.ls-head-score[data-score="copying"]')
    assert float(whole.get_attribute("data-value")) == pytest.approx(route["copying_score"], rel=1e-6)
    first = card.locator('.ls-head-pairs[data-kind="ov_top"] .ls-pair').first
    assert int(first.get_attribute("data-source")) == route["ov_top"][0]["source"]

    # the positional heatmap: a canvas of positions x positions; hovering a cell reads the route's score
    heat = card.locator(".ls-head-positional")
    pos = route["positional"]
    p = pos["positions"]
    assert heat.get_attribute("data-positions") == str(p) == "256"
    scores = np.array([np.nan if x is None else x for x in pos["scores"]["data"]], dtype=np.float32).reshape(p, p)
    canvas = heat.locator("canvas.ls-head-heatmap")
    box = canvas.evaluate("c => ({width: c.clientWidth, height: c.clientHeight})")  # inside the border, as hover positions are
    assert box["width"] > 200
    i, j = 40, 39  # a query and its previous position
    canvas.hover(position={"x": (j + 0.5) * box["width"] / p, "y": (i + 0.5) * box["height"] / p})
    readout = heat.locator(".ls-head-heatmap-readout")
    assert readout.get_attribute("data-query") == str(i) and readout.get_attribute("data-key") == str(j)
    assert f"{scores[i, j]:.3f}" in readout.text_content() and "(previous)" in readout.text_content()
    canvas.hover(position={"x": (i + 10.5) * box["width"] / p, "y": (i + 0.5) * box["height"] / p})
    assert "future key" in readout.text_content()
    summary = heat.locator(".ls-head-positional-summary")
    assert float(summary.get_attribute("data-previous")) == pytest.approx(pos["summary"]["previous"], rel=1e-6)
    # a canvas pixel is coloured (the lower triangle), a future one is not
    painted = canvas.evaluate(f"c => [Array.from(c.getContext('2d').getImageData({j}, {i}, 1, 1).data), "
                              f"Array.from(c.getContext('2d').getImageData({i + 10}, {i}, 1, 1).data)]")  # fmt: skip
    assert painted[0][3] == 255 and painted[1][3] == 0
    heat.scroll_into_view_if_needed()
    for light in (True, False):
        set_theme(page, light)
        shot(page, f"head-card-positional-{'light' if light else 'dark'}")
    set_theme(page, True)

    # the toggle: the whole vocabulary, then back
    card.locator('.ls-head-vocab-option[data-vocab="all"]').click()
    page.wait_for_selector('.ls-head-view .ls-head-card[data-vocab="all"]')
    every = lab.api(f"heads/{MODEL}/{LAYER}/{HEAD}?vocab=all")
    card = view.locator(".ls-head-card")
    first = card.locator('.ls-head-pairs[data-kind="ov_top"] .ls-pair').first
    assert int(first.get_attribute("data-source")) == every["ov_top"][0]["source"]
    assert card.locator('.ls-head-vocab-option[data-vocab="all"]').get_attribute("aria-pressed") == "true"
    card.locator('.ls-head-vocab-option[data-vocab="frequent"]').click()
    page.wait_for_selector('.ls-head-view .ls-head-card[data-vocab="frequent"]')

    # the per-token questions: a source token's OV row and a query token's QK row, as the route answers them
    card = view.locator(".ls-head-card")
    card.locator(".ls-head-ask-source").fill("[")
    card.locator(".ls-head-ask-query").fill('" for"')
    card.locator(".ls-head-ask-go").click()
    answer = view.locator('.ls-head-answer[data-kind="query"]')
    answer.wait_for()
    asked = lab.api(f"heads/{MODEL}/{LAYER}/{HEAD}?source=%5B&query=%20for")
    boosted = view.locator('.ls-head-answer[data-kind="source"] .ls-head-row[data-kind="boosted"] .ls-pair')
    assert [int(boosted.nth(k).get_attribute("data-target")) for k in range(boosted.count())] == [
        r["id"] for r in asked["source_row"]["boosted"]
    ]
    keys = answer.locator('.ls-head-row[data-kind="keys"] .ls-pair')
    assert [int(keys.nth(k).get_attribute("data-target")) for k in range(keys.count())] == [
        r["id"] for r in asked["query_row"]["keys"]
    ]
    assert answer.get_attribute("data-token") == str(asked["query_row"]["token"])
    view.locator(".ls-head-questions").scroll_into_view_if_needed()
    shot(page, "head-card-questions-light")
    # a text that is not one token: the route's named error, under the inputs
    view.locator(".ls-head-ask-source").fill("for the")
    view.locator(".ls-head-ask-go").click()
    status = view.locator(".ls-head-ask-status.ls-error")
    status.wait_for()
    assert "source: unknown token 'for the': it is 2 tokens" in status.text_content()
