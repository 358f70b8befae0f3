"""`pip install lenscope` gives a researcher the whole extension (issue 16).

One module-scoped fixture copies the tree as a clean clone holds it (tracked files and untracked
ones git does not ignore: no node_modules, no built extension), builds the sdist and the wheel
from it with the standard build frontend (isolated build environments, Node.js from the system),
then a second wheel from that sdist with no Node.js on PATH. Each wheel goes into its own fresh
virtual environment, the way the README installs into an existing JupyterLab: CPU torch first,
then JupyterLab, then the wheel; no editable install, and the copied tree is deleted before any
check. From each environment: `jupyter labextension list` and `jupyter server extension list`
show lenscope enabled, and its JupyterLab (with an empty home directory and the Hugging Face hub
offline, so nothing can be fetched) shows the panel and analyzes a selection in Chromium.
A size breakdown of the wheel is written to ``test-artifacts/wheel-contents.txt``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from benchmarks.server import free_port

from tests.demo import copy_demo
from tests.ui.conftest import ARTIFACTS, TOKEN, Lab
from tests.ui.test_inline import ANALYZE, decorated, open_in_lab, select_lines, server_analysis

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["version"]
LABEXT = "share/jupyter/labextensions/lenscope"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# the CPU build of torch (a local file here); a bare `torch` would pull a multi-GB CUDA build.
# (--no-compile below: byte-compiling torch and JupyterLab at install time would take a minute)
BASE_INSTALL = [["torch==2.13.0"], ["jupyterlab==4.6.6"]]


def clean_copy(dest: Path) -> None:
    """What a clean clone of this working tree holds: tracked files (less deleted ones) and
    untracked ones that git does not ignore."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout  # fmt: skip
    for name in sorted({n.decode() for n in out.split(b"\0") if n}):
        src = ROOT / name
        if not os.path.lexists(src):
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name, follow_symlinks=False)


def run(cmd: list[Any], log: Path, **kw: Any) -> None:
    with open(log, "a") as f:
        f.write(f"$ {' '.join(map(str, cmd))}\n")
        f.flush()
        rc = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, **kw).returncode
    if rc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise AssertionError(f"{cmd[:4]} exited {rc}; log {log}:\n{tail}")


@dataclass
class Env:
    """A fresh virtual environment with lenscope installed from one distribution."""

    name: str
    prefix: Path
    home: Path  # an empty home: no user Jupyter config, no Hugging Face cache

    @property
    def bin(self) -> Path:
        return self.prefix / "bin"

    def pip_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV"))}
        return dict(env, PATH=f"{self.bin}:{SYSTEM_PATH}")  # the user's pip cache and config stay

    def runtime_env(self) -> dict[str, str]:
        keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
        return dict(keep, HOME=str(self.home), PATH=f"{self.bin}:{SYSTEM_PATH}", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

    def out(self, *cmd: str) -> str:
        """stdout and stderr (jupyter's list commands use both), without colour codes."""
        p = subprocess.run(
            [str(self.bin / cmd[0]), *cmd[1:]], cwd=self.home, env=self.runtime_env(), capture_output=True, text=True
        )
        assert p.returncode == 0, p.stdout + p.stderr
        return ANSI.sub("", p.stdout + p.stderr)


def base_install(env: Env, log: Path) -> subprocess.Popen[bytes]:
    """venv, CPU torch, JupyterLab: the "existing JupyterLab" the wheel goes into; in the background."""
    steps = [f"{sys.executable} -m venv {env.prefix}"] + [
        f"{env.bin}/python -m pip install -q --no-compile {' '.join(reqs)}" for reqs in BASE_INSTALL
    ]
    f = open(log, "w")  # noqa: SIM115
    return subprocess.Popen(["bash", "-ec", " && ".join(steps)], stdout=f, stderr=subprocess.STDOUT, env=env.pip_env())


def wait(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.wait(timeout=900):
        raise AssertionError(f"base install failed; log {log}:\n{log.read_text(errors='replace')[-3000:]}")


@dataclass
class Packaged:
    wheel: Path
    sdist: Path
    wheel_from_sdist: Path
    envs: dict[str, Env]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Packaged]:
    work = tmp_path_factory.mktemp("packaging")
    logs = work / "logs"
    logs.mkdir()
    envs = {name: Env(name, work / f"venv-{name}", work / f"home-{name}") for name in ("wheel", "sdist")}
    base: dict[str, subprocess.Popen[bytes]] = {}
    try:
        # the environments' base installs need no build: they run while the build does
        base.update({name: base_install(env, logs / f"base-{name}.log") for name, env in envs.items()})
        src, dist = work / "src", work / "dist"
        clean_copy(src)
        build_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        # system PATH only: Node.js from the system, jlpm from the isolated build environment
        run([sys.executable, "-m", "build", "--sdist", "--wheel", "-o", dist, src], logs / "build.log",
            env=dict(build_env, PATH=SYSTEM_PATH))  # fmt: skip
        (wheel,) = dist.glob("lenscope-*.whl")
        (sdist,) = dist.glob("lenscope-*.tar.gz")
        src.rename(work / "src-removed")  # nothing installed below may point into it (removed below)
        # from the sdist, the frontend build is skipped (it carries the built extension): no Node.js
        no_node = work / "no-node-bin"
        no_node.mkdir()
        run([sys.executable, "-m", "build", "--wheel", "-o", work / "dist-from-sdist", sdist], logs / "build-sdist.log",
            env=dict(build_env, PATH=str(no_node)))  # fmt: skip
        (wheel_from_sdist,) = (work / "dist-from-sdist").glob("lenscope-*.whl")

        installs = []
        for name, dist_file in (("wheel", wheel), ("sdist", wheel_from_sdist)):
            env = envs[name]
            wait(base[name], logs / f"base-{name}.log")
            env.home.mkdir()
            log = open(logs / f"install-{name}.log", "w")  # noqa: SIM115
            cmd = [str(env.bin / "python"), "-m", "pip", "install", "-q", "--no-compile", str(dist_file)]
            installs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env.pip_env()), log))
        for proc, log in installs:
            if proc.wait(timeout=900):
                raise AssertionError(f"installing lenscope failed; log {log.name}:\n{Path(log.name).read_text()[-3000:]}")
        yield Packaged(wheel, sdist, wheel_from_sdist, envs)
    finally:
        for proc in base.values():
            if proc.poll() is None:
                proc.kill()
        # two environments with torch (about 4 GB) and the copied tree: removed in the background
        # (a minute of disk work) while the next tests run
        doomed = [p for p in (*(e.prefix for e in envs.values()), work / "src", work / "src-removed") if p.exists()]
        if doomed:
            subprocess.Popen(["rm", "-rf", *map(str, doomed)], start_new_session=True)


