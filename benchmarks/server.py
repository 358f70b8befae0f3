"""Start a real Jupyter server with lenscope for benchmarks, on loopback, and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOKEN = "lenscope-bench"
PIDS: dict[str, int] = {}
"""The server process of each running server's base URL (tests inspect it)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def jupyter_server(root: Path, *extra: str, preload: bool = False) -> Iterator[str]:
    """Yield the server's base URL once it answers ``/api/status`` (``preload``: the workers
    start and load the default model in the background, as in a user's server)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyter_server", f"--ServerApp.root_dir={root}", f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False",
        f"--LenscopeApp.preload={preload}", *extra,
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    PIDS[base] = proc.pid
    try:
        for _ in range(300):
            try:
                req = urllib.request.Request(base + "api/status", headers={"Authorization": f"token {TOKEN}"})
                urllib.request.urlopen(req, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("jupyter server did not start")
        yield base
    finally:
        PIDS.pop(base, None)
        proc.terminate()
        proc.wait(timeout=20)
