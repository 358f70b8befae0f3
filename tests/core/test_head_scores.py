"""Head role scores equal a naive computation from ``hook_pattern`` (TransformerLens run directly),
on the repeated-random-token probe and on a code text, for the default models and a random
3-layer model; a 1-layer model has no induction head."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.headscores import ROLES, induction_probe, probe_sequences, score_tokens, text_scores
from tests.core.reference import random_multi_layer

CODE = "def area(r):\n    return 3.14 * r * r\n\nprint(area(2))\nprint(area(3))\nx = area(2) + area(3)\n"


def naive_scores(model: Any, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Loops over queries and keys, from a plain ``run_with_cache`` of every pattern."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    _, cache = model.run_with_cache(x, names_filter=lambda n: n.endswith("attn.hook_pattern"))
    out = {r: np.zeros((x.shape[0], n_layers, n_heads)) for r in ROLES}
    for b in range(x.shape[0]):
        tok = x[b].tolist()
        targets: dict[str, list[tuple[int, list[int]]]] = {r: [] for r in ROLES}
        for i in range(1, len(tok)):
            if i >= 2:
                targets["previous_token"].append((i, [i - 1]))
            targets["bos"].append((i, [0]))
            dup = [j for j in range(1, i) if tok[j] == tok[i]]
            if dup:
                targets["duplicate_token"].append((i, dup))
            ind = [j for j in range(2, i + 1) if tok[j - 1] == tok[i] and j - 1 < i]
            if ind:
                targets["induction"].append((i, ind))
        for layer in range(n_layers):
            p = cache[f"blocks.{layer}.attn.hook_pattern"][b].float()  # [heads, q, k]
            for role, rows in targets.items():
                if not rows:
                    out[role][b, layer] = np.nan
                    continue
                out[role][b, layer] = np.mean([[float(p[h, i, js].sum()) for i, js in rows] for h in range(n_heads)], axis=1)
    return {r: np.nanmean(v, axis=0) for r, v in out.items()}


@pytest.fixture(scope="module")
def random3(gelu) -> Any:
    return random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab, n_ctx=64)


@pytest.mark.parametrize("which", ["gelu", "attn_only", "gelu2", "random3"])
def test_scores_equal_a_naive_computation(which: str, request) -> None:
    model = request.getfixturevalue(which)
    length = min(20, (model.cfg.n_ctx - 1) // 2)
    x = probe_sequences(model, length=length, batch=3, seed=1)
    got = score_tokens(model, x)
    want = naive_scores(model, x)
    for role in ROLES:
        np.testing.assert_allclose(got.scores[role], want[role], atol=1e-5, err_msg=role)
    ids = model.tokenizer(CODE, add_special_tokens=False)["input_ids"][: model.cfg.n_ctx - 1]
    text = model.tokenizer.decode(ids)
    on_text = text_scores(model, text)
    want = naive_scores(
        model, torch.tensor([[model.tokenizer.bos_token_id, *model.tokenizer(text, add_special_tokens=False)["input_ids"]]])
    )
    for role in ROLES:
        np.testing.assert_allclose(on_text.scores[role], want[role], atol=1e-5, err_msg=f"text {role}")


def test_a_one_layer_model_has_no_induction_head(attn_only, gelu) -> None:
    """A 1-layer model cannot compose a previous-token head with an induction head."""
    for model in (attn_only, gelu):
        probe = induction_probe(model, seed=3)
        assert np.nanmax(probe.scores["induction"]) < 0.2
        assert probe.in_context_gain is not None and probe.in_context_gain < 1.0


def test_bad_input_is_named(gelu) -> None:
    with pytest.raises(InvalidInput, match="token ids must be between"):
        score_tokens(gelu, torch.tensor([[0, 1, 99999]]))
    with pytest.raises(InvalidInput, match="at least"):
        score_tokens(gelu, torch.tensor([[0, 1]]))
    with pytest.raises(InputTooLarge, match="context"):
        score_tokens(gelu, torch.zeros((1, gelu.cfg.n_ctx + 1), dtype=torch.int64))
    with pytest.raises(InvalidInput, match="length"):
        probe_sequences(gelu, length=gelu.cfg.n_ctx)
