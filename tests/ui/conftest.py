"""A real JupyterLab with the built lenscope extension, and headless Debian Chromium.

One JupyterLab server per session (its worker loads the default model once); every test gets
a fresh page. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from benchmarks.server import free_port

from tests.demo import copy_demo

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
]  # fmt: skip
TOKEN = "lenscope-ui-test"


@dataclass
class Lab:
    url: str
    root: Path
    token: str

    def api(self, route: str, body: dict[str, Any] | None = None) -> Any:
        """Call the lenscope API directly (JSON), as an independent check on what the UI shows."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}lenscope/api/{route}",
            data=data,
            method="POST" if data else "GET",
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        return json.loads(urllib.request.urlopen(req, timeout=120).read())


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("workspace")
    copy_demo(root)  # the demo files only: never a user's examples/.lenscope/ index or checkpoints
    settings = tmp_path_factory.mktemp("settings")
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False",
        "--LabApp.expose_app_in_browser=True", "--LenscopeApp.worker_threads=2",
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(settings / "ws"))
    log = open(tmp_path_factory.mktemp("log") / "lab.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    lab = Lab(url, root, TOKEN)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(
                    urllib.request.Request(url + "api/status", headers={"Authorization": f"token {TOKEN}"}), timeout=2
                )
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab did not start; see {log.name}") from None
                time.sleep(0.25)
        # wait for the worker to have the default model loaded (preload), so timings are warm
        deadline = time.monotonic() + 180
        while lab.api("health")["models"]["loaded"] != ["lenscope-gelu-1l"] and time.monotonic() < deadline:
            time.sleep(0.5)
        yield lab
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: sync Playwright keeps an event loop running in this thread until it closes,
    which must happen before any pytest-jupyter test (with its own loop) runs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, lab: Lab) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@pytest.fixture
def jp_asyncio_loop() -> Iterator[None]:
    """pytest-jupyter closes a per-test asyncio loop; sync Playwright keeps its own running in
    this thread, so the UI tests opt out of it and of the in-process server's cleanup (they
    start their own JupyterLab in a subprocess)."""
    yield None


@pytest.fixture
def jp_server_cleanup() -> Iterator[None]:
    yield None


KERNEL_IDLE = """() => { const w = window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.status === 'idle' && k.connectionStatus === 'connected'; }"""
"""A page check: the current notebook's kernel is started, connected and idle."""


def write_notebook(lab: Lab, name: str, sources: tuple[str, ...] | list[str]) -> None:
    """A notebook of code cells (no outputs yet) in the workspace, for the python3 kernel."""
    cells = [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
        for i, src in enumerate(sources)
    ]
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    (lab.root / name).write_text(json.dumps(nb), encoding="utf-8")


def rest(lab: Lab, method: str, route: str) -> Any:
    """Jupyter's own REST API (sessions, kernels), as the page's user."""
    req = urllib.request.Request(f"{lab.url}{route}", method=method, headers={"Authorization": f"token {lab.token}"})
    body = urllib.request.urlopen(req, timeout=60).read()
    return json.loads(body) if body else None
