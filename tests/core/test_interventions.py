"""Interventions against TransformerLens hooks written in the test: every op on every kind of
component gives the same log-probs within 1e-4, on both default models and a random 3-layer model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from lenscope.engine.windows import plan_windows
from lenscope.errors import InvalidInput
from lenscope.interventions import Intervention, parse_component
from tests.core.reference import random_multi_layer

CODE = "import os\n\ndef home(path):\n    return os.path.join(path, 'x')\n"
UNICODE = "# café 😀 日本語\nname = 'naïve'\n"


@torch.no_grad()
def reference_logprobs(model, ids: list[int], hooks: list, following: int | None = None) -> np.ndarray:
    """log p(token j | before) for j < n (and of ``following`` after the last), from one plain
    ``run_with_hooks`` over BOS + ids."""
    logits = model.run_with_hooks(torch.tensor([[model.tokenizer.bos_token_id, *ids]]), fwd_hooks=hooks)[0].float()
    lp = torch.log_softmax(logits, -1)
    targets = [*ids, following] if following is not None else ids
    return np.array([float(lp[j, t]) for j, t in enumerate(targets)])


@torch.no_grad()
def plain_means(model, ids: list[int], hook: str) -> torch.Tensor:
    _, cache = model.run_with_cache(torch.tensor([[model.tokenizer.bos_token_id, *ids]]))
    return cache[hook][0, 1:].double().mean(0).float()


def hook_for(model, iv: Intervention, ids: list[int]):
    """The intervention written out as plain TransformerLens hooks (positions: token i is i + 1)."""
    where = slice(1, None) if iv.positions is None else [p + 1 for p in iv.positions]
    name = iv.hook_name()
    mean = plain_means(model, ids, name) if iv.op == "mean" else None

    def hook(act, hook):
        act = act.clone()
        if iv.component == "neuron" and iv.op == "steer":
            act[0, where] += iv.value * model.W_out[iv.layer, iv.index]
            return act
        sel = (0, where, iv.index) if iv.component in ("neuron", "head") else (0, where)
        m = None if mean is None else (mean[iv.index] if iv.component in ("neuron", "head") else mean)
        act[sel] = {
            "zero": lambda x: x * 0,
            "mean": lambda x: m.expand_as(x),
            "set": lambda x: torch.full_like(x, iv.value),
            "scale": lambda x: x * iv.value,
            "steer": lambda x: x * (1 + iv.value),
        }[iv.op](act[sel])
        return act

    return (name, hook)


CASES = [
    Intervention("neuron", 0, 5, "zero"),
    Intervention("neuron", 0, 77, "mean"),
    Intervention("neuron", 0, 300, "set", 2.5, (1, 4)),
    Intervention("neuron", 0, 9, "scale", -3.0),
    Intervention("neuron", 0, 42, "steer", 4.0, (3,)),
    Intervention("head", 0, 2, "zero"),
    Intervention("head", 0, 5, "mean", positions=(0, 2, 6)),
    Intervention("head", 0, 1, "scale", 0.25),
    Intervention("head", 0, 7, "steer", 1.5),
    Intervention("mlp", 0, None, "zero", positions=(2,)),
    Intervention("mlp", 0, None, "mean"),
    Intervention("mlp", 0, None, "scale", 2.0),
    Intervention("attn", 0, None, "zero"),
    Intervention("attn", 0, None, "mean", positions=(5, 6)),
    Intervention("attn", 0, None, "scale", 0.5),
]


@pytest.mark.parametrize("iv", CASES, ids=lambda iv: iv.label())
@pytest.mark.parametrize("text", [CODE, UNICODE], ids=["code", "unicode"])
def test_each_op_on_the_gelu_model_equals_plain_hooks(gelu, iv: Intervention, text: str) -> None:
    got = analyze(gelu, text, interventions=[iv])
    ids = got.tokens.ids.tolist()
    want = reference_logprobs(gelu, ids, [hook_for(gelu, iv, ids)])
    np.testing.assert_allclose(got.predictions.actual_logprob[: len(ids)], want, atol=1e-4)
    plain = analyze(gelu, text).predictions.actual_logprob[: len(ids)]
    assert np.abs(plain - want).max() > 1e-3  # it did change something
    assert got.interventions[0]["label"] == iv.label()


def test_attention_only_model_and_a_stack(attn_only) -> None:
    ivs = [Intervention("head", 0, 3, "zero"), Intervention("attn", 0, None, "scale", 0.5, (1, 2))]
    got = analyze(attn_only, CODE, interventions=ivs)
    ids = got.tokens.ids.tolist()
    want = reference_logprobs(attn_only, ids, [hook_for(attn_only, iv, ids) for iv in ivs])
    np.testing.assert_allclose(got.predictions.actual_logprob[: len(ids)], want, atol=1e-4)
    with pytest.raises(InvalidInput, match="attention-only: it has no MLP"):
        analyze(attn_only, CODE, interventions=[Intervention("neuron", 0, 1)])


def test_a_random_multi_layer_model_over_several_windows(gelu) -> None:
    """Every window is intervened at the positions it holds; each token's row from the window that reports it."""
    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)
    text = CODE * 3
    ivs = [
        Intervention("neuron", 1, 7, "zero"),
        Intervention("head", 2, 1, "scale", 3.0),
        Intervention("mlp", 0, None, "scale", 0.0),
    ]
    got = analyze(model, text, interventions=ivs)
    ids = got.tokens.ids.tolist()
    body = model.cfg.n_ctx - 1
    assert len(ids) > body
    for w in plan_windows(len(ids), body):
        window_ids = ids[w.start : w.stop]
        following = ids[w.stop] if w.stop < len(ids) else None
        want = reference_logprobs(model, window_ids, [hook_for(model, iv, window_ids) for iv in ivs], following)
        for t in range(w.report_from + 1, min(w.report_to + 1, len(ids))):  # token t is predicted at S position t - 1
            assert got.predictions.actual_logprob[t] == pytest.approx(want[t - w.start], abs=1e-4)


