"""Main-area tabs, the keyboard path, and the defects a new user met (issue 10)."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.ui.conftest import Lab, shot
from tests.ui.test_inline import decorated, open_in_lab, run_corpus_comparison, select_lines, server_analysis

CURRENT = "window.jupyterapp.shell.currentWidget"


def test_card_and_comparison_side_by_side_restored_on_reload(page: Any, lab: Lab) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    job = run_corpus_comparison(page, lab)
    page.evaluate(
        "() => window.jupyterapp.commands.execute('lenscope:open-neuron', {model: 'lenscope-gelu-1l', layer: 0, index: 5})"
    )
    page.wait_for_selector('.ls-card-view .ls-card[data-layer="0"][data-index="5"]')
    # both at once, each titled by what it is about
    assert page.locator(".ls-card-view").is_visible() and page.locator(".ls-compare-view").is_visible()
    titles = page.locator(".lm-DockPanel .lm-TabBar-tab .lm-TabBar-tabLabel").all_inner_texts()
    assert "L0.N5 · lenscope-gelu-1l" in titles
    assert any(t.startswith("lenscope-gelu-1l vs lenscope-attn-only-1l · ") for t in titles), titles
    # full width: the highlighted token of every visible row is inside the tab, not clipped
    view = page.locator(".ls-compare-view[data-job-state='done']").first.bounding_box()
    for mark in page.locator(".ls-compare-view .ls-compare-token").all()[:10]:
        box = mark.bounding_box()
        assert box and box["x"] + box["width"] <= view["x"] + view["width"]
    # exports download through lenscope's own route (a dot folder is not served by Jupyter)
    links = page.locator(".ls-compare-view a.ls-export")
    assert sorted(links.evaluate_all("els => els.map(e => e.dataset.format)")) == ["csv", "jsonl"]
    csv = page.locator('.ls-compare-view a.ls-export[data-format="csv"]')
    response = page.request.get(csv.get_attribute("href"))
    assert response.status == 200
    assert "attachment" in response.headers.get("content-disposition", "")
    assert response.text().splitlines()[0].count(",") >= 5
    shot(page, "tabs-side-by-side-light")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_selector('body[data-jp-theme-light="false"]', state="attached")
    time.sleep(0.5)
    shot(page, "tabs-side-by-side-dark")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_selector('body[data-jp-theme-light="true"]', state="attached")

    time.sleep(1.5)  # the layout restorer saves the workspace after a debounce
    page.goto(f"{lab.url}lab/tree/tour.py?token={lab.token}")  # no reset: the layout comes back
    page.wait_for_selector('.ls-card-view .ls-card[data-layer="0"][data-index="5"]')
    page.wait_for_selector(f".ls-compare-view[data-job='{job}'][data-job-state='done']")
    assert page.locator(".ls-card-view").is_visible() and page.locator(".ls-compare-view").is_visible()
    assert page.locator(".ls-compare-view .ls-compare-row").count() > 10
    shot(page, "tabs-restored")

    # the card copies as JSON (its toolbar button)
    page.locator(".jp-MainAreaWidget .ls-copy-card").first.click()
    card = json.loads(page.evaluate("() => navigator.clipboard.readText()"))
    assert (card["model"], card["layer"], card["index"]) == ("lenscope-gelu-1l", 0, 5)

    # a notebook's row opens the notebook at its cell (cells are compared, not the JSON)
    rows = page.locator('.ls-compare-view .ls-compare-row[data-path="tour.ipynb"]')
    assert rows.count() > 0
    assert not page.locator(".ls-compare-view .ls-compare-context", has_text='"outputs"').count()
    row = rows.first
    cell = int(row.get_attribute("data-cell"))
    row.click()
    page.wait_for_function(f"() => {CURRENT} && {CURRENT}.context && {CURRENT}.context.path === 'tour.ipynb'")
    page.wait_for_function(f"() => {CURRENT}.content.activeCellIndex === {cell}")
    page.wait_for_selector(f".jp-Notebook .jp-Cell:nth-child({cell + 1}) .ls-token")  # visible: a markdown cell shows its source
    shot(page, "compare-row-notebook")


def test_keyboard_only_analyze_move_read_tooltip_open_neuron(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    page.evaluate(f"() => {CURRENT}.content.editor.focus()")  # no mouse from here on
    page.keyboard.press("Control+Home")
    for _ in range(7):
        page.keyboard.press("ArrowDown")
    for _ in range(8):
        page.keyboard.press("Shift+ArrowDown")  # lines 8-15
    page.keyboard.press("Alt+Shift+L")
    page.wait_for_selector(".ls-token")
    source = (lab.root / "tour.py").read_text(encoding="utf-8").split("\n")
    selected, context = "\n".join(source[7:15]) + "\n", "\n".join(source[:7]) + "\n"
    server = server_analysis(lab, selected, context)
    starts = server["tokens"]["start_utf16"].tolist()
    view = f"{CURRENT}.content.editor.editor"
    base = len("\n".join(source[:7])) + 1  # the document offset of line 8

    # the caret sits at the end of the selection: back to the first token, then forward token by token
    page.keyboard.press("Control+Home")
    page.keyboard.press("Alt+Shift+ArrowRight")
    head = page.evaluate(f"() => {view}.state.selection.main.head")
    first = starts.index(head - base)
    page.keyboard.press("Alt+Shift+ArrowRight")
    page.keyboard.press("Alt+Shift+ArrowRight")
    head = page.evaluate(f"() => {view}.state.selection.main.head")
    index = starts.index(head - base)
    assert index > first and {i for i, _, _ in decorated(page)} >= {first, index}

    # its tooltip, opened from the caret, is the server's top-10 after that token
    page.keyboard.press("Alt+Shift+K")
    tooltip = page.wait_for_selector(f'.ls-tooltip-pinned[data-ls-token="{index}"]')
    ids = [int(r.get_attribute("data-token-id")) for r in tooltip.query_selector_all(".ls-topk-row")]
    assert ids == server["predictions"]["top_ids"][index + 1].tolist()
    page.keyboard.press("Alt+Shift+ArrowRight")  # it follows the caret
    page.wait_for_selector(f".ls-tooltip-pinned:not([data-ls-token='{index}'])")
    shot(page, "keyboard-tooltip")

    # into the tooltip, Enter on a neuron: its card opens and the text is coloured by it
    page.keyboard.press("Alt+Shift+K")
    focused = page.evaluate("() => document.activeElement.classList.contains('ls-neuron-chip')")
    assert focused
    layer, n = page.evaluate("() => [document.activeElement.dataset.layer, document.activeElement.dataset.index]")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'.ls-card-view[data-layer="{layer}"][data-index="{n}"]')
    page.wait_for_selector(".ls-token-neuron")

    # the panel's token list is one tab stop; arrows move, Enter puts the editor's caret there
    page.evaluate("() => document.querySelector('#lenscope-panel .ls-flow-token[tabindex=\"0\"]').focus()")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.dataset.lsToken") == "2"
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => {view}.state.selection.main.head === {base + starts[2]}")


def test_copy_analysis_as_tsv(page: Any, lab: Lab) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    select_lines(page, ".jp-FileEditor", 18, 20)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector(".ls-token")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:copy-analysis')")
    text = page.evaluate("() => navigator.clipboard.readText()")
    rows = [r.split("\t") for r in text.strip().split("\n")]
    assert rows[0][:5] == ["index", "token", "logprob", "rank", "entropy"]
    assert len(rows) - 1 == page.locator("#lenscope-panel .ls-flow-token").count()


def test_unknown_default_model_is_shown_and_clearing_recovers(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    header = "document.querySelector('#lenscope-panel .ls-header').dataset"
    page.wait_for_function(f"() => {header}.model === 'lenscope-gelu-1l'")
    # as a user would: the settings editor's form, changed while the panel is open
    page.evaluate("async () => { await window.jupyterapp.commands.execute('settingeditor:open', {query: 'lenscope'}); }")
    field = page.locator("[id='jp-SettingsEditor-lenscope:plugin_defaultModel']")
    try:
        field.fill("no-such-model")
        page.wait_for_function(f"() => {header}.model === 'no-such-model'")
        assert page.evaluate(f"() => {header}.modelState") == "error"
        assert "no-such-model (unknown)" in page.locator("#lenscope-panel .ls-model-select option:checked").inner_text()
        assert "not a model this server knows" in page.locator("#lenscope-panel .ls-model-problem").inner_text()
        page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:open', {path: 'tour.py'}); }")
        select_lines(page, ".jp-FileEditor", 8, 9)
        page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
        page.wait_for_selector("#lenscope-panel[data-state='error']")
        assert page.locator(".ls-token").count() == 0  # no request went to a model that is not there
        shot(page, "unknown-model")
    finally:
        page.evaluate("async () => { await window.jupyterapp.commands.execute('settingeditor:open', {query: 'lenscope'}); }")
        field.fill("")
    # cleared: back to the server's default, without a reload
    page.wait_for_function(f"() => {header}.model === 'lenscope-gelu-1l' && {header}.modelState === 'loaded'")
    assert page.locator("#lenscope-panel .ls-model-problem").is_hidden()


def test_closing_a_file_mid_analysis_leaves_no_tokens_of_it(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    select_lines(page, ".jp-FileEditor", 25, 28)
    page.evaluate(
        """async () => {
            const done = window.jupyterapp.commands.execute('lenscope:analyze-selection');
            window.jupyterapp.shell.currentWidget.dispose();  // closed before the answer comes
            await done;
        }"""
    )
    page.wait_for_selector("#lenscope-panel[data-state='error']")
    assert "was closed" in page.locator("#lenscope-panel .ls-status").inner_text()
    assert page.locator("#lenscope-panel .ls-flow-token").count() == 0

    # and a file closed after its analysis takes the analysis with it
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:open', {path: 'tour.py'}); }")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    select_lines(page, ".jp-FileEditor", 25, 28)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:analyze-selection')")
    page.wait_for_selector("#lenscope-panel .ls-flow-token")
    page.evaluate(f"() => {CURRENT}.dispose()")
    page.wait_for_selector("#lenscope-panel[data-state='empty']")
    assert page.locator("#lenscope-panel .ls-flow-token").count() == 0
    assert page.locator("#lenscope-panel .ls-analysis-title").inner_text() == ""


def test_repeated_shortcut_aborts_superseded_requests(page: Any, lab: Lab) -> None:
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    finished: list[str] = []
    page.on("requestfinished", lambda r: finished.append(r.url) if "/lenscope/api/analyze" in r.url else None)
    select_lines(page, ".jp-FileEditor", 30, 37)
    # what six presses of the shortcut do, in one go (no answer can arrive in between, whatever the load)
    runs = page.evaluate(
        """() => {
            let n = 0;
            window.jupyterapp.commands.commandExecuted.connect((_, a) => { if (a.id === 'lenscope:analyze-selection') n++; });
            for (let i = 0; i < 6; i++) {
                window.jupyterapp.commands.execute('lenscope:analyze-selection');
            }
            return n;
        }"""
    )
    assert runs == 6
    page.wait_for_selector("#lenscope-panel[data-state='ready']")
    page.wait_for_selector(".ls-token")
    time.sleep(1)
    assert len(finished) == 1, finished  # the five superseded requests were aborted (or never sent)
    assert {ln for _, _, ln in decorated(page)} <= set(range(30, 38))


def test_cancel_shows_at_once_and_the_end_state_stays(page: Any, lab: Lab) -> None:
    # enough text that the build is still running when cancel is pressed
    (lab.root / "long.txt").write_text(("The quick brown fox jumps over the lazy dog. " * 40 + "\n") * 400, encoding="utf-8")
    try:
        open_in_lab(page, lab, "tour.py")
        page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
        section = page.locator("#lenscope-panel .ls-index")
        page.locator("#lenscope-panel .ls-build-index").click()
        page.wait_for_selector("#lenscope-panel .ls-index[data-job-state='running'] .ls-cancel:not([hidden])")
        # record every state the section shows, and when the cancel button was pressed
        page.evaluate(
            """() => {
                const section = document.querySelector('#lenscope-panel .ls-index');
                window.lsStates = [];
                new MutationObserver(() => window.lsStates.push([section.dataset.jobState, performance.now(),
                    section.querySelector('.ls-job-status').textContent]))
                    .observe(section, {attributes: true, subtree: true, childList: true, characterData: true});
                section.querySelector('.ls-cancel').addEventListener('click', () => (window.lsClicked = performance.now()), true);
            }"""
        )
        page.locator("#lenscope-panel .ls-index .ls-cancel").click()
        page.wait_for_selector("#lenscope-panel .ls-index[data-job-state='cancelled']", timeout=60_000)
        states, clicked = page.evaluate("() => [window.lsStates, window.lsClicked]")
        # heard at once (in the click's own task), before the server said it stopped
        first = next(s for s in states if s[1] >= clicked)
        assert first[0] == "cancelling" and first[2] == "cancelling…" and first[1] - clicked < 50, (first, clicked)
        order = [s[0] for s in states]
        assert order.index("cancelling") < order.index("cancelled")
        time.sleep(1.5)  # several poll intervals: nothing overwrites it
        assert section.get_attribute("data-job-state") == "cancelled"
        assert section.locator(".ls-job-status").inner_text().startswith("cancelled")
        progress = section.locator(".ls-progress")
        assert progress.get_attribute("value") is not None  # determinate: it no longer animates
        assert section.locator(".ls-cancel").is_hidden()
        shot(page, "job-cancelled")
    finally:
        (lab.root / "long.txt").unlink()
