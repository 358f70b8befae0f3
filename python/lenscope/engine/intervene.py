"""Interventions (:mod:`lenscope.interventions`) turned into forward hooks over a plan's windows.

:func:`prepare` is the one entry point: it checks the list against the model, takes the means a
``mean`` ablation needs (from an index when given, else one plain pass over the text), runs the
sources of ``patch`` interventions, and returns the ``intervene(batch)`` callable that
:func:`lenscope.engine.run.forward_windows` applies, with what each intervention did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from lenscope.engine.plan import Plan, plan_text
from lenscope.engine.protocol import HookedModel
from lenscope.engine.run import DERIVE_CHUNK_ELEMENTS, Capture, Intervene, forward_named, model_device, run_capturing
from lenscope.engine.windows import Window
from lenscope.errors import InvalidInput
from lenscope.interventions import Intervention, check

if TYPE_CHECKING:
    from lenscope.sae import SparseAutoencoder

FEATURES = "features"
"""The capture key of the SAE's hook point when feature means are taken (not a hook point's name)."""


@dataclass
class Prepared:
    """What :func:`prepare` gives a feature: the hooks to run with, and what was applied."""

    intervene: Intervene | None
    applied: list[dict[str, Any]] = field(default_factory=list)  # per intervention: label, mean source


def prepare(
    model: HookedModel,
    plan: Plan,
    context: str,
    interventions: Sequence[Intervention],
    neuron_means: Mapping[tuple[int, int], float] | None = None,
    sae: SparseAutoencoder | None = None,
    model_name: str = "model",
) -> Prepared:
    """Check ``interventions`` and build their hooks for ``plan`` (nothing to do when empty).
    Interventions on features (``F12``) act through ``sae``."""
    if not interventions:
        return Prepared(None)
    check(model, interventions, len(plan.spans.ids), sae, model_name)
    means = selection_means(model, plan, interventions, neuron_means, sae)
    means.patches = patch_sources(model, plan, context, interventions)
    applied = [{"label": iv.label(), "mean_from": means.source.get(i)} for i, iv in enumerate(interventions)]
    return Prepared(window_hooks(model, plan, interventions, means, sae), applied)


@dataclass
class Means:
    """What a mean ablation sets each component to (and where that mean came from), and what a
    patch sets it to: the source run's activation at each position of the one window."""

    values: dict[int, torch.Tensor]  # intervention's place in the list -> its mean activation
    source: dict[int, str]  # "index" or "selection"
    patches: dict[int, torch.Tensor] = field(default_factory=dict)  # place -> [window positions, ...]


def patch_sources(model: HookedModel, plan: Plan, context: str, interventions: Sequence[Intervention]) -> dict[int, torch.Tensor]:
    """Each patch's source run: the same context, the same token count, one window."""
    out: dict[int, torch.Tensor] = {}
    for i, iv in enumerate(interventions):
        if iv.op != "patch":
            continue
        assert iv.source is not None
        source = plan_text(model, iv.source, context)
        if len(plan.windows) != 1 or len(source.seq) != len(plan.seq):
            raise InvalidInput(
                f"interventions[{i}] (patch): the source is {len(source.spans.ids)} tokens and the text "
                f"{len(plan.spans.ids)}; patching needs the same count, in one window"
            )
        x = torch.tensor([[source.bos, *source.seq]], device=model_device(model))
        _, cache = run_capturing(model, x, [iv.hook_name()])
        act = cache[iv.hook_name()][0]
        out[i] = act[:, iv.index] if iv.component in ("neuron", "head") else act
    return out


def selection_means(
    model: HookedModel,
    plan: Plan,
    interventions: Sequence[Intervention],
    neuron_means: Mapping[tuple[int, int], float] | None,
    sae: SparseAutoencoder | None = None,
) -> Means:
    """Means for the ``mean`` interventions: a neuron's from ``neuron_means`` when it is there,
    otherwise each over the text's tokens of a plain run (one extra pass, only when needed; a
    feature's is the mean of its activation, not the activation of the mean)."""
    out = Means({}, {})
    need: dict[int, Intervention] = {}
    for i, iv in enumerate(interventions):
        if iv.op != "mean":
            continue
        key = (iv.layer or 0, iv.index or 0)
        if iv.component == "neuron" and neuron_means is not None and key in neuron_means:
            out.values[i] = torch.tensor(float(neuron_means[key]))
            out.source[i] = "index"
        else:
            need[i] = iv
    if not need:
        return out
    features = sorted({iv.index or 0 for iv in need.values() if iv.component == "feature"})
    captures: dict[str, Capture] = {iv.hook_name(): iv.hook_name() for iv in need.values() if iv.component != "feature"}
    if features and sae is not None:
        captures[FEATURES] = sae.hook_point
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for _, positions, acts in forward_named(model, plan, captures, {"forward": 0.0}):
        text = positions >= plan.keep  # text tokens only (not the BOS or context)
        count += int(text.sum())
        for name in captures:
            s = feature_sums(sae, acts[name][text], features) if name == FEATURES and sae else acts[name][text].double().sum(0)
            sums[name] = sums[name] + s if name in sums else s
    for i, iv in need.items():
        if iv.component == "feature":
            out.values[i] = (sums[FEATURES][features.index(iv.index or 0)] / max(count, 1)).float()
        else:
            mean = (sums[iv.hook_name()] / max(count, 1)).float()
            out.values[i] = mean[iv.index] if iv.component in ("neuron", "head") else mean
        out.source[i] = "selection"
    return out


