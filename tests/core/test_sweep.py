"""Rank by causal effect against ablations written in the test: every swept value is the change in
the target's log-prob of one ``run_with_hooks`` zeroing that one unit (``hook_post[..., n]`` /
``hook_z[..., h, :]``) at the position, on the default models and a random 3-layer model whose
short context puts the position in a later window; the estimate against the exact sweep."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lenscope.attribution import attribute
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.sweep import MAX_SWEEP_WORK, sweep
from tests.core.reference import random_multi_layer

CODE = "import os\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n\nprint(read('x.txt'))\n"


def ablated_logprob(model, tokens: list[int], at: int, target: int, hook: str | None = None, unit: int = 0) -> float:
    """log p(target) at input position ``at`` with one unit zeroed there (nothing when ``hook`` is None)."""

    def zero(act: torch.Tensor, hook) -> torch.Tensor:
        act = act.clone()
        act[0, at, unit] = 0  # a neuron's value, or a head's whole z
        return act

    with torch.no_grad():
        logits = model.run_with_hooks(torch.tensor([tokens]), fwd_hooks=[(hook, zero)] if hook else [])
    return float(torch.log_softmax(logits[0, at].double(), -1)[target])


def units_to_check(values: np.ndarray, rng: np.random.Generator, k: int = 12) -> list[int]:
    """The strongest ``k`` of a layer and ``k`` others at random: one-at-a-time forwards are slow."""
    strongest = np.argsort(-np.abs(values))[:k]
    return sorted({*strongest.tolist(), *rng.choice(len(values), size=min(k, len(values)), replace=False).tolist()})


def check_against_hooks(model, result, tokens: list[int], at: int, target: int, k: int = 12) -> None:
    rng = np.random.default_rng(0)
    clean = ablated_logprob(model, tokens, at, target)
    assert result.logprob[0] == pytest.approx(clean, abs=1e-4)
    for layer in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            want = ablated_logprob(model, tokens, at, target, f"blocks.{layer}.attn.hook_z", h) - clean
            assert result.heads[layer, h] == pytest.approx(want, abs=1e-4), (layer, h)
        if result.neurons.shape[1]:
            for n in units_to_check(result.neurons[layer], rng, k):
                want = ablated_logprob(model, tokens, at, target, f"blocks.{layer}.mlp.hook_post", n) - clean
                assert result.neurons[layer, n] == pytest.approx(want, abs=1e-4), (layer, n)


@pytest.mark.parametrize("which", ["gelu", "attn_only", "gelu2"])
def test_the_sweep_equals_one_ablation_at_a_time(request, which: str) -> None:
    model = request.getfixturevalue(which)
    ids = model.tokenizer(CODE, add_special_tokens=False)["input_ids"]
    tokens = [model.tokenizer.bos_token_id, *ids]
    position = 14
    result = sweep(model, CODE, position)
    assert result.targets == [ids[position + 1]] and result.method == "exact" and not result.selection
    n_mlp = 0 if which == "attn_only" else 1024
    assert result.neurons.shape == (model.cfg.n_layers, n_mlp) and result.heads.shape == (model.cfg.n_layers, 8)
    check_against_hooks(model, result, tokens, position + 1, ids[position + 1])
    # another target, asked for: the same ablations read on its log-prob
    other = ids[3]
    assert other != ids[position + 1]
    asked = sweep(model, CODE, position, target=other)
    assert asked.targets == [other]
    check_against_hooks(model, asked, tokens, position + 1, other, k=4)


def test_a_later_window_of_a_three_layer_model(gelu) -> None:
    """Position in the third window of a 24-token context, with context: the window attribute
    reads (its own tests check it) is what the sweep ablates in, every layer widened but the last."""
    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)
    context = "import sys\n"
    position = 40
    result = sweep(model, CODE * 2, position, context=context)
    window = attribute(model, CODE * 2, position, context=context)
    assert len(window.source_tokens) < 24 and result.targets == [window.target]
    check_against_hooks(model, result, window.source_tokens, len(window.source_tokens) - 1, window.target)


def test_a_selection_across_windows_is_each_position_read_in_its_own_window(gelu) -> None:
    """A selection over two windows of a random 3-layer model (24-token context): each position's
    values are its single sweep's, itself checked against hooks above (exact and estimate)."""
    from lenscope.ablations import groups
    from lenscope.engine.plan import plan_text

    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)
    first, last = 18, 27
    assert len(groups(model, plan_text(model, CODE * 2), list(range(first, last + 1)))) == 2
    for method in ("exact", "estimate"):
        result = sweep(model, CODE * 2, first, last=last, method=method)
        singles = [sweep(model, CODE * 2, p, method=method) for p in range(first, last + 1)]
        assert result.targets == [t for s in singles for t in s.targets]
        assert np.allclose(result.logprob, [s.logprob[0] for s in singles], atol=1e-5)
        assert np.allclose(result.neurons, np.mean([np.abs(s.neurons) for s in singles], 0), atol=1e-5)
        assert np.allclose(result.heads, np.mean([np.abs(s.heads) for s in singles], 0), atol=1e-5)


