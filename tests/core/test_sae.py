"""SAE features: both on-disk formats read right, features equal to the libraries' own encoding,
inline in analyze, indexed like neurons, and clear errors for folders that do not fit."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lenscope.analysis import analyze
from lenscope.errors import InvalidInput
from lenscope.index.build import BuildOptions, build_index
from lenscope.index.corpus import Document
from lenscope.sae import SaeUnavailable, load_sae
from tests.core.reference import random_multi_layer

CODE = "import os\n\ndef walk(root):\n    for name in os.listdir(root):\n        yield os.path.join(root, name)\n"


def sparsify_folder(tmp: Path, d_in: int, latents: int, k: int, hook: str, seed: int = 0) -> Any:
    """A TopK SAE written by ``sparsify`` itself (random weights, biases moved off zero)."""
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(seed)
    coder = SparseCoder(d_in, SparseCoderConfig(num_latents=latents, k=k))
    with torch.no_grad():
        coder.encoder.bias.normal_(0, 0.1)
        coder.b_dec.normal_(0, 0.1)
    coder.save_to_disk(tmp / hook)
    return coder


def saelens_folder(folder: Path, d_in: int, d_sae: int, arch: str, hook: str, model: str = "m", seed: int = 0) -> dict:
    """An SAE folder as SAELens v6 ``save_model`` writes one: ``cfg.json`` (its ``to_dict``) and
    ``sae_weights.safetensors`` (its state dict)."""
    g = torch.Generator().manual_seed(seed)
    w = {
        "W_enc": torch.randn(d_in, d_sae, generator=g) * 0.3,
        "b_enc": torch.randn(d_sae, generator=g) * 0.1,
        "W_dec": torch.randn(d_sae, d_in, generator=g) * 0.3,
        "b_dec": torch.randn(d_in, generator=g) * 0.1,
    }
    if arch == "jumprelu":
        w["threshold"] = torch.rand(d_sae, generator=g) * 0.2
    cfg: dict[str, Any] = {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
                           "normalize_activations": "none", "reshape_activations": "none", "architecture": arch,
                           "meta": {"model_name": model, "hook_name": hook, "hook_layer": 0}}  # fmt: skip
    if arch == "topk":
        cfg["k"] = 5
    folder.mkdir(parents=True)
    save_file(w, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return w | {"cfg": cfg}


def saelens_encode(w: dict, x: torch.Tensor) -> torch.Tensor:
    """SAELens's encode, written out from its source (``topk_sae.py``, ``standard_sae.py``, ``jumprelu_sae.py``)."""
    arch = w["cfg"]["architecture"]
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    if arch == "standard":
        return torch.relu(pre)
    if arch == "jumprelu":
        return torch.relu(pre) * (pre > w["threshold"])
    top = pre.topk(w["cfg"]["k"], dim=-1)
    return torch.zeros_like(pre).scatter_(-1, top.indices, torch.relu(top.values))


@pytest.fixture(scope="module")
def random3(gelu) -> Any:
    return random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab, n_ctx=64)


def hook_acts(model: Any, text: str, hook: str) -> torch.Tensor:
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    x = torch.tensor([[model.tokenizer.bos_token_id, *ids]])
    _, cache = model.run_with_cache(x, names_filter=[hook])
    return cache[hook][0, 1:].float()


