"""TransformerLens legacy checkpoint folders (what ``NeelNanda/gelu-1l`` & co. are on the hub: a
TL-style config.json and a ``*final.pth`` in HookedTransformer property format) load from disk
through the registry, by ``model_dirs`` and as a path, and compute exactly what the model they
were written from computes; a folder missing a part, or whose tensors do not fit its config, is
refused at once with a message naming the folder and the part."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from lenscope.errors import ModelUnavailable
from lenscope.models.registry import list_models, load_model, resolve
from lenscope.models.tl_legacy import is_tl_legacy_folder
from tests.core.reference import random_multi_layer, reference, save_tl_legacy

TEXT = "def area(r):\n    return 3.14 * r * r\n"
LONG = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\ndef total(xs):\n    return sum(area(x) for x in xs)\n"


@pytest.fixture(scope="module")
def legacy(gelu: Any, attn_only: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """(models folder, the 3-layer original, the folder's model loaded through model_dirs)."""
    root = tmp_path_factory.mktemp("models")
    original = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)
    save_tl_legacy(root / "legacy-3l", original)
    save_tl_legacy(root / "legacy-attn-only", attn_only)
    return root, original, load_model("legacy-3l", model_dirs=(root,))


def _copy(root: Path, tmp_path: Path, name: str = "broken") -> Path:
    folder = tmp_path / name
    shutil.copytree(root / "legacy-3l", folder)
    return folder


def test_listed_and_resolved_with_the_shape_of_its_config(legacy: tuple[Path, Any, Any]) -> None:
    root, _, model = legacy
    assert is_tl_legacy_folder(root / "legacy-3l")
    listed = {m.name: m for m in list_models((root,))}
    three, attn = listed["legacy-3l"], listed["legacy-attn-only"]
    assert three.loadable and three.source == "local" and three.shape is not None
    assert (three.shape.n_layers, three.shape.d_model, three.shape.d_mlp, three.shape.d_vocab, three.shape.n_ctx) == (
        3,
        32,
        64,
        4096,
        24,
    )
    assert attn.loadable and attn.shape is not None and attn.shape.d_mlp is None and attn.shape.n_layers == 1
    assert resolve(str(root / "legacy-3l")).shape == three.shape  # as a path (the CLI's --model)
    assert model.cfg.n_layers == 3 and not model.training


@pytest.mark.parametrize("text", [TEXT, "x = [i * i for i in range(10)]\n"])
def test_log_probs_and_neurons_equal_the_originals(legacy: tuple[Path, Any, Any], text: str) -> None:
    root, original, model = legacy
    got, want = reference(model, text), reference(original, text)
    assert got.ids == want.ids
    np.testing.assert_allclose(got.logprobs.numpy(), want.logprobs.numpy(), atol=1e-4)
    np.testing.assert_allclose(got.neurons.numpy(), want.neurons.numpy(), atol=1e-4)
    by_path = load_model(str(root / "legacy-3l"))  # the same folder named by its path
    np.testing.assert_allclose(reference(by_path, text).logprobs.numpy(), want.logprobs.numpy(), atol=1e-4)


def test_analyze_equals_the_originals_over_several_windows(legacy: tuple[Path, Any, Any]) -> None:
    _, original, model = legacy
    got, want = analyze(model, LONG), analyze(original, LONG)
    assert got.windowed and got.windows == want.windows > 1
    p, q = got.predictions, want.predictions
    np.testing.assert_allclose(p.actual_logprob, q.actual_logprob, atol=1e-4, equal_nan=True)
    np.testing.assert_array_equal(p.top_ids, q.top_ids)
    np.testing.assert_allclose(p.top_logprobs, q.top_logprobs, atol=1e-4)
    np.testing.assert_array_equal(p.neuron_layer, q.neuron_layer)
    np.testing.assert_array_equal(p.neuron_index, q.neuron_index)
    np.testing.assert_allclose(p.neuron_activation, q.neuron_activation, atol=1e-4)


def test_attention_only_folder_equals_the_default_model(legacy: tuple[Path, Any, Any], attn_only: Any) -> None:
    root, _, _ = legacy
    model = load_model("legacy-attn-only", model_dirs=(root,))
    ids = torch.tensor([[attn_only.tokenizer.bos_token_id, *attn_only.tokenizer(TEXT)["input_ids"]]])
    with torch.no_grad():
        np.testing.assert_allclose(model(ids).numpy(), attn_only(ids).numpy(), atol=1e-4)


def _fake_hf_cache(cache: Path, repo: str, tokenizer: Any) -> None:
    """``repo``'s tokenizer in a Hugging Face cache layout (as ``huggingface-cli download`` leaves it)."""
    base = cache / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    tokenizer.save_pretrained(str(base / "snapshots" / commit))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit, encoding="utf-8")


