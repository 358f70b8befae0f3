"""SAE features as units (issue #26 item 1): their activations equal each format's own encoding
(sparsify's, written out here; SAELens's) on the default models and a random 2-layer model, in
analyze's windows; feature interventions equal hooks written here (the SAE spliced in with its
error term kept) within 1e-4; an empty list with the SAE equals the plain model; bad input is named."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from lenscope.activations import unit_activations
from lenscope.analysis import analyze
from lenscope.engine.windows import plan_windows
from lenscope.errors import InvalidInput
from lenscope.interventions import Intervention
from lenscope.models.sae_registry import SHIPPED_SAES_DIR, load_named_sae
from lenscope.sae import load_sae
from lenscope.units import Unit, parse_unit
from tests.core.reference import random_multi_layer
from tests.core.test_interventions import reference_logprobs
from tests.core.test_sae import saelens_encode, saelens_folder

CONTEXT = "import os\n"
CODE = "def walk(root):\n    for name in os.listdir(root):\n        if name is not None:\n            yield name\n"
SHIPPED = "lenscope-gelu-1l-mlp-topk"

Encoder = Callable[[torch.Tensor], torch.Tensor]


@pytest.fixture(scope="module")
def random2(gelu) -> Any:
    return random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab, n_ctx=24, n_layers=2)  # CODE takes several windows


@pytest.fixture(scope="module")
def shipped() -> Any:
    return load_named_sae(SHIPPED)


def sparsify_folder(folder: Path, d_in: int, latents: int, k: int, seed: int = 0) -> dict[str, Any]:
    """A TopK SAE folder as ``sparsify``'s ``SparseCoder.save_to_disk`` writes one (``cfg.json``,
    ``sae.safetensors``), random weights."""
    g = torch.Generator().manual_seed(seed)
    w = {
        "encoder.weight": torch.randn(latents, d_in, generator=g) / math.sqrt(d_in),
        "encoder.bias": torch.randn(latents, generator=g) * 0.1,
        "W_dec": torch.randn(latents, d_in, generator=g) / math.sqrt(latents),
        "b_dec": torch.randn(d_in, generator=g) * 0.1,
    }
    folder.mkdir(parents=True)
    save_file(w, str(folder / "sae.safetensors"))
    cfg = {"activation": "topk", "expansion_factor": latents // d_in or 1, "normalize_decoder": True, "num_latents": latents,
           "k": k, "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": d_in}  # fmt: skip
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return w | {"k": k}


def shipped_weights() -> dict[str, Any]:
    """The shipped SAE's own files, read here without lenscope."""
    folder = SHIPPED_SAES_DIR / SHIPPED / "blocks.0.mlp.hook_post"
    weights = {k: v.float() for k, v in load_file(str(folder / "sae.safetensors")).items()}  # stored as float16
    return weights | {"k": json.loads((folder / "cfg.json").read_text())["k"]}


