"""The VS Code extension in a real VS Code: code-server with the .vsix installed, driven by
Playwright in Debian's Chromium, against the real Jupyter server of ``conftest.lab``.

Select, analyze (command palette), decorations, hover with the top-10, a neuron chip opens the
card in the panel's webview; the panel's comparison; a wrong token and a server that is not
running give messages that say what to do. ``make vscode code-server`` builds and installs what
this needs (``make test`` does); without them the module is skipped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from benchmarks.server import free_port

from tests.ui.conftest import ARTIFACTS, ROOT, Lab

CODE_SERVER = ROOT / ".cache" / "code-server" / "node_modules" / ".bin" / "code-server"
VSIX = ROOT / "vscode" / "lenscope.vsix"

pytestmark = pytest.mark.skipif(
    not (CODE_SERVER.exists() and VSIX.exists()), reason="needs `make vscode code-server` (the .vsix and code-server)"
)


@dataclass
class CodeServer:
    url: str
    settings: Path
    folder: Path
    base_settings: dict[str, Any]

    def set(self, **overrides: Any) -> None:
        """Rewrite the user settings (VS Code watches the file and applies them)."""
        self.settings.write_text(json.dumps({**self.base_settings, **overrides}, indent=1))


@pytest.fixture(scope="module")
def code_server(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeServer]:
    base = tmp_path_factory.mktemp("code-server")
    data, extensions, xdg = base / "user-data", base / "extensions", base / "xdg"
    (data / "User").mkdir(parents=True)
    settings: dict[str, Any] = {
        "lenscope.serverUrl": lab.url,
        "lenscope.token": lab.token,
        "lenscope.requestTimeoutSeconds": 120,
        "workbench.startupEditor": "none",
        "security.workspace.trust.enabled": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "workbench.tips.enabled": False,
        "chat.disableAIFeatures": True,
        "editor.hover.delay": 200,
        "editor.minimap.enabled": False,
        "workbench.colorTheme": "Default Dark Modern",
    }
    cs = CodeServer("", data / "User" / "settings.json", lab.root, settings)
    cs.set()
    from jupyter_core.paths import jupyter_runtime_dir

    # code-server's own state under a temporary XDG home; `jupyter server list` in its extension
    # host must still find the servers of this machine (their runtime files)
    env = dict(os.environ, XDG_DATA_HOME=str(xdg), XDG_CONFIG_HOME=str(xdg / "config"), JUPYTER_RUNTIME_DIR=jupyter_runtime_dir())
    common = [f"--user-data-dir={data}", f"--extensions-dir={extensions}", f"--config={base / 'config.yaml'}"]
    subprocess.run(
        [str(CODE_SERVER), *common, "--install-extension", str(VSIX)], check=True, env=env, capture_output=True, timeout=120
    )
    assert any(p.name.startswith("lenscope.lenscope-vscode-") for p in extensions.iterdir())
    port = free_port()
    cmd = [
        str(CODE_SERVER), *common, f"--bind-addr=127.0.0.1:{port}", "--auth=none", "--disable-telemetry",
        "--disable-update-check", "--disable-workspace-trust", "--disable-getting-started-override", str(lab.root),
    ]  # fmt: skip
    log = open(base / "code-server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    cs.url = f"http://127.0.0.1:{port}/?folder={lab.root}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"code-server did not start; see {log.name}") from None
                time.sleep(0.25)
        yield cs
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(xdg, ignore_errors=True)


@contextmanager
def window(browser: Any, code_server: CodeServer, **settings: str) -> Iterator[Any]:
    """A fresh VS Code window (it reads ``settings`` at start-up); the settings are reset after."""
    if settings:
        code_server.set(**settings)
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(code_server.url)
        page.wait_for_selector(".monaco-workbench")
        yield page
    finally:
        context.close()
        if settings:
            code_server.set()


@pytest.fixture
def vs(browser: Any, code_server: CodeServer) -> Iterator[Any]:
    with window(browser, code_server) as page:
        yield page


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"vscode-{name}.png"))


def open_file(page: Any, name: str) -> None:
    # the explorer lists the workspace once the remote file system is up
    page.locator(f".explorer-folders-view .monaco-list-row[aria-label='{name}']").click()
    page.locator(f".tabs-container .tab[aria-label^='{name}']").wait_for()
    page.locator(".editor-instance .monaco-editor .view-lines").first.wait_for()


def select_lines(page: Any, n: int) -> None:
    page.locator(".editor-instance .monaco-editor .view-lines").first.click()
    page.keyboard.press("Control+Home")
    for _ in range(n):
        page.keyboard.press("Shift+ArrowDown")


def run_command(page: Any, title: str) -> None:
    page.keyboard.press("F1")
    box = page.locator(".quick-input-widget input")
    box.wait_for()
    box.fill(f">{title}")
    page.locator(".quick-input-widget .monaco-list-row", has_text=title).first.wait_for()
    page.keyboard.press("Enter")


def array(wire: dict[str, Any]) -> Any:
    """An ndarray of the JSON wire format: {dtype, shape, data (a list; base64 bytes also read)}."""
    import numpy as np

    data = wire["data"]
    if isinstance(data, str):
        return np.frombuffer(base64.b64decode(data), dtype=np.dtype(wire["dtype"]).newbyteorder("<")).reshape(wire["shape"])
    return np.asarray(data, dtype=wire["dtype"]).reshape(wire["shape"])


def decorations(page: Any) -> Any:
    return page.locator(".editor-instance .monaco-editor .view-overlays [class*='ced-']")


def panel(page: Any) -> Any:
    """The lenscope webview (the view's iframe, then its content frame)."""
    return page.frame_locator("iframe.webview.ready").frame_locator("iframe#active-frame")


def toast(page: Any, text: str) -> Any:
    return page.locator(".notifications-toasts .notification-toast", has_text=text).first


def test_analyze_hover_and_card(vs: Any, code_server: CodeServer, lab: Lab) -> None:
    page = vs
    open_file(page, "tour.py")
    select_lines(page, 16)
    run_command(page, "lenscope: Analyze selection")
    deco = decorations(page)
    deco.first.wait_for(timeout=90_000)
    page.keyboard.press("Control+End")  # collapse the selection: only the colouring remains
    time.sleep(0.5)
    count = deco.count()
    assert count > 30, count
    # the colouring stays inside the 16 selected lines (a newline token may end at the start of line 17)
    tops = [b["y"] for b in (deco.nth(i).bounding_box() for i in range(count)) if b]
    line = page.locator(".editor-instance .monaco-editor .view-line").first.bounding_box()["height"]
    first_line_top = page.locator(".editor-instance .monaco-editor .view-lines").first.bounding_box()["y"]
    assert max(tops) <= first_line_top + 16 * line, (max(tops), first_line_top, line)
    shot(page, "decorations")

    # hover a token in the middle of the selection: the top-10, the rank and log-prob, neuron chips
    box = deco.nth(count // 2).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hover = page.locator(".monaco-hover:visible", has_text="top-10 next token")
    hover.wait_for(timeout=20_000)
    text = hover.inner_text()
    assert "lenscope-gelu-1l" in text
    assert "this token: log-prob" in text and "rank" in text
    # the top-10 in two columns of five: ranks 1..10, each with its probability
    assert hover.locator("table tr").count() == 6
    assert len(re.findall(r"\d+(?:\.\d+)?%", hover.locator("table").inner_text())) == 10
    # the numbers are the server's: check the hovered token's log-prob and rank against the API
    token_m = re.search(r"token (\d+)", text)
    numbers_m = re.search(r"this token: log-prob (-?\d+\.\d+) · rank (\d+)", text)
    assert token_m and numbers_m, text
    i = int(token_m.group(1))
    logprob, rank = numbers_m.groups()
    selected = "".join((lab.root / "tour.py").read_text().splitlines(keepends=True)[:16])
    wire = lab.api("analyze", {"text": selected, "context": "", "top_k": 10, "top_neurons": 10})
    assert float(logprob) == pytest.approx(float(array(wire["predictions"]["actual_logprob"])[i]), abs=0.006)
    assert int(rank) == int(array(wire["predictions"]["actual_rank"])[i])
    chips = hover.locator("a[data-href^='command:lenscope.openNeuron']")
    assert chips.count() >= 1
    # each neuron chip has a ◐ that colours the text by that neuron
    assert hover.locator("a[data-href^='command:lenscope.colourByUnit']").count() == chips.count()
    shot(page, "hover")
    chip_label = chips.first.inner_text()  # "L0.N389 2.62"
    layer, index = chip_label.split()[0][1:].split(".N")

    # the chip opens that neuron's card in the panel's webview
    chips.first.click()
    card = panel(page).locator("#lenscope-card")
    card.wait_for(timeout=60_000)
    assert card.get_attribute("data-neuron") == f"{layer}.{index}"
    assert f"layer {layer} · neuron {index}" in card.inner_text()
    assert card.locator(".example").count() >= 5
    page.mouse.move(1400, 900)
    page.keyboard.press("Escape")
    time.sleep(0.5)
    shot(page, "card")

    # the panel shows the selection's strongest neurons; clicking one opens its card
    neurons = panel(page).locator("#lenscope-neurons .chip")
    assert neurons.count() >= 5
    target = neurons.nth(1).get_attribute("data-neuron")
    neurons.nth(1).click()
    panel(page).locator(f"#lenscope-card[data-neuron='{target}']").wait_for(timeout=60_000)

    # compare with the attention-only model on the same 16 lines
    panel(page).locator("#lenscope-compare-model").select_option("lenscope-attn-only-1l")
    page.locator(".editor-instance .monaco-editor .view-lines").first.click()
    page.keyboard.press("Control+Home")
    for _ in range(16):
        page.keyboard.press("Shift+ArrowDown")
    panel(page).locator("#lenscope-compare").click()
    table = panel(page).locator("#lenscope-compare-table")
    table.wait_for(timeout=120_000)
    header = table.locator("tr").first.inner_text()
    assert "lenscope-gelu-1l" in header and "lenscope-attn-only-1l" in header
    assert table.locator("tr").count() > 10
    assert deco.count() > 30  # recoloured by the diff
    page.locator(".editor-instance .monaco-editor .view-lines").first.click()
    page.keyboard.press("Control+End")
    time.sleep(0.5)
    shot(page, "compare")

    # colour the analyzed lines by the hovered chip's neuron: the status bar names it with the
    # route's own max, every decoration is the activation blue; then back to the comparison
    unit = f"L{layer}.N{index}"
    run_command(page, "lenscope: Colour by a unit")
    page.locator(".quick-input-widget", has_text="or an SAE feature (F1741)").wait_for()
    page.locator(".quick-input-widget input").fill(unit.lower())  # names are read case-insensitively
    page.keyboard.press("Enter")
    status = page.locator(".statusbar-item", has_text=f"lenscope: {unit} · max")
    status.wait_for(timeout=90_000)
    acts = lab.api("unit_activations", {"text": selected, "context": "", "units": [unit], "model": "lenscope-gelu-1l"})
    want = float(array(acts["activations"]).max())
    shown = re.search(r"max (-?\d+\.\d+)", status.inner_text())
    assert shown and float(shown.group(1)) == pytest.approx(want, abs=0.006), (status.inner_text(), want)
    assert want > 0  # the neuron fired on the hovered token
    time.sleep(0.5)
    colours = [deco.nth(k).evaluate("e => getComputedStyle(e).backgroundColor") for k in range(deco.count())]
    assert colours and all(c.startswith("rgba(40, 120, 230") for c in colours), colours[:5]
    shot(page, "unit")

    # a feature: of the SAE the server lists for the model (picked when there are several); the
    # one that peaks highest on these lines among the first 64
    saes = [s for s in lab.api("models")["saes"] if s["loadable"] and s["model"] in ("lenscope-gelu-1l", None)]
    saes.sort(key=lambda s: s["model"] is None)  # the model's own first, as the extension lists them
    sae = saes[0]["name"]
    probe = lab.api(
        "unit_activations",
        {"text": selected, "context": "", "units": [f"F{k}" for k in range(64)], "model": "lenscope-gelu-1l", "sae": sae},
    )
    peaks = array(probe["activations"]).max(axis=0)
    feature = f"F{int(peaks.argmax())}"
    run_command(page, "lenscope: Colour by a unit")
    page.locator(".quick-input-widget", has_text="or an SAE feature (F1741)").wait_for()
    page.locator(".quick-input-widget input").fill(feature)
    page.keyboard.press("Enter")
    if len(saes) > 1:
        page.locator(".quick-input-widget .monaco-list-row", has_text=sae).first.click()
    status = page.locator(".statusbar-item", has_text=f"lenscope: {feature} of {sae} · max")
    status.wait_for(timeout=90_000)
    shown = re.search(r"max (-?\d+\.\d+)", status.inner_text())
    assert shown and float(shown.group(1)) == pytest.approx(float(peaks.max()), abs=0.006), (status.inner_text(), peaks.max())
    assert deco.count() > 0
    run_command(page, "lenscope: Colour by log-prob again")
    status.wait_for(state="hidden")
    assert deco.count() > 30  # the comparison's colours again


@pytest.mark.parametrize(
    ("case", "settings", "expect", "button"),
    [
        (
            "wrong-token",
            {"lenscope.token": "not-the-token"},
            ["refused the token (403)", "lenscope.token", "jupyter server list"],
            "Open settings",
        ),
        (
            "no-server",
            {"lenscope.serverUrl": "DEAD"},
            ["cannot reach", "Is it running?", "lenscope: Start a Jupyter server"],
            "Start Jupyter server",
        ),
    ],
)
def test_bad_server_settings_say_what_to_do(
    browser: Any, code_server: CodeServer, case: str, settings: dict[str, str], expect: list[str], button: str
) -> None:
    """A wrong token, or a server that is not running: an error notification that says what to do.
    (Run from the editor's context menu and from the keybinding: the palette is tested above.)"""
    if settings.get("lenscope.serverUrl") == "DEAD":
        settings = {"lenscope.serverUrl": f"http://127.0.0.1:{free_port()}/"}
    with window(browser, code_server, **settings) as page:
        open_file(page, "tour.py")
        select_lines(page, 3)
        if case == "wrong-token":  # the editor's context menu
            page.locator(".editor-instance .monaco-editor .view-lines").first.click(button="right", position={"x": 40, "y": 10})
            item = page.locator(".monaco-menu .action-label", has_text="Analyze selection")
            # VS Code's menu ignores a click that comes too soon after it opened: hover the item
            # (which focuses it) and press Enter
            item.hover()
            page.wait_for_timeout(300)
            page.keyboard.press("Enter")
            item.wait_for(state="hidden")
        msg = toast(page, expect[0])
        if case != "wrong-token":  # the keybinding; a press while the window is still starting
            for _ in range(3):  # its extensions can go unanswered, so it is pressed again
                page.keyboard.press("Control+Alt+L")
                try:
                    msg.wait_for(timeout=10_000)
                    break
                except Exception:  # no toast yet
                    continue
        try:
            msg.wait_for(timeout=30_000)
        except Exception:
            shot(page, f"{case}-failed")
            raise
        text = msg.inner_text()
        for part in expect:
            assert part in text, text
        if "lenscope.serverUrl" in settings:
            assert settings["lenscope.serverUrl"] in text, text
        assert msg.locator("a.monaco-button", has_text=button).count() == 1
        assert decorations(page).count() == 0
        shot(page, case)


def test_server_found_with_jupyter_server_list(browser: Any, code_server: CodeServer, lab: Lab) -> None:
    """No URL and no token in the settings: `jupyter server list --json` finds the test's server
    (its root is the workspace) and its token."""
    jupyter = str(Path(sys.executable).parent / "jupyter")
    unset = {"lenscope.serverUrl": "", "lenscope.token": "", "lenscope.jupyterCommand": jupyter}
    with window(browser, code_server, **unset) as page:
        open_file(page, "tour.py")
        select_lines(page, 5)
        run_command(page, "lenscope: Analyze selection")
        decorations(page).first.wait_for(timeout=60_000)
        run_command(page, "lenscope: Show panel")
        server = panel(page).locator(".muted", has_text="http://")
        server.first.wait_for()
        assert server.first.inner_text().strip() == lab.url


def test_start_server_command(browser: Any, code_server: CodeServer) -> None:
    """No server configured: "lenscope: Start a Jupyter server" starts one (free port, fresh token)
    in the workspace, and the next analysis uses it."""
    jupyter = str(Path(sys.executable).parent / "jupyter")
    started: str | None = None
    unset = {"lenscope.serverUrl": "", "lenscope.token": "", "lenscope.jupyterCommand": jupyter}
    try:
        with window(browser, code_server, **unset) as page:
            open_file(page, "tour.py")
            run_command(page, "lenscope: Start a Jupyter server")
            msg = toast(page, "Jupyter server started at")
            msg.wait_for(timeout=90_000)
            url_m = re.search(r"started at (http://127\.0\.0\.1:\d+/)", msg.inner_text())
            assert url_m, msg.inner_text()
            started = url_m.group(1)
            select_lines(page, 5)
            run_command(page, "lenscope: Analyze selection")
            decorations(page).first.wait_for(timeout=120_000)
            page.keyboard.press("Control+Home")  # collapse the selection (the output panel leaves little room)
            time.sleep(0.5)
            assert decorations(page).count() > 5
            shot(page, "started-server")
    finally:
        if started:  # the server the extension started: stop it (it outlives the closed window)
            listed = subprocess.run([jupyter, "server", "list", "--json"], capture_output=True, text=True, timeout=60).stdout
            for line in listed.splitlines():
                if line.startswith("{") and json.loads(line).get("url") == started:
                    os.kill(json.loads(line)["pid"], signal.SIGTERM)