def size_breakdown(wheel: Path) -> str:
    parts: Counter[str] = Counter()
    zipped: Counter[str] = Counter()
    for info in zipfile.ZipFile(wheel).infolist():
        name = info.filename
        if f"/{LABEXT}/" in name:
            part = "labextension (share/jupyter/labextensions/lenscope)"
        elif "/models/default/" in name:
            part = "default models (weights, tokenizer, model card)"
        elif "/models/indexes/" in name:
            part = "shipped neuron index"
        elif name.startswith(("lenscope/", "lenscope_server/")):
            part = "Python code (lenscope, lenscope_server)"
        else:
            part = "metadata and Jupyter server config"
        parts[part] += info.file_size
        zipped[part] += info.compress_size
    lines = [f"{wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB", f"{'part':55s} {'zipped MB':>10s} {'unpacked MB':>12s}"]
    lines += [f"{p:55s} {zipped[p] / 1e6:10.2f} {parts[p] / 1e6:12.2f}" for p, _ in zipped.most_common()]
    return "\n".join(lines) + "\n"


def test_the_wheel_carries_the_extension_the_models_and_the_index(packaged: Packaged) -> None:
    z = zipfile.ZipFile(packaged.wheel)
    names = set(z.namelist())
    data = f"lenscope-{VERSION}.data/data"
    assert f"{data}/etc/jupyter/jupyter_server_config.d/lenscope_server.json" in names
    assert json.loads(z.read(f"{data}/{LABEXT}/install.json"))["packageName"] == "lenscope"
    ext = json.loads(z.read(f"{data}/{LABEXT}/package.json"))
    assert ext["version"] == VERSION
    assert f"{data}/{LABEXT}/{ext['jupyterlab']['_build']['load']}" in names
    assert f"{data}/{LABEXT}/static/style.js" in names
    assert f"{data}/{LABEXT}/schemas/lenscope/plugin.json" in names
    assert not [n for n in names if n.endswith(".js.map") or n.endswith("build_log.json")], "a development build"
    assert not [n for n in names if n.startswith("lenscope_server/labextension/")], "the extension twice"
    for shipped in (
        "lenscope/models/default/gelu-1l/model.safetensors",
        "lenscope/models/default/attn-only-1l/model.safetensors",
        "lenscope/models/default/tokenizer/tokenizer.json",
        "lenscope/models/indexes/lenscope-gelu-1l/manifest.json",
    ):
        assert shipped in names
    metadata = z.read(f"lenscope-{VERSION}.dist-info/METADATA").decode()
    assert f"\nVersion: {VERSION}\n" in metadata  # one version: package.json's
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "wheel-contents.txt").write_text(size_breakdown(packaged.wheel))


