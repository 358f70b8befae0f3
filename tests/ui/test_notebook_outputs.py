"""``lenscope.notebook.show(result)`` in a real kernel: rendered inline by lenscope's renderer with
the editor's colours and tooltip, saved with the notebook, rendered again on reopening with no
kernel; the circuitsvis fallback's bundle is evaluated once per page and fetches nothing."""

from __future__ import annotations

import json
import re
from typing import Any

from lenscope.notebook import neuron_card as shipped_card
from tests.ui.conftest import KERNEL_IDLE, Lab, rest, shot, write_notebook
from tests.ui.test_inline import open_in_lab, server_analysis

MIME = "application/vnd.lenscope.analysis+json"
MODEL = "lenscope-gelu-1l"
ATTN = "lenscope-attn-only-1l"
THEME = "apputils:change-theme"
TEXT = "def mean(values):\n    total = sum(values)\n    return total / len(values)\n"
SHOW = (
    "from lenscope import analyze, attend, load_model\n"
    "from lenscope.notebook import show, token_log_probs\n"
    f"gelu = load_model({MODEL!r})\n"
    f"result = analyze(gelu, {TEXT!r})\n"
    "show(result)"
)
# a comparison with the attention-only model, a neuron's card, the analysis with attention
MORE = (
    "from IPython.display import display\n"
    "from lenscope.notebook import neuron_card\n"
    f"display(show(result, compare=analyze(load_model({ATTN!r}), {TEXT!r})))\n"
    "display(show(neuron_card(0, 5)))\n"
    f"display(show(result, attention=attend(gelu, {TEXT!r})))"
)
# the fallback, twice: its bundle must be evaluated once, both must render
FALLBACK = "from IPython.display import HTML, display\nfor _ in range(2):\n    display(HTML(str(token_log_probs(result))))"
SAVE = """async path => { const seen = [];
    for (const w of Array.from(window.jupyterapp.shell.widgets('main'))) {
        seen.push(w.context ? w.context.path : w.id);
        if (w.context && w.context.path === path) { await w.context.save(); return 'saved'; } }
    return seen; }"""
# the circuitsvis divs in the second cell's outputs
CIRCUITSVIS = "Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell')[1].querySelectorAll('[id^=circuits-vis-]'))"
OUTPUTS = (
    "() => Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.className + e.textContent.slice(0, 400))"
)
OUTPUT = ".ls-output.jp-OutputArea-output[data-state='ready'][data-kind='analysis']:not([data-attention])"
COLOURS = (
    f'() => Array.from(document.querySelectorAll("{OUTPUT} .ls-token"))'
    ".map(e => [Number(e.dataset.lsToken), e.textContent, e.style.backgroundColor])"
)


# the browser keeps alpha in 1/255 steps and writes it back with as few decimals as round-trip
ALPHA_TOLERANCE = 1 / 255 + 0.005


def rgba(css: str) -> tuple[float, ...]:
    if css == "transparent":
        return (0.0, 0.0, 0.0, 0.0)
    parts = [float(x) for x in re.findall(r"[\d.]+", css)]
    return tuple(parts if len(parts) == 4 else [*parts, 1.0])


def colour_matches(shown: str, logprob: float | None, floor: float = -10.0) -> bool:
    """colors.ts's surprise scale, as the editor colours: rgba(230, 70, 40, 0.55 t) with t = clamp(lp /
    floor), nothing for NaN."""
    if logprob is None:
        return rgba(shown)[3] == 0.0
    t = min(1.0, max(0.0, logprob / floor))
    r, g, b, a = rgba(shown)
    return (r, g, b) == (230, 70, 40) and abs(a - 0.55 * t) <= ALPHA_TOLERANCE


def diff_colour_matches(shown: str, diff: float, span: float = 4.0) -> bool:
    """colors.ts's diffColor: green where A is better, purple where B is, alpha 0.6 min(1, |d| / span)."""
    r, g, b, a = rgba(shown)
    if diff == 0:
        return a == 0.0
    want = (30, 160, 80) if diff > 0 else (150, 60, 200)
    return (r, g, b) == want and abs(a - 0.6 * min(1.0, abs(diff) / span)) <= ALPHA_TOLERANCE