def test_mean_from_an_index_is_used_and_said(gelu) -> None:
    iv = Intervention("neuron", 0, 11, "mean")
    got = analyze(gelu, CODE, interventions=[iv], neuron_means={(0, 11): 0.75})
    ids = got.tokens.ids.tolist()
    set_to = Intervention("neuron", 0, 11, "set", 0.75)
    want = reference_logprobs(gelu, ids, [hook_for(gelu, set_to, ids)])
    np.testing.assert_allclose(got.predictions.actual_logprob[: len(ids)], want, atol=1e-4)
    assert got.interventions == [{"label": "L0.N11 mean", "mean_from": "index"}]
    assert analyze(gelu, CODE, interventions=[iv]).interventions[0]["mean_from"] == "selection"


def test_the_intervened_neuron_is_what_is_reported(gelu) -> None:
    plain = analyze(gelu, CODE)
    layer, index = int(plain.predictions.neuron_layer[3, 0]), int(plain.predictions.neuron_index[3, 0])
    got = analyze(gelu, CODE, interventions=[Intervention("neuron", layer, index, "zero", positions=(3,))])
    assert index not in got.predictions.neuron_index[3].tolist()  # zero is no longer among the strongest


@pytest.mark.parametrize(
    "iv,words",
    [
        (Intervention("neuron", 1, 5), "layer must be between 0 and 0"),
        (Intervention("neuron", 0, 4096), "index must be between 0 and 1023"),
        (Intervention("head", 0, 8), "index must be between 0 and 7"),
        (Intervention("head", 0, 1, "set", 1.0), "a head can be zero, mean, scale, steer, patch, not set"),
        (Intervention("mlp", 0, 3), "a whole layer takes no index"),
        (Intervention("neuron", 0, 1, positions=(999,)), "positions must be text tokens 0 .."),
        (Intervention("neuron", 0, 1, positions=()), "positions is empty"),
    ],
)
def test_bad_interventions_are_named(gelu, iv: Intervention, words: str) -> None:
    with pytest.raises(InvalidInput, match=words.replace("(", r"\(").replace(".", r"\.")):
        analyze(gelu, CODE, interventions=[iv])


def test_parse_component() -> None:
    assert parse_component("L0.N123") == ("neuron", 0, 123)
    assert parse_component("l2.h3") == ("head", 2, 3)
    assert parse_component("L1.MLP") == ("mlp", 1, None)
    assert parse_component("L0.attn") == ("attn", 0, None)
    assert parse_component("f1741") == ("feature", None, 1741)
    with pytest.raises(InvalidInput, match="not a unit"):
        parse_component("N5")


PATCH_CLEAN, PATCH_CORRUPTED = "x = 'cat'\nprint(x)\n", "y = 'cat'\nprint(y)\n"


@pytest.mark.parametrize("component,index", [("resid", None), ("attn", None), ("mlp", None), ("head", 3), ("neuron", 17)])
def test_patch_from_a_source_text_equals_a_plain_hook(gelu, component: str, index: int | None) -> None:
    iv = Intervention(component, 0, index, "patch", positions=(2, 5), source=PATCH_CLEAN)  # type: ignore[arg-type]
    got = analyze(gelu, PATCH_CORRUPTED, interventions=[iv])
    ids = got.tokens.ids.tolist()
    clean_ids = gelu.tokenizer(PATCH_CLEAN, add_special_tokens=False)["input_ids"]
    _, cache = gelu.run_with_cache(torch.tensor([[gelu.tokenizer.bos_token_id, *clean_ids]]))
    clean = cache[iv.hook_name()][0]

    def hook(act, hook):
        act = act.clone()
        for p in (3, 6):  # text tokens 2 and 5, BOS first
            if index is None:
                act[0, p] = clean[p]
            else:
                act[0, p, index] = clean[p, index]
        return act

    want = reference_logprobs(gelu, ids, [(iv.hook_name(), hook)])
    np.testing.assert_allclose(got.predictions.actual_logprob[: len(ids)], want, atol=1e-4)
    assert got.interventions[0]["label"] == f"{iv.label()}"


def test_patching_the_whole_residual_stream_gives_the_source_run(gelu) -> None:
    got = analyze(gelu, PATCH_CORRUPTED, interventions=[Intervention("resid", 0, None, "patch", source=PATCH_CLEAN)])
    clean = analyze(gelu, PATCH_CLEAN)
    # every position now computes the clean run's distribution; scored against the corrupted text's tokens
    np.testing.assert_allclose(got.predictions.top_logprobs, clean.predictions.top_logprobs, atol=1e-4)
    with pytest.raises(InvalidInput, match="patching needs the same count"):
        analyze(gelu, PATCH_CORRUPTED, interventions=[Intervention("attn", 0, None, "patch", source="x = 1")])
    with pytest.raises(InvalidInput, match=r"source .* goes with op patch"):
        analyze(gelu, PATCH_CORRUPTED, interventions=[Intervention("attn", 0, None, "zero", source=PATCH_CLEAN)])