def sparsify_encode(w: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    """``sparsify``'s ``SparseCoder.encode`` written out from its source: ``fused_encoder(x - b_dec,
    encoder.weight, encoder.bias, k)``: ReLU of the affine map, then the k largest, as a dense array."""
    pre = torch.relu(F.linear(x - w["b_dec"], w["encoder.weight"], w["encoder.bias"]))
    top = pre.topk(w["k"], dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, top.indices, top.values)


def sparsify_decode(w: dict[str, Any], a: torch.Tensor) -> torch.Tensor:
    return a @ w["W_dec"] + w["b_dec"]


def saelens_decode(w: dict[str, Any], a: torch.Tensor) -> torch.Tensor:
    return a @ w["W_dec"] + w["b_dec"]


def sequence(model: Any, text: str, context: str = "") -> tuple[list[int], int]:
    """Context + text tokenized as one string, and where the text's tokens start (the tokenizer's
    own offsets)."""
    enc = model.tokenizer(context + text, add_special_tokens=False, return_offsets_mapping=True)
    split = next(i for i, (_, end) in enumerate(enc["offset_mapping"]) if end > len(context))
    return enc["input_ids"], split


@torch.no_grad()
def hook_acts(model: Any, text: str, hook: str, context: str = "") -> torch.Tensor:
    """``hook``'s activation at each text token: one plain run when the sequence fits, else in the
    windows the docs describe (each position from the one window that reports it)."""
    seq, split = sequence(model, text, context)
    bos, body = model.tokenizer.bos_token_id, model.cfg.n_ctx - 1
    if len(seq) <= body:
        _, cache = model.run_with_cache(torch.tensor([[bos, *seq]]), names_filter=[hook])
        return cache[hook][0, 1 + split :].float()
    assert not context
    rows = []
    for w in plan_windows(len(seq), body):
        _, cache = model.run_with_cache(torch.tensor([[bos, *seq[w.start : w.stop]]]), names_filter=[hook])
        rows.append(cache[hook][0, 1 + max(w.report_from, 0) - w.start : 1 + w.report_to - w.start])
    return torch.cat(rows).float()


def firing(features: torch.Tensor, n: int) -> list[int]:
    """The ``n`` features active at the most tokens (ties: the larger total)."""
    score = (features > 0).sum(0).float() * 1e6 + features.sum(0)
    return [int(i) for i in score.argsort(descending=True)[:n]]


def test_units_are_named_one_way() -> None:
    named = [("L0.N224", Unit("neuron", 0, 224)), ("F1741", Unit("feature", None, 1741)), ("L1.H3", Unit("head", 1, 3)),
             ("L0.MLP", Unit("mlp", 0, None)), ("L2.ATTN", Unit("attn", 2, None)),
             ("L0.RESID", Unit("resid", 0, None))]  # fmt: skip
    for name, unit in named:
        assert parse_unit(name) == unit and unit.name == name
        assert parse_unit(name.lower()) == unit
    for bad in ("N5", "L0.F3", "F", "L0.N-1", "", 7):
        with pytest.raises(InvalidInput, match=re.escape("is not a unit: write L0.N123 (a neuron), F123")):
            parse_unit(bad)


SPARSIFY_CASES = [
    ("gelu", None, 0, 0),  # the shipped SAE (trained with sparsify) on its model
    ("gelu", "blocks.0.hook_resid_pre", 64, 6),
    ("gelu2", "blocks.1.mlp.hook_post", 128, 8),
    ("random2", "blocks.1.hook_resid_pre", 48, 5),
]


@pytest.mark.parametrize("model_name,hook,latents,k", SPARSIFY_CASES, ids=[f"{c[0]}-{c[1] or 'shipped'}" for c in SPARSIFY_CASES])
def test_feature_activations_equal_sparsify_encode(request, tmp_path, model_name, hook, latents, k) -> None:
    model = request.getfixturevalue(model_name)
    if hook is None:
        sae, w, hook = load_named_sae(SHIPPED), shipped_weights(), "blocks.0.mlp.hook_post"
    else:
        w = sparsify_folder(tmp_path / "run" / hook, int(hook_acts(model, "x", hook).shape[-1]), latents, k)
        sae = load_sae(tmp_path / "run")  # the run folder: its one hook-point folder is found
    context = "" if model_name == "random2" else CONTEXT
    x = hook_acts(model, CODE, hook, context)
    want = sparsify_encode(w, x)
    features = [*firing(want, 3), int((want > 0).sum(0).argmin())]  # three that fire, and one that fires least
    layer = model.cfg.n_layers - 1
    units = [f"F{f}" for f in features] + [f"L{layer}.N3", f"L0.N{model.cfg.d_mlp - 1}"]
    got = unit_activations(model, CODE, units, sae=sae, context=context)
    assert [u.name for u in got.units] == units and got.sae is sae
    assert got.activations.shape == (len(x), len(units)) and (want[:, features[:3]] > 0).any(0).all()
    np.testing.assert_allclose(got.activations[:, :4], want[:, features].numpy(), atol=1e-4, rtol=1e-4)
    neurons = hook_acts(model, CODE, f"blocks.{layer}.mlp.hook_post", context)[:, 3]
    np.testing.assert_allclose(got.activations[:, 4], neurons.numpy(), atol=1e-5)
    if model_name == "random2":
        assert len(sequence(model, CODE)[0]) > model.cfg.n_ctx  # read in several windows


SAELENS_CASES = [(m, arch) for m in ("gelu2", "random2") for arch in ("standard", "topk", "jumprelu")]


@pytest.mark.parametrize("model_name,arch", SAELENS_CASES, ids=[f"{m}-{a}" for m, a in SAELENS_CASES])
def test_feature_activations_equal_the_saelens_formula(request, tmp_path, model_name, arch) -> None:
    model = request.getfixturevalue(model_name)
    hook = "blocks.1.hook_resid_pre" if model_name == "gelu2" else "blocks.1.mlp.hook_post"
    x = hook_acts(model, CODE, hook)
    w = saelens_folder(tmp_path / "sae", int(x.shape[-1]), 40, arch, hook)
    sae = load_sae(tmp_path / "sae")
    want = saelens_encode(w, x)
    features = firing(want, 4)
    assert (want[:, features] > 0).any(0).all()
    got = unit_activations(model, CODE, [f"F{f}" for f in features], sae=sae)
    np.testing.assert_allclose(got.activations, want[:, features].numpy(), atol=1e-4, rtol=1e-4)


# ---- interventions -------------------------------------------------------------------------------


def spliced(enc: Encoder, dec: Encoder, edits: list[tuple[Intervention, torch.Tensor | None]], start: int, stop: int) -> Any:
    """The SAE spliced in at its hook point for one window ``[start, stop)`` of the text: the
    activation becomes ``decode(a') + (x - decode(a))`` (the error term kept), ``a = encode(x)`` and
    ``a'`` the edited features."""

    def hook(x: torch.Tensor, hook: Any) -> torch.Tensor:
        a = enc(x[0].float())
        new = a.clone()
        for iv, mean in edits:
            f, value = iv.index, iv.value
            where = slice(1, None) if iv.positions is None else [p - start + 1 for p in iv.positions if start <= p < stop]
            cur = new[where, f]
            if iv.op == "mean":
                assert mean is not None
                new[where, f] = mean.expand_as(cur)
            else:
                ops = {"zero": cur * 0, "set": torch.full_like(cur, value), "scale": cur * value, "steer": cur + value}
                new[where, f] = ops[iv.op]
        out = x.clone()
        out[0] = dec(new) + (x[0] - dec(a))
        return out

    return hook


def check_against_splice(model: Any, sae: Any, enc: Encoder, dec: Encoder, ivs: list[Intervention],
                         before: list[Intervention] = ()) -> np.ndarray:  # fmt: skip
    """analyze with ``before`` (plain hooks of other components) then ``ivs`` (features) against
    TransformerLens hooks written here, window by window; the largest change from the plain run."""
    got = analyze(model, CODE, sae=sae, interventions=[*before, *ivs])
    plain = analyze(model, CODE)
    ids = got.tokens.ids.tolist()
    text_feats = enc(hook_acts(model, CODE, sae.hook_point))
    means = [text_feats[:, iv.index].double().mean().float() if iv.op == "mean" else None for iv in ivs]
    body = model.cfg.n_ctx - 1
    for w in plan_windows(len(ids), body):
        window_ids = ids[w.start : w.stop]
        following = ids[w.stop] if w.stop < len(ids) else None
        hooks = [(b.hook_name(), zero_neuron(b)) for b in before]
        hooks.append((sae.hook_point, spliced(enc, dec, list(zip(ivs, means)), w.start, w.stop)))
        want = reference_logprobs(model, window_ids, hooks, following)
        for t in range(w.report_from + 1, min(w.report_to + 1, len(ids))):  # token t is predicted at S position t - 1
            assert got.predictions.actual_logprob[t] == pytest.approx(want[t - w.start], abs=1e-4), (t, ivs)
    assert [a["label"] for a in got.interventions] == [iv.label() for iv in [*before, *ivs]]
    n = len(ids)
    return np.abs(got.predictions.actual_logprob[:n] - plain.predictions.actual_logprob[:n])


def zero_neuron(iv: Intervention) -> Any:
    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = act.clone()
        act[0, 1:, iv.index] = 0.0
        return act

    return hook


def feature(i: int, op: str = "zero", value: float = 0.0, positions: tuple[int, ...] | None = None) -> Intervention:
    return Intervention("feature", None, i, op, value, positions)  # type: ignore[arg-type]


SHIPPED_EDITS: list[list[tuple[int, str, float, Any]]] = [
    [(0, "zero", 0.0, None)],
    [(0, "scale", 2.5, "firing")],  # the first three tokens where it fires
    [(1, "set", 3.0, (2,))],
    [(2, "steer", 4.0, None)],
    [(0, "mean", 0.0, None)],
    [(0, "zero", 0.0, None), (1, "zero", 0.0, None), (1, "steer", 1.5, (3, 5))],  # one reading, edits in order
]


@pytest.mark.parametrize("edits", SHIPPED_EDITS, ids=lambda e: "+".join(f"{op}{p or ''}" for _, op, _, p in e))
def test_feature_interventions_equal_the_spliced_sae_on_the_gelu_model(gelu, shipped, edits) -> None:
    w = shipped_weights()
    feats = sparsify_encode(w, hook_acts(gelu, CODE, shipped.hook_point))
    top = firing(feats, 3)

    def where(i: int, positions: Any) -> tuple[int, ...] | None:
        return tuple(int(t) for t in (feats[:, top[i]] > 0).nonzero()[:3, 0]) if positions == "firing" else positions

    ivs = [feature(top[i], op, value, where(i, positions)) for i, op, value, positions in edits]
    changed = check_against_splice(gelu, shipped, lambda x: sparsify_encode(w, x), lambda a: sparsify_decode(w, a), ivs)
    assert changed.max() > 1e-3  # the edit did something


def test_feature_after_a_neuron_at_the_same_hook_point_reads_the_changed_activation(gelu, shipped) -> None:
    w = shipped_weights()
    top = firing(sparsify_encode(w, hook_acts(gelu, CODE, shipped.hook_point)), 1)
    check_against_splice(gelu, shipped, lambda x: sparsify_encode(w, x), lambda a: sparsify_decode(w, a),
                         [feature(top[0], "steer", 2.0)], before=[Intervention("neuron", 0, 5)])  # fmt: skip


def test_feature_interventions_on_the_two_layer_gelu_model(gelu2, tmp_path) -> None:
    hook = "blocks.1.mlp.hook_post"
    w = sparsify_folder(tmp_path / hook, 1024, 128, 8)
    sae = load_sae(tmp_path / hook)
    top = firing(sparsify_encode(w, hook_acts(gelu2, CODE, hook)), 2)
    for ivs in ([feature(top[0])], [feature(top[1], "steer", -3.0, (0, 6)), feature(top[0], "mean")]):
        changed = check_against_splice(gelu2, sae, lambda x: sparsify_encode(w, x), lambda a: sparsify_decode(w, a), ivs)
        assert changed.max() > 1e-4


@pytest.mark.parametrize("arch", ["jumprelu", "topk"])
def test_feature_interventions_on_a_random_two_layer_model_across_windows(random2, tmp_path, arch) -> None:
    hook = "blocks.1.hook_resid_pre"
    w = saelens_folder(tmp_path / "sae", 32, 40, arch, hook)
    sae = load_sae(tmp_path / "sae")
    top = firing(saelens_encode(w, hook_acts(random2, CODE, hook)), 2)
    assert analyze(random2, CODE).windows > 1
    for ivs in ([feature(top[0])], [feature(top[0], "mean"), feature(top[1], "scale", -1.0, (3, 20, 27))]):
        changed = check_against_splice(random2, sae, lambda x: saelens_encode(w, x), lambda a: saelens_decode(w, a), ivs)
        assert changed.max() > 1e-4


def test_an_empty_list_with_the_sae_spliced_is_the_plain_model(gelu, shipped) -> None:
    plain = analyze(gelu, CODE, context=CONTEXT)
    with_sae = analyze(gelu, CODE, context=CONTEXT, sae=shipped, interventions=[])
    np.testing.assert_array_equal(with_sae.predictions.actual_logprob, plain.predictions.actual_logprob)
    np.testing.assert_array_equal(with_sae.predictions.top_ids, plain.predictions.top_ids)
    # an edit that changes nothing leaves the model as it is: the error term is kept ...
    w = shipped_weights()
    f = firing(sparsify_encode(w, hook_acts(gelu, CODE, shipped.hook_point, CONTEXT)), 1)[0]
    same = analyze(gelu, CODE, context=CONTEXT, sae=shipped, interventions=[feature(f, "scale", 1.0), feature(f, "steer", 0.0)])
    np.testing.assert_allclose(same.predictions.actual_logprob, plain.predictions.actual_logprob, atol=1e-5)
    # ... where the reconstruction alone (no error term) would not
    seq, split = sequence(gelu, CODE, CONTEXT)

    def reconstruction(x: torch.Tensor, hook: Any) -> torch.Tensor:
        return sparsify_decode(w, sparsify_encode(w, x.float()))

    lossy = reference_logprobs(gelu, seq, [(shipped.hook_point, reconstruction)])[split:]
    assert np.abs(lossy - plain.predictions.actual_logprob[: len(seq) - split]).max() > 1e-2


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "units,with_sae,message",
    [
        (["F99999"], True, "units[0] F99999: SAE 'lenscope-gelu-1l-mlp-topk' has features F0 .. F2047"),
        (["L0.N1", "F5"], False, "units[1] F5 is a feature, but no SAE is loaded for it"),
        (["L0.H3"], False, "units[0] L0.H3 is a head: only neurons (L0.N5) and SAE features (F12)"),
        (["L1.N3"], False, "units[0] L1.N3: the model has layers 0 .. 0"),
        (["L0.N1024"], False, "units[0] L0.N1024: a layer has neurons N0 .. N1023"),
        (["L0.X"], False, "'L0.X' is not a unit"),
        ([], False, "units must be a list of 1 to 100 unit names"),
        ("F5", True, "units must be a list"),
    ],
)
def test_bad_units_are_named(gelu, shipped, units, with_sae: bool, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        unit_activations(gelu, CODE, units, sae=shipped if with_sae else None)
    assert message in err.value.message


def test_an_sae_the_model_cannot_feed_is_refused(attn_only, gelu2, shipped, tmp_path) -> None:
    with pytest.raises(InvalidInput, match=re.escape("reads 'blocks.0.mlp.hook_post', which model 'model' does not have")):
        unit_activations(attn_only, CODE, ["F5"], sae=shipped)
    with pytest.raises(InvalidInput, match="does not have"):
        analyze(attn_only, CODE, sae=shipped, interventions=[feature(5)])
    saelens_folder(tmp_path / "narrow", 128, 16, "standard", "blocks.0.hook_resid_pre")
    with pytest.raises(InvalidInput, match=re.escape("expects d_in=128 at 'blocks.0.hook_resid_pre', but model 'model' has 256")):
        unit_activations(gelu2, CODE, ["F1"], sae=load_sae(tmp_path / "narrow"))


@pytest.mark.parametrize(
    "iv,with_sae,message",
    [
        (feature(99999), True, f"interventions[0] (feature zero): SAE '{SHIPPED}' has features F0 .. F2047, not F99999"),
        (feature(5), False, "interventions[0] (feature zero): F5 is a feature, but no SAE is loaded for it"),
        (feature(5, "steer", math.nan), True, "interventions[0] (feature steer): value must be a finite number, got nan"),
        (feature(5, "steer", math.inf), True, "value must be a finite number, got inf"),
        (Intervention("neuron", 0, 5, "steer", -math.inf), False, "value must be a finite number, got -inf"),
        (Intervention("feature", 0, 5), True, f"a feature takes no layer (SAE '{SHIPPED}' reads blocks.0.mlp.hook_post)"),
        (Intervention("feature", None, 5, "patch", source="x"), True, "a feature can be zero, mean, set, scale, steer, not"),
        (Intervention("neuron", None, 5), False, "interventions[0] (neuron zero): a neuron needs a layer"),
    ],
)  # fmt: skip
def test_bad_feature_interventions_are_named(gelu, shipped, iv: Intervention, with_sae: bool, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        analyze(gelu, CODE, sae=shipped if with_sae else None, interventions=[iv])
    assert message in err.value.message


def test_the_notebook_view_names_each_unit(gelu, shipped) -> None:
    from lenscope.notebook import unit_activations as view
    from tests.core.test_notebook import props_of

    got = unit_activations(gelu, CODE, ["L0.N224", "F1741"], sae=shipped)
    props = props_of(view(got)._repr_html_(), "TextNeuronActivations")
    assert props["tokens"] == got.token_texts and props["secondDimensionLabels"] == ["L0.N224", "F1741"]
    assert props["firstDimensionLabels"] == [f"units of {SHIPPED}"]
    np.testing.assert_allclose(np.array(props["activations"])[:, 0, :], got.activations, atol=1e-6)


def test_a_card_takes_the_units_name(capsys) -> None:
    from lenscope.cli import main

    assert main(["card", "L0.N224", "--top", "2"]) == 0
    named = capsys.readouterr().out
    assert named.startswith("lenscope-gelu-1l L0.N224 (") and main(["card", "0.224", "--top", "2"]) == 0
    assert capsys.readouterr().out == named  # LAYER.INDEX still works
    assert main(["card", "F12"]) == 2
    assert "F12 is a feature: this index's units are neurons (L0.N42)" in capsys.readouterr().err