def test_a_selection_is_the_mean_absolute_change_of_each_position_ablated_alone(gelu) -> None:
    ids = gelu.tokenizer(CODE, add_special_tokens=False)["input_ids"]
    tokens = [gelu.tokenizer.bos_token_id, *ids]
    first, last = 4, 8
    result = sweep(gelu, CODE, first, last=last)
    assert result.selection and result.positions == list(range(first, last + 1))
    assert result.targets == ids[first + 1 : last + 2]
    singles = [sweep(gelu, CODE, p) for p in result.positions]
    for p, single in zip(result.positions, singles):
        at = p + 1
        for h in (0, 5):  # the single sweeps are the ones checked against hooks above; spot-check here too
            want = ablated_logprob(gelu, tokens, at, ids[at], "blocks.0.attn.hook_z", h) - ablated_logprob(
                gelu, tokens, at, ids[at]
            )
            assert single.heads[0, h] == pytest.approx(want, abs=1e-4)
    assert np.allclose(result.heads, np.mean([np.abs(s.heads) for s in singles], 0), atol=1e-5)
    assert np.allclose(result.neurons, np.mean([np.abs(s.neurons) for s in singles], 0), atol=1e-5)
    # the direct side: each position's direct parts, mean |part|
    parts = [attribute(gelu, CODE, p) for p in result.positions]
    assert result.direct_neurons is not None and result.direct_heads is not None
    assert np.allclose(result.direct_neurons, np.mean([np.abs(a.neurons) for a in parts], 0), atol=1e-4)
    assert np.allclose(result.direct_heads, np.mean([np.abs(a.heads) for a in parts], 0), atol=1e-4)


def test_both_rankings_side_by_side(gelu) -> None:
    result = sweep(gelu, CODE, 14)
    direct = attribute(gelu, CODE, 14)
    assert result.direct_neurons is not None and result.direct_heads is not None
    assert np.allclose(result.direct_neurons, direct.neurons, atol=1e-5)
    assert np.allclose(result.direct_heads, direct.heads, atol=1e-5)
    units = result.units()
    effect = np.abs(np.concatenate([result.neurons.ravel(), result.heads.ravel()]))
    part = np.abs(np.concatenate([direct.neurons.ravel(), direct.heads.ravel()]))
    assert [u.rank for u in units] == list(range(1, len(effect) + 1))
    assert [abs(u.effect) for u in units] == sorted(effect.tolist(), reverse=True)
    by_direct = sorted(units, key=lambda u: u.direct_rank or 0)
    assert [abs(u.direct or 0.0) for u in by_direct] == pytest.approx(sorted(part.tolist(), reverse=True), abs=1e-6)
    assert units[0].label == ("L0.H" if units[0].kind == "head" else "L0.N") + str(units[0].index)
    # Spearman's correlation, by double argsort and Pearson's r (a few float32 ties: close, not equal)
    ra, rb = np.argsort(np.argsort(effect)), np.argsort(np.argsort(part))
    assert result.rank_correlation() == pytest.approx(float(np.corrcoef(ra, rb)[0, 1]), abs=1e-4)


ESTIMATE_FLOOR = {"all": 0.75, "neurons": 0.95, "heads": 0.8}
"""Pearson's r of the estimate against the exact sweep (signed Δ), on CODE at positions 5, 14, 22.
Measured: all units 0.81-0.996, neurons 0.985-1.000, heads 0.87-0.996 (gelu, attn_only, gelu2)."""