def test_a_sparsify_folder_encodes_as_sparsify_does(tmp_path, gelu) -> None:
    hook = "blocks.0.mlp.hook_post"
    coder = sparsify_folder(tmp_path, 1024, 256, 8, hook)
    sae = load_sae(tmp_path)  # the run folder: its one hook-point folder is found
    assert (sae.hook_point, sae.d_in, sae.d_sae, sae.k, sae.format) == (hook, 1024, 256, 8, "sparsify")
    x = hook_acts(gelu, CODE, hook)
    out = coder.encode(x)
    dense = torch.zeros(len(x), 256).scatter_(-1, out.top_indices, out.top_acts)
    torch.testing.assert_close(sae.encode(x), dense.detach(), atol=1e-5, rtol=1e-5)
    decoded = coder.decode(out.top_acts, out.top_indices).detach()
    torch.testing.assert_close(sae.decode(sae.encode(x)), decoded, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu"])
def test_a_saelens_folder_encodes_as_saelens_does(tmp_path, random3, arch) -> None:
    hook = "blocks.1.hook_resid_pre"
    w = saelens_folder(tmp_path / "sae", 32, 48, arch, hook, model="random-3l")
    sae = load_sae(tmp_path / "sae")
    assert (sae.hook_point, sae.model, sae.architecture, sae.format) == (hook, "random-3l", arch, "saelens")
    x = hook_acts(random3, CODE, hook)
    torch.testing.assert_close(sae.encode(x), saelens_encode(w, x), atol=1e-5, rtol=1e-5)
    assert (sae.encode(x) > 0).any()


def test_analyze_adds_each_tokens_top_features_across_windows(tmp_path, random3) -> None:
    hook = "blocks.2.mlp.hook_post"
    w = saelens_folder(tmp_path / "sae", 64, 40, "standard", hook)
    sae = load_sae(tmp_path / "sae")
    plain = analyze(random3, CODE)
    result = analyze(random3, CODE, sae=sae, top_features=6, window=9)  # several windows
    assert result.windows > 1 and result.sae is sae
    feats = saelens_encode(w, hook_acts(random3, CODE, hook))  # one pass over the whole text
    ref = analyze(random3, CODE, sae=sae, top_features=6, window=len(feats) + 1)  # the whole text in one window
    assert ref.windows == 1
    val, idx = feats.topk(6, dim=-1)
    got_v, got_i = ref.predictions.feature_activation, ref.predictions.feature_index
    np.testing.assert_allclose(got_v, val.numpy(), atol=1e-4)
    on = val.numpy() > 0
    assert (got_i[on] == idx.numpy()[on]).all() and (got_i[~on] == -1).all()
    # windows change what each token sees but not the shape; predictions are untouched by features
    assert result.predictions.feature_index.shape == (len(result.token_texts), 6)
    np.testing.assert_allclose(ref.predictions.top_logprobs, plain.predictions.top_logprobs, atol=1e-5)


def test_a_feature_index_is_built_like_a_neuron_index(tmp_path, gelu) -> None:
    hook = "blocks.0.mlp.hook_post"
    coder = sparsify_folder(tmp_path, 1024, 128, 8, hook)
    sae = load_sae(tmp_path / hook, name="rand")
    docs = [Document(path=f"d{i}.py", text=t, sha256=str(i)) for i, t in enumerate([CODE, CODE.upper(), "x = [1, 2, 3]\n" * 20])]
    arrays = build_index(gelu, docs, BuildOptions(k=3, window=32), sae=sae)
    assert arrays.top_values.shape == (128, 3)
    # the best example of each feature is its largest activation over the corpus, computed directly
    best = torch.full((128,), float("-inf"))
    for d in docs:
        ids = gelu.tokenizer(d.text, add_special_tokens=False)["input_ids"]
        for s in range(0, len(ids), 31):
            x = torch.tensor([[gelu.tokenizer.bos_token_id, *ids[s : s + 31]]])
            _, cache = gelu.run_with_cache(x, names_filter=[hook])
            out = coder.encode(cache[hook][0, 1:].float())
            dense = torch.zeros(x.shape[1] - 1, 128).scatter_(-1, out.top_indices, out.top_acts).detach()
            best = torch.maximum(best, dense.max(0).values)
    np.testing.assert_allclose(arrays.top_values[:, 0], best.numpy(), atol=1e-4)
    np.testing.assert_allclose(arrays.max, best.numpy(), atol=1e-4)
    # logit effects follow the decoder direction through W_out and W_U
    effect = (coder.W_dec.detach() @ gelu.W_out[0].detach().float()) @ gelu.W_U.detach().float()
    top = effect.topk(10, dim=-1)
    assert (arrays.logit_top_ids == top.indices.numpy()).mean() > 0.99
    np.testing.assert_allclose(arrays.logit_top_values, top.values.numpy(), atol=1e-3)


def test_loading_errors_are_clear_and_fast(tmp_path, gelu, attn_only) -> None:
    hook = "blocks.0.mlp.hook_post"
    cases: list[tuple[Path, str]] = []
    # no config
    sparsify_folder(tmp_path / "nocfg", 1024, 64, 4, hook)
    (tmp_path / "nocfg" / hook / "cfg.json").unlink()
    cases.append((tmp_path / "nocfg" / hook, "has no cfg.json"))
    # wrong shapes
    saelens_folder(tmp_path / "shape", 1024, 64, "standard", hook)
    cfg = json.loads((tmp_path / "shape" / "cfg.json").read_text())
    (tmp_path / "shape" / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 65}))
    cases.append((tmp_path / "shape", "W_enc has shape [1024, 64], expected [1024, 65]"))
    # neither format
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", "has neither sae.safetensors (sparsify) nor sae_weights.safetensors (SAELens)"))
    # an architecture we cannot encode
    saelens_folder(tmp_path / "gated", 1024, 64, "gated", hook)
    cases.append((tmp_path / "gated", "architecture 'gated' is not supported"))
    # several hook points in one run folder
    sparsify_folder(tmp_path / "multi", 256, 64, 4, "blocks.0.hook_resid_pre")
    sparsify_folder(tmp_path / "multi", 256, 64, 4, "blocks.0.hook_resid_post")
    cases.append((tmp_path / "multi", "several hook points (blocks.0.hook_resid_post, blocks.0.hook_resid_pre)"))
    for folder, message in cases:
        t0 = time.perf_counter()
        with pytest.raises(SaeUnavailable) as err:
            load_sae(folder)
        assert message in err.value.message and time.perf_counter() - t0 < 2
    # fits on disk but not on the model: a hook point it lacks, another width
    sparsify_folder(tmp_path / "mlp", 1024, 64, 4, hook)
    mlp = load_sae(tmp_path / "mlp")
    with pytest.raises(InvalidInput, match=r"reads 'blocks.0.mlp.hook_post', which model 'attn-only' does not have"):
        analyze(attn_only, CODE, model_name="attn-only", sae=mlp, top_neurons=0)
    wide = load_sae(tmp_path / "multi" / "blocks.0.hook_resid_pre")
    wide.hook_point = hook  # a d_model-wide SAE pointed at the MLP (d_mlp wide)
    with pytest.raises(InvalidInput, match=r"expects d_in=256 at 'blocks.0.mlp.hook_post', but model 'gelu' has 1024 there"):
        analyze(gelu, CODE, model_name="gelu", sae=wide)


