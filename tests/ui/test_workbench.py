"""The workbench (issue #24): lenscope's views (four cards, a stored text, the patching grid, the
logit lens heatmap) as tabs of one dock area beside the editor, the panel as a dashboard of
collapsible sections, cards' histograms over the unit's range, the workspace comparison's token
columns, centred context, sorting and its rows' caret (defect 12)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import ARTIFACTS, Lab, shot
from tests.ui.test_inline import open_in_lab, run_corpus_comparison, select_lines

CURRENT = "window.jupyterapp.shell.currentWidget"
SHOTS = Path("/tmp/shots-workbench")
MODEL = "lenscope-gelu-1l"

# every lenscope view of the main area, by its content's class
VIEWS = ".ls-card-view, .ls-stored-view, .ls-patch-view, .ls-feature-card-view, .ls-head-view, .ls-picture-view"

TAB_BARS = """() => {
    // each lenscope tab (by its widget's id) -> the index of the dock panel's tab bar it is in
    const bars = Array.from(document.querySelectorAll('.jp-LabShell .lm-DockPanel-tabBar'));
    const out = {};
    for (const w of window.jupyterapp.shell.widgets('main')) {
        const tab = document.querySelector(`.lm-DockPanel-tabBar .lm-TabBar-tab[data-id="${w.id}"]`);
        out[w.id] = tab ? bars.indexOf(tab.closest('.lm-DockPanel-tabBar')) : -1;
    }
    return out;
}"""


def snap(page: Any, name: str, locator: Any | None = None) -> None:
    """A screenshot into /tmp/shots-workbench/ (and test-artifacts/): the page, or one element."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if locator is None:
        page.screenshot(path=str(SHOTS / f"{name}.png"))
        shot(page, name)
    else:
        locator.screenshot(path=str(SHOTS / f"{name}.png"))
        ARTIFACTS.mkdir(exist_ok=True)
        locator.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def set_theme(page: Any, light: bool) -> None:
    theme = "JupyterLab Light" if light else "JupyterLab Dark"
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_selector(f'body[data-jp-theme-light="{str(light).lower()}"]', state="attached")
    time.sleep(0.4)


EDITOR = "document.querySelector('.jp-FileEditor').closest('.jp-MainAreaWidget')"


def editor_width(page: Any) -> float:
    return float(page.evaluate(f"() => {EDITOR}.getBoundingClientRect().width"))


def lenscope_tabs(page: Any) -> dict[str, int]:
    """The lenscope tabs of the main area (id -> its tab bar's index)."""
    bars: dict[str, int] = page.evaluate(TAB_BARS)
    return {k: v for k, v in bars.items() if k.startswith("lenscope-")}


def tab_into_view(page: Any, widget_id: str) -> str:
    """From the lenscope tab bar: arrows to the widget's tab, Enter opens it with the focus in its
    view, Tab goes on to a control of the view. The class of the view the focus reached."""
    page.evaluate(
        """id => { const tab = document.querySelector(`.lm-TabBar-tab[data-id="${id}"]`);
            tab.closest('.lm-TabBar-content').querySelector('.lm-TabBar-tab[tabindex="0"]')?.focus()
                || tab.closest('.lm-TabBar-content').querySelector('.lm-TabBar-tab').focus(); }""",
        widget_id,
    )
    page.keyboard.press("Home")
    for _ in range(12):
        if page.evaluate("id => document.activeElement.dataset.id === id", widget_id):
            break
        page.keyboard.press("ArrowRight")
    assert page.evaluate("id => document.activeElement.dataset.id === id", widget_id)
    page.keyboard.press("Enter")  # the tab opens with the focus in its view
    page.wait_for_function("id => { const w = document.getElementById(id); return !!w && w.offsetWidth > 0; }", arg=widget_id)
    inside = f"""id => {{ const w = document.getElementById(id); const a = document.activeElement;
        return w && w.contains(a) && a.closest('{VIEWS}') ? a.closest('{VIEWS}').className : ''; }}"""
    page.wait_for_function(inside, arg=widget_id)
    reached = str(page.evaluate(inside, widget_id))
    controls = "a[href], button, input, select, [tabindex='0']"
    content = f"document.getElementById(id).querySelector('{VIEWS}')"
    if not page.evaluate(f'id => !!{content}.querySelector("{controls}")', widget_id):
        return reached  # a text to read (the stored text): the focus on it scrolls it
    page.keyboard.press("Tab")  # on to the view's first control
    reached = str(page.evaluate(inside, widget_id))
    assert reached, f"Tab left the view of {widget_id}"
    assert page.evaluate("() => document.activeElement.matches('a, button, input, select, [tabindex]')")
    return reached


