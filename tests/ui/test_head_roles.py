"""Heads by their role in the panel's attention section, and the induction probe from the panel
(issue #25), against the routes' own answers: `GET heads/{model}/scores` (the probe) and
`POST head_scores_text` (the analyzed text). Screenshots (light and dark) go to test-artifacts/.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lenscope.headscores import ROLE_THRESHOLD, HeadScores
from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme
from tests.ui.test_inline import select_tour_lines
from tests.ui.test_pictures import post

MODEL = "lenscope-gelu-2l"
ROLES = ("previous_token", "duplicate_token", "induction", "bos")


def table(section: Any) -> list[dict[str, Any]]:
    """The rows shown: layer, head, role and each score's value (None: no target)."""
    return section.evaluate(
        """s => Array.from(s.querySelectorAll('.ls-head-roles-row')).map(r => ({
            layer: Number(r.dataset.layer), head: Number(r.dataset.head), role: r.dataset.role,
            text: Object.fromEntries(Array.from(r.querySelectorAll('.ls-head-roles-score'))
                .map(c => [c.dataset.role, c.textContent])),
            value: Object.fromEntries(Array.from(r.querySelectorAll('.ls-head-roles-score'))
                .map(c => [c.dataset.role, c.dataset.value === '' ? null : Number(c.dataset.value)]))}))"""
    )


def check_against(rows: list[dict[str, Any]], route: dict[str, Any]) -> None:
    assert rows
    for row in rows:
        for role in ROLES:
            want = route["scores"][role][row["layer"]][row["head"]]
            assert row["value"][role] == (None if want is None else pytest.approx(want, abs=1e-5)), (row, role)
            assert row["text"][role] == ("–" if want is None else f"{want:.2f}")


def roles_of(route: dict[str, Any]) -> dict[tuple[int, int], str]:
    """Each head's role, as the core's HeadScores.role_of gives it from the route's scores."""
    scores = {r: np.array(route["scores"][r], dtype=np.float32) for r in ROLES}  # None -> NaN
    hs = HeadScores(route["model"], route["on"], scores, route["tokens"], route["sequences"])
    n_layers, n_heads = scores["induction"].shape
    return {(la, h): hs.role_of(la, h)[0] for la in range(n_layers) for h in range(n_heads)}


def look(page: Any, name: str, show: str | None = None) -> None:
    if show:
        page.locator(show).first.scroll_into_view_if_needed()
    for light in (True, False):
        set_theme(page, light)
        shot(page, f"{name}-{'light' if light else 'dark'}")
    set_theme(page, True)


