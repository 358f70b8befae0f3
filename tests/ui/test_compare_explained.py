"""A corpus comparison explained: A's MLP part and top neurons per row, and the neurons that
carry A's advantage, against the job's own result (GET jobs/{id})."""

from __future__ import annotations

import time
from typing import Any

from tests.ui.conftest import Lab, shot
from tests.ui.test_inline import compare_tour_selection, run_corpus_comparison

CURRENT = "window.jupyterapp.shell.currentWidget"


def signed(x: float) -> str:
    return ("+" if x >= 0 else "\u2212") + f"{abs(x):.2f}"


def test_comparison_mlp_neurons_and_carriers(page: Any, lab: Lab) -> None:
    job = run_corpus_comparison(page, lab)
    result = lab.api(f"jobs/{job}")["result"]
    model_a = result["model_a"]
    assert model_a == "lenscope-gelu-1l"

    # the first row: A's MLP part and its 3 neuron chips equal the job's result
    first, row = page.locator(".ls-compare-view .ls-compare-row").first, result["rows"][0]
    assert row["mlp_a"] is not None
    assert first.locator(".ls-compare-mlp").inner_text() == signed(row["mlp_a"])
    chips = first.locator(".ls-compare-neurons .ls-neuron-chip")
    expected = [f"L{n['layer']}.N{n['index']} {signed(n['value'])}" for n in row["neurons_a"]]
    assert len(expected) == 3
    assert chips.all_inner_texts() == expected
    headers = page.locator(".ls-compare-view .ls-compare-table th").all_inner_texts()
    assert "A's MLP" in headers

    # the carriers: the first equals result.carriers[0]
    carriers = result["carriers"]
    assert carriers
    top = page.locator(".ls-compare-view .ls-carrier-row").first
    c = carriers[0]
    assert top.locator(".ls-carrier-neuron").inner_text() == f"L{c['layer']}.N{c['index']}"
    assert top.locator(".ls-carrier-total").inner_text() == signed(c["total"])
    assert top.locator(".ls-carrier-rows").inner_text() == str(c["rows"])
    assert page.locator(".ls-compare-view .ls-carrier-row").count() == len(carriers)
    assert not page.locator(".ls-compare-view .ls-carriers-none").count()

    # the comparison alone in the main area, its first rows, then its carriers
    page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-mode')")
    first.scroll_into_view_if_needed()
    shot(page, "compare-explained-rows-light")
    page.locator(".ls-compare-view .ls-compare-carriers").scroll_into_view_if_needed()
    shot(page, "compare-explained-light")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_selector('body[data-jp-theme-light="false"]', state="attached")
    time.sleep(0.5)
    shot(page, "compare-explained-dark")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_selector('body[data-jp-theme-light="true"]', state="attached")
    page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-mode')")

    # clicking the top carrier opens its card tab (model A's)
    top.click()
    page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{c["layer"]}"][data-index="{c["index"]}"]')
    titles = page.locator(".lm-DockPanel .lm-TabBar-tab .lm-TabBar-tabLabel").all_inner_texts()
    assert f"L{c['layer']}.N{c['index']} · {model_a}" in titles, titles

    # keyboard: the first row, Tab to its first chip, Enter opens that neuron's card (not the row)
    page.locator(".lm-DockPanel .lm-TabBar-tab", has_text=f"{model_a} vs ").click()
    first.focus()
    page.keyboard.press("Tab")
    n = row["neurons_a"][0]
    assert page.evaluate("() => document.activeElement.textContent") == expected[0]
    page.keyboard.press("Enter")
    page.wait_for_selector(f'.ls-card-view .ls-card[data-layer="{n["layer"]}"][data-index="{n["index"]}"]')
    page.wait_for_function(f"() => {CURRENT} && {CURRENT}.title.label === 'L{n['layer']}.N{n['index']} · {model_a}'")


def test_selection_comparison_tooltip_says_a_mlp_part(page: Any, lab: Lab) -> None:
    selected, context, a, index = compare_tour_selection(page, lab)
    page.locator(f'.ls-token[data-ls-token="{index}"]').first.hover()
    line = page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"] .ls-tooltip-mlp[data-state="done"]')
    # the prediction of token `index` is made at token index - 1
    server = lab.api("attribute", {"text": selected, "context": context, "position": index - 1})
    assert server["target"] == a["tokens"]["ids"][index]
    total = float(sum(x for x in server["mlp_total"]["data"]))
    top = ", ".join(f"L{n['layer']}.N{n['index']} {signed(n['value'])}" for n in server["top_neurons"][:3])
    assert line.inner_text() == f"lenscope-gelu-1l's MLP: {signed(total)} ({top})"
    assert abs(float(line.get_attribute("data-value")) - total) < 1e-4
    shot(page, "compare-tooltip-mlp-light")
