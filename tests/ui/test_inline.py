"""The frontend in headless Chromium against a real JupyterLab with the default model."""

from __future__ import annotations

import json
import time
from typing import Any

from lenscope.wire_codec import decode_json
from tests.ui.conftest import ARTIFACTS, Lab, shot

ANALYZE = "lenscope: Analyze selection"


def open_in_lab(page: Any, lab: Lab, path: str) -> None:
    page.goto(f"{lab.url}lab/tree/{path}?reset&token={lab.token}")  # reset: no tabs restored from earlier tests
    page.wait_for_selector(".jp-LabShell", state="attached")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('lenscope:analyze-selection')")


def server_analysis(lab: Lab, text: str, context: str, model: str | None = None) -> dict[str, Any]:
    import urllib.request

    req = urllib.request.Request(
        f"{lab.url}lenscope/api/analyze",
        data=json.dumps({"text": text, "context": context, "model": model}).encode(),
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    return decode_json(urllib.request.urlopen(req, timeout=120).read())


def select_lines(page: Any, editor: str, first: int, last: int) -> None:
    """Click line ``first`` (1-based), then extend the selection to the end of line ``last``."""
    page.locator(f"{editor} .cm-line").nth(first - 1).click()
    page.keyboard.press("Home")
    page.keyboard.press("Home")  # twice: the first may stop at the indentation
    for _ in range(last - first):
        page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Shift+End")


def decorated(page: Any) -> list[tuple[int, str, int]]:
    """(token index, text, line number) of every token decoration in document order."""
    js = """() => Array.from(document.querySelectorAll('.ls-token')).map(el => {
        const line = el.closest('.cm-line');
        const lines = Array.from(line.parentElement.querySelectorAll(':scope > .cm-line'));
        return [Number(el.dataset.lsToken), el.textContent, lines.indexOf(line) + 1];
    })"""
    return [tuple(x) for x in page.evaluate(js)]


def hover_and_read_tooltip(page: Any, index: int) -> list[int]:
    page.mouse.move(0, 0)
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.hover()
    tooltip = page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"]')
    return [int(r.get_attribute("data-token-id")) for r in tooltip.query_selector_all(".ls-topk-row")]


def select_tour_lines(page: Any, lab: Lab) -> tuple[str, str, str]:
    """Open tour.py and select lines 8-15: (the editor's selector, the selected text, the text before it)."""
    open_in_lab(page, lab, "tour.py")
    editor = ".jp-FileEditor"
    page.wait_for_selector(f"{editor} .cm-content")
    lines = (lab.root / "tour.py").read_text(encoding="utf-8").split("\n")
    select_lines(page, editor, 8, 15)
    return editor, "\n".join(lines[7:15]), "\n".join(lines[:7]) + "\n"


def open_why_in_tour(page: Any, lab: Lab) -> tuple[str, str, dict[str, Any], list[str], int]:
    """Analyze tour.py's lines 8-15, then open the why view of a token's prediction (one with text,
    past the first dozen) with Alt+Shift+W: (selected, context, the server's analysis, its token
    texts, the token)."""
    _, selected, context = select_tour_lines(page, lab)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    analysis = server_analysis(lab, selected, context)
    starts, ends = analysis["tokens"]["start_utf16"].tolist(), analysis["tokens"]["end_utf16"].tolist()
    texts = [selected[s:e] for s, e in zip(starts, ends)]
    index = next(i for i, t in enumerate(texts) if t.strip() and 12 <= i < len(texts) - 1)
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.click()
    page.keyboard.press("Alt+Shift+W")
    page.wait_for_selector(f'.ls-tooltip-pinned[data-ls-token="{index}"] .ls-why[data-state="ready"]')
    return selected, context, analysis, texts, index


def run_corpus_comparison(page: Any, lab: Lab) -> str:
    """From tour.py, compare the default model with the attention-only one over the workspace,
    through the panel; wait for the comparison tab to be done. Its job id."""
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    page.locator("#lenscope-panel .ls-compare-select").select_option("lenscope-attn-only-1l")
    page.locator("#lenscope-panel .ls-compare-run").click()
    compare = page.wait_for_selector(".ls-compare-view[data-job-state='done']", timeout=180_000)
    return str(compare.get_attribute("data-job"))


def compare_tour_selection(page: Any, lab: Lab) -> tuple[str, str, dict[str, Any], int]:
    """tour.py's lines 18-31 analyzed with the attention-only model as B: (selected, context, A's
    analysis from the server, a token with text past the first dozen), the mouse moved away."""
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    page.locator("#lenscope-panel .ls-compare-select").select_option("lenscope-attn-only-1l")
    select_lines(page, ".jp-FileEditor", 18, 31)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    source = (lab.root / "tour.py").read_text(encoding="utf-8").split("\n")
    selected, context = "\n".join(source[17:31]), "\n".join(source[:17]) + "\n"
    a = server_analysis(lab, selected, context)
    starts, ends = a["tokens"]["start_utf16"].tolist(), a["tokens"]["end_utf16"].tolist()
    index = sorted(i for i, (s, e) in enumerate(zip(starts, ends)) if selected[s:e].strip())[12]
    page.mouse.move(0, 0)
    return selected, context, a, index


def test_file_editor_selection_from_the_context_menu(page: Any, lab: Lab) -> None:
    editor, selected, context = select_tour_lines(page, lab)

    page.locator(f"{editor} .cm-line").nth(9).click(button="right")  # inside the selection
    page.get_by_role("menuitem", name=ANALYZE).click()
    page.wait_for_selector(".ls-token")

    server = server_analysis(lab, selected, context)
    starts, ends = server["tokens"]["start_utf16"].tolist(), server["tokens"]["end_utf16"].tolist()
    texts = [selected[s:e] for s, e in zip(starts, ends)]
    marks = decorated(page)
    # exactly the selected tokens: every token with visible text is decorated, nothing else is
    visible_tokens = {i for i, t in enumerate(texts) if t.replace("\n", "")}
    assert {i for i, _, _ in marks} == visible_tokens
    assert "".join(t for _, t, _ in marks) == selected.replace("\n", "")
    assert {line for _, _, line in marks} <= set(range(8, 16))

    # the tooltip's top-10 is the server's top-10 after that token
    index = sorted(visible_tokens)[6]
    shown = hover_and_read_tooltip(page, index)
    assert shown == server["predictions"]["top_ids"][index + 1].tolist()
    assert len(shown) == 10
    shot(page, "inline-tooltip-light")
    # the selection still covers the analyzed text: drawn as an outline, it does not wash out the colours
    fills = page.locator(".jp-FileEditor .cm-selectionBackground").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert fills and set(fills) == {"rgba(0, 0, 0, 0)"}, fills
    panel = page.locator("#lenscope-panel")
    assert panel.get_attribute("data-state") == "ready"
    assert panel.locator(".ls-flow-token").count() == len(texts)
    page.locator("#lenscope-panel").screenshot(path=str(ARTIFACTS / "panel-light.png"))


def test_notebook_cell_with_the_keyboard_shortcut(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.ipynb")
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Alt+Shift+L")
    page.wait_for_selector(".jp-Notebook .ls-token")
    nb = json.loads((lab.root / "tour.ipynb").read_text(encoding="utf-8"))
    text = "".join(nb["cells"][2]["source"])
    context = "".join(nb["cells"][1]["source"]) + "\n\n"  # earlier code cells are the context
    server = server_analysis(lab, text, context)
    starts, ends = server["tokens"]["start_utf16"].tolist(), server["tokens"]["end_utf16"].tolist()
    texts = [text[s:e] for s, e in zip(starts, ends)]
    assert {i for i, _, _ in decorated(page)} == {i for i, t in enumerate(texts) if t.replace("\n", "")}
    index = sorted(i for i, t in enumerate(texts) if t.strip())[8]
    assert hover_and_read_tooltip(page, index) == server["predictions"]["top_ids"][index + 1].tolist()
    shot(page, "notebook-tooltip")


def test_annotations_follow_edits_and_clear(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    editor = ".jp-FileEditor"
    page.wait_for_selector(f"{editor} .cm-content")
    select_lines(page, editor, 18, 33)  # class Stack
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    before = decorated(page)
    tokens_before = {i for i, _, _ in before}
    assert min(line for _, _, line in before) == 18

    # a new line above the annotated text: every decoration moves down one line
    page.locator(f"{editor} .cm-line").nth(4).click()
    page.keyboard.press("End")
    page.keyboard.type("\n# a new line")
    moved = decorated(page)
    assert [(i, t) for i, t, _ in moved] == [(i, t) for i, t, _ in before]
    assert [line for _, _, line in moved] == [line + 1 for _, _, line in before]

    # typing inside a token removes that token's annotation only
    target = next((i, t) for i, t, _ in moved if len(t.strip()) >= 5)
    box = page.locator(f'.ls-token[data-ls-token="{target[0]}"]').first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.type("Z")
    after_edit = {i for i, _, _ in decorated(page)}
    assert after_edit == tokens_before - {target[0]}

    # deleting the annotated text removes what was on it
    select_lines(page, editor, 19, 34)
    page.keyboard.press("Delete")
    assert decorated(page) == []

    # and the clear command removes annotations everywhere
    page.keyboard.press("Control+z")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:clear-annotations')")
    assert page.locator(".ls-token").count() == 0
    assert page.locator("#lenscope-panel").get_attribute("data-state") == "empty"


def test_neuron_click_and_dark_theme(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    editor = ".jp-FileEditor"
    page.wait_for_selector(f"{editor} .cm-content")
    select_lines(page, editor, 8, 15)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    chip = page.locator("#lenscope-panel .ls-neuron-list .ls-neuron-chip").first
    layer, index = int(chip.get_attribute("data-layer")), int(chip.get_attribute("data-index"))
    chip.click()
    page.wait_for_selector(".ls-token-neuron")
    section = page.locator("#lenscope-panel .ls-neuron")
    page.wait_for_selector('#lenscope-panel .ls-legend[data-legend="activation"]')  # the legend says what the colours are
    assert section.get_attribute("data-layer") == str(layer) and section.get_attribute("data-index") == str(index)
    flow = page.locator("#lenscope-panel .ls-tokens .ls-flow-token")
    acts = [float(x) for x in flow.evaluate_all("els => els.map(e => e.dataset.activation)")]
    assert max(acts) > 0
    # the text's colours are the neuron's: the panel's strongest token is coloured, a negative one is not
    colours = flow.evaluate_all("els => els.map(e => e.style.backgroundColor)")
    assert colours[acts.index(max(acts))].startswith("rgba(40, 120, 230")
    assert all(c in ("transparent", "") for c, a in zip(colours, acts) if a <= 0)
    # its card opened as a main-area tab, titled by neuron and model, from the shipped index
    card = page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{layer}"][data-index="{index}"]')
    tab = page.locator(".lm-DockPanel .lm-TabBar-tab.lm-mod-current", has_text=f"L{layer}.N{index}")
    assert "lenscope-gelu-1l" in tab.first.inner_text()
    assert card.query_selector(".ls-axis-x") and card.query_selector(".ls-axis-y")  # the histogram has axes
    assert card.query_selector('.ls-legend[data-legend="activation"] .ls-gradient')  # and a colour scale
    shot(page, "card-tab-light")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_selector('body[data-jp-theme-light="false"]', state="attached")
    time.sleep(0.5)
    shot(page, "inline-neuron-dark")
    hover_and_read_tooltip(page, 3)
    shot(page, "tooltip-dark")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_selector('body[data-jp-theme-light="true"]', state="attached")

    # an example whose file is not in this workspace (the shipped index read the stdlib) opens the
    # text the index stored, read-only, with the example's token highlighted; no 404
    link = card.query_selector('.ls-example-file[data-available="false"]')
    assert link, "the shipped index's examples should be outside the workspace"
    example = link.evaluate_handle("a => a.closest('.ls-example')")
    peak = example.query_selector(".ls-max").inner_text().replace("\u00b7", " ").replace("\u21b5", "\n").replace("\u2192", "\t")
    file = link.get_attribute("data-file")
    link.click()
    stored = page.wait_for_selector(f'.ls-stored-view[data-path="{file}"] .ls-stored-max')
    assert stored.inner_text() == peak
    shot(page, "stored-text")


def test_thousand_token_selection_timing(page: Any, lab: Lab) -> None:
    """Command to decorations visible for ~1,000 tokens, next to the server's own time.

    Recorded (test-artifacts/ui-timing.json, benchmarks/RESULTS.md), not asserted: timings are
    benchmarks, not tests. What is asserted is that all the tokens got their decorations.
    """
    from benchmarks.common import text_of_tokens
    from transformers import AutoTokenizer

    from lenscope.models.registry import DEFAULT_DIR

    text = text_of_tokens(AutoTokenizer.from_pretrained(str(DEFAULT_DIR / "tokenizer")), 1000)
    (lab.root / "big.py").write_text(text, encoding="utf-8")
    open_in_lab(page, lab, "big.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    units = len(text.encode("utf-16-le")) // 2
    view = "window.jupyterapp.shell.currentWidget.content.editor.editor"
    page.wait_for_function(f"() => {view}.state.doc.length === {units}")  # the whole file is loaded
    page.locator(".jp-FileEditor .cm-content").click()
    page.keyboard.press("Control+a")
    page.wait_for_function(f"() => {view}.state.selection.main.to - {view}.state.selection.main.from === {units}")
    runs = []
    panel = page.locator("#lenscope-panel")
    for attempt in range(5):  # the first is computed; the others come from the server's cache (take their median)
        done = int(panel.get_attribute("data-runs") or 0)
        page.evaluate("() => window.jupyterapp.commands.execute('lenscope:clear-annotations')")
        page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
        # the panel writes the figure in the frame after the decorations, then counts the run
        page.wait_for_function(f"() => Number(document.querySelector('#lenscope-panel').dataset.runs || 0) > {done}")
        client_ms, server_ms = float(panel.get_attribute("data-client-ms")), float(panel.get_attribute("data-server-ms"))
        runs.append(
            {
                "attempt": attempt,
                "command_to_decorations_ms": client_ms,
                "server_ms": server_ms,
                "frontend_added_ms": client_ms - server_ms,
            }
        )
    rendered = page.evaluate("() => new Set(Array.from(document.querySelectorAll('.ls-token')).map(e => e.dataset.lsToken)).size")
    assert rendered > 100  # CodeMirror renders only the lines in and near view: not all 1,000
    assert page.locator("#lenscope-panel .ls-flow-token").count() == 1000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "ui-timing.json").write_text(json.dumps(runs, indent=2))
    print("\n" + json.dumps(runs))


def test_build_index_from_the_panel_then_open_a_neuron_card(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    page.locator("#lenscope-panel .ls-build-index").click()
    page.wait_for_selector('#lenscope-panel .ls-index[data-job-state="done"]', timeout=180_000)
    progress = page.locator("#lenscope-panel .ls-index .ls-progress")
    assert float(progress.get_attribute("value") or 0) == float(progress.get_attribute("max") or -1) > 0
    manifest = json.loads((lab.root / ".lenscope" / "indexes" / "workspace" / "manifest.json").read_text())
    assert manifest["complete"] and {f["path"] for f in manifest["files"]} >= {"tour.py", "README.md"}
    shot(page, "index-built")
    # the shipped index (more tokens) stays the default: the workspace index is picked to read it
    page.locator("#lenscope-panel select.ls-index-select").select_option("workspace")

    select_lines(page, ".jp-FileEditor", 8, 15)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    page.mouse.move(0, 0)
    page.locator('.ls-token[data-ls-token="4"]').first.hover()
    chip = page.wait_for_selector(".ls-tooltip .ls-neuron-chip")
    layer, index = chip.get_attribute("data-layer"), chip.get_attribute("data-index")
    chip.dispatch_event("mousedown")
    card = page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{layer}"][data-index="{index}"]')
    examples = card.query_selector_all(".ls-example")
    assert examples, "the card shows no examples"
    links = [e.query_selector(".ls-example-file") for e in examples]
    assert {a.get_attribute("data-file") for a in links} <= {f["path"] for f in manifest["files"]}
    assert all(a.get_attribute("data-available") == "true" for a in links)  # all in this workspace
    assert card.query_selector(".ls-max") and len(card.query_selector_all(".ls-bar")) == 66
    page.locator(".ls-card-view").first.screenshot(path=str(ARTIFACTS / "neuron-card.png"))
    shot(page, "neuron-card-full")
    # an example's file link opens that file in the editor
    first = links[0]
    target = first.get_attribute("data-file")
    first.click()
    current = "window.jupyterapp.shell.currentWidget"
    page.wait_for_function(f"() => {current} && {current}.context && {current}.context.path === {json.dumps(target)}")


def test_search_neurons_by_token_opens_a_card(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    search = page.locator("#lenscope-panel .ls-search")
    search.fill("self")
    search.press("Enter")
    chip = page.locator("#lenscope-panel .ls-search-results .ls-neuron-chip").first
    chip.wait_for()
    layer, index = chip.get_attribute("data-layer"), chip.get_attribute("data-index")
    chip.click()
    card = page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{layer}"][data-index="{index}"]')
    maxima = [m.inner_text().strip("·") for m in card.query_selector_all(".ls-max")]  # whitespace shown as ·
    assert "self" in maxima, maxima  # some top example of that neuron peaks on "self"


def test_compare_two_models_on_a_selection(page: Any, lab: Lab) -> None:
    selected, context, a, index = compare_tour_selection(page, lab)
    b = server_analysis(lab, selected, context, model="lenscope-attn-only-1l")
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.hover()
    tooltip = page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"]')
    sides = tooltip.query_selector_all(".ls-compare-side")
    assert [s.get_attribute("data-model") for s in sides] == ["lenscope-gelu-1l", "lenscope-attn-only-1l"]
    for side, server in zip(sides, (a, b)):
        ids = [int(r.get_attribute("data-token-id")) for r in side.query_selector_all(".ls-topk-row")]
        assert ids == server["predictions"]["top_ids"][index + 1].tolist()
    # each token is coloured by the sign of max(lp_A, -6) - max(lp_B, -6): green where A wins, purple where B does
    lp_a, lp_b = a["predictions"]["actual_logprob"], b["predictions"]["actual_logprob"]
    js = "() => Object.fromEntries(Array.from(document.querySelectorAll('.ls-token'))"
    js += ".map(e => [e.dataset.lsToken, e.style.backgroundColor]))"
    colours = page.evaluate(js)
    for key, colour in colours.items():
        i = int(key)
        diff = max(float(lp_a[i]), -6.0) - max(float(lp_b[i]), -6.0)
        if abs(diff) > 0.05:
            assert colour.startswith("rgba(30, 160, 80" if diff > 0 else "rgba(150, 60, 200"), (i, diff, colour)
    # the panel's token view shows the same diverging colours, under the diverging legend
    assert page.locator('#lenscope-panel .ls-legend[data-legend="diff"]').count() == 1
    panel_colours = page.locator("#lenscope-panel .ls-tokens .ls-flow-token").evaluate_all(
        "els => els.map(e => e.style.backgroundColor)"
    )
    for i, colour in enumerate(panel_colours):
        if str(i) in colours:
            assert colour == colours[str(i)], (i, colour, colours[str(i)])
    shot(page, "compare-tooltip")


def test_compare_over_the_workspace_and_open_a_result(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    page.locator("#lenscope-panel .ls-compare-select").select_option("lenscope-attn-only-1l")
    page.locator("#lenscope-panel .ls-compare-run").click()
    page.wait_for_selector('#lenscope-panel .ls-compare-corpus[data-job-state="done"]', timeout=180_000)
    rows = page.locator(".ls-compare-view .ls-compare-row")  # a main-area tab, opened when done
    page.locator("#lenscope-panel .ls-open-comparison").click()  # and brought to the front (earlier tabs may cover it)
    rows.first.wait_for()
    assert rows.count() > 10
    diffs = [float(x) for x in rows.locator("td.ls-num:first-child").all_inner_texts()]
    assert diffs == sorted(diffs, reverse=True)
    first = rows.first
    path, line = first.get_attribute("data-path"), int(first.get_attribute("data-line") or 0)
    shot(page, "compare-corpus")
    first.locator("td").first.click()  # not the middle: A's neuron chips open their cards
    # the row's file is open and in front (an editor of an earlier test may hold the same file)
    page.wait_for_function(
        "p => Array.from(window.jupyterapp.shell.widgets('main')).some(w => w.context && w.context.path === p && w.isVisible)",
        arg=path,
    )
    page.wait_for_selector(".jp-FileEditor .ls-token, .jp-Notebook .ls-token")
    lines = {ln for _, _, ln in decorated(page)}
    assert line in lines  # the row's line is analyzed, compared, inline
    colours = page.locator(".ls-token").evaluate_all("els => els.map(e => e.style.backgroundColor)")
    assert any(c.startswith("rgba(30, 160, 80") for c in colours)  # green: A beats B there
    shot(page, "compare-corpus-opened")
