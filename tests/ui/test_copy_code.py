"""The "Copy as code" buttons in the analysis view and the why view: the clipboard holds exactly the cell
`lib/snippets.js` makes for the request the view made (text, context, model, position), and
the why view's cell, run, prints the value the view shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_copy_as_code import snippet
from tests.ui.conftest import Lab, shot
from tests.ui.test_inline import select_tour_lines, server_analysis


def copied(page: Any, button: str) -> tuple[str, str, dict[str, Any]]:
    """Press a "Copy as code" button: (the clipboard, the snippet's name, its request), as the button says."""
    before = page.evaluate(f"() => Number(document.querySelector({json.dumps(button)}).dataset.copied ?? 0)")
    page.locator(button).click()
    page.wait_for_function(f"() => Number(document.querySelector({json.dumps(button)}).dataset.copied ?? 0) > {before}")
    data = page.evaluate(f"() => ({{...document.querySelector({json.dumps(button)}).dataset}})")
    return page.evaluate("() => navigator.clipboard.readText()"), data["snippet"], json.loads(data["request"])


def test_copy_as_code_in_the_analysis_and_the_why_view(page: Any, lab: Lab, tmp_path: Path) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _, selected, context = select_tour_lines(page, lab)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    analysis = server_analysis(lab, selected, context)

    code, kind, request = copied(page, "#lenscope-panel .ls-analysis-code")
    assert kind == "analysisSnippet"
    assert (request["text"], request["context"], request["model"]) == (selected, context, analysis["model"])
    assert request["top_k"] == analysis["predictions"]["top_ids"].shape[1]
    assert code == snippet(kind, request, tmp_path)
    assert "model = load_model(MODEL)" in code

    # the why view of a token's prediction
    starts, ends = analysis["tokens"]["start_utf16"].tolist(), analysis["tokens"]["end_utf16"].tolist()
    texts = [selected[s:e] for s, e in zip(starts, ends)]
    index = next(i for i, t in enumerate(texts) if t.strip() and 12 <= i < len(texts) - 1)
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.click()
    page.keyboard.press("Alt+Shift+W")
    page.wait_for_selector(f'.ls-tooltip-pinned[data-ls-token="{index}"] .ls-why[data-state="ready"]')
    shown = page.evaluate("() => Number(document.querySelector('.ls-tooltip-pinned .ls-why-body').dataset.value)")
    shot(page, "copy-code-why")
    code, kind, request = copied(page, ".ls-tooltip-pinned .ls-why-code")
    assert kind == "attributionSnippet"
    assert (request["text"], request["context"], request["position"], request["target"]) == (selected, context, index, None)
    assert code == snippet(kind, request, tmp_path)
    # and the cell, run, prints what the view shows
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("LENSCOPE_RESULT "))
    assert json.loads(line.split(" ", 1)[1])["value"] == pytest.approx(shown, abs=1e-4)