def check_attention_mode(page: Any, lab: Lab, index: int) -> None:
    """The output with attention: in attention mode, hovering token ``index`` colours the text
    tokens that layer 0's heads (their mean) attend to from it, as the server's attention says."""
    import numpy as np

    from lenscope.wire_codec import decode_json

    out = page.locator(".ls-output[data-attention='true'][data-state='ready']")
    out.scroll_into_view_if_needed()
    out.locator(".ls-output-attention-mode").click()
    page.mouse.move(0, 0)
    out.locator(f'.ls-token[data-ls-token="{index}"]').hover()
    out.locator(f'.ls-attn-query[data-ls-token="{index}"]').wait_for()
    assert page.locator(".ls-tooltip").count() == 0  # attention mode: the tooltip steps aside
    shown = {
        int(e.get_attribute("data-ls-token")): float(e.get_attribute("data-weight"))
        for e in out.locator(".ls-attn").element_handles()
        if e.get_attribute("style")
    }
    att = decode_json(json.dumps(lab.api("attention", {"text": TEXT, "model": MODEL})))
    sources, weights = att["sources"][0][:, index], att["weights"][0][:, index].astype(np.float64)  # [heads, k]
    want: dict[int, float] = {}
    for src, w in zip(sources.ravel().tolist(), weights.ravel().tolist()):
        if src >= 0:
            want[src] = want.get(src, 0.0) + w / att["n_heads"]
    want = {i: w for i, w in want.items() if w > 0}
    assert shown.keys() == want.keys() and all(abs(shown[i] - want[i]) < 1e-3 for i in want), (shown, want)
    shot(page, "notebook-output-attention")


def kernel_dialog(page: Any, button: str, timeout: float) -> int:
    """Answer JupyterLab's "Select Kernel" dialogs with ``button`` while they show (the first
    within ``timeout`` ms): how many there were."""
    answered = 0
    if timeout:
        try:
            page.wait_for_selector(".jp-Dialog", timeout=timeout)
        except Exception:  # no dialog
            return 0
    while page.locator(".jp-Dialog").count() and answered < 5:
        shot(page, f"notebook-output-dialog-{answered}")
        page.locator(".jp-Dialog").first.locator("button", has_text=re.compile(f"^({button})$")).first.click()
        answered += 1
        page.wait_for_timeout(500)
    return answered


def check_tooltip(page: Any, server: dict[str, Any], index: int) -> None:
    """Hover token ``index`` in the output: the tooltip is the editor's, with the server's top-10,
    rank and log-prob of the next token, and neuron chips."""
    page.mouse.move(0, 0)
    page.locator(f'{OUTPUT} .ls-token[data-ls-token="{index}"]').hover()
    tip = page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"]')
    ids = [int(r.get_attribute("data-token-id")) for r in tip.query_selector_all(".ls-topk-row")]
    p = server["predictions"]
    assert ids == p["top_ids"][index + 1].tolist() and len(ids) == 10
    rank, lp = int(p["actual_rank"][index + 1]), float(p["actual_logprob"][index + 1])
    assert f"rank {rank} · log-prob {lp:.2f}" in tip.query_selector(".ls-tooltip-actual").text_content()
    chips = [
        (int(c.get_attribute("data-layer")), int(c.get_attribute("data-index")))
        for c in tip.query_selector_all(".ls-neuron-chip")
    ]
    assert chips == list(zip(p["neuron_layer"][index].tolist(), p["neuron_index"][index].tolist()))[:10] and chips