def test_the_sdist_carries_the_built_extension_and_its_wheel_is_the_same(packaged: Packaged) -> None:
    with tarfile.open(packaged.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert "server_ext/lenscope_server/labextension/static/style.js" in names  # built, no Node.js needed
    assert {"package.json", "yarn.lock", "labextension/src/index.ts", "install.json", "PKG-INFO"} <= names  # or rebuild it
    assert not [n for n in names if n.startswith(("node_modules/", ".venv/", ".yarn/"))]
    tree = sorted(zipfile.ZipFile(packaged.wheel).namelist())
    assert sorted(zipfile.ZipFile(packaged.wheel_from_sdist).namelist()) == tree


@pytest.fixture(params=["wheel", "sdist"])
def env(request: pytest.FixtureRequest, packaged: Packaged) -> Env:
    return packaged.envs[request.param]


def test_installed_from_the_distribution_not_the_source_tree(env: Env) -> None:
    files = json.loads(
        env.out(
            "python",
            "-c",
            "import json, lenscope, lenscope_server; print(json.dumps([lenscope.__file__, lenscope_server.__file__]))",
        )
    )
    assert all(f.startswith(str(env.prefix)) for f in files), files
    (site,) = env.prefix.glob("lib/python*/site-packages")
    pth = "".join(p.read_text() for p in site.glob("*.pth"))
    assert "lenscope" not in pth and str(ROOT) not in pth
    (direct_url,) = site.glob("lenscope-*.dist-info/direct_url.json")
    assert "archive_info" in json.loads(direct_url.read_text())  # installed from a file, not editable
    labext = env.prefix / LABEXT
    assert labext.is_dir() and not labext.is_symlink()
    # one version number: package.json's, in the distribution's metadata and the package
    versions = env.out(
        "python", "-c", "import importlib.metadata as m, lenscope; print(m.version('lenscope'), lenscope.__version__)"
    )
    assert versions.split() == [VERSION, VERSION]


def test_jupyter_lists_both_extensions_enabled(env: Env) -> None:
    labext = env.out("jupyter", "labextension", "list")
    assert f"{env.prefix}/share/jupyter/labextensions" in labext
    assert re.search(rf"^\s+lenscope v{re.escape(VERSION)} enabled\s+OK \(python, lenscope\)$", labext, re.M), labext
    server = env.out("jupyter", "server", "extension", "list")
    assert f"Config dir: {env.prefix}/etc/jupyter" in server
    assert re.search(r"^\s+lenscope_server enabled$", server, re.M), server
    assert re.search(r"^\s+lenscope_server .*OK$", server, re.M), server


@contextmanager
def lab_from(env: Env) -> Iterator[Lab]:
    """JupyterLab from the environment's own `jupyter-lab`, on a copy of examples/."""
    root = env.home / "workspace"
    copy_demo(root)  # the demo files only: never a user's examples/.lenscope/ index or checkpoints
    settings = env.home / "lab-settings"
    news = settings / "@jupyterlab" / "apputils-extension"  # the news prompt would cover the page
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port = free_port()
    cmd = [
        str(env.bin / "jupyter-lab"), f"--ServerApp.root_dir={root}", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    run_env = dict(env.runtime_env(), JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(settings / "ws"))
    log_path = env.home / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=env.home, env=run_env, stdout=log, stderr=subprocess.STDOUT)
        lab = Lab(f"http://127.0.0.1:{port}/", root, TOKEN)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if lab.api("health")["models"]["loaded"] == ["lenscope-gelu-1l"]:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(f"JupyterLab from {env.prefix} did not get ready:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield lab
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_jupyterlab_from_the_environment_shows_the_panel_and_analyzes_a_selection(env: Env, browser: Any) -> None:
    with lab_from(env) as lab:
        context = browser.new_context(viewport={"width": 1500, "height": 950})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            open_in_lab(page, lab, "tour.py")
            editor = ".jp-FileEditor"
            page.wait_for_selector(f"{editor} .cm-content")
            lines = (lab.root / "tour.py").read_text(encoding="utf-8").split("\n")
            select_lines(page, editor, 8, 15)
            page.locator(f"{editor} .cm-line").nth(9).click(button="right")  # inside the selection
            page.get_by_role("menuitem", name=ANALYZE).click()
            page.wait_for_selector(".ls-token")
            page.wait_for_function("() => document.querySelector('#lenscope-panel')?.dataset.state === 'ready'")

            selected, before = "\n".join(lines[7:15]), "\n".join(lines[:7]) + "\n"
            server = server_analysis(lab, selected, before)
            n_tokens = len(server["tokens"]["start_utf16"])
            assert "".join(t for _, t, _ in decorated(page)) == selected.replace("\n", "")
            assert page.locator("#lenscope-panel .ls-flow-token").count() == n_tokens > 20
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"packaged-{env.name}.png"))
        finally:
            context.close()
        log = (env.home / "lab.log").read_text()
    assert "Traceback" not in log, log[-3000:]
