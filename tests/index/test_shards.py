"""Sharded index builds: the merge is exact, a killed build resumes to the identical index, an
update after an edit equals a full rebuild, and a full disk leaves nothing corrupt."""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lenscope.errors import StorageFailed
from lenscope.index import shard_store
from lenscope.index.arrays import IndexArrays
from lenscope.index.build import BuildOptions, build_index
from lenscope.index.corpus import read_documents
from lenscope.index.shards import ShardResult, fold, merge, padded, plan_shards
from lenscope.index.store import open_index
from lenscope.workspace import build_index_over, read_corpus

OPTIONS = BuildOptions(k=8, window=64, batch_windows=8)  # small windows: many shards from a small corpus


def stdlib_corpus(root: Path, n: int = 56) -> Path:
    """``n`` files of the standard library's own source: every machine has them."""
    src = Path(sysconfig.get_paths()["stdlib"])
    files = [f for pkg in ("email", "json", "http", "importlib", "logging") for f in sorted((src / pkg).glob("*.py"))][:n]
    root.mkdir(parents=True, exist_ok=True)
    for f in files:
        (root / f"{f.parent.name}_{f.name}").write_text(f.read_text(encoding="utf-8")[:6000], encoding="utf-8")
    return root


def same_index(a: IndexArrays, b: IndexArrays) -> None:
    """Every array byte for byte (NaN where NaN), the descriptions too."""
    for name, value in vars(a).items():
        other = getattr(b, name)
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and value.shape == other.shape, name
            assert value.tobytes() == other.tobytes(), f"{name} differs"
        elif name == "corpus":
            for key, arr in value.arrays().items():
                assert arr.dtype == other.array(key).dtype and arr.tobytes() == other.array(key).tobytes(), f"{key} differs"
            assert value.names == other.names
        elif name in ("descriptions", "samples"):
            for key, arr in value.as_arrays().items():
                assert arr.tobytes() == other.as_arrays()[key].tobytes(), f"{name}: {key} differs"
        else:
            assert value == other, name


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stdlib_corpus(tmp_path_factory.mktemp("shards") / "ws")


@pytest.fixture(scope="module")
def reference(gelu: Any, corpus: Path) -> IndexArrays:
    """A full build with no stored shards at all."""
    docs, _ = read_documents(corpus, ["."])
    return build_index(gelu, docs, OPTIONS)


def test_merge_of_any_split_equals_one_sorted_stream() -> None:
    """Ties included: the fold is a stable sort, so the cut points do not matter."""
    rng = np.random.default_rng(0)
    n, w, k, ctx = 6, 40, 5, 3
    values = rng.integers(0, 4, size=(n, w)).astype(np.float32)  # many ties
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    for _ in range(20):
        cuts = sorted(rng.choice(np.arange(1, w), size=rng.integers(1, 8), replace=False).tolist())
        store = None
        for lo, hi in zip([0, *cuts], [*cuts, w]):
            part = values[:, lo:hi]
            m = min(k, hi - lo)
            o = np.argsort(-part, axis=1, kind="stable")[:, :m]
            r = ShardResult(np.take_along_axis(part, o, 1), o.astype(np.int32), o.astype(np.int32),
                            np.broadcast_to(o[:, :, None], (n, m, ctx)).astype(np.float16), np.zeros(n),
                            part.max(1), np.zeros((n, 66), np.int64), hi - lo)  # fmt: skip
            store = fold(store, r, lo, k)
        assert store is not None
        np.testing.assert_array_equal(store.windows, order)
        np.testing.assert_array_equal(store.values, np.take_along_axis(values, order, 1))


def test_plan_keys_follow_files_not_neighbours(corpus: Path) -> None:
    docs, _ = read_documents(corpus, ["."])
    windows = np.asarray([[d, s, 10] for d in range(len(docs)) for s in range(0, 200, 10)], dtype=np.int32)
    paths, shas = [d.path for d in docs], [d.sha256 for d in docs]
    plan = plan_shards(paths, shas, windows, "k")
    assert len(plan) >= 2 and sum(len(s.windows) for s in plan) == len(windows)
    edited = plan_shards(paths, [*shas[:-1], "0" * 64], windows, "k")
    assert [s.key for s in edited][:-1] == [s.key for s in plan][:-1] and edited[-1].key != plan[-1].key
    assert {s.key for s in plan_shards(paths, shas, windows, "other settings")}.isdisjoint(s.key for s in plan)


def test_stored_shards_give_the_same_index(gelu: Any, corpus: Path, reference: IndexArrays, tmp_path: Path) -> None:
    docs, _ = read_documents(corpus, ["."])
    stats: dict[str, int] = {}
    first = build_index(gelu, docs, OPTIONS, shards_dir=tmp_path / "s", stats=stats)
    assert stats["shards"] >= 3 and stats["reused"] == 0
    same_index(first, reference)
    again = build_index(gelu, docs, OPTIONS, shards_dir=tmp_path / "s", stats=stats)
    assert stats["reused"] == stats["shards"]
    same_index(again, reference)