def test_show_renders_inline_and_survives_save_and_reopen(page: Any, lab: Lab) -> None:
    name = "show_output.ipynb"
    write_notebook(lab, name, (SHOW, FALLBACK, MORE))
    outside: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"), lambda route: (outside.append(route.request.url), route.abort()))
    open_in_lab(page, lab, name)
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content")
    # the kernel first (JupyterLab may ask which, even with a kernelspec), then run
    for _ in range(240):
        kernel_dialog(page, "Select", 0)
        if page.evaluate(KERNEL_IDLE):
            break
        page.wait_for_timeout(250)
    page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    try:
        page.wait_for_selector(f"{OUTPUT} .ls-token", timeout=90_000)
    except Exception:
        shot(page, "notebook-output-failed")
        raise AssertionError(page.evaluate(OUTPUTS)) from None

    server = server_analysis(lab, TEXT, "")
    starts, ends = server["tokens"]["start_utf16"].tolist(), server["tokens"]["end_utf16"].tolist()
    lps = [None if x != x else float(x) for x in server["predictions"]["actual_logprob"].tolist()]
    output = page.locator(OUTPUT)
    assert output.get_attribute("data-model") == MODEL and output.get_attribute("data-tokens") == str(len(starts))
    assert "lenscope · lenscope-gelu-1l" in output.locator(".ls-output-head").text_content()
    assert output.locator(".ls-legend[data-legend='logprob']").count() == 1
    # every token with text is a decoration, in the editor's colour for its log-prob
    colours = page.evaluate(COLOURS)
    assert [i for i, _, _ in colours] == [i for i, (s, e) in enumerate(zip(starts, ends)) if TEXT[s:e].replace("\n", "")]
    assert "".join(t for _, t, _ in colours) == TEXT.replace("\n", "")
    for i, _, colour in colours:
        assert colour_matches(colour, lps[i]), (i, colour, lps[i])
    # lenscope's renderer, not the text/html fallback, shows show()'s output
    assert page.locator(".jp-OutputArea-output.ls-output").count() >= 1
    assert page.locator(".jp-Cell").first.locator(".jp-RenderedHTMLCommon").count() == 0

    index = next(i for i, (s, e) in enumerate(zip(starts, ends)) if TEXT[s:e] == " total")
    check_tooltip(page, server, index)
    shot(page, "notebook-output-tooltip")
    # the editor's keys: Alt+Shift+→ moves to the next token, Alt+Shift+K pins its tooltip
    page.mouse.move(0, 0)
    page.locator(f'{OUTPUT} .ls-token[data-ls-token="{index}"]').click()
    page.keyboard.press("Alt+Shift+ArrowRight")
    page.keyboard.press("Alt+Shift+K")
    pinned = page.wait_for_selector(".ls-tooltip-pinned")
    assert int(pinned.get_attribute("data-ls-token")) > index
    page.keyboard.press("Escape")
    page.wait_for_selector(".ls-tooltip-pinned", state="detached")
    # the fallback cell: two circuitsvis outputs, one evaluation of the bundle, nothing fetched
    fallback = page.locator(".jp-Notebook .jp-Cell").nth(1)
    try:
        page.wait_for_function(f"() => {CIRCUITSVIS}.filter(d => d.childElementCount).length === 2", timeout=60_000)
    except Exception:
        state = page.evaluate(f"() => [window.__lenscopeCircuitsVisLoads, {CIRCUITSVIS}.map(d => d.outerHTML.slice(0, 300))]")
        raise AssertionError(f"{state} {errors}") from None
    assert page.evaluate("() => window.__lenscopeCircuitsVisLoads") == 1
    fallback.scroll_into_view_if_needed()
    shot(page, "notebook-output-fallback")

    # a comparison: the editor's comparison colours, and its tooltip with both models' top-10
    comparison = page.locator(".ls-output[data-kind='comparison'][data-state='ready']")
    comparison.wait_for(timeout=60_000)
    assert comparison.locator(".ls-legend[data-legend='diff']").count() == 1
    lps_b = server_analysis(lab, TEXT, "", ATTN)["predictions"]["actual_logprob"].tolist()
    for i, _, colour in page.evaluate(COLOURS.replace("'analysis'", "'comparison'")):
        assert diff_colour_matches(colour, max(lps[i], -6.0) - max(lps_b[i], -6.0)), (i, colour, lps[i], lps_b[i])
    comparison.scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    comparison.locator(f'.ls-token[data-ls-token="{index}"]').hover()
    tip = page.wait_for_selector(f'.ls-tooltip[data-ls-token="{index}"] .ls-compare')
    assert [e.get_attribute("data-model") for e in tip.query_selector_all(".ls-compare-side")] == [MODEL, ATTN]
    shot(page, "notebook-output-comparison")
    # a neuron's card, as the card tab shows it
    card = page.locator(".ls-output[data-kind='card'][data-state='ready'] .ls-card")
    card.wait_for()
    # the kernel's card is the shipped index's (the server's may be a workspace index an earlier test built)
    assert card.locator(".ls-example").count() == len(shipped_card(0, 5)["examples"]) > 0
    page.mouse.move(0, 0)
    card.scroll_into_view_if_needed()
    shot(page, "notebook-output-card-inline")
    check_attention_mode(page, lab, index)

    # save, close, end the kernel; reopen where no kernel can start
    assert page.evaluate(SAVE, name) == "saved"
    nb = json.loads((lab.root / name).read_text(encoding="utf-8"))
    saved = next((o["data"] for o in nb["cells"][0]["outputs"] if MIME in o.get("data", {})), None)
    assert saved is not None, "the saved notebook has no lenscope output"
    assert saved[MIME]["text"] == TEXT and saved[MIME]["analysis"]["model"] == MODEL
    assert "text/html" in saved and saved["text/plain"]
    page.evaluate("() => { void window.jupyterapp.commands.execute('application:close-all'); }")
    for session in rest(lab, "GET", "api/sessions"):
        rest(lab, "DELETE", f"api/sessions/{session['id']}")
    assert rest(lab, "GET", "api/kernels") == []

    refuse_post = lambda route: route.abort() if route.request.method == "POST" else route.continue_()  # noqa: E731
    page.route(re.compile(r".*/api/sessions(\?.*)?$"), refuse_post)
    page.evaluate("path => { void window.jupyterapp.commands.execute('docmanager:open', {path}); }", name)
    page.wait_for_selector(f"{OUTPUT} .ls-token", timeout=30_000)
    # "Select Kernel": No Kernel; "Error Starting Kernel" (refused above): Ok
    kernel_dialog(page, "No Kernel|Ok", 3_000)
    assert page.evaluate(COLOURS) == colours
    check_tooltip(page, server, index)
    assert rest(lab, "GET", "api/kernels") == []
    shot(page, "notebook-output-reopened")
    # a chip opens the neuron's card (from the model's index), with no kernel
    chip = page.locator(f'.ls-tooltip[data-ls-token="{index}"] .ls-neuron-chip').first
    layer, neuron = chip.get_attribute("data-layer"), chip.get_attribute("data-index")
    chip.dispatch_event("mousedown")
    page.wait_for_selector(f'.ls-card-view[data-layer="{layer}"][data-index="{neuron}"] .ls-example', timeout=30_000)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", has_text=f"L{layer}.N{neuron} · {MODEL}")
    assert tab.count() == 1
    shot(page, "notebook-output-card")

    assert not outside, f"requests off this machine: {outside[:5]}"

    # the dark theme: the output's text and colours follow it (then back: the settings are shared)
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name).click()
    try:
        page.evaluate(f"() => {{ void window.jupyterapp.commands.execute('{THEME}', {{theme: 'JupyterLab Dark'}}); }}")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
        page.wait_for_timeout(300)
        text = page.evaluate(f'() => getComputedStyle(document.querySelector("{OUTPUT} .cm-content")).color')
        assert min(rgba(text)[:3]) > 150, text  # light text on the dark background
        shot(page, "notebook-output-dark")
    finally:
        page.evaluate(f"() => window.jupyterapp.commands.execute('{THEME}', {{theme: 'JupyterLab Light'}})")
