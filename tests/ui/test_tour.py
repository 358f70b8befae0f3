"""The README's "A short tour", every step in order as written, at 1400x900 in one page: what each
step says to do is done (clicks, keys, menus), and what it says the user will see is checked. The
steps' details have tests of their own (test_inline, test_workbench, test_pictures, test_why,
test_features, test_defects24, ...); here the point is that the tour as written works end to end."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.ui.conftest import ARTIFACTS, Lab
from tests.ui.test_inline import select_lines

SHOTS = Path("/tmp/shots-tour")
README = Path(__file__).resolve().parents[2] / "README.md"
PANEL = "#lenscope-panel"
PINNED = ".ls-tooltip-pinned"
EDITOR = ".jp-FileEditor"


def snap(page: Any, name: str) -> None:
    for folder in (SHOTS, ARTIFACTS):
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"tour-{name}.png"))


def execute(page: Any, command: str, args: dict[str, Any] | None = None) -> Any:
    return page.evaluate("([c, a]) => window.jupyterapp.commands.execute(c, a)", [command, args or {}])


def open_from_browser(page: Any, name: str) -> None:
    """Double-click a file in the file browser (as the tour says: "Open `tour.py`"); the browser is
    shown first (the left sidebar collapses when the lenscope area needs the room)."""
    item = page.locator(".jp-DirListing-item", has_text=name).first
    if not item.is_visible():
        page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="filebrowser"]').click()
    item.dblclick()


def section(page: Any, key: str) -> Any:
    return page.locator(f"{PANEL} > .ls-section[data-section='{key}']")


def lenscope_tab_bars(page: Any) -> set[int]:
    """The tab bars (by index) that hold lenscope tabs other than the comparisons."""
    return set(
        page.evaluate(
            """() => { const bars = Array.from(document.querySelectorAll('.jp-LabShell .lm-DockPanel-tabBar'));
            return Array.from(document.querySelectorAll('.lm-DockPanel-tabBar .lm-TabBar-tab'))
                .filter(t => (t.dataset.id || '').startsWith('lenscope-') && !t.dataset.id.startsWith('lenscope-comparison'))
                .map(t => bars.indexOf(t.closest('.lm-DockPanel-tabBar'))); }"""
        )
    )


def analyze_word_counts(page: Any) -> None:
    select_lines(page, EDITOR, 8, 15)
    page.keyboard.press("Alt+Shift+L")
    page.wait_for_function(
        f"() => document.querySelector('{PANEL}').dataset.state === 'ready' && !!document.querySelector('{EDITOR} .ls-token')"
    )


def test_the_readme_tour_as_written(page: Any, lab: Lab) -> None:
    tour = README.read_text(encoding="utf-8").split("## A short tour", 1)[1].split("\n## ", 1)[0]
    page.set_viewport_size({"width": 1400, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    # 1. open the URL: the file browser shows examples/ (tour.py, tour.ipynb)
    page.goto(f"{lab.url}lab?reset&token={lab.token}")
    page.wait_for_selector(".jp-DirListing-item")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('lenscope:analyze-selection')")
    names = page.locator(".jp-DirListing-itemText").all_inner_texts()
    assert {"tour.py", "tour.ipynb"} <= set(names), names
    snap(page, "1-browser")

    # 2. open tour.py, select word_counts (lines 8-15), right-click, lenscope: Analyze selection
    open_from_browser(page, "tour.py")
    page.wait_for_selector(f"{EDITOR} .cm-content")
    lines = (lab.root / "tour.py").read_text(encoding="utf-8").split("\n")
    assert lines[7].startswith("def word_counts") and lines[14].strip() == "return dict(counts)"
    select_lines(page, EDITOR, 8, 15)
    page.locator(f"{EDITOR} .cm-line").nth(9).click(button="right")
    page.get_by_role("menuitem", name="lenscope: Analyze selection").click()
    page.wait_for_selector(f"{EDITOR} .ls-token")
    # ... or Alt+Shift+L, or the command palette; the panel opens on the right
    keys = page.evaluate(
        "() => window.jupyterapp.commands.keyBindings"
        ".filter(b => b.command === 'lenscope:analyze-selection').map(b => b.keys.join(' '))"
    )
    assert "Alt Shift L" in keys, keys
    assert page.locator(PANEL).is_visible()
    assert page.locator(f"{PANEL}").bounding_box()["x"] > 1000
    snap(page, "2-analyzed")

    # 3. coloured tokens, the legend in the panel's Analysis section; hover a token: what came next
    assert section(page, "analysis").locator(".ls-section-label").inner_text() == "Analysis"
    assert "log-prob of each token" in section(page, "analysis").inner_text()
    page.mouse.move(0, 0)
    page.locator(f"{EDITOR} .ls-token").nth(8).hover()
    tooltip = page.locator(".ls-tooltip").first
    tooltip.wait_for()
    assert tooltip.locator(".ls-topk-row").count() == 10
    assert re.search(r"rank \d+ · log-prob -?\d", tooltip.locator(".ls-tooltip-actual").inner_text())
    assert tooltip.locator(".ls-tooltip-neurons .ls-neuron-chip").count() >= 1
    assert tooltip.locator(".ls-why-toggle").inner_text() == "Why?"
    snap(page, "3-tooltip")
    page.mouse.move(700, 890)

    # 4. the panel's sections: Model and SAE, Analysis, Strongest neurons, Tokens; they collapse
    labels = page.locator(f"{PANEL} > .ls-section .ls-section-label").all_inner_texts()
    for name in ("Model and SAE", "Analysis", "Strongest neurons", "Workspace", "Find neurons", "Tokens", "Interventions"):
        assert any(x.startswith(name) for x in labels), (name, labels)
    models = section(page, "model").locator("select").first.locator("option").all_inner_texts()
    assert {"lenscope-gelu-1l", "lenscope-attn-only-1l", "lenscope-gelu-2l"} <= set(models), models
    assert "loaded" in section(page, "model").inner_text()
    assert "tour.py lines 8–15" in section(page, "analysis").inner_text()
    assert section(page, "tokens").locator(".ls-flow-token").count() > 10
    toggle = section(page, "tokens").locator(".ls-section-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    # click a neuron: the text is recoloured by it (legend in Analysis), its card opens beside the editor
    chip = section(page, "strongest").locator(".ls-neuron-chip").first
    first = (chip.get_attribute("data-layer"), chip.get_attribute("data-index"))
    chip.click()
    page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{first[0]}"][data-index="{first[1]}"]')
    page.wait_for_function(
        f"s => document.querySelector('{PANEL} .ls-section[data-section=\"analysis\"]').textContent.includes(s)",
        arg=f"activation of L{first[0]}.N{first[1]}",
    )
    editor_box = page.locator(EDITOR).bounding_box()
    card_box = page.locator(".ls-card-view").first.bounding_box()
    assert card_box["x"] >= editor_box["x"] + editor_box["width"] - 1, (editor_box, card_box)  # beside it
    # ... or a neuron chip in a tooltip: its card joins the same area as a tab
    page.mouse.move(0, 0)
    page.locator(f"{EDITOR} .ls-token").nth(14).hover()
    tip_chip = page.locator(".ls-tooltip .ls-tooltip-neurons .ls-neuron-chip").first
    second = re.match(r"L(\d+)\.N(\d+)", tip_chip.inner_text())
    assert second
    tip_chip.click()
    page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{second[1]}"][data-index="{second[2]}"]')
    assert len(lenscope_tab_bars(page)) == 1
    snap(page, "4-card")

    # 5. tour.ipynb: the same in a notebook cell
    open_from_browser(page, "tour.ipynb")
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    cell.locator(".cm-content").click()
    page.keyboard.press("Alt+Shift+L")
    page.wait_for_selector(".jp-Notebook .ls-token")
    page.wait_for_function(f"() => document.querySelector('{PANEL}').textContent.includes('tour.ipynb cell 3')")
    snap(page, "5-notebook")

    # 6. edit the text: a token typed into loses its annotation; Clear annotations removes them all
    open_from_browser(page, "tour.py")
    page.wait_for_selector(f"{EDITOR} .cm-content")
    analyze_word_counts(page)
    token = page.locator(f"{EDITOR} .cm-line >> nth=9").locator(".ls-token", has_text=re.compile(r"^\s*\w{4,}$")).first
    index = token.get_attribute("data-ls-token")
    before = page.locator(f"{EDITOR} .ls-token").count()
    token.click()
    page.keyboard.type("q")
    page.wait_for_function(f"() => !document.querySelector('{EDITOR} .ls-token[data-ls-token=\"{index}\"]')")
    assert page.locator(f"{EDITOR} .ls-token").count() == before - 1
    page.keyboard.press("Control+z")
    assert page.locator(f"{EDITOR} .cm-line").nth(9).inner_text().strip() == lines[9].strip()
    execute(page, "lenscope:clear-annotations")
    page.wait_for_function(f"() => !document.querySelector('{EDITOR} .ls-token')")

    # 7. cards: Copy JSON in the tab's toolbar, top examples, description; an example from the
    # shipped index opens the stored text
    analyze_word_counts(page)
    section(page, "strongest").locator(".ls-neuron-chip").first.click()
    card = page.locator(f'.ls-card-view:has(.ls-card[data-layer="{first[0]}"][data-index="{first[1]}"])')
    card.wait_for()
    page.wait_for_selector(".jp-MainAreaWidget:not(.lm-mod-hidden) .jp-Toolbar .ls-copy-card")
    assert re.search(
        r"(fires on|no simple pattern).*\(held-out precision \d\.\d\d, recall \d\.\d\d, F1 \d\.\d\d\)|too few tokens to score",
        card.inner_text(),
    )
    stored = card.locator('.ls-example-file[data-available="false"]').first
    file = stored.get_attribute("data-file")
    stored.click()
    page.wait_for_selector(f'.ls-stored-view[data-path="{file}"]')
    # Index the workspace (the panel's Workspace section): a progress bar and a cancel button
    build = section(page, "workspace").locator(".ls-build-index")
    assert build.inner_text() == "Index the workspace"
    build.click()
    page.wait_for_selector(f"{PANEL} .ls-progress")
    page.wait_for_function(
        f"() => /done: [\\d,]+ tokens in \\d+ files/"
        f".test(document.querySelector('{PANEL} .ls-section[data-section=\"workspace\"]').textContent)",
        timeout=180_000,
    )
    # the Index select (Find neurons, and a card): the shipped index by default, the workspace's too
    picker = section(page, "find").locator(".ls-index-select")
    picker.wait_for()
    options = picker.locator("option").all_inner_texts()
    assert options[0].endswith("shipped") and any(o.startswith("workspace") for o in options), options
    section(page, "strongest").locator(".ls-neuron-chip").nth(2).click()
    page.wait_for_selector(".jp-MainAreaWidget:not(.lm-mod-hidden) .ls-card-view .ls-index-select")
    # the Find neurons search: by token and by description, several words by description
    box = section(page, "find").locator(".ls-search")
    results = section(page, "find").locator(".ls-search-results")
    for query in ("newline", "indentation", "closing brackets"):
        assert f"`{query}`" in tour
        box.fill(query)
        box.press("Enter")
        page.wait_for_function(
            f"q => {{ const r = document.querySelector('{PANEL} .ls-search-results');"
            " return r.dataset.query === q && !!r.querySelector('.ls-neuron-chip'); }",
            arg=query,
        )
        assert results.locator(".ls-neuron-chip").count() >= 1
    assert "described as" in results.inner_text() or "fires on" in results.inner_text()
    snap(page, "7-index-search")

    # 8. keyboard: Alt+Shift+→ to a coloured token, Alt+Shift+K its tooltip; again: focus on the
    # first neuron chip, Tab the next, Enter opens its card (and closes the tooltip)
    page.locator(f"{EDITOR} .cm-line").nth(7).click()
    page.keyboard.press("Home")
    page.keyboard.press("Alt+Shift+ArrowRight")
    page.keyboard.press("Alt+Shift+ArrowRight")
    page.keyboard.press("Alt+Shift+K")
    page.wait_for_selector(PINNED)
    page.keyboard.press("Alt+Shift+K")
    page.wait_for_function("() => document.activeElement.classList.contains('ls-neuron-chip')")
    chips = page.locator(f"{PINNED} .ls-tooltip-neurons .ls-neuron-chip").all_inner_texts()
    assert page.evaluate("() => document.activeElement.textContent") == chips[0]
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == chips[1]
    page.keyboard.press("Enter")
    n = re.match(r"L(\d+)\.N(\d+)", chips[1])
    assert n
    page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{n[1]}"][data-index="{n[2]}"]')
    page.wait_for_selector(PINNED, state="detached")
    # x ablates the focused neuron (the Interventions section lists it); Esc closes
    page.locator(f"{EDITOR} .ls-token").nth(6).click()
    page.keyboard.press("Alt+Shift+K")
    page.keyboard.press("Alt+Shift+K")
    page.wait_for_function("() => document.activeElement.classList.contains('ls-neuron-chip')")
    page.keyboard.press("x")
    page.wait_for_selector(f"{PANEL} .ls-iv")
    page.keyboard.press("Escape")
    page.wait_for_selector(PINNED, state="detached")
    section(page, "interventions").locator(".ls-iv-clear").click()
    page.wait_for_function(f"() => !document.querySelector('{PANEL} .ls-iv')")
    # lenscope: Copy the analysis (TSV)
    page.locator(f"{EDITOR} .ls-token").nth(6).click()
    execute(page, "lenscope:copy-analysis")
    tsv = page.evaluate("() => navigator.clipboard.readText()")
    assert tsv.count("\n") >= 20 and "\t" in tsv

    # 9. Why?: Alt+Shift+W splits the prediction into parts (a compact waterfall); the sum line and
    # the "explain … vs …" inputs stay at the tooltip's bottom, inside the window
    page.mouse.move(0, 0)
    page.locator(f"{EDITOR} .ls-token").nth(14).click()
    page.keyboard.press("Alt+Shift+W")
    why = page.locator(f'{PINNED} .ls-why[data-state="ready"]')
    why.wait_for()
    assert why.locator(".ls-why-mlp").count() >= 1 and why.locator(".ls-why-head").count() >= 1
    for part in (".ls-why-sum", ".ls-why-target-input", ".ls-why-baseline-input"):
        box = page.locator(f"{PINNED} {part}").bounding_box()
        assert box and box["y"] + box["height"] <= 900, (part, box)
    assert "= sum of parts" in why.locator(".ls-why-sum").inner_text()
    snap(page, "9-why")
    # click a top-10 row: that token is explained instead
    row = page.locator(f"{PINNED} .ls-topk-row").nth(3)
    wanted = row.locator(".ls-tooltip-token").inner_text()
    row.click()
    page.wait_for_function(
        f"t => {{ const w = document.querySelector('{PINNED} .ls-why[data-state=\"ready\"] .ls-why-title .ls-tooltip-token');"
        " return w && w.textContent === t; }",
        arg=wanted,
    )
    # type a token and a "vs" token: a logit difference
    page.locator(f"{PINNED} .ls-why-target-input").fill(" the")
    page.locator(f"{PINNED} .ls-why-baseline-input").fill(" a")
    page.locator(f"{PINNED} .ls-why-target-input").press("Enter")
    page.wait_for_function(
        f"() => (document.querySelector('{PINNED} .ls-why[data-state=\"ready\"] .ls-why-title')?.textContent || '')"
        ".includes(' vs ')"
    )
    # click a head: the editor colours the tokens it attends to from there
    page.locator(f"{PINNED} .ls-why-head").first.click()
    page.wait_for_selector(f"{EDITOR} .ls-attn")
    # waterfall: the same parts as a lenscope tab
    page.locator(f"{PINNED} .ls-why-waterfall").click()
    page.wait_for_selector(".ls-waterfall-view")
    # its card button opens the head's card
    page.locator(f"{EDITOR} .ls-token").nth(14).click()
    page.keyboard.press("Alt+Shift+W")
    page.locator(f'{PINNED} .ls-why[data-state="ready"] .ls-why-head-card').first.click()
    page.wait_for_selector(".ls-head-view")
    assert len(lenscope_tab_bars(page)) == 1

    # 10. Attention: the panel's Attention section (open it): heads with their positional share
    attention = page.locator(f"{PANEL} .ls-attention-view")
    attention.locator("summary").click()
    attention.locator("canvas").wait_for()
    page.wait_for_function(f"() => /H0\\s*\\d+% pos/.test(document.querySelector('{PANEL} .ls-attention-view').innerText)")
    snap(page, "10-attention")
    attention.locator(".ls-attention-view-open").click()
    page.wait_for_selector(".ls-attention-picture-view")
    # Alt+Shift+A: attention mode, hover a token and the heads' sources light up
    page.locator(f"{EDITOR} .ls-token").nth(14).click()
    page.keyboard.press("Alt+Shift+A")
    assert attention.locator("button", has_text="Attention mode: on").count() == 1
    page.locator(f"{EDITOR} .ls-token").nth(20).hover()
    page.wait_for_selector(f'{EDITOR} .ls-attn-query[data-ls-token="20"]')
    page.keyboard.press("Alt+Shift+A")
    # the tooltip's lens line; the panel's Logit lens section (‹ › to step)
    page.mouse.move(0, 0)
    page.locator(f"{EDITOR} .ls-token").nth(14).hover()
    assert re.search(r"lens: embed r\d+ · L0 r\d+", page.locator(".ls-tooltip").first.inner_text())
    page.mouse.move(700, 890)
    lens = page.locator(f"{PANEL} .ls-lens-view")
    lens.locator("summary").click()
    lens.locator(".ls-lens-table tr").nth(2).wait_for()
    where = lens.locator(".ls-lens-nav").inner_text()
    lens.locator(".ls-lens-nav button").last.click()
    page.wait_for_function(f"w => document.querySelector('{PANEL} .ls-lens-nav').innerText !== w", arg=where)
    # its Heatmap of the selection: the lens of every token as a tab; click a cell for its top 5
    lens.locator(".ls-lens-heatmap-open").click()
    page.wait_for_selector(".ls-lens-heatmap-view .ls-lh-cell")
    page.locator(".ls-lens-heatmap-view .ls-lh-cell").nth(5).click()
    page.wait_for_selector(".ls-lens-heatmap-view .ls-lh-detail .ls-lens-top")
    snap(page, "10-heatmap")

    # 11. SAE features: below the model picker; the tooltip's features, the panel's strongest, a
    # feature chip opens the feature card; Find neurons finds features too
    sae = section(page, "model").locator("select").nth(1)
    assert sae.input_value() == "lenscope-gelu-1l-mlp-topk"
    assert section(page, "features").is_visible()
    page.mouse.move(0, 0)
    page.locator(f"{EDITOR} .ls-token").nth(14).hover()
    feature = page.locator(".ls-tooltip .ls-feature-chip").first
    assert re.match(r"F\d+ \d+\.\d\d", feature.inner_text())
    feature.click()
    page.wait_for_selector(".ls-feature-card-view")
    kinds = section(page, "find").locator(".ls-search-kind option").all_inner_texts()
    assert "features (lenscope-gelu-1l-mlp-topk)" in kinds, kinds
    snap(page, "11-feature")

    # after the steps: Compare with (in Model and SAE) colours by lp_A - max(lp_B, -6), each tooltip
    # shows both models; Compare over the workspace opens the comparison as a tab below
    page.mouse.move(700, 890)
    section(page, "model").locator(".ls-compare-select").select_option("lenscope-attn-only-1l")
    page.wait_for_function(
        f"() => !!document.querySelector('{EDITOR} .ls-token') && document.querySelector('{PANEL}').dataset.state === 'ready'"
    )
    page.locator(f"{EDITOR} .ls-token").nth(14).hover()
    page.wait_for_selector(".ls-tooltip .ls-compare .ls-compare-side >> nth=1")
    page.mouse.move(700, 890)
    section(page, "workspace").locator(".ls-compare-run").click()
    page.wait_for_selector(".ls-compare-view[data-job-state='done']", timeout=180_000)
    snap(page, "12-compare")