@pytest.mark.parametrize("size", [(1400, 900), (1024, 768)], ids=["1400x900", "1024x768"])
def test_views_share_one_dock_area_keyboard_and_reload(page: Any, lab: Lab, size: tuple[int, int]) -> None:
    width, height = size
    page.set_viewport_size({"width": width, "height": height})
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(".jp-FileEditor .cm-content")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    page.wait_for_selector("#lenscope-panel .ls-section")
    before = editor_width(page)

    # the panel: model first, then the analysis, the strongest units, the workspace's actions, ...
    sections = page.locator("#lenscope-panel > .ls-section").evaluate_all("els => els.map(e => e.dataset.section)")
    assert sections[:5] == ["model", "analysis", "strongest", "features", "workspace"], sections
    assert sections.index("tokens") > sections.index("workspace")
    assert page.locator("#lenscope-panel .ls-section-toggle[aria-expanded='true']").count() == len(sections)

    select_lines(page, ".jp-FileEditor", 8, 15)
    page.keyboard.press("Alt+Shift+L")
    page.wait_for_selector("#lenscope-panel .ls-neuron-list .ls-neuron-chip")
    # the strongest neurons come right after the analysis (above the fold at this size)
    first_chip = page.locator("#lenscope-panel .ls-neuron-list .ls-neuron-chip").first.bounding_box()
    assert first_chip and first_chip["y"] + first_chip["height"] <= height, first_chip

    # four cards, from the panel's strongest neurons
    chips = page.locator("#lenscope-panel .ls-neuron-list .ls-neuron-chip")
    units = [(int(c.get_attribute("data-layer")), int(c.get_attribute("data-index"))) for c in chips.all()[:4]]
    assert len(units) == 4
    for layer, index in units:
        page.locator(f'#lenscope-panel .ls-neuron-list .ls-neuron-chip[data-layer="{layer}"][data-index="{index}"]').click()
        page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{layer}"][data-index="{index}"]')

    # the histogram: the unit's range (its first counted bin to its max), taller than 60 px, axes in view
    layer, index = units[-1]
    card = lab.api(f"neurons/{MODEL}/{layer}/{index}")
    figure = page.locator(f'.ls-card-view[data-index="{index}"] .ls-histogram-figure')
    counts, edges = card["histogram"]["counts"], card["histogram"]["edges"]
    first = next(i for i, c in enumerate(counts) if c > 0)
    assert float(figure.get_attribute("data-lo")) == pytest.approx(edges[first - 1])
    assert float(figure.get_attribute("data-hi")) == pytest.approx(card["stats"]["max"])
    assert page.locator(f'.ls-card-view[data-index="{index}"] .ls-bar').count() == len(counts)
    shown = page.locator(f'.ls-card-view[data-index="{index}"] .ls-bar:not([hidden])').count()
    last = max(i for i, c in enumerate(counts) if c > 0)
    assert shown == last - first + 1
    plot = page.locator(f'.ls-card-view[data-index="{index}"] .ls-histogram').bounding_box()
    assert plot and plot["height"] >= 100
    figure.scroll_into_view_if_needed()
    figure_box = figure.bounding_box()
    ticks = page.locator(f'.ls-card-view[data-index="{index}"] .ls-axis-tick').all()
    assert len(ticks) >= 3
    for label in ticks:  # each label inside the figure (none clipped at its ends)
        box = label.bounding_box()
        assert box and figure_box["x"] - 1 <= box["x"] and box["x"] + box["width"] <= figure_box["x"] + figure_box["width"] + 1

    # a stored text: an example of the shipped index whose file is not in this workspace
    link = page.locator(f'.ls-card-view[data-index="{index}"] .ls-example-file[data-available="false"]').first
    file = link.get_attribute("data-file")
    link.click()
    page.wait_for_selector(f'.ls-stored-view[data-path="{file}"] .ls-stored-max')

    # the patching grid: line 3 (clean) patched into line 4 (corrupted), both from the editor
    select_lines(page, ".jp-FileEditor", 3, 3)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:patch-set-clean')")
    select_lines(page, ".jp-FileEditor", 4, 4)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:patch-run')")
    page.wait_for_selector('.ls-patch-view[data-state="ready"]')
    # and the logit lens heatmap of the analysis (the corrupted text, now the current one)
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:open-logit-lens-heatmap')")
    page.wait_for_selector(".ls-lens-heatmap-view")

    # one dock area: every lenscope view is a tab of the same tab bar, not the editor's
    tabs = lenscope_tabs(page)
    assert len(tabs) == 7, tabs
    assert len(set(tabs.values())) == 1 and -1 not in tabs.values(), tabs
    editor_id = page.evaluate(f"() => {EDITOR}.id")
    assert page.evaluate(TAB_BARS)[editor_id] not in tabs.values()
    # the editor keeps at least 60% of the width it had
    after = editor_width(page)
    assert after >= 0.6 * before, (before, after)
    snap(page, f"workbench-{width}x{height}")

    # every view by keyboard: tab bar (arrows, Enter), then Tab into the view
    for widget_id in tabs:
        assert tab_into_view(page, widget_id)

    # the panel's sections by keyboard: Enter on a header collapses it, again expands it
    toggle = page.locator("#lenscope-panel .ls-section[data-section='find'] .ls-section-toggle")
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert page.locator("#lenscope-panel .ls-finder").is_hidden()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Enter")  # collapsed again: the reload keeps it so

    if width == 1400:
        # the panel and a card, light and dark
        card_tab = next(k for k in tabs if k.startswith("lenscope-neuron-"))
        page.evaluate(f"() => window.jupyterapp.shell.activateById('{card_tab}')")
        for light in (True, False):
            set_theme(page, light)
            name = "light" if light else "dark"
            page.evaluate("() => document.getElementById('lenscope-panel').scrollTo(0, 0)")
            snap(page, f"panel-{name}", page.locator("#lenscope-panel"))
            snap(page, f"card-{name}", page.locator(f"#{card_tab}"))
            histogram = page.locator(f"#{card_tab} .ls-histogram-box")
            histogram.scroll_into_view_if_needed()
            snap(page, f"card-histogram-{name}", histogram)
        set_theme(page, True)

    # reload: the tabs come back in one area beside the editor, the panel open, the section collapsed
    time.sleep(1.5)  # the layout restorer saves the workspace after a debounce
    page.goto(f"{lab.url}lab/tree/tour.py?token={lab.token}")
    for layer, index in units:
        page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{layer}"][data-index="{index}"]', state="attached")
    page.wait_for_selector(f'.ls-stored-view[data-path="{file}"]', state="attached")
    page.wait_for_selector("#lenscope-panel", state="visible")
    find = page.locator("#lenscope-panel .ls-section[data-section='find'] .ls-section-toggle")
    assert find.get_attribute("aria-expanded") == "false"
    restored = lenscope_tabs(page)
    assert len(restored) == 5 and len(set(restored.values())) == 1, restored  # patching and pictures are this session's
    assert editor_width(page) >= 0.6 * before
    snap(page, f"workbench-restored-{width}x{height}")