def test_heads_by_role_and_the_induction_probe_from_the_panel(page: Any, lab: Lab) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    _, selected, context = select_tour_lines(page, lab)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    panel = page.locator("#lenscope-panel")
    page.wait_for_selector(f"#lenscope-panel .ls-model-select option[value='{MODEL}']", state="attached")
    panel.locator(".ls-model-select").select_option(MODEL)
    page.wait_for_function(
        f"() => document.querySelector('#lenscope-panel .ls-analysis-title').textContent.endsWith('{MODEL}')", timeout=120_000
    )
    route = lab.api(f"heads/{MODEL}/scores")
    section = panel.locator(".ls-attention")
    section.locator(".ls-attention-summary").click()
    roles = section.locator(".ls-head-roles")
    roles.locator(".ls-head-roles-row").first.wait_for(timeout=120_000)

    # every head, with the route's scores (on the probe)
    rows = table(roles)
    assert len(rows) == sum(len(layer) for layer in route["scores"]["induction"])
    check_against(rows, route)

    # filtered by "induction": the heads whose role (headscores.role_of on the route's scores) is induction
    roles.locator(".ls-head-roles-filter").select_option("induction")
    rows = table(roles)
    check_against(rows, route) if rows else None
    want = roles_of(route)
    assert {(r["layer"], r["head"]) for r in rows} == {h for h, role in want.items() if role == "induction"}
    if not rows:  # (a model without induction heads says so)
        assert "No head is induction here" in roles.locator(".ls-head-roles-status").text_content()
    # all heads sorted by the induction score: the route's top induction head first
    roles.locator(".ls-head-roles-filter").select_option("all")
    roles.locator(".ls-head-roles-sort[data-sort='induction']").click()
    rows = table(roles)
    check_against(rows, route)
    assert {(r["layer"], r["head"]): r["role"] for r in rows} == want
    top = route["top"]["induction"][0]
    assert (rows[0]["layer"], rows[0]["head"]) == (top["layer"], top["head"])
    scores = [r["value"]["induction"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    look(page, "head-roles-induction", ".ls-head-roles-table")

    # the same scores on the analyzed text: POST head_scores_text's
    roles.locator(".ls-head-roles-filter").select_option("all")
    roles.locator(".ls-head-roles-source").select_option("text")
    page.wait_for_function("() => document.querySelector('.ls-head-roles-status').textContent.includes('analyzed text')")
    check_against(table(roles), lab.api("head_scores_text", {"model": MODEL, "text": selected, "context": context}))
    roles.locator(".ls-head-roles-source").select_option("probe")

    # the top head's name opens its card and points the attention section at it
    roles.locator(".ls-head-roles-row").first.locator(".ls-head-roles-open").click()
    card = page.locator(f".ls-head-view[data-layer='{top['layer']}'][data-head='{top['head']}']")
    card.wait_for()
    assert section.locator(".ls-attention-layer").input_value() == str(top["layer"])
    assert section.locator(f".ls-head-chip[data-head='{top['head']}']").get_attribute("aria-pressed") == "true"

    # the induction probe from the panel: the route's gain and top heads, and the probe's tab
    roles.locator(".ls-probe-run").click()
    gain = roles.locator(".ls-probe-gain")
    gain.wait_for()
    assert float(gain.get_attribute("data-value")) == pytest.approx(route["in_context_gain"], abs=1e-9)
    assert gain.text_content() == f"{route['in_context_gain']:.2f} nats"
    assert roles.locator(".ls-probe-top").text_content().startswith(f"L{top['layer']}.H{top['head']} {top['score']:.2f}")
    view = page.locator(".ls-probe-view")
    view.locator(".ls-probe-token").first.wait_for(timeout=120_000)
    ids = route["sequence"][1:]
    assert view.locator(".ls-probe-token").count() == len(ids)
    assert view.locator(".ls-probe-gain").text_content() == f"{route['in_context_gain']:.2f} nats"
    assert view.locator(".ls-probe-head").input_value() == f"{top['layer']}.{top['head']}"
    assert view.locator(".ls-probe-mode").get_attribute("aria-pressed") == "true"
    # attention mode on the top induction head, from a token of the second copy: the route's
    # attention on the probe's ids, strongest on the token after that token's first occurrence
    n = len(ids) // 2
    q = n + 9
    attn = post(lab, "attention", {"model": MODEL, "text": "", "token_ids": ids, "layers": [top["layer"]], "k": 8})
    assert attn["tokens"]["ids"].tolist() == ids
    assert view.locator(".ls-probe-token.ls-probe-query").get_attribute("data-index") == str(q)
    sources, weights = attn["sources"][0, top["head"], q].tolist(), attn["weights"][0, top["head"], q].tolist()
    target = q - n + 1  # the token after this one's first occurrence
    if top["score"] >= ROLE_THRESHOLD:
        assert sources[0] == target  # an induction head: its strongest key
    target = sources[0]
    title = view.locator(f".ls-probe-token[data-index='{target}']").get_attribute("title")
    assert title.endswith(f"L{top['layer']}.H{top['head']} from #{q}: {weights[0]:.2f}"), title
    look(page, "head-roles-probe", ".ls-probe-result")
