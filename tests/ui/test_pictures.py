"""Issue #24's pictures and the tooltip's defects, in the browser against the server's own answers:

* the tooltip's keyboard path (Alt+Shift+K twice, Tab to the next chip, Enter opens its card),
  the pinned tooltip closing (a click elsewhere, a new analysis, opening a card), the open
  tooltip refreshed after "✕ ablate";
* the why view fits the window (1400×900 and 1024×768) with its sum line and inputs in view,
  the decisive part first, each head's sources on its own line;
* the logit lens heatmap, the waterfall and the attention view open as lenscope tabs, and the
  numbers they show are the routes' (`POST logit_lens`, `attribute`, `attention`).

Screenshots (light and dark) go to test-artifacts/ (listed in docs/frontend.md).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lenscope.wire_codec import decode_json
from tests.server.test_copy_as_code import snippet
from tests.ui.conftest import Lab, shot
from tests.ui.test_cards import set_theme
from tests.ui.test_inline import open_why_in_tour, select_tour_lines, server_analysis

PINNED = ".ls-tooltip-pinned"


def post(lab: Lab, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """A lenscope route's JSON answer, its arrays decoded to numpy."""
    req = urllib.request.Request(
        f"{lab.url}lenscope/api/{route}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=120).read())


def analyze_tour(page: Any, lab: Lab) -> tuple[str, str, list[str], int]:
    """tour.py's lines 8-15 analyzed: (selected, context, token texts, a token with text past the first dozen)."""
    _, selected, context = select_tour_lines(page, lab)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    analysis = server_analysis(lab, selected, context)
    starts, ends = analysis["tokens"]["start_utf16"].tolist(), analysis["tokens"]["end_utf16"].tolist()
    texts = [selected[s:e] for s, e in zip(starts, ends)]
    index = next(i for i, t in enumerate(texts) if t.strip() and 12 <= i < len(texts) - 1)
    return selected, context, texts, index


def active(page: Any) -> dict[str, Any]:
    return page.evaluate(
        "() => ({cls: document.activeElement.className, layer: document.activeElement.dataset.layer,"
        " index: document.activeElement.dataset.index})"
    )


def test_tooltip_keyboard_path_closing_and_refresh(page: Any, lab: Lab) -> None:
    _, _, texts, index = analyze_tour(page, lab)
    token = page.locator(f'.ls-token[data-ls-token="{index}"]').first

    # (1) README step 8: Alt+Shift+K shows the tooltip, again focuses the first neuron chip; Tab goes to
    # the NEXT chip (the ✕ is not a Tab stop); Enter opens that neuron's card (nothing is ablated)
    token.click()
    page.keyboard.press("Alt+Shift+K")
    page.wait_for_selector(PINNED)
    page.keyboard.press("Alt+Shift+K")
    first = active(page)
    assert "ls-neuron-chip" in first["cls"]
    page.keyboard.press("Tab")
    second = active(page)
    assert "ls-neuron-chip" in second["cls"] and "ls-ablate" not in second["cls"], second
    assert (second["layer"], second["index"]) != (first["layer"], first["index"])
    page.keyboard.press("Enter")
    card = f'.ls-card-view[data-layer="{second["layer"]}"][data-index="{second["index"]}"]'
    page.wait_for_selector(card)
    # (5) opening a card closes the pinned tooltip (it floated over the new tab)
    page.wait_for_selector(PINNED, state="detached")
    assert page.locator(".ls-token-delta").count() == 0  # Enter did not ablate

    # (5) a click elsewhere closes it
    token.click()
    page.keyboard.press("Alt+Shift+K")
    page.wait_for_selector(PINNED)
    page.locator(".jp-FileEditor .cm-line").first.click()  # the module's first line: outside the tooltip
    page.wait_for_selector(PINNED, state="detached")
    # ... and so does a new analysis
    token.click()
    page.keyboard.press("Alt+Shift+K")
    page.wait_for_selector(PINNED)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(PINNED, state="detached")

    # (7) "✕ ablate" in an open (hovered) tooltip: it shows the intervened numbers without a new hover
    page.wait_for_selector(".ls-token")
    page.mouse.move(0, 0)
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.hover()
    tip = f'.ls-tooltip[data-ls-token="{index}"]'
    page.wait_for_selector(f"{tip} .ls-chip-pair .ls-ablate")
    assert page.locator(f"{tip} .ls-tooltip-delta").count() == 0
    page.locator(f"{tip} .ls-chip-pair .ls-ablate").first.click()
    page.wait_for_selector(".jp-FileEditor .ls-token-delta")
    page.wait_for_selector(f"{tip} .ls-tooltip-delta")
    assert page.locator(f"{tip} .ls-intervened").count() == 1
    assert texts[index]


def check_why_fits(page: Any, width: int, height: int) -> None:
    """The pinned why view inside the window, its sum line and the typed inputs in view; the decisive
    part first; each head's sources on its own head's line."""
    box = page.locator(PINNED).bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= height + 1, (box, height)
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (box, width)
    for selector in (".ls-why-sum", ".ls-why-target-input", ".ls-why-baseline-input"):
        b = page.locator(f"{PINNED} {selector}").bounding_box()
        assert b is not None and b["y"] >= box["y"] - 1 and b["y"] + b["height"] <= box["y"] + box["height"] + 1, (
            selector,
            b,
            box,
        )
        hit = page.evaluate(
            "([s, x, y]) => { const e = document.elementFromPoint(x, y); return !!e && !!e.closest(s); }",
            [f"{PINNED} {selector}", b["x"] + min(4, b["width"] / 2), b["y"] + b["height"] / 2],
        )
        assert hit, f"{selector} is covered or out of view"
    # the parts, largest |value| first (after the total); no neuron chip shown before the MLP's row
    values = page.evaluate(
        f"""() => Array.from(document.querySelectorAll('{PINNED} .ls-why-line:not(.ls-why-total)'))
            .filter(e => e.dataset.kind !== 'rest').map(e => Number(e.dataset.value))"""
    )
    assert values and abs(values[0]) == pytest.approx(max(abs(v) for v in values))
    assert [abs(v) for v in values] == sorted((abs(v) for v in values), reverse=True)
    assert page.locator(f"{PINNED} .ls-why-neuron:visible").count() == 0  # one click deeper
    # (13) a head's sources sit on its own line: level with its button, inside its line's box
    lines = page.evaluate(
        f"""() => Array.from(document.querySelectorAll('{PINNED} .ls-why-head-line')).map(line => {{
            const b = line.querySelector('.ls-why-head').getBoundingClientRect();
            return {{button: [b.top, b.bottom],
                     sources: Array.from(line.querySelectorAll('.ls-why-source')).map(s => {{
                        const r = s.getBoundingClientRect(); return [r.top, r.bottom]; }})}};
        }})"""
    )
    assert lines
    for line in lines:
        top, bottom = line["button"]
        for s_top, s_bottom in line["sources"]:
            assert top - 2 <= (s_top + s_bottom) / 2 <= bottom + 2, line


def test_why_view_fits_the_window_and_the_pictures_match_the_routes(page: Any, lab: Lab, tmp_path: Path) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.set_viewport_size({"width": 1400, "height": 900})
    selected, context, analysis, texts, index = open_why_in_tour(page, lab)
    check_why_fits(page, 1400, 900)
    page.locator(f"{PINNED} .ls-why-mlp").first.click()  # one click deeper: the MLP's neurons
    assert page.locator(f"{PINNED} .ls-why-neuron:visible").count() > 0
    shot(page, "pictures-why-1400-light")
    page.set_viewport_size({"width": 1024, "height": 768})
    page.keyboard.press("Escape")
    page.wait_for_selector(PINNED, state="detached")
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.click()
    page.keyboard.press("Alt+Shift+W")
    page.wait_for_selector(f'{PINNED} .ls-why[data-state="ready"]')
    check_why_fits(page, 1024, 768)
    shot(page, "pictures-why-1024-light")
    set_theme(page, False)
    shot(page, "pictures-why-1024-dark")
    set_theme(page, True)
    page.set_viewport_size({"width": 1400, "height": 900})

    # the waterfall, from the why view: a lenscope tab; its numbers are POST attribute's
    page.locator(f"{PINNED} .ls-why-waterfall").click()
    view = ".ls-waterfall-view[data-state='ready']"
    page.wait_for_selector(view)
    page.wait_for_selector(PINNED, state="detached")
    request = {"text": selected, "context": context, "position": index, "top": 30}
    shown_sae = page.locator(".ls-waterfall-view .ls-wf-group").count() > 0
    server = post(lab, "attribute", {**request, **({"sae": "lenscope-gelu-1l-mlp-topk"} if shown_sae else {})})
    rows = page.evaluate(
        """() => Array.from(document.querySelectorAll('.ls-waterfall-view .ls-wf-row')).map(r => ({
            kind: r.dataset.kind, value: Number(r.dataset.value), layer: Number(r.dataset.layer),
            index: Number(r.dataset.index), start: Number(r.dataset.start), end: Number(r.dataset.end)}))"""
    )
    assert rows[0]["kind"] == "total" and rows[0]["value"] == pytest.approx(server["value"], rel=1e-6)
    top = [r for r in rows[1:] if r["kind"] not in ("neuron", "feature", "other")]
    heads = server["heads"]
    for r in top:
        expected = {
            "head": lambda r: heads[r["layer"], r["index"]],
            "mlp": lambda r: server["mlp_total"][r["layer"]],
            "mlp_bias": lambda r: server["mlp_bias"][r["layer"]],
            "attn_bias": lambda r: server["attn_bias"][r["layer"]],
            "embed": lambda r: server["embed"],
            "pos_embed": lambda r: server["pos_embed"],
            "constant": lambda r: server["constant"],
        }[r["kind"]](r)
        assert r["value"] == pytest.approx(float(expected), rel=1e-5, abs=1e-6), r
    assert sum(r["value"] for r in top) == pytest.approx(server["total"], abs=1e-3)
    assert [abs(r["value"]) for r in top] == sorted((abs(r["value"]) for r in top), reverse=True)
    assert top[-1]["end"] == pytest.approx(server["total"], abs=1e-3)  # the bars walk to the total
    assert len([r for r in top if r["kind"] == "head"]) == heads.size  # every head
    neurons = [(r["layer"], r["index"], r["value"]) for r in rows if r["kind"] == "neuron"]
    assert neurons == [
        (n["layer"], n["index"], pytest.approx(n["value"], rel=1e-5))
        for n in sorted(server["top_neurons"], key=lambda n: -abs(n["value"]))
    ]
    if server.get("features"):
        shown = [(r["index"], r["value"]) for r in rows if r["kind"] == "feature"]
        assert shown == [(f["index"], pytest.approx(f["part"], rel=1e-5)) for f in server["features"]["top"]]
    page.locator(".ls-waterfall-view .ls-wf-expand").first.click()
    page.locator(".ls-waterfall-view .ls-wf-row[data-kind='mlp']").first.hover()
    assert "running sum" in page.locator(".ls-waterfall-view .ls-wf-readout").text_content()
    assert page.locator(".lm-TabBar-tab:has-text('why @')").count() == 1
    shot(page, "pictures-waterfall-light")
    set_theme(page, False)
    shot(page, "pictures-waterfall-dark")
    set_theme(page, True)

    # the logit lens heatmap: every cell is POST logit_lens's (all positions)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:open-logit-lens-heatmap')")
    page.wait_for_selector(".ls-lens-heatmap-view[data-state='ready']")
    lens = post(lab, "logit_lens", {"text": selected, "context": context})
    cells = page.evaluate(
        """() => Array.from(document.querySelectorAll('.ls-lens-heatmap-view .ls-lh-cell')).map(c => [
            c.dataset.row, Number(c.dataset.position), c.dataset.logprob === undefined ? null : Number(c.dataset.logprob),
            c.dataset.rank === undefined ? null : Number(c.dataset.rank)])"""
    )
    n = len(texts)
    assert len(cells) == len(lens["rows"]) * n and lens["positions"] == list(range(n))
    for row, position, lp, rank in cells:
        r = lens["rows"].index(row)
        if int(lens["actual_rank"][r, position]) == 0:
            assert lp is None and rank is None
        else:
            assert rank == int(lens["actual_rank"][r, position])
            assert lp == pytest.approx(float(lens["actual_logprob"][r, position]), abs=1e-5)
    labels = page.locator(".ls-lens-heatmap-view .ls-lh-label-text").all_text_contents()
    visible = [t.replace(" ", "\u00b7").replace("\n", "\u21b5").replace("\t", "\u2192") or "\u2205" for t in texts]
    assert labels == visible
    # a click: that cell's top 5
    cell = page.locator(f".ls-lens-heatmap-view .ls-lh-cell[data-row='L0'][data-position='{index}']")
    cell.hover()
    assert f"rank {int(lens['actual_rank'][1, index])}" in page.locator(".ls-lh-readout").text_content()
    cell.click()
    ids = [int(x) for x in page.locator(".ls-lh-detail .ls-lens-top").evaluate_all("es => es.map(e => e.dataset.tokenId)")]
    assert ids == lens["top_ids"][1, index].tolist()
    shot(page, "pictures-lens-heatmap-light")
    page.locator(".ls-lh-colour").click()  # by rank
    assert page.locator(".ls-lens-heatmap[data-colour='rank']").count() == 1
    set_theme(page, False)
    shot(page, "pictures-lens-heatmap-dark")
    set_theme(page, True)
    # "Copy as code": the new snippet, and its cell prints the numbers the picture shows
    button = ".ls-lens-heatmap-view .ls-copy-code"
    page.locator(button).click()
    page.wait_for_function(f"() => Number(document.querySelector({json.dumps(button)}).dataset.copied ?? 0) > 0")
    data = page.evaluate(f"() => ({{...document.querySelector({json.dumps(button)}).dataset}})")
    code = page.evaluate("() => navigator.clipboard.readText()")
    assert data["snippet"] == "logitLensHeatmapSnippet"
    req = json.loads(data["request"])
    assert (req["text"], req["context"]) == (selected, context)
    assert code == snippet(data["snippet"], req, tmp_path)

    # the attention view: every head side by side; the large one's weights on hover are POST attention's
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:open-attention-view', {layer: 0, head: 0})")
    page.wait_for_selector(".ls-attention-picture-view[data-state='ready'] .ls-pattern-map")
    att = post(lab, "attention", {"text": selected, "context": context, "k": 1024, "layers": [0]})
    assert page.locator(".ls-attention-picture-view .ls-attention-thumb").count() == att["n_heads"]
    head = 1 if att["n_heads"] > 1 else 0
    page.locator(f".ls-attention-picture-view .ls-attention-thumb[data-head='{head}']").click()
    canvas = page.locator(f".ls-attention-picture-view .ls-pattern-map[data-head='{head}']")
    size = float(canvas.get_attribute("data-cell"))
    columns = json.loads(canvas.get_attribute("data-sources"))
    box = canvas.bounding_box()
    sources, weights = att["sources"][0, head], att["weights"][0, head].astype(np.float64)
    for q in (index, n - 1, 3):
        for c in (0, columns.index(q) if q in columns else 0, columns.index(max(0, q - 1))):
            canvas.hover(position={"x": (c + 0.5) * size, "y": (q + 0.5) * size})
            readout = page.locator(".ls-attention-picture-view .ls-pattern-readout")
            assert int(readout.get_attribute("data-query")) == q
            assert int(readout.get_attribute("data-source")) == columns[c]
            expected = float(weights[q][sources[q] == columns[c]].sum())
            assert float(readout.get_attribute("data-weight")) == pytest.approx(expected, abs=1e-3)
    assert box["width"] > 0
    labels = page.locator(".ls-attention-picture-view .ls-pattern-row").all_text_contents()
    assert labels == visible
    shot(page, "pictures-attention-light")
    set_theme(page, False)
    shot(page, "pictures-attention-dark")
    set_theme(page, True)

    # the head's card: its pattern on the current text
    page.evaluate(
        f"() => window.jupyterapp.commands.execute('lenscope:open-head', {{model: 'lenscope-gelu-1l', layer: 0, head: {head}}})"
    )
    page.wait_for_selector(f".ls-head-view[data-head='{head}'] .ls-head-on-text[data-state='ready'] .ls-pattern-map")
    page.locator(f".ls-head-view[data-head='{head}'] .ls-head-on-text").scroll_into_view_if_needed()
    shot(page, "pictures-head-card-light")
    # all three are tabs of the lenscope area
    for label in ("logit lens", "attention", "why @"):
        assert page.locator(f".lm-TabBar-tab:has-text('{label}')").count() == 1, label
    assert analysis