def test_feature_attribution_re_splits_the_mlp_part(tmp_path, gelu) -> None:
    from lenscope.attribution import attribute

    hook = "blocks.0.mlp.hook_post"
    sparsify_folder(tmp_path, 1024, 256, 16, hook)
    sae = load_sae(tmp_path)
    result = attribute(gelu, CODE, 12, sae=sae)
    f = result.features
    assert f is not None and f.layer == 0 and (f.activations > 0).sum() <= 16
    # features + decoder bias + reconstruction error = the layer's neuron parts, and total() is unchanged
    assert abs(f.parts.sum() + f.bias + f.error - result.neurons[0].sum()) < 1e-3
    assert abs(result.total() - result.value) < 1e-2
    # an identity "SAE" (W_enc = W_dec = I, ReLU): each feature's part is its neuron's part where it fires
    eye = tmp_path / "eye"
    eye.mkdir()
    save_file({"W_enc": torch.eye(1024), "b_enc": torch.zeros(1024), "W_dec": torch.eye(1024), "b_dec": torch.zeros(1024)},
              str(eye / "sae_weights.safetensors"))  # fmt: skip
    cfg = {"d_in": 1024, "d_sae": 1024, "architecture": "standard", "meta": {"hook_name": hook}}
    (eye / "cfg.json").write_text(json.dumps(cfg))
    ident = attribute(gelu, CODE, 12, sae=load_sae(eye)).features
    assert ident is not None
    on = ident.activations > 0
    np.testing.assert_allclose(ident.parts[on], result.neurons[0][on], atol=1e-5)
    assert abs(ident.bias) < 1e-9 and abs(ident.error - result.neurons[0][~on].sum()) < 1e-4
    # an SAE elsewhere than an MLP's output cannot re-split it
    saelens_folder(tmp_path / "resid", 256, 32, "standard", "blocks.0.hook_resid_pre")
    with pytest.raises(InvalidInput, match="needs an SAE on MLP post-activations"):
        attribute(gelu, CODE, 12, sae=load_sae(tmp_path / "resid"))
