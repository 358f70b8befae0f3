"""Head circuits and neuron input sides against direct computations on the whole matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lenscope.circuits import head_circuits, neuron_inputs
from lenscope.errors import InvalidInput


def ln_of_tokens(model, ln) -> torch.Tensor:
    inner = ln._original_component
    return F.layer_norm(model.W_E.float(), (model.cfg.d_model,), inner.weight.float(), inner.bias.float(), model.cfg.eps)


def full_ov(model, layer: int, head: int) -> torch.Tensor:
    """The whole vocab x vocab OV circuit, written out directly."""
    x = ln_of_tokens(model, model.blocks[layer].ln1)
    out = (x @ model.W_V[layer, head] + model.b_V[layer, head]) @ model.W_O[layer, head]  # [vocab, d_model]
    w = model.ln_final._original_component.weight.float()
    return ((out - out.mean(-1, keepdim=True)) * w) @ model.W_U


@torch.inference_mode()
def test_ov_qk_and_copying_against_the_full_matrices(attn_only) -> None:
    layer, head = 0, 3
    got = head_circuits(attn_only, layer, head, top=10)
    ov = full_ov(attn_only, layer, head)
    values, flat = ov.reshape(-1).topk(10)
    vocab = ov.shape[1]
    assert [(i, j) for i, j, _ in got.ov_top] == [(int(f // vocab), int(f % vocab)) for f in flat.tolist()]
    assert np.allclose([v for _, _, v in got.ov_top], values.numpy(), atol=1e-3)
    assert got.ov_bottom[0][2] == pytest.approx(float(ov.min()), abs=1e-3)
    x = ln_of_tokens(attn_only, attn_only.blocks[layer].ln1)
    q = x @ attn_only.W_Q[layer, head] + attn_only.b_Q[layer, head]
    k = x @ attn_only.W_K[layer, head] + attn_only.b_K[layer, head]
    qk = q @ k.T / attn_only.cfg.d_head**0.5
    assert got.qk_top[0][2] == pytest.approx(float(qk.max()), abs=1e-3)
    i, j, _ = got.qk_top[0]
    assert float(qk[i, j]) == pytest.approx(float(qk.max()), abs=1e-4)
    # the eigenvalues' sum is the full circuit's trace
    assert got.eigenvalues.sum().real == pytest.approx(float(torch.trace(ov.double())), rel=1e-3)
    assert -1 <= got.copying_score <= 1 and 0 <= got.positive_share <= 1


@torch.inference_mode()
def test_eigenvalues_equal_the_full_circuits_on_a_small_model(gelu) -> None:
    """On a model small enough to take every eigenvalue of the vocab x vocab circuit directly."""
    from lenscope.models.native import new_native_model, wrap_native

    config = dict(d_model=16, n_layers=1, n_heads=2, d_head=4, d_mlp=32, n_ctx=16, d_vocab=200, act_fn="gelu_new",
                  normalization_type="LN", seed=1)  # fmt: skip
    model = wrap_native(new_native_model(config), config, gelu.tokenizer, "small").eval()
    got = head_circuits(model, 0, 1, top=5)
    full = torch.linalg.eigvals(full_ov(model, 0, 1).double()).numpy()
    big = np.sort_complex(full[np.abs(full) > 1e-6])
    assert len(big) == 4 and np.allclose(np.sort_complex(got.eigenvalues), big, atol=1e-6)
    assert got.positive_share == pytest.approx(float((big.real > 0).mean()))
    assert got.copying_score == pytest.approx(float(big.sum().real / np.abs(big).sum()), abs=1e-6)


@torch.inference_mode()
def test_neuron_inputs_and_bad_input(gelu, attn_only) -> None:
    x = ln_of_tokens(gelu, gelu.blocks[0].ln2)
    pre = x @ gelu.W_in[0, :, 77] + gelu.b_in[0, 77]
    got = neuron_inputs(gelu, 0, 77, top=5)
    assert [i for i, _ in got] == pre.topk(5).indices.tolist()
    assert np.allclose([v for _, v in got], pre.topk(5).values.numpy(), atol=1e-4)
    with pytest.raises(InvalidInput, match="attention-only"):
        neuron_inputs(attn_only, 0, 1)
    with pytest.raises(InvalidInput, match="head must be between 0 and 7"):
        head_circuits(attn_only, 0, 8)
    with pytest.raises(InvalidInput, match="neuron index must be between"):
        neuron_inputs(gelu, 0, 5000)


@pytest.mark.parametrize("n,m,k", [(1500, 300, 20), (600, 50, 7), (10, 4, 20)])  # 3 blocks, 2, and fewer entries than k
def test_extreme_pairs_equal_a_top_k_over_the_whole_matrix(n: int, m: int, k: int) -> None:
    """The row-wise, pruned search finds exactly the whole matrix's k largest and k smallest entries."""
    from lenscope.circuits import _extreme_pairs

    g = torch.Generator().manual_seed(n)
    rows, right, bias = torch.randn(n, 8, generator=g), torch.randn(8, m, generator=g), torch.randn(m, generator=g)
    rows[-3:] *= 5  # the largest entries in the last block: the running top-k has to give way
    full = (rows @ right + bias).reshape(-1)
    top, bottom = _extreme_pairs(rows, right, bias, k)
    for got, largest in ((top, True), (bottom, False)):
        values = full.topk(min(k, full.numel()), largest=largest).values
        assert [v for _, _, v in got] == pytest.approx(values.tolist(), abs=1e-5)
        assert all(float(full[i * m + j]) == pytest.approx(v, abs=1e-5) for i, j, v in got)  # each at its place
        assert len({(i, j) for i, j, _ in got}) == len(got)


def test_a_second_head_card_is_served_from_cache_and_an_edit_computes_it_again(attn_only) -> None:
    import copy

    from lenscope.circuits import HEAD_CARDS, head_card_wire

    model = copy.deepcopy(attn_only)  # edited below
    first = head_card_wire(model, "m", 0, 3, top=5)
    hits, misses = HEAD_CARDS.hits, HEAD_CARDS.misses
    again = head_card_wire(model, "m", 0, 3, top=5)
    assert (HEAD_CARDS.hits, HEAD_CARDS.misses) == (hits + 1, misses) and again == first
    again["ov_top"].clear()  # a caller's changes stay its own
    assert head_card_wire(model, "m", 0, 3, top=5) == first
    other = head_card_wire(model, "m", 0, 4, top=5)
    assert HEAD_CARDS.misses == misses + 1 and other != first
    with torch.no_grad():  # as a kernel edits a model it attached
        for name, p in model.named_parameters():
            if "W_V" in name or name.endswith(("v.weight", "v._original_component.weight")):
                p.mul_(-1)
    edited = head_card_wire(model, "m", 0, 3, top=5)
    assert HEAD_CARDS.misses == misses + 2
    assert edited["ov_top"] != first["ov_top"]
    assert edited == head_card_wire(model, "m", 0, 3, top=5) and HEAD_CARDS.misses == misses + 2
