"""Activation patching against TransformerLens's own patching helpers, on both default models and
a random 3-layer model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformer_lens.patching as tl_patching

from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.patching import patch_grid
from tests.core.reference import random_multi_layer

CLEAN = "x = 'cat'\nprint("  # the model should copy the name defined: x here,
CORRUPTED = "y = 'cat'\nprint("  # y here


def ids_of(model, text: str) -> list[int]:
    return model.tokenizer(text, add_special_tokens=False)["input_ids"]


def tl_reference(model, clean: str, corrupted: str, target: int, baseline: int) -> dict[str, np.ndarray]:
    bos = model.tokenizer.bos_token_id
    x_clean = torch.tensor([[bos, *ids_of(model, clean)]])
    x_corrupt = torch.tensor([[bos, *ids_of(model, corrupted)]])
    _, cache = model.run_with_cache(x_clean)
    last = x_clean.shape[1] - 1
    clean_v = float(model(x_clean)[0, last, target] - model(x_clean)[0, last, baseline])
    corrupt_v = float(model(x_corrupt)[0, last, target] - model(x_corrupt)[0, last, baseline])

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return ((logits[0, last, target] - logits[0, last, baseline]) - corrupt_v) / (clean_v - corrupt_v)

    out = {
        "resid_pre": tl_patching.get_act_patch_resid_pre(model, x_corrupt, cache, metric),
        "attn_out": tl_patching.get_act_patch_attn_out(model, x_corrupt, cache, metric),
        "heads": tl_patching.get_act_patch_attn_head_out_by_pos(model, x_corrupt, cache, metric),  # [layers, pos, heads]
    }
    if not getattr(model.cfg, "attn_only", False):
        out["mlp_out"] = tl_patching.get_act_patch_mlp_out(model, x_corrupt, cache, metric)
    return {k: v.detach().float().numpy()[:, 1:] for k, v in out.items()}  # drop the BOS position


@pytest.mark.parametrize("which", ["gelu", "attn_only", "random"])
def test_patching_equals_transformer_lens_helpers(request, gelu, which: str) -> None:
    model = (
        random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab, n_ctx=64) if which == "random" else request.getfixturevalue(which)
    )
    target, baseline = ids_of(model, "x")[0], ids_of(model, "y")[0]
    got = patch_grid(model, CLEAN, CORRUPTED, target, baseline)
    ref = tl_reference(model, CLEAN, CORRUPTED, target, baseline)
    n = len(got.clean.ids)
    assert got.position == n - 1
    for component in ("resid_pre", "attn_out", "mlp_out"):
        if component not in ref:
            assert np.isnan(got.restored[component]).all()
            continue
        np.testing.assert_allclose(got.restored[component], ref[component], atol=1e-4, err_msg=component)
    np.testing.assert_allclose(got.heads, ref["heads"].transpose(0, 2, 1), atol=1e-4)
    # the residual stream at the first layer, at the one position where the texts differ, carries all of it
    assert got.restored["resid_pre"][0, 0] == pytest.approx(1.0, abs=1e-4)


def test_bad_input(gelu) -> None:
    with pytest.raises(InvalidInput, match="same token count"):
        patch_grid(gelu, CLEAN, CORRUPTED + " x", 1, 2)
    with pytest.raises(InvalidInput, match="target must be between 0 and 4095"):
        patch_grid(gelu, CLEAN, CORRUPTED, 5000, 2)
    with pytest.raises(InvalidInput, match="nothing to restore"):
        patch_grid(gelu, CLEAN, CLEAN, 5, 9)
    with pytest.raises(InputTooLarge, match="one window"):
        patch_grid(gelu, "x " * 400, "y " * 400, 1, 2)


def test_the_work_of_one_grid_is_bounded(gelu) -> None:
    """GPT-2 small's shape at 100 tokens would take an hour on 2 cores: refused before any forward."""
    from tests.core.reference import random_multi_layer

    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab, n_ctx=256)
    model.cfg.d_model = 768  # the bound reads the config: no need to build the real width
    model.cfg.n_layers = 12
    with pytest.raises(InputTooLarge, match="the limit is 1e"):
        patch_grid(model, "x = 1\n" * 25, "y = 1\n" * 25, 1, 2)
