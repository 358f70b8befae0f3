"""lenscope.attach in JupyterLab: a model edited in a notebook's kernel (one neuron's output
weights zeroed) is picked in the panel, analyzes a file with the kernel's own numbers (checked
against the kernel's own computation, and unlike the default model's), compares with the default
model, and is gone from the picker once the kernel restarts."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import torch

from tests.ui.conftest import KERNEL_IDLE, Lab, rest, shot
from tests.ui.conftest import write_notebook as write_cells
from tests.ui.test_inline import ANALYZE, hover_and_read_tooltip, open_in_lab, select_lines, server_analysis

NAME = "edited-gelu"


def strongest_neuron(gelu: Any, text: str) -> int:
    """The neuron that fires hardest on the text: zeroing its output changes the most."""
    with torch.inference_mode():
        _, cache = gelu.run_with_cache(text, names_filter="blocks.0.mlp.hook_post")
    return int(cache["blocks.0.mlp.hook_post"][0].max(dim=0).values.argmax())


def attach_notebook(lab: Lab, name: str, neuron: int, text: str, context: str) -> None:
    attach = (
        "import json, torch, lenscope\n"
        "from lenscope.analysis import analyze\n"
        "from lenscope.models.registry import load_model\n"
        'm = load_model("lenscope-gelu-1l")\n'
        "with torch.no_grad():\n"
        "    for name, p in m.named_parameters():\n"
        '        if name.endswith("mlp._original_component.fc_out._original_component.weight"):\n'
        f"            p[:, {neuron}] = 0\n"
        f'lenscope.attach(m, "{NAME}")'
    )
    own = (
        f"p = analyze(m, {text!r}, context={context!r}).predictions\n"
        'print(json.dumps({"lp": p.actual_logprob.tolist(), "top": p.top_ids[:, :10].tolist()}))'
    )
    write_cells(lab, name, (attach, own))


def test_model_attached_in_a_kernel(page: Any, lab: Lab, gelu: Any) -> None:
    lines = (lab.root / "tour.py").read_text(encoding="utf-8").split("\n")
    selected, context = "\n".join(lines[7:15]), "\n".join(lines[:7]) + "\n"
    neuron = strongest_neuron(gelu, context + selected)
    attach_notebook(lab, "attach.ipynb", neuron, selected, context)

    page.goto(f"{lab.url}lab/tree/attach.ipynb?reset&token={lab.token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('lenscope:analyze-selection')")
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content")
    for _ in range(240):
        if page.locator(".jp-Dialog").count():
            page.locator(".jp-Dialog").first.locator("button", has_text=re.compile("^Select$")).first.click()
        if page.evaluate(KERNEL_IDLE):
            break
        page.wait_for_timeout(250)
    page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    out = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
    out.wait_for(timeout=120_000)
    own = json.loads(out.inner_text().strip().splitlines()[-1])
    shot(page, "kernel-attached-notebook")

    listed = {m["name"]: m for m in lab.api("models")["models"]}
    assert listed[NAME]["source"] == "kernel" and listed[NAME]["kernel"]["notebook"] == "attach.ipynb"

    # pick it in the panel (opening the picker lists it afresh) and analyze a file
    editor = ".jp-FileEditor"
    open_in_lab(page, lab, "tour.py")
    page.wait_for_selector(f"{editor} .cm-content")
    page.evaluate("() => window.jupyterapp.commands.execute('lenscope:show-panel')")
    picker = page.locator("#lenscope-panel .ls-model-select")
    picker.dispatch_event("mousedown")
    page.wait_for_selector(f"#lenscope-panel .ls-model-select option[value='{NAME}']", state="attached")
    assert "(kernel: attach.ipynb)" in page.locator(f"#lenscope-panel .ls-model-select option[value='{NAME}']").inner_text()
    picker.select_option(NAME)
    assert "runs in the kernel of attach.ipynb" in page.locator("#lenscope-panel .ls-model-shape").inner_text()
    select_lines(page, editor, 8, 15)
    page.locator(f"{editor} .cm-line").nth(9).click(button="right")
    page.get_by_role("menuitem", name=ANALYZE).click()
    page.wait_for_selector("#lenscope-panel[data-state='ready']", timeout=60_000)
    page.wait_for_selector(".ls-token")

    default = server_analysis(lab, selected, context)["predictions"]
    lp_own, lp_default = np.asarray(own["lp"], dtype=np.float64), default["actual_logprob"].astype(np.float64)
    diff = np.nan_to_num(np.abs(lp_own - lp_default))
    i = int(diff[1:].argmax()) + 1  # the token after decoration i - 1
    assert diff[i] > 0.02, f"zeroing neuron {neuron} changes no log-prob by more than {diff[i]:.4f}"
    shown = hover_and_read_tooltip(page, i - 1)
    assert shown == own["top"][i]  # the kernel's own top-10
    stats = page.locator(f'.ls-tooltip[data-ls-token="{i - 1}"] .ls-actual-stats').inner_text()
    value = float(re.search(r"log-prob (-?\d+\.\d+)", stats).group(1))  # type: ignore[union-attr]
    assert abs(value - lp_own[i]) <= 0.0051 and abs(value - lp_default[i]) > 0.0051, (value, lp_own[i], lp_default[i])
    shot(page, "kernel-model-tooltip")

    # compared with the default model on the same selection
    page.locator("#lenscope-panel .ls-compare-select").select_option("lenscope-gelu-1l")
    page.locator(f"{editor} .cm-line").nth(9).click(button="right")
    page.get_by_role("menuitem", name=ANALYZE).click()
    page.wait_for_selector("#lenscope-panel[data-state='ready']", timeout=60_000)
    page.mouse.move(0, 0)
    page.locator(f'.ls-token[data-ls-token="{i - 1}"]').first.hover()
    tip = page.wait_for_selector(f'.ls-tooltip[data-ls-token="{i - 1}"]')
    text = tip.inner_text()
    assert NAME in text and "lenscope-gelu-1l" in text
    shot(page, "kernel-model-compare")

    # the kernel restarts: the model is gone from the picker
    kernel_id = next(s["kernel"]["id"] for s in rest(lab, "GET", "api/sessions") if s["path"] == "attach.ipynb")
    rest(lab, "POST", f"api/kernels/{kernel_id}/restart")
    picker.dispatch_event("mousedown")
    page.wait_for_selector(f"#lenscope-panel .ls-model-select option[value='{NAME}']", state="detached", timeout=30_000)
    assert NAME not in {m["name"] for m in lab.api("models")["models"]}
    shot(page, "kernel-model-gone")
    page.evaluate("() => { void window.jupyterapp.commands.execute('application:close-all'); }")
    for s in rest(lab, "GET", "api/sessions"):
        if s["path"] == "attach.ipynb":
            rest(lab, "DELETE", f"api/sessions/{s['id']}")
