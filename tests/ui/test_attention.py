"""The panel's attention section and attention mode, against POST /lenscope/api/attention."""

from __future__ import annotations

import itertools
import json
import re
import urllib.request
from typing import Any

import numpy as np
import pytest

from lenscope.wire_codec import decode_json
from tests.ui.conftest import ARTIFACTS, Lab, shot
from tests.ui.test_inline import open_in_lab


def server_attention(lab: Lab, text: str, context: str) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{lab.url}lenscope/api/attention",
        data=json.dumps({"text": text, "context": context, "k": 16}).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=120).read())


def alpha(css: str) -> float:
    """The alpha of a computed colour: rgba(r, g, b, a), or rgb(...) for 1."""
    m = re.match(r"rgba?\(([^)]*)\)", css)
    assert m, css
    parts = [float(x) for x in m.group(1).split(",")]
    return parts[3] if len(parts) == 4 else 1.0


def marks(page: Any) -> dict[int, tuple[float, float]]:
    """Text token index -> (weight, background alpha) of the attention layer's coloured marks in the notebook."""
    js = """() => Array.from(document.querySelectorAll('.jp-Notebook .ls-attn[style]')).map(e =>
        [Number(e.dataset.lsToken), Number(e.dataset.weight), getComputedStyle(e).backgroundColor])"""
    return {i: (w, alpha(bg)) for i, w, bg in page.evaluate(js)}


def hover_token(page: Any, index: int) -> None:
    page.locator(f'.jp-Notebook .ls-token[data-ls-token="{index}"]').first.hover()
    page.wait_for_selector(f'.jp-Notebook .ls-attn-query[data-ls-token="{index}"]')


def check_marks(page: Any, server: dict[str, Any], head: int, index: int, texts: list[str]) -> None:
    sources = server["sources"][0, head, index]
    weights = server["weights"][0, head, index].astype(np.float64)
    expected = {int(s): float(w) for s, w in zip(sources, weights) if s >= 0 and w > 0 and texts[s].strip("\n")}
    shown = marks(page)
    # exactly the text sources the server names for this head and token, with its weights
    assert set(shown) == set(expected), (sorted(shown), sorted(expected))
    for i, (w, _) in shown.items():
        assert w == pytest.approx(expected[i], abs=1e-3), i
    # alpha = weight / the row's largest: the same order as the weights, the largest opaque
    ranked = sorted(shown.values(), key=lambda wa: -wa[0])
    assert ranked[0][1] == pytest.approx(1.0, abs=0.01)
    for (w, a), (w2, a2) in itertools.pairwise(ranked):
        assert a >= a2 - 1e-3 and a2 == pytest.approx(a * w2 / w, abs=0.01)


def test_attention_section_and_mode_in_a_notebook_cell(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.ipynb")
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Alt+Shift+L")
    page.wait_for_selector(".jp-Notebook .ls-token")
    nb = json.loads((lab.root / "tour.ipynb").read_text(encoding="utf-8"))
    text = "".join(nb["cells"][2]["source"])
    context = "".join(nb["cells"][1]["source"]) + "\n\n"
    server = server_attention(lab, text, context)
    starts, ends = server["tokens"]["start_utf16"].tolist(), server["tokens"]["end_utf16"].tolist()
    texts = [text[s:e] for s, e in zip(starts, ends)]

    # the section: closed until asked; opening it fetches the attention and shows the heads
    panel = page.locator("#lenscope-panel")
    section = panel.locator(".ls-attention")
    section.locator(".ls-attention-summary").click()
    chips = section.locator(".ls-head-chip")
    chips.first.wait_for()
    assert chips.count() == server["n_heads"]
    assert "tour.ipynb cell 3" in section.locator(".ls-attention-title").text_content()
    share = server["positional_share"][0]
    for h in range(server["n_heads"]):
        label = chips.nth(h).text_content()
        assert label == f"H{h}{round(float(share[h]) * 100)}% pos", label

    # head 3 alone: add it, take head 0 away
    head = 3
    chips.nth(head).click()
    chips.nth(0).click()
    assert [chips.nth(h).get_attribute("aria-pressed") for h in range(chips.count())].count("true") == 1
    assert chips.nth(head).get_attribute("aria-pressed") == "true"

    # attention mode on (the section's button); hovering a token colours its sources, no tooltip
    section.locator(".ls-attention-mode").click()
    assert section.locator(".ls-attention-mode").get_attribute("aria-pressed") == "true"
    index = sorted(i for i, t in enumerate(texts) if t.strip())[20]
    page.mouse.move(0, 0)
    hover_token(page, index)
    check_marks(page, server, head, index, texts)
    assert page.locator(".jp-Notebook .cm-editor.ls-attending").count() == 1
    page.wait_for_timeout(500)
    assert page.locator(".ls-tooltip").count() == 0  # the hover tooltip keeps out of the way
    # the panel: the BOS weight as text, the scale said, the top sources listed with their weights
    row = dict(zip(server["sources"][0, head, index].tolist(), server["weights"][0, head, index].tolist()))
    bos = f"BOS: {row[-1]:.2f}" if -1 in row else "BOS: below the 16 strongest"
    assert section.locator(".ls-attention-bos").text_content() == bos
    assert "scaled by the row’s largest weight" in section.locator(".ls-attention-legend").text_content()
    listed = section.locator(".ls-attention-source")
    best = max((s for s in row if s >= 0), key=lambda s: row[s])
    assert listed.first.get_attribute("data-token") == str(best)
    assert listed.first.locator(".ls-attention-weight").text_content() == f"{row[best]:.2f}"
    canvas = section.locator(".ls-attention-map")
    assert canvas.is_visible() and canvas.bounding_box()["width"] > 150
    shot(page, "attention-light")
    section.screenshot(path=str(ARTIFACTS / "attention-panel-light.png"))

    # another token: the colours follow
    other = sorted(i for i, t in enumerate(texts) if t.strip())[30]
    hover_token(page, other)
    check_marks(page, server, head, other, texts)

    # off (Alt+Shift+A in the editor): the colours are gone, the tooltip is back
    cell.locator(".cm-content").click()
    page.keyboard.press("Alt+Shift+A")
    page.wait_for_function("() => !document.querySelector('.jp-Notebook .ls-attn')")
    assert section.locator(".ls-attention-mode").get_attribute("aria-pressed") == "false"
    assert page.locator(".jp-Notebook .cm-editor.ls-attending").count() == 0
    page.mouse.move(0, 0)
    page.locator(f'.jp-Notebook .ls-token[data-ls-token="{index}"]').first.hover()
    page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"]')

    # dark theme, on again with the keyboard: the caret's token is the query
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.mouse.move(0, 0)
    cell.locator(f'.ls-token[data-ls-token="{index}"]').first.click()
    page.keyboard.press("Alt+Shift+A")
    page.wait_for_selector(".jp-Notebook .ls-attn-query")
    page.mouse.move(0, 0)
    hover_token(page, index)
    check_marks(page, server, head, index, texts)
    shot(page, "attention-dark")
    section.screenshot(path=str(ARTIFACTS / "attention-panel-dark.png"))
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
