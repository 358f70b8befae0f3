"""Activation patching from two notebook cells: the patching tab's heatmaps equal ``POST patch``, a
head cell applied inline equals ``POST analyze`` with that ``patch`` intervention minus the plain
analysis, and two texts of different token counts give the server's refusal."""

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
from tests.ui.test_inline import open_in_lab, server_analysis
from tests.ui.test_interventions import analyze_with

CLEAN = "x = 'cat'\nprint("
CORRUPTED = "y = 'cat'\nprint("
LONGER = "zz = 'a black cat'\nprint("


def server_patch(lab: Lab, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{lab.url}lenscope/api/patch",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=120).read())


def write_notebook(lab: Lab) -> None:
    cells = [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
        for i, src in enumerate((CLEAN, CORRUPTED, LONGER))
    ]
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    (lab.root / "patching.ipynb").write_text(json.dumps(nb), encoding="utf-8")


def from_menu(page: Any, cell: int, label: str) -> None:
    """Right-click notebook cell ``cell`` and run the context-menu item ``label``."""
    target = page.locator(".jp-Notebook .jp-Cell").nth(cell)
    line = target.locator(".cm-line").last  # the first line may be under the cell toolbar
    line.click(position={"x": 3, "y": 3})
    line.click(position={"x": 3, "y": 3}, button="right")
    page.locator(".lm-Menu-item", has_text=label).first.click()


def shown(v: float) -> str:
    if math.isnan(v):
        return "—"
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s


def check_grid(page: Any, server: dict[str, Any]) -> int:
    cells = page.evaluate(
        """() => Array.from(document.querySelectorAll('.ls-patch-view td.ls-patch-cell')).map(e =>
            [e.dataset.component, Number(e.dataset.layer), e.dataset.head === undefined ? -1 : Number(e.dataset.head),
             Number(e.dataset.position), e.textContent])"""
    )
    grids = {"resid": server["resid_pre"], "attn": server["attn_out"], "mlp": server["mlp_out"]}
    n_layers, n_heads, n = server["heads"].shape
    assert len(cells) == 3 * n_layers * n + n_layers * n_heads * n
    for component, layer, head, p, text in cells:
        v = float(server["heads"][layer, head, p] if component == "head" else grids[component][layer, p])
        assert text == shown(v), (component, layer, head, p)
    return len(cells)


def check_inline(page: Any, lab: Lab, intervention: dict[str, Any]) -> int:
    """The notebook's Δ marks equal POST analyze with ``intervention`` minus without; how many changed."""
    patched = analyze_with(lab, CORRUPTED, "", [intervention])
    plain = server_analysis(lab, CORRUPTED, "")
    expected = np.asarray(patched["predictions"]["actual_logprob"], np.float64) - np.asarray(
        plain["predictions"]["actual_logprob"], np.float64
    )
    marks = page.evaluate(
        """() => Array.from(document.querySelectorAll('.jp-Notebook .ls-token-delta')).map(e =>
            [Number(e.dataset.lsToken), e.dataset.lsDelta])"""
    )
    assert marks
    changed = 0
    for i, d in marks:
        if math.isnan(expected[i]):
            assert math.isnan(float(d))
        else:
            assert float(d) == pytest.approx(expected[i], abs=2e-3), i
            changed += abs(expected[i]) > 1e-3
    return changed


def test_patching_two_notebook_cells(page: Any, lab: Lab) -> None:
    write_notebook(lab)
    open_in_lab(page, lab, "patching.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content")
    clean_a = server_analysis(lab, CLEAN, "")
    corrupted_a = server_analysis(lab, CORRUPTED, "")

    # no clean text yet: the tab says so
    from_menu(page, 1, "Patch the clean text into the selection")
    view = page.locator(".ls-patch-view")
    view.locator(".ls-patch-status.ls-error", has_text="No clean text yet").wait_for()

    from_menu(page, 0, "Use the selection as the clean text")
    from_menu(page, 1, "Patch the clean text into the selection")
    page.wait_for_selector('.ls-patch-view[data-state="ready"], .ls-patch-view[data-state="error"]')
    # the defaults: the clean text's top-1 next token vs the corrupted's (another where they agree)
    assert view.locator(".ls-patch-target").input_value()
    assert "x·=·'cat'" in view.locator('[data-side="clean"]').text_content()
    assert "y·=·'cat'" in view.locator('[data-side="corrupted"]').text_content()
    # the corrupted text is the current analysis (no context), so a cell's patch shows inline
    page.wait_for_selector(".jp-Notebook .jp-Cell:nth-child(2) .ls-token")

    # target "x" vs baseline "y", typed
    view.locator(".ls-patch-target").fill("x")
    view.locator(".ls-patch-baseline").fill("y")
    view.locator(".ls-patch-baseline").press("Enter")
    page.wait_for_function(
        """() => { const v = document.querySelector('.ls-patch-view');
            return v.dataset.state === 'ready'
                && v.querySelector('.ls-patch-values').textContent.includes('logit(x) − logit(y)'); }"""
    )
    target, baseline = int(clean_a["tokens"]["ids"][0]), int(corrupted_a["tokens"]["ids"][0])
    server = server_patch(lab, {"clean": CLEAN, "corrupted": CORRUPTED, "target": target, "baseline": baseline})
    assert check_grid(page, server) > 0
    clean_value = float(view.locator('.ls-patch-value[data-which="clean"]').get_attribute("data-value"))
    corrupted_value = float(view.locator('.ls-patch-value[data-which="corrupted"]').get_attribute("data-value"))
    assert clean_value == pytest.approx(server["clean_value"], abs=1e-4)
    assert corrupted_value == pytest.approx(server["corrupted_value"], abs=1e-4)
    assert view.locator('.ls-legend[data-legend="restored"]').count() == 1
    # "Copy as code": the patch snippet of the request shown
    copy = view.locator(".ls-copy-code")
    copy.click()
    assert copy.get_attribute("data-snippet") == "patchSnippet"
    request = json.loads(copy.get_attribute("data-request"))
    asked = (request["clean"], request["corrupted"], request["target"], request["baseline"])
    assert asked == (CLEAN, CORRUPTED, target, baseline)
    # the corrupted text's tokens label the columns
    heads_table = view.locator('.ls-patch-grid[data-component="head"]')
    labels = heads_table.locator("th.ls-patch-token").all_text_contents()
    starts, ends = server["corrupted"]["start_utf16"].tolist(), server["corrupted"]["end_utf16"].tolist()
    visible = [CORRUPTED[s:e].replace(" ", "·").replace("\n", "↵") for s, e in zip(starts, ends)]
    assert labels == visible

    # the strongest head cell, applied by keyboard (focus, Enter): outlined, Δ inline
    heads = server["heads"]
    layer, head, p = (int(i) for i in np.unravel_index(np.nanargmax(np.abs(heads)), heads.shape))
    cell = view.locator(f'td.ls-patch-cell[data-component="head"][data-layer="{layer}"][data-head="{head}"][data-position="{p}"]')
    cell.focus()
    cell.press("Enter")
    page.wait_for_selector(f'.ls-patch-view td.ls-patch-applied[data-key="L{layer}.H{head} @ {p}"]')
    applied = view.locator("td.ls-patch-applied")
    assert applied.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    assert applied.count() == 1
    page.wait_for_selector('.ls-iv[data-op="patch"]')
    page.wait_for_function("() => document.querySelector('.ls-iv-status')?.dataset.state === 'done'")
    page.wait_for_selector(".jp-Notebook .ls-token-delta")
    check_inline(
        page, lab, {"component": "head", "layer": layer, "index": head, "op": "patch", "source": CLEAN, "positions": [p]}
    )

    # the residual stream at the first token ("y" <- "x") by click: it replaces the head's patch, later tokens change
    view.locator('td.ls-patch-cell[data-component="resid"][data-layer="0"][data-position="0"]').click()
    page.wait_for_selector('.ls-patch-view td.ls-patch-applied[data-key="L0.RESID @ 0"]')
    page.wait_for_function(
        """() => document.querySelector('.ls-iv-status')?.dataset.state === 'done'
            && document.querySelectorAll('.ls-iv').length === 1
            && document.querySelector('.ls-iv-status').textContent.includes('RESID')"""
    )
    changed = check_inline(
        page, lab, {"component": "resid", "layer": 0, "index": None, "op": "patch", "source": CLEAN, "positions": [0]}
    )
    assert changed > 0
    shot(page, "patching-light")
    set_theme(page, light=False)
    shot(page, "patching-dark")
    set_theme(page, light=True)

    # a text of another token count: the server's refusal, said in the tab
    from_menu(page, 2, "Patch the clean text into the selection")
    view.locator(".ls-patch-status.ls-error", has_text="same token count").wait_for()
    assert view.locator("td.ls-patch-cell").count() == 0
    shot(page, "patching-refused")