def test_a_killed_build_resumes_to_the_identical_index(corpus: Path, reference: IndexArrays, tmp_path: Path) -> None:
    """SIGKILL at a random shard, then the same build again: it reuses what was stored and
    ends with the index a build that was never killed gives."""
    shards = tmp_path / "s"
    script = f"""
import sys
from pathlib import Path
from lenscope.index.build import BuildOptions, build_index
from lenscope.index.corpus import read_documents
from lenscope.models.registry import load_model
import torch
torch.set_num_threads(2)
model = load_model("lenscope-gelu-1l")
docs, _ = read_documents(Path({str(corpus)!r}), ["."])
print("ready", flush=True)
build_index(model, docs, BuildOptions(k={OPTIONS.k}, window={OPTIONS.window}, batch_windows={OPTIONS.batch_windows}),
            shards_dir=Path({str(shards)!r}))
"""
    docs, _ = read_documents(corpus, ["."])
    stats: dict[str, int] = {}
    kill_after = random.Random(os.getpid()).randint(1, 3)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if shards.is_dir() and len(list(shards.glob("[!.]*.npz"))) >= kill_after:
                break
            time.sleep(0.005)
        assert child.poll() is None, "the build ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    stored = len(list(shards.glob("[!.]*.npz")))
    assert stored >= kill_after
    from lenscope.models.registry import load_model

    resumed = build_index(load_model("lenscope-gelu-1l"), docs, OPTIONS, shards_dir=shards, stats=stats)
    assert stats["reused"] >= stored and stats["reused"] < stats["shards"]
    same_index(resumed, reference)
    assert not list(shards.glob(".tmp-*")), "a killed write's temporary file was left behind"


def test_an_update_after_an_edit_equals_a_full_rebuild(gelu: Any, corpus: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(corpus, ws)
    out = tmp_path / "idx"
    first = build_index_over(lambda: gelu, "lenscope-gelu-1l", read_corpus(ws, ["."]), out, k=OPTIONS.k)
    assert first["shards_reused"] == 0
    edited = sorted(ws.iterdir())[5]
    edited.write_text(edited.read_text() + "\ndef brand_new_function(spam, eggs):\n    return spam * eggs\n")
    (ws / "zz_added.py").write_text("print('a file added after the first build')\n")
    update = build_index_over(lambda: gelu, "lenscope-gelu-1l", read_corpus(ws, ["."]), out, k=OPTIONS.k)
    assert 0 < update["shards_reused"] < update["shards"]
    fresh = build_index_over(lambda: gelu, "lenscope-gelu-1l", read_corpus(ws, ["."]), tmp_path / "fresh", k=OPTIONS.k)
    assert fresh["shards_reused"] == 0
    a, b = open_index(out), open_index(tmp_path / "fresh")
    assert a.arrays.keys() == b.arrays.keys()
    for name in a.arrays:
        assert np.asarray(a.arrays[name]).tobytes() == np.asarray(b.arrays[name]).tobytes(), name
    assert a.strings == b.strings
    assert {k: v for k, v in a.manifest.items() if k not in ("created", "descriptions")} == {
        k: v for k, v in b.manifest.items() if k not in ("created", "descriptions")
    }


def test_a_full_disk_leaves_no_corrupt_shard_and_the_old_index(
    gelu: Any, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "idx"
    build_index_over(lambda: gelu, "lenscope-gelu-1l", read_corpus(corpus, ["."]), out, k=4)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    shards = shard_store.shards_dir_for(out)
    n_before = len(list(shards.glob("[!.]*.npz")))
    real_savez = np.savez

    def savez_then_full(f: Any, **arrays: Any) -> None:
        f.write(b"PK\x03\x04 partial")  # a shard half-written when the disk filled
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shard_store.np, "savez", savez_then_full)
    with pytest.raises(StorageFailed, match="the disk is full"):
        build_index_over(lambda: gelu, "lenscope-gelu-1l", read_corpus(corpus, ["."]), out, k=5)
    monkeypatch.setattr(shard_store.np, "savez", real_savez)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "the index was changed"
    assert len(list(shards.glob("[!.]*.npz"))) == n_before and not list(shards.glob(".tmp-*"))
    for f in shards.glob("[!.]*.npz"):
        with np.load(f) as a:
            assert "values" in a  # every stored shard is whole


def test_padded_store_marks_missing_examples() -> None:
    one, zero = np.ones((2, 1), np.float32), np.zeros((2, 1), np.int32)
    r = ShardResult(one, zero, zero, np.ones((2, 1, 3), np.float16), np.zeros(2), np.ones(2, np.float32),
                    np.zeros((2, 66), np.int64), 1)  # fmt: skip
    p = padded(r, 3)
    assert p.values.shape == (2, 3) and np.isneginf(p.values[:, 1:]).all() and (p.windows[:, 1:] == -1).all()
    assert np.isnan(p.context[:, 1:].astype(np.float32)).all()
    with pytest.raises(ValueError):
        merge([], 3)


def test_stored_shards_are_never_reused_for_other_weights(gelu: Any, corpus: Path, tmp_path: Path) -> None:
    """One weight edited (as a researcher patching a neuron does): every shard runs again."""
    from lenscope.models.registry import load_model

    docs, _ = read_documents(corpus, ["."])
    docs = docs[:6]
    stats: dict[str, int] = {}
    build_index(gelu, docs, OPTIONS, shards_dir=tmp_path / "s", stats=stats)
    edited = load_model("lenscope-gelu-1l")
    [w_out] = [p for n, p in edited.named_parameters() if "fc_out" in n and n.endswith("weight")]
    with torch.no_grad():
        w_out[7, 5] += 1e-3  # one weight of one neuron's output
    build_index(edited, docs, OPTIONS, shards_dir=tmp_path / "s", stats=stats)
    assert stats["shards"] > 0 and stats["reused"] == 0
    build_index(gelu, docs, OPTIONS, shards_dir=tmp_path / "s", stats=stats)
    assert stats["reused"] == 0  # pruned when the edited model's build ended: only current shards are kept


def test_freed_memory_is_released_on_glibc() -> None:
    """Each shard ends with malloc_trim (see lenscope.native_memory); this machine is glibc Linux."""
    import platform

    from lenscope.native_memory import glibc_heap, release_freed_memory

    assert platform.libc_ver()[0] == "glibc" and glibc_heap()
    release_freed_memory()  # callable, returns whether anything was released
