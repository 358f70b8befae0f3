"""Rank by causal effect beside the waterfall, in the browser against the route's own answer: the
exact sweep's top rows (unit, rank, Δ log-prob, direct rank) are ``POST sweep``'s, the toggle
asks for the estimate and the view says it is one, a unit opens its card. Screenshots go to
test-artifacts/ (sweep-exact-light, sweep-estimate-light, sweep-exact-dark)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme
from tests.ui.test_inline import open_why_in_tour

PINNED = ".ls-tooltip-pinned"
SECTION = ".ls-waterfall-view .ls-sweep"


def shown_rows(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(
        f"""() => Array.from(document.querySelectorAll('{SECTION} .ls-sweep-row')).map(r => ({{
            unit: r.dataset.unit, rank: Number(r.dataset.rank), effect: Number(r.dataset.effect),
            direct_rank: r.dataset.directRank === '' ? null : Number(r.dataset.directRank)}}))"""
    )


def check_rows(page: Any, server: dict[str, Any]) -> None:
    rows = shown_rows(page)
    assert len(rows) == 12 and [r["rank"] for r in rows] == list(range(1, 13))
    for row, unit in zip(rows, server["units"]):
        assert (row["unit"], row["rank"], row["direct_rank"]) == (unit["unit"], unit["rank"], unit["direct_rank"])
        assert row["effect"] == pytest.approx(unit["effect"], rel=1e-6, abs=1e-9)
    shown = {u["unit"] for u in server["units"][:12]}
    left_out = [u["unit"] for u in server["direct_units"][:12] if u["unit"] not in shown]
    assert (
        page.evaluate(f"() => Array.from(document.querySelectorAll('{SECTION} .ls-sweep-other')).map(e => e.dataset.unit)")
        == left_out
    )
    rho = server["rank_correlation"]
    assert f"{rho:.3f}" in page.locator(f"{SECTION} .ls-sweep-body").text_content()


def test_the_causal_ranking_beside_the_waterfall(page: Any, lab: Lab) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    selected, context, analysis, _, index = open_why_in_tour(page, lab)
    page.locator(f"{PINNED} .ls-why-waterfall").click()
    page.wait_for_selector(".ls-waterfall-view[data-state='ready']")
    page.wait_for_selector(f"{SECTION}[data-state='ready'][data-method='exact']", timeout=120_000)
    sae = page.locator(SECTION).get_attribute("data-sae")
    ask = {"text": selected, "context": context, "position": index, "top": 30, **({"sae": sae} if sae else {})}
    exact = lab.api("sweep", ask)
    assert exact["targets"] == [analysis["tokens"]["ids"][index + 1]] and exact["method"] == "exact"
    check_rows(page, exact)
    assert page.locator(f"{SECTION} .ls-sweep-method[data-method='exact']").get_attribute("aria-pressed") == "true"
    assert "exact: each unit zero-ablated alone" in page.locator(f"{SECTION} .ls-sweep-note").text_content()
    assert page.locator(f"{SECTION} .ls-sweep-estimate").count() == 0
    shot(page, "sweep-exact-light")

    # the estimate: asked by the toggle, labelled as one
    page.locator(f"{SECTION} .ls-sweep-method[data-method='estimate']").click()
    page.wait_for_selector(f"{SECTION}[data-state='ready'][data-method='estimate']", timeout=120_000)
    estimate = lab.api("sweep", {**ask, "method": "estimate"})
    check_rows(page, estimate)
    note = page.locator(f"{SECTION} .ls-sweep-estimate").text_content()
    assert note.startswith("estimate: gradient x activation") and "(est.)" in page.locator(f"{SECTION} th").nth(2).text_content()
    assert page.locator(f"{SECTION} .ls-sweep-method[data-method='estimate']").get_attribute("aria-pressed") == "true"
    shot(page, "sweep-estimate-light")

    # back to exact, in the dark theme; a unit opens its card
    page.locator(f"{SECTION} .ls-sweep-method[data-method='exact']").click()
    page.wait_for_selector(f"{SECTION}[data-state='ready'][data-method='exact']", timeout=120_000)
    check_rows(page, exact)
    set_theme(page, False)
    shot(page, "sweep-exact-dark")
    set_theme(page, True)
    first = exact["units"][0]
    page.locator(f"{SECTION} .ls-sweep-row[data-unit='{first['unit']}'] button.ls-sweep-unit").click()
    card = ".ls-head-view" if first["kind"] == "head" else ".ls-card-view"
    page.wait_for_selector(card, timeout=60_000)