def test_tokenizer_name_comes_from_the_local_cache_only(
    legacy: tuple[Path, Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    _, original, _ = legacy
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a network call would fail rather than hang
    folder = tmp_path / "no-tokenizer-files"
    save_tl_legacy(folder, original, tokenizer_files=False, tokenizer_name="lenscope-tests/code-tokenizer")
    info = resolve(str(folder))
    assert not info.loadable and str(folder) in info.reason and "'lenscope-tests/code-tokenizer'" in info.reason
    assert "not in the local Hugging Face cache" in info.reason
    with pytest.raises(ModelUnavailable, match="lenscope-tests/code-tokenizer"):
        load_model(str(folder))
    _fake_hf_cache(cache, "lenscope-tests/code-tokenizer", original.tokenizer)
    assert resolve(str(folder)).loadable
    model = load_model(str(folder))
    assert model.tokenizer(TEXT)["input_ids"] == original.tokenizer(TEXT)["input_ids"]
    np.testing.assert_allclose(reference(model, TEXT).logprobs.numpy(), reference(original, TEXT).logprobs.numpy(), atol=1e-4)


def _refused(folder: Path, *parts: str) -> str:
    """The message of a refusal: at once, naming the folder and ``parts``, no traceback."""
    start = time.perf_counter()
    with pytest.raises(ModelUnavailable) as caught:
        load_model(str(folder))
    assert time.perf_counter() - start < 10
    message = caught.value.message
    assert str(folder) in message and "Traceback" not in message
    for part in parts:
        assert part in message, message
    return message


def test_missing_weights_and_config_keys_are_named(legacy: tuple[Path, Any, Any], tmp_path: Path) -> None:
    root, _, _ = legacy
    folder = _copy(root, tmp_path)
    (folder / "model_final.pth").unlink()
    assert not is_tl_legacy_folder(folder)
    info = resolve(str(folder))
    assert not info.loadable and info.shape is not None and "no weights" in info.reason and "*.pth" in info.reason
    _refused(folder, "no weights", ".pth")
    shutil.copy(root / "legacy-3l" / "model_final.pth", folder / "model_step_100.pth")  # the single .pth: used
    assert resolve(str(folder)).loadable
    shutil.copy(root / "legacy-3l" / "model_final.pth", folder / "model_step_200.pth")
    _refused(folder, "several .pth", "model_step_100.pth", "model_step_200.pth")
    shutil.copy(root / "legacy-3l" / "model_final.pth", folder / "model_final.pth")  # *final.pth wins
    assert resolve(str(folder)).loadable
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    del config["d_head"]
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert resolve(str(folder)).shape is None
    _refused(folder, "config.json", "lacks d_head")
    config.update(d_head=8, shortformer_pos=True)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    _refused(folder, "shortformer")


def test_tensors_that_do_not_fit_the_config_are_named(legacy: tuple[Path, Any, Any], tmp_path: Path) -> None:
    root, _, _ = legacy
    folder = _copy(root, tmp_path)
    state = torch.load(folder / "model_final.pth", weights_only=True)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(n_heads=8, d_head=4)  # same d_model, heads grouped wrongly
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert resolve(str(folder)).loadable  # only loading reads the weights
    _refused(folder, "model_final.pth", "does not fit", "blocks.0.attn.W_Q", "(4, 32, 8)")
    config.update(n_heads=4, d_head=8, d_mlp=128)  # the MLPs are 64 wide
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    message = _refused(folder, "wrong shape", "blocks.0.mlp.W_in (32, 64)", "blocks.0.mlp.in.weight is (128, 32)", "(+")
    assert message.count("blocks.") <= 2 * 4  # a few of the nine, then a count
    config.update(d_mlp=64)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    del state["blocks.2.ln2.w"]
    state["blocks.7.ln1.w"] = torch.ones(32)
    torch.save(state, folder / "model_final.pth")
    _refused(folder, "missing: blocks.2.ln2.weight", "not in the model: blocks.7.ln1.w")
    (folder / "model_final.pth").write_bytes(b"not a torch file")
    _refused(folder, "not a readable torch state dict")


def test_the_cli_runs_a_folder_path_and_prints_a_refusal(legacy: tuple[Path, Any, Any], tmp_path: Path) -> None:
    root, original, _ = legacy
    source = tmp_path / "area.py"
    source.write_text(TEXT, encoding="utf-8")
    cli = [sys.executable, "-m", "lenscope.cli", "analyze", str(source), "--json", "--model"]
    out = subprocess.run([*cli, str(root / "legacy-3l")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)["predictions"]["actual_logprob"]
    want = analyze(original, TEXT).predictions.actual_logprob
    np.testing.assert_allclose(np.array(got["data"], dtype=np.float32)[:-1], want[:-1], atol=1e-4)
    folder = _copy(root, tmp_path)
    (folder / "model_final.pth").unlink()
    out = subprocess.run([*cli, str(folder)], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "no weights" in out.stderr and "Traceback" not in out.stderr