def test_comparison_token_columns_sorting_and_caret(page: Any, lab: Lab) -> None:
    job = run_corpus_comparison(page, lab)
    result = lab.api(f"jobs/{job}")["result"]
    rows = result["rows"]
    view = page.locator(".ls-compare-view[data-job-state='done']")
    table = view.locator(".ls-compare-table")

    def visible(s: str) -> str:
        return s.replace(" ", "\u00b7").replace("\t", "\u2192").replace("\r", "\u240d").replace("\n", "\u21b5")

    # the token and the token before it as columns, in the server's order (diff, largest first)
    first = table.locator(".ls-compare-row").first
    assert first.locator(".ls-compare-token-cell").inner_text() == visible(rows[0]["token"])
    assert first.locator(".ls-compare-previous").inner_text() == visible(rows[0]["previous"])
    headers = table.locator("th").all_inner_texts()
    assert headers[:3] == ["token", "previous", "diff"], headers
    # the context centred on the token: the marked token in the middle of its cell, visible, in every row shown
    for row in table.locator(".ls-compare-row").all()[:30]:
        cell, mark = row.locator(".ls-compare-context").bounding_box(), row.locator(".ls-compare-token").bounding_box()
        assert cell and mark and cell["x"] <= mark["x"] and mark["x"] + mark["width"] <= cell["x"] + cell["width"] + 1
        centre = mark["x"] + mark["width"] / 2
        assert abs(centre - (cell["x"] + cell["width"] / 2)) <= 0.15 * cell["width"], (cell, mark)
    snap(page, "comparison-columns")

    # sortable: lp A descending, then ascending; diff again: the server's order
    def shown_column(cls: str) -> list[str]:
        return table.locator(f".ls-compare-row td:nth-child({cls})").all_inner_texts()

    table.locator("th .ls-sort[data-sort='lp_a']").click()
    assert table.locator("th[data-sort='lp_a']").get_attribute("aria-sort") == "descending"
    want = sorted((r["lp_a"] for r in rows), reverse=True)
    assert [float(x) for x in shown_column("4")] == pytest.approx([round(x, 2) for x in want], abs=0.006)
    table.locator("th .ls-sort[data-sort='lp_a']").click()
    assert table.locator("th[data-sort='lp_a']").get_attribute("aria-sort") == "ascending"
    want = sorted(r["lp_a"] for r in rows)
    assert [float(x) for x in shown_column("4")] == pytest.approx([round(x, 2) for x in want], abs=0.006)
    table.locator("th .ls-sort[data-sort='token']").focus()
    page.keyboard.press("Enter")  # by keyboard too
    assert table.locator("th[data-sort='token']").get_attribute("aria-sort") == "ascending"
    ordered = page.evaluate("ts => [...ts].sort((a, b) => a.localeCompare(b))", [r["token"] for r in rows])
    assert shown_column("1") == [visible(t) for t in ordered]
    table.locator("th .ls-sort[data-sort='diff']").click()
    assert table.locator("th[data-sort='diff']").get_attribute("aria-sort") == "descending"
    assert table.locator(".ls-compare-row").first.get_attribute("data-row") == "0"
    snap(page, "comparison-sorted")

    # defect 12: a row opens its file with the caret ON its token (not at the end of the lines)
    pick = next(i for i, r in enumerate(rows) if r["path"] == "tour.py" and r["cell"] is None and r["token"].strip())
    r = rows[pick]
    table.locator(f'.ls-compare-row[data-row="{pick}"] .ls-where').click()
    page.wait_for_function(f"() => {CURRENT} && {CURRENT}.context && {CURRENT}.context.path === 'tour.py'")
    page.wait_for_selector(".jp-FileEditor .ls-token")
    source = (lab.root / "tour.py").read_text(encoding="utf-8")
    start = len(source[: r["start"]].encode("utf-16-le")) // 2
    head = f"{CURRENT}.content.editor.editor.state.selection.main.head"
    page.wait_for_function(f"() => {head} === {start}", timeout=10_000)
    assert source[r["start"] : r["end"]] == r["token"]