def feature_sums(sae: SparseAutoencoder, x: torch.Tensor, features: list[int]) -> torch.Tensor:
    """The sum over rows of ``x`` of each of ``features``' activations (float64), encoded in
    chunks so no ``[rows, d_sae]`` array larger than a chunk is made."""
    chunk = max(1, DERIVE_CHUNK_ELEMENTS // sae.d_sae)
    total = torch.zeros(len(features), dtype=torch.float64, device=x.device)
    for c in range(0, len(x), chunk):
        total += sae.encode(x[c : c + chunk])[:, features].double().sum(0)
    return total


def window_hooks(
    model: HookedModel,
    plan: Plan,
    interventions: Sequence[Intervention],
    means: Means,
    sae: SparseAutoencoder | None = None,
) -> Callable[[list[Window]], list[tuple[str, Callable[..., Any]]]]:
    """``intervene(batch)`` for :func:`lenscope.engine.run.forward_windows`: one hook per intervention, each
    acting on the rows and local positions of the batch's windows; the feature interventions
    share one hook (at the place of the first of them), which reads the features once."""
    w_out = model.W_out.detach() if any(iv.op == "steer" and iv.component == "neuron" for iv in interventions) else None

    def build(batch: list[Window]) -> list[tuple[str, Callable[..., Any]]]:
        hooks: list[tuple[str, Callable[..., Any]]] = []
        edits: list[FeatureEdit] = []
        first_feature = None
        for i, iv in enumerate(interventions):
            rows: list[int] = []
            cols: list[int] = []
            for b, w in enumerate(batch):
                if iv.positions is None:
                    local = list(range(1, w.stop - w.start + 1))
                else:
                    local = [plan.keep + p - w.start + 1 for p in iv.positions if w.start <= plan.keep + p < w.stop]
                rows += [b] * len(local)
                cols += local
            if iv.component == "feature":
                first_feature = len(hooks) if first_feature is None else first_feature
                if rows:
                    edits.append(FeatureEdit(iv, rows, cols, means.values.get(i)))
            elif rows:
                hooks.append((iv.hook_name(), _hook(iv, rows, cols, means.values.get(i), w_out, means.patches.get(i))))
        if edits and sae is not None and first_feature is not None:
            hooks.insert(first_feature, (sae.hook_point, feature_hook(sae, edits)))
        return hooks

    return build


@dataclass
class FeatureEdit:
    """One feature intervention on a batch: where (rows and local positions) and what."""

    iv: Intervention
    rows: list[int]
    cols: list[int]
    mean: torch.Tensor | None


def feature_hook(sae: SparseAutoencoder, edits: list[FeatureEdit]) -> Callable[..., Any]:
    """The hook of a list's feature interventions: at the positions any of them touches, encode
    the activation once (``a``), apply each edit in order to a copy (``a'``), and add
    ``(a' - a) W_dec`` over the features edited: the rest of the activation, the SAE's error
    term included, is left as it was."""
    features = sorted({e.iv.index or 0 for e in edits})
    column = {f: j for j, f in enumerate(features)}

    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        width = act.shape[1]
        flat_of = [torch.tensor(e.rows, device=act.device) * width + torch.tensor(e.cols, device=act.device) for e in edits]
        where = torch.unique(torch.cat(flat_of))  # sorted
        out = act.clone(memory_format=torch.contiguous_format)
        flat = out.view(-1, out.shape[-1])
        a = sae.encode(flat.index_select(0, where))[:, features]  # [touched positions, features edited]
        new = a.clone()
        for e, at in zip(edits, flat_of):
            rows, j = torch.searchsorted(where, at), column[e.iv.index or 0]
            cur = new[rows, j]
            if e.iv.op == "zero":
                new[rows, j] = 0.0
            elif e.iv.op == "mean":
                assert e.mean is not None
                new[rows, j] = e.mean.to(new.device, new.dtype)
            elif e.iv.op == "set":
                new[rows, j] = e.iv.value
            elif e.iv.op == "scale":
                new[rows, j] = cur * e.iv.value
            else:  # steer: add value to the feature's activation
                new[rows, j] = cur + e.iv.value
        delta = (new - a) @ sae.W_dec[features]  # [touched positions, d_in]
        flat.index_add_(0, where, delta.to(flat.dtype))
        return out

    return hook


def _hook(
    iv: Intervention,
    rows: list[int],
    cols: list[int],
    mean: torch.Tensor | None,
    w_out: torch.Tensor | None,
    patch: torch.Tensor | None = None,
) -> Callable[..., Any]:
    r, c = torch.tensor(rows), torch.tensor(cols)
    direction = w_out[iv.layer, iv.index].float() if w_out is not None and iv.component == "neuron" else None

    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        rc: tuple[Any, ...] = (r.to(act.device), c.to(act.device))
        act = act.clone()
        if iv.op == "steer" and iv.component == "neuron":  # on hook_mlp_out: add the neuron's output direction
            assert direction is not None
            act[rc] += (iv.value * direction).to(act.device, act.dtype)
            return act
        idx = (*rc, iv.index) if iv.component in ("neuron", "head") else rc
        cur = act[idx]
        if iv.op == "zero":
            new = torch.zeros_like(cur)
        elif iv.op == "mean":
            assert mean is not None
            new = mean.to(act.device, act.dtype).expand_as(cur)
        elif iv.op == "set":
            new = torch.full_like(cur, iv.value)
        elif iv.op == "patch":
            assert patch is not None
            new = patch.to(act.device, act.dtype)[rc[1]]
        elif iv.op == "scale":
            new = cur * iv.value
        else:  # steer a head: add value times its own output
            new = cur * (1.0 + iv.value)
        act[idx] = new
        return act

    return hook
