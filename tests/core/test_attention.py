"""Attention patterns and positional shares against TransformerLens computed directly in the test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lenscope.attention import BOS, CONTEXT, NONE, attend
from lenscope.engine.windows import plan_windows
from lenscope.errors import InputTooLarge, InvalidInput
from tests.core.reference import random_multi_layer

CODE = "import os\n\ndef home(path):\n    return os.path.join(path, 'x')\n"
UNICODE = "# café 😀 日本語\nname = 'naïve'\n"


def pattern_of(model, ids: list[int], layer: int) -> torch.Tensor:
    """``hook_pattern`` [heads, q, k] of one window (BOS first)."""
    _, cache = model.run_with_cache(torch.tensor([[model.tokenizer.bos_token_id, *ids]]))
    return cache[f"blocks.{layer}.attn.hook_pattern"][0].float()


def dense(result, layer_i: int) -> np.ndarray:
    """The returned rows back to ``[heads, n, 1 + n]`` (key 0 = BOS), from (source, weight) pairs."""
    sources, weights = result.sources[layer_i], result.weights[layer_i]
    h, n, _ = sources.shape
    out = np.zeros((h, n, n + 1), np.float32)
    for head in range(h):
        for i in range(n):
            for s, w in zip(sources[head, i], weights[head, i]):
                if s == NONE:
                    assert w == 0.0
                    continue
                assert s != CONTEXT  # no context given
                out[head, i, 0 if s == BOS else s + 1] += w
    return out


@pytest.mark.parametrize("which", ["gelu", "attn_only"])
@pytest.mark.parametrize("text", [CODE, UNICODE], ids=["code", "unicode"])
def test_whole_rows_equal_hook_pattern(request, which: str, text: str) -> None:
    model = request.getfixturevalue(which)
    got = attend(model, text, k=1024)
    ids = got.tokens.ids.tolist()
    ref = pattern_of(model, ids, 0)[:, 1:, :]  # the text tokens' rows
    assert got.weights.shape[-1] == len(ids) + 1  # k is cut to the window
    np.testing.assert_allclose(dense(got, 0), ref.numpy(), atol=1e-6)


def test_top_k_rows_are_the_largest_weights_named_by_their_source(gelu) -> None:
    got = attend(gelu, CODE, k=3)
    ref = pattern_of(gelu, got.tokens.ids.tolist(), 0)[:, 1:, :]
    top_w, top_i = ref.topk(3, dim=-1)
    np.testing.assert_allclose(got.weights[0], top_w.numpy(), atol=1e-6)
    assert (np.diff(got.weights[0], axis=-1) <= 0).all()  # largest first
    expected = np.where(top_i.numpy() == 0, BOS, top_i.numpy() - 1)
    expected = np.where(top_w.numpy() == 0, NONE, expected)  # the first token has 2 keys, not 3
    ties = np.isclose(got.weights[0][..., :, None], got.weights[0][..., None, :]).sum(-1) > 1
    assert (got.sources[0] == expected)[~ties].all()


def test_a_random_multi_layer_model_over_several_windows(gelu) -> None:
    """Every layer, every head, each token's row from the window that reports it."""
    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)
    text = CODE * 3
    got = attend(model, text, k=64)
    ids = got.tokens.ids.tolist()
    n = len(ids)
    assert n > model.cfg.n_ctx
    assert got.layers == [0, 1, 2]
    body = model.cfg.n_ctx - 1
    for i in (0, body - 1, body + 3, n - 1):
        # the window that reports token i (window planning has its own tests)
        start = next(w.start for w in plan_windows(n, body) if w.report_from <= i < w.report_to)
        for layer in range(3):
            ref = pattern_of(model, ids[start : start + body], layer)[:, i - start + 1]  # [heads, keys]
            for head in range(model.cfg.n_heads):
                row = np.zeros(n + 1, np.float32)
                for s, w in zip(got.sources[layer, head, i], got.weights[layer, head, i]):
                    if s != NONE:
                        row[0 if s == BOS else s + 1] += w
                want = np.zeros(n + 1, np.float32)
                want[0] = ref[head, 0]
                want[start + 1 : start + 1 + len(ref[head]) - 1] = ref[head, 1:].numpy()
                np.testing.assert_allclose(row, want, atol=1e-5, err_msg=f"token {i} L{layer}H{head}")


def test_context_tokens_are_named_as_context(gelu) -> None:
    got = attend(gelu, "return x\n", context=CODE, k=1024)
    assert (got.sources == CONTEXT).any()
    assert np.allclose(got.weights.astype(np.float64).sum(-1), 1.0, atol=1e-4)


@torch.no_grad()
def positional_share_reference(model, ids: list[int], layer: int) -> np.ndarray:
    """Straight from the cache: the positional part of each key from ``W_pos`` through the
    frozen ``ln1`` scale, the content part as the rest of ``hook_k``; variances by loops."""
    _, cache = model.run_with_cache(torch.tensor([[model.tokenizer.bos_token_id, *ids]]))
    q = cache[f"blocks.{layer}.attn.hook_q"][0].double()  # [T, H, d]
    k = cache[f"blocks.{layer}.attn.hook_k"][0].double()
    scale = cache[f"blocks.{layer}.ln1.hook_scale"][0].double().reshape(len(ids) + 1, -1)[:, 0]
    w_ln = model.blocks[layer].ln1._original_component.weight.double()
    pos = model.W_pos[: len(ids) + 1].double()
    kp = torch.einsum("tm,hmd->thd", (pos - pos.mean(-1, keepdim=True)) / scale[:, None] * w_ln, model.W_K[layer].double())
    kc = k - kp
    n_heads = q.shape[1]
    var = np.zeros((n_heads, 2))
    for h in range(n_heads):
        for i in range(2, len(ids) + 1):  # queries with at least two non-BOS keys
            for j, part in enumerate((kp, kc)):
                scores = torch.stack([q[i, h] @ part[key, h] for key in range(1, i + 1)])
                var[h, j] += float(scores.var(unbiased=False))
    return var[:, 0] / var.sum(1)


@pytest.mark.parametrize("which", ["gelu", "attn_only"])
def test_positional_share_equals_a_direct_computation(request, which: str) -> None:
    model = request.getfixturevalue(which)
    got = attend(model, CODE)
    want = positional_share_reference(model, got.tokens.ids.tolist(), 0)
    np.testing.assert_allclose(got.positional_share[0], want, atol=1e-4)
    assert ((got.positional_share >= 0) & (got.positional_share <= 1)).all()


def test_without_positional_embedding_the_share_is_zero(gelu) -> None:
    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab, n_ctx=256)
    with torch.no_grad():
        for p in model.parameters():
            if p.shape == model.W_pos.shape and torch.equal(p, model.W_pos):
                p.zero_()
    assert float(model.W_pos.detach().abs().max()) == 0.0
    got = attend(model, CODE)
    np.testing.assert_allclose(got.positional_share, 0.0, atol=1e-6)


def test_bad_input_is_named(gelu) -> None:
    with pytest.raises(InvalidInput, match="layer must be between 0 and 0"):
        attend(gelu, CODE, layers=[1])
    with pytest.raises(InvalidInput, match="k must be between"):
        attend(gelu, CODE, k=0)
    with pytest.raises(InvalidInput, match="layers"):
        attend(gelu, CODE, layers=[])
    with pytest.raises(InputTooLarge, match="the limit is"):
        attend(gelu, "x = 1\n" * 6000, k=1024)
