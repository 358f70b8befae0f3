"""The Ray engine on a local cluster on loopback (nothing leaves the machine): the same index as
the local engine, byte for byte; a worker killed mid-build; a cluster that is not there."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from lenscope.errors import EngineUnavailable
from lenscope.index.build import build_index
from lenscope.index.corpus import read_documents
from lenscope.index.ray_engine import RayEngine, ray_engine_for
from lenscope.index.shard_store import shards_dir_for
from lenscope.index.store import open_index
from lenscope.workspace import build_index_over, read_corpus
from tests.index.test_shards import OPTIONS, same_index, stdlib_corpus

ray = pytest.importorskip("ray")  # a test dependency: `make test` installs it, so this never skips there


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local Ray cluster for the module: 2 CPUs, loopback, no dashboard."""
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stdlib_corpus(tmp_path_factory.mktemp("ray") / "ws", n=30)


def test_ray_and_local_engines_write_the_same_index(cluster: None, gelu: Any, corpus: Path) -> None:
    docs, _ = read_documents(corpus, ["."])
    local = build_index(gelu, docs, OPTIONS)
    engine = ray_engine_for("lenscope-gelu-1l", workers=2)
    seen: list[int] = []
    on_ray = build_index(gelu, docs, OPTIONS, engine=engine, progress=lambda p: seen.append(p["tokens_done"]))
    same_index(on_ray, local)
    assert engine.info["workers"] == 2 and seen[-1] == local.count and seen == sorted(seen)


def test_a_killed_worker_fails_cleanly_or_is_retried(cluster: None, gelu: Any, corpus: Path, tmp_path: Path) -> None:
    """SIGKILL one Ray worker once the build is under way: either Ray retries and the index is
    the local engine's, or the build fails with a clear error and no index is visible."""
    out = tmp_path / "idx"
    done: dict[str, Any] = {}

    def build() -> None:
        try:
            done["result"] = build_index_over(lambda: gelu, "lenscope-gelu-1l", read_corpus(corpus, ["."]), out, k=OPTIONS.k,
                                              engine=ray_engine_for("lenscope-gelu-1l", workers=2))  # fmt: skip
        except EngineUnavailable as exc:
            done["error"] = exc

    thread = threading.Thread(target=build)
    thread.start()
    shards = shards_dir_for(out)
    deadline = time.monotonic() + 120
    killed = None
    while time.monotonic() < deadline and killed is None and thread.is_alive():
        workers = [p for p in psutil.process_iter(["cmdline"]) if "ShardReducer" in " ".join(p.info["cmdline"] or [])]
        if workers and shards.is_dir() and any(shards.glob("[!.]*.npz")):
            killed = workers[0].pid
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    thread.join(300)
    assert not thread.is_alive(), "the build hung after a worker was killed"
    assert killed is not None, "no worker was seen to kill"
    print("a killed Ray worker:", "the build failed cleanly" if "error" in done else "Ray retried; the index is complete")
    if "error" in done:
        assert "Ray" in str(done["error"]) and not out.exists()
    else:
        local = build_index_over(lambda: gelu, "lenscope-gelu-1l", read_corpus(corpus, ["."]), tmp_path / "local", k=OPTIONS.k)
        assert done["result"]["tokens"] == local["tokens"]
        a, b = open_index(out), open_index(tmp_path / "local")
        for name in a.arrays:
            assert np.asarray(a.arrays[name]).tobytes() == np.asarray(b.arrays[name]).tobytes(), name


def test_an_unreachable_cluster_is_a_clear_error_fast(gelu: Any, corpus: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    docs, _ = read_documents(corpus, ["."])
    engine = RayEngine(lambda: (gelu, [], None), address=f"127.0.0.1:{port}")  # type: ignore[arg-type]
    if ray.is_initialized():
        ray.shutdown()  # the engine joins a running session if there is one
    t0 = time.monotonic()
    with pytest.raises(EngineUnavailable, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        build_index(gelu, docs[:2], OPTIONS, engine=engine)
    assert time.monotonic() - t0 < 10
    with pytest.raises(EngineUnavailable, match="not host:port"):
        RayEngine(lambda: (gelu, [], None), address="nowhere")._init()  # type: ignore[arg-type]