@pytest.mark.parametrize("which", ["gelu", "attn_only", "gelu2"])
def test_the_estimate_follows_the_exact_sweep(request, which: str) -> None:
    model = request.getfixturevalue(which)
    for position in (5, 14, 22):
        exact = sweep(model, CODE, position)
        estimate = sweep(model, CODE, position, method="estimate")
        assert estimate.method == "estimate" and estimate.targets == exact.targets
        assert estimate.logprob[0] == pytest.approx(exact.logprob[0], abs=1e-4)
        pairs = {"heads": (exact.heads, estimate.heads), "neurons": (exact.neurons, estimate.neurons),
                 "all": (np.concatenate([exact.neurons.ravel(), exact.heads.ravel()]),
                         np.concatenate([estimate.neurons.ravel(), estimate.heads.ravel()]))}  # fmt: skip
        for what, (a, b) in pairs.items():
            if a.size:
                r = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
                assert r >= ESTIMATE_FLOOR[what], f"{which} at {position}: {what} r = {r:.3f}"
    # a selection: mean |Δ| by both methods
    exact, estimate = sweep(model, CODE, 3, last=9), sweep(model, CODE, 3, last=9, method="estimate")
    a = np.concatenate([exact.neurons.ravel(), exact.heads.ravel()])
    b = np.concatenate([estimate.neurons.ravel(), estimate.heads.ravel()])
    assert float(np.corrcoef(a, b)[0, 1]) >= ESTIMATE_FLOOR["all"]


def test_the_estimate_is_minus_activation_times_gradient(gelu) -> None:
    """Every neuron's and head's estimate from autograd in the test: a forward with the activation
    made a leaf (one hook point at a time, so a head's gradient keeps its path through the MLP)."""
    ids = gelu.tokenizer(CODE, add_special_tokens=False)["input_ids"]
    at, target = 15, ids[15]
    got = sweep(gelu, CODE, 14, method="estimate")

    def minus_act_times_grad(name: str) -> torch.Tensor:
        keep = {}

        def leaf(act, hook):
            keep["act"] = act.detach().requires_grad_(True)
            return keep["act"]

        with torch.enable_grad():
            logits = gelu.run_with_hooks(torch.tensor([[gelu.tokenizer.bos_token_id, *ids]]), fwd_hooks=[(name, leaf)])
            torch.log_softmax(logits[0, at], -1)[target].backward()
        act = keep["act"]
        return -(act[0, at] * act.grad[0, at]).detach()

    assert np.allclose(got.neurons[0], minus_act_times_grad("blocks.0.mlp.hook_post").numpy(), atol=1e-5)
    assert np.allclose(got.heads[0], minus_act_times_grad("blocks.0.attn.hook_z").sum(-1).numpy(), atol=1e-5)


