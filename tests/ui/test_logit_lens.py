"""The logit lens in the browser: the tooltip's rank line and the panel's Logit lens section, against
POST /lenscope/api/logit_lens and POST analyze; screenshots in the light and the dark theme."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import numpy as np

from lenscope.wire_codec import decode_json
from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme
from tests.ui.test_inline import select_tour_lines, server_analysis


def server_lens(lab: Lab, text: str, context: str, position: int) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{lab.url}lenscope/api/logit_lens",
        data=json.dumps({"text": text, "context": context, "positions": [position]}).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=120).read())


def shown_rows(page: Any) -> list[dict[str, Any]]:
    """Each row of the panel's lens table: its name, top ids and log-probs, the actual token's rank and log-prob."""
    js = """() => Array.from(document.querySelectorAll('#lenscope-panel .ls-lens-row')).map(tr => ({
        name: tr.dataset.row,
        ids: Array.from(tr.querySelectorAll('.ls-lens-top')).map(td => Number(td.dataset.tokenId)),
        lps: Array.from(tr.querySelectorAll('.ls-lens-top')).map(td => Number(td.dataset.logprob)),
        actual: Array.from(tr.querySelectorAll('.ls-lens-actual')).map(td => Number(td.dataset.tokenId)),
        rank: Number(tr.querySelector('.ls-lens-rank').dataset.rank),
        lp: Number(tr.querySelector('.ls-lens-logprob').dataset.logprob),
        shade: getComputedStyle(tr.querySelector('.ls-lens-rank')).backgroundColor,
    }))"""
    rows: list[dict[str, Any]] = page.evaluate(js)
    return rows


def check_rows(page: Any, lens: dict[str, Any]) -> None:
    """The panel's table is the server's lens at its one position, number for number."""
    page.wait_for_selector(f'#lenscope-panel .ls-lens-token:has-text("token {lens["positions"][0]} ")')
    page.wait_for_selector("#lenscope-panel .ls-lens-row")
    rows = shown_rows(page)
    assert [r["name"] for r in rows] == lens["rows"] == ["embed", "L0"]
    nxt = int(lens["actual_ids"][0])
    for r, row in enumerate(rows):
        assert row["ids"] == lens["top_ids"][r, 0].tolist()
        # float16 on the wire, decoded to the same float in the browser
        np.testing.assert_array_equal(np.array(row["lps"], np.float32), lens["top_logprobs"][r, 0].astype(np.float32))
        assert row["rank"] == int(lens["actual_rank"][r, 0])
        assert abs(row["lp"] - float(lens["actual_logprob"][r, 0])) < 1e-5
        assert row["actual"] == ([nxt] if nxt in row["ids"] else [])
    # shaded by rank: the better-ranked row is the stronger green
    alphas = [float(r["shade"].split(",")[3].rstrip(")")) if r["shade"].count(",") == 3 else 1.0 for r in rows]
    ranks = [r["rank"] for r in rows]
    if ranks[0] != ranks[1]:
        assert (alphas[0] < alphas[1]) == (ranks[0] > ranks[1]), (ranks, alphas)


def test_logit_lens_tooltip_line_and_panel_section(page: Any, lab: Lab) -> None:
    _, selected, context = select_tour_lines(page, lab)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    analysis = server_analysis(lab, selected, context)
    starts, ends = analysis["tokens"]["start_utf16"].tolist(), analysis["tokens"]["end_utf16"].tolist()
    texts = [selected[s:e] for s, e in zip(starts, ends)]
    index = next(i for i, t in enumerate(texts) if t.strip() and 12 <= i < len(texts) - 2)
    lens = server_lens(lab, selected, context, index)
    # the lens's output row is the analysis: the rank of the token after `index`
    assert int(lens["actual_rank"][-1, 0]) == int(analysis["predictions"]["actual_rank"][index + 1])

    # the tooltip's line: the actual next token's rank after the embeddings and the block
    page.mouse.move(0, 0)
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.hover()
    line = page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"] .ls-tooltip-lens[data-state="done"]')
    ranks = lens["actual_rank"][:, 0].tolist()
    assert line.text_content() == f"lens: embed r{ranks[0]} · L0 r{ranks[1]}"

    # the panel's section: closed until asked; opened, it shows the hovered token's lens
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    panel = page.locator("#lenscope-panel")
    assert panel.locator(".ls-lens-row").count() == 0
    panel.locator(".ls-lens-summary").click()
    check_rows(page, lens)
    panel.locator(".ls-lens-table").scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    shot(page, "logit-lens-light")

    # stepping to the next token fetches its lens (a second position, the same numbers as the route)
    panel.locator(".ls-lens-next").click()
    check_rows(page, server_lens(lab, selected, context, index + 1))
    panel.locator(".ls-lens-prev").click()
    check_rows(page, lens)  # back: from the cache

    # Copy as code names the lens snippet with this token
    panel.locator(".ls-lens-code").click()
    copied = page.locator("#lenscope-panel .ls-lens-code")
    assert copied.get_attribute("data-snippet") == "logitLensSnippet"
    assert json.loads(copied.get_attribute("data-request") or "{}")["position"] == index

    set_theme(page, light=False)
    panel.locator(".ls-lens-table").scroll_into_view_if_needed()
    shot(page, "logit-lens-dark")
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.hover()
    page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"] .ls-tooltip-lens[data-state="done"]')
    shot(page, "logit-lens-tooltip-dark")
    set_theme(page, light=True)