def test_bad_input_is_named(gelu) -> None:
    n = len(gelu.tokenizer(CODE, add_special_tokens=False)["input_ids"])
    cases = [
        (lambda: sweep(gelu, CODE, n), f"position must be between 0 and {n - 1}, got {n}"),
        (lambda: sweep(gelu, "", 0), "text is empty"),
        (lambda: sweep(gelu, CODE, 3, target=gelu.cfg.d_vocab), f"target must be between 0 and {gelu.cfg.d_vocab - 1}"),
        (lambda: sweep(gelu, CODE, 5, last=4), "last must be between 5 and"),
        (lambda: sweep(gelu, CODE, 3, last=5, target=7), "target goes with one prediction"),
        (lambda: sweep(gelu, CODE, 3, method="fast"), "method must be one of exact, estimate"),  # type: ignore[arg-type]
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
            call()


def test_too_much_work_is_refused_before_it_runs(gelu2) -> None:
    long_text = CODE * 8  # about 250 tokens: every position of a 2-layer model is far over the limit
    with pytest.raises(InputTooLarge, match=re.escape(f"the limit is {MAX_SWEEP_WORK:.0e}: use method 'estimate'")):
        sweep(gelu2, long_text, 0, last=200)


def feature_ablated_logprob(model, sae, tokens: list[int], at: int, target: int, feature: int) -> float:
    """log p(target) with one feature zeroed at ``at``: ``x - a_f W_dec[f]`` at the SAE's hook point (error term kept)."""

    def zero(act: torch.Tensor, hook) -> torch.Tensor:
        act = act.clone()
        a = sae.encode(act[0, at])[feature]
        act[0, at] -= a * sae.W_dec[feature]
        return act

    with torch.no_grad():
        logits = model.run_with_hooks(torch.tensor([tokens]), fwd_hooks=[(sae.hook_point, zero)])
    return float(torch.log_softmax(logits[0, at].double(), -1)[target])


def random_sae(model, hook_point: str, d_in: int, d_sae: int = 96, k: int = 6):
    from pathlib import Path

    from lenscope.sae import SparseAutoencoder

    g = torch.Generator().manual_seed(0)
    return SparseAutoencoder(
        name="random", hook_point=hook_point, architecture="topk", k=k, W_enc=torch.randn(d_in, d_sae, generator=g) / d_in**0.5,
        b_enc=torch.zeros(d_sae), W_dec=torch.randn(d_sae, d_in, generator=g) / d_sae**0.5, b_dec=torch.zeros(d_in),
        threshold=None, subtract_b_dec=True, format="sparsify", folder=Path("."),
    )  # fmt: skip


@pytest.mark.parametrize("which", ["shipped", "resid"])
def test_every_active_feature_zeroed_alone(request, which: str) -> None:
    """The shipped SAE of the 1-layer model (MLP post-activations: direct parts too) and a random
    SAE on the 2-layer model's residual stream before layer 1 (widened there; no direct parts)."""
    if which == "shipped":
        from lenscope.models.sae_registry import load_named_sae

        model, sae = request.getfixturevalue("gelu"), load_named_sae("lenscope-gelu-1l-mlp-topk")
    else:
        model = request.getfixturevalue("gelu2")
        sae = random_sae(model, "blocks.1.hook_resid_pre", model.cfg.d_model)
    ids = model.tokenizer(CODE, add_special_tokens=False)["input_ids"]
    tokens, position = [model.tokenizer.bos_token_id, *ids], 14
    result = sweep(model, CODE, position, sae=sae)
    assert result.sae == sae.name and result.features is not None and result.features.shape == (sae.d_sae,)
    clean = ablated_logprob(model, tokens, position + 1, ids[position + 1])
    _, cache = model.run_with_cache(torch.tensor([tokens]), names_filter=[sae.hook_point])
    active = torch.nonzero(sae.encode(cache[sae.hook_point][0, position + 1]))[:, 0].tolist()
    assert active and set(np.nonzero(result.features)[0].tolist()) <= set(active)
    for f in active:
        want = feature_ablated_logprob(model, sae, tokens, position + 1, ids[position + 1], f) - clean
        assert result.features[f] == pytest.approx(want, abs=1e-4), f
    units = result.units()
    assert {u.label for u in units if u.kind == "feature"} == {f"F{f}" for f in range(sae.d_sae)}
    if which == "shipped":
        parts = attribute(model, CODE, position, sae=sae).features
        assert parts is not None and result.direct_features is not None
        assert np.allclose(result.direct_features, parts.parts, atol=1e-5)
        assert all(u.direct_rank is not None for u in units)
    else:
        assert result.direct_features is None and result.rank_correlation() is not None
        assert all((u.direct_rank is None) == (u.kind == "feature") for u in units)
    # the estimate: -a_f W_dec[f] . dlogp/dx, from autograd here
    keep = {}

    def leaf(act, hook):
        keep["x"] = act.detach().requires_grad_(True)
        return keep["x"]

    with torch.enable_grad():
        logits = model.run_with_hooks(torch.tensor([tokens]), fwd_hooks=[(sae.hook_point, leaf)])
        torch.log_softmax(logits[0, position + 1], -1)[ids[position + 1]].backward()
    x = keep["x"]
    want = -(sae.encode(x[0, position + 1].detach()) * (sae.W_dec @ x.grad[0, position + 1])).numpy()
    estimate = sweep(model, CODE, position, sae=sae, method="estimate")
    assert estimate.features is not None and np.allclose(estimate.features, want, atol=1e-5)


def test_the_notebook_table_labels_an_estimate(gelu) -> None:
    from lenscope.notebook import causal_ranking

    exact, estimate = sweep(gelu, CODE, 14), sweep(gelu, CODE, 14, method="estimate")
    html = str(causal_ranking(exact, top=5))
    assert "ESTIMATE" not in html and "exact: each unit zero-ablated alone" in html
    for u in exact.units()[:5]:
        assert f">{u.label}<" in html and f"{u.effect:+.4f}" in html
    assert f"{exact.rank_correlation():.3f}" in html
    html = str(causal_ranking(estimate, top=5))
    assert "<b>ESTIMATE</b>" in html and "Δ log-prob (estimate)" in html and "data-method='estimate'" in html
