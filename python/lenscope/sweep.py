"""Rank by causal effect: every neuron, every head (and every feature of an SAE) zero-ablated in
turn at one prediction's position, ranked by how much the target's log-prob changes, beside the
direct-attribution ranking (:mod:`lenscope.attribution`) so the two can be seen to disagree.

**Exact** (``method="exact"``): one ablation per unit, batched (:mod:`lenscope.ablations` says
how); the prediction at ``p`` is read in the window that reports ``p``, as ``attribute`` reads
it. Equal to one ``run_with_hooks`` per unit (tests/core/test_sweep.py).

**A selection** (``last``): every prediction from ``position`` to ``last``, each unit ablated at
each position *separately*, each time read on that position's own prediction of its actual next
token (the last text token: its top prediction); a unit's score is the mean |Δ log-prob| over
the positions. Exact per position; what an ablation at ``p`` does to later predictions is not in
it (ablating at every position at once would mix the two). The direct side is the mean |direct
part| over the same positions.

**Estimate** (``method="estimate"``): attribution patching, the first-order estimate of the same
zero-ablation, ``Δ ≈ -a · ∂log p/∂a``, one forward and backward per position, for models where
the exact sweep is too much work (:data:`MAX_SWEEP_WORK`). Labelled as an estimate wherever it
is shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from lenscope import ablations, defaults
from lenscope.ablations import Method
from lenscope.engine.plan import plan_text
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.models.shape import shape_of
from lenscope.tokens import token_strings
from lenscope.units import unit_name
from lenscope.validation import check_int

if TYPE_CHECKING:
    from lenscope.sae import SparseAutoencoder

METHODS = ("exact", "estimate")
MAX_SWEEP_WORK = 5 * 10**11
"""Multiply-adds a sweep may cost (estimated before it runs, :func:`lenscope.ablations.work`): about a minute
on 2 busy CPU cores (~9e9 a second). One prediction of the default 2-layer model is 4e10 at 22
tokens, 4e11 at 256; the 1-layer model's is about 1e9 whatever the length. A larger sweep is
refused with a pointer to the estimate."""


@dataclass
class Sweep:
    """Every unit's effect on one prediction (or a selection's), with its direct part beside it."""

    model: str
    method: Method
    positions: list[int]  # text tokens whose predictions are read (one, or a selection)
    targets: list[int]  # the token each predicts here
    logprob: np.ndarray  # float32 [P]: each target's log-prob, nothing ablated
    selection: bool  # values are mean |Δ| over the positions (else the one position's signed Δ)
    neurons: np.ndarray  # float32 [n_layers, d_mlp] (d_mlp 0: attention-only)
    heads: np.ndarray  # float32 [n_layers, n_heads]
    direct_neurons: np.ndarray | None  # the direct part of the centred logit (a selection: mean |part|)
    direct_heads: np.ndarray | None  # None: no direct attribution for this model (not a LayerNorm model)
    sae: str | None = None
    features: np.ndarray | None = None  # float32 [d_sae] with an SAE (0 where a feature was off)
    direct_features: np.ndarray | None = None  # an MLP SAE's re-split of its layer's direct part
    strings: dict[int, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def _columns(self) -> list[tuple[Literal["neuron", "head", "feature"], np.ndarray, np.ndarray | None]]:
        out: list[tuple[Literal["neuron", "head", "feature"], np.ndarray, np.ndarray | None]] = [
            ("neuron", self.neurons, self.direct_neurons),
            ("head", self.heads, self.direct_heads),
        ]
        if self.features is not None:
            out.append(("feature", self.features, self.direct_features))
        return out

    def units(self) -> list[RankedUnit]:
        """Every unit, largest |effect| first, with both ranks (1 = largest |value|; the direct
        rank among the units that have a direct part)."""
        labels: list[tuple[Literal["neuron", "head", "feature"], int | None, int]] = []
        effect, direct, has_direct = [], [], []
        for kind, values, parts in self._columns():
            for idx in np.ndindex(*values.shape):
                labels.append((kind, None, idx[0]) if kind == "feature" else (kind, idx[0], idx[1]))
            effect.append(values.ravel())
            direct.append(np.zeros(values.size, np.float32) if parts is None else parts.ravel())
            has_direct.append(np.full(values.size, parts is not None))
        e, d, known = np.concatenate(effect), np.concatenate(direct), np.concatenate(has_direct)
        rank = ranks(np.abs(e))
        d_rank = np.zeros(len(d), np.int64)
        d_rank[known] = ranks(np.abs(d[known]))
        out = []
        for i, (kind, layer, index) in enumerate(labels):
            d_i, r_i = (float(d[i]), int(d_rank[i])) if known[i] else (None, None)
            out.append(RankedUnit(kind, layer, index, float(e[i]), int(rank[i]), d_i, r_i))
        return sorted(out, key=lambda u: u.rank)

    def rank_correlation(self) -> float | None:
        """Spearman's correlation of |effect| and |direct part| over every unit that has both,
        leaving out those where both are exactly 0 (an SAE's features that were off: thousands
        of tied zeros would make any two rankings agree). None: no direct parts."""
        pairs = [(v.ravel(), d.ravel()) for _, v, d in self._columns() if d is not None]
        if not pairs:
            return None
        a = np.abs(np.concatenate([e for e, _ in pairs]))
        b = np.abs(np.concatenate([d for _, d in pairs]))
        keep = (a != 0) | (b != 0)
        return spearman(a[keep], b[keep])


@dataclass(frozen=True)
class RankedUnit:
    kind: Literal["neuron", "head", "feature"]
    layer: int | None  # None for a feature
    index: int
    effect: float
    rank: int
    direct: float | None
    direct_rank: int | None

    @property
    def label(self) -> str:
        """``L0.N224``, ``L1.H3``, ``F1741`` (:mod:`lenscope.units`)."""
        return unit_name(self.kind, self.layer, self.index)


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, the largest value first; ties in the order given."""
    order = np.argsort(-values, kind="stable")
    out = np.empty(len(values), dtype=np.int64)
    out[order] = np.arange(1, len(values) + 1)
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation, ties given their mean rank (0 when either side is constant)."""

    def mean_ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x), dtype=np.float64)
        r[order] = np.arange(len(x), dtype=np.float64)
        _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=r)
        out: np.ndarray = sums[inverse] / counts[inverse]
        return out

    ra, rb = mean_ranks(np.asarray(a, np.float64)), mean_ranks(np.asarray(b, np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def sweep(
    model: Any,
    text: str,
    position: int,
    *,
    context: str = "",
    last: int | None = None,
    target: int | None = None,
    method: Method = "exact",
    sae: SparseAutoencoder | None = None,
    model_name: str | None = None,
) -> Sweep:
    """Every neuron and head (and ``sae``'s every feature) zero-ablated in turn at text token
    ``position`` (it predicts token ``position + 1``): the change in ``target``'s log-prob
    (default: the token that really came next, else the top prediction). With ``last``, every
    position from ``position`` to ``last``, each ablated and read separately: the mean |Δ| per
    unit. ``method="estimate"``: gradient × activation instead of the ablations."""
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    shape = shape_of(model)
    name = model_name or str(getattr(model.cfg, "model_name", "model"))
    t0 = time.perf_counter()
    plan = plan_text(model, text, context)
    n_text = len(plan.spans.ids)
    check_int(position, "position", 0, n_text - 1)
    if last is not None:
        check_int(last, "last", position, n_text - 1)
        if target is not None:
            raise InvalidInput("target goes with one prediction: a selection (last) reads each token's actual next token")
    if target is not None:
        check_int(target, "target", 0, shape.d_vocab - 1)
    if sae is not None:
        from lenscope.sae import check_fits

        check_fits(sae, model, name)
    positions = list(range(position, (position if last is None else last) + 1))
    groups = ablations.groups(model, plan, positions)
    work = ablations.work(model, groups, method, sae)
    if work > MAX_SWEEP_WORK:
        raise InputTooLarge(
            f"ablating every unit at {len(positions)} position(s) of this {shape.n_layers}-layer model is about {work:.1e} "
            f"multiply-adds; the limit is {MAX_SWEEP_WORK:.0e}: use method 'estimate', or fewer or earlier positions"
        )
    run = ablations.estimate if method == "estimate" else ablations.exact
    effects = [run(model, g, target, sae) for g in groups]
    targets = [t for e in effects for t in e.targets]
    timings = {"sweep": (time.perf_counter() - t0) * 1000}
    t1 = time.perf_counter()
    direct = _direct(model, text, context, positions, targets, last is not None, sae, name)
    timings["direct"] = (time.perf_counter() - t1) * 1000
    selection = last is not None

    def reduce(per_position: list[torch.Tensor]) -> np.ndarray:
        values = torch.cat(per_position).cpu().numpy()
        out: np.ndarray = (np.abs(values).mean(0) if selection else values[0]).astype(np.float32)
        return out

    ids = sorted(set(targets))
    return Sweep(
        model=name,
        method=method,
        positions=positions,
        targets=targets,
        logprob=torch.cat([e.logprob for e in effects]).cpu().numpy().astype(np.float32),
        selection=selection,
        neurons=reduce([e.neurons for e in effects]),
        heads=reduce([e.heads for e in effects]),
        direct_neurons=direct[0],
        direct_heads=direct[1],
        sae=None if sae is None else sae.name,
        features=None if sae is None else reduce([e.features for e in effects if e.features is not None]),
        direct_features=direct[2],
        strings=dict(zip(ids, token_strings(model.tokenizer, ids))),
        timings_ms=timings,
    )


def _direct(model: Any, text: str, context: str, positions: list[int], targets: list[int], selection: bool,
            sae: SparseAutoencoder | None, model_name: str) -> tuple[np.ndarray | None, ...]:  # fmt: skip
    """Each unit's direct part of the centred target logit (a selection: the mean |part|), from
    :mod:`lenscope.attribution`: neurons, heads, and an MLP SAE's features (its re-split of that
    layer's part); None for what it does not cover (a model without LayerNorm, another SAE)."""
    from lenscope.attribution import attribute, attribute_all

    split = sae if sae is not None and sae.hook_point.endswith("mlp.hook_post") else None

    def features_at(p: int) -> np.ndarray | None:
        a = attribute(model, text, p, context=context, sae=split, model_name=model_name)
        return None if a.features is None else a.features.parts.astype(np.float32)

    try:
        if not selection:
            a = attribute(model, text, positions[0], context=context, target=targets[0], sae=split, model_name=model_name)
            features = None if a.features is None else a.features.parts.astype(np.float32)
            return a.neurons.astype(np.float32), a.heads.astype(np.float32), features
        every = attribute_all(model, text, context=context, top=0, keep_neurons_at=positions)
        per_position = [f for f in (features_at(p) for p in positions) if f is not None] if split is not None else []
    except InvalidInput:
        return None, None, None
    heads = np.abs(every.heads[positions]).mean(0).astype(np.float32)
    if shape_of(model).d_mlp:
        neurons = np.abs(np.stack([every.neuron_parts[p] for p in positions])).mean(0).astype(np.float32)
    else:
        neurons = np.zeros((heads.shape[0], 0), np.float32)
    features = np.abs(np.stack(per_position)).mean(0).astype(np.float32) if per_position else None
    return neurons, heads, features


def note(result: Sweep) -> str:
    """What the numbers are, in words: the estimate says it is one."""
    how = (
        "estimate: gradient x activation, the first-order change of zeroing each unit (not an ablation)"
        if result.method == "estimate"
        else "exact: each unit zero-ablated alone"
    )
    what = (
        f"mean |change| of the actual next token's log-prob over {len(result.positions)} predictions, "
        "each position ablated separately"
        if result.selection
        else "change in the target's log-prob"
    )
    return f"{how}; {what}"


def sweep_to_wire(result: Sweep, top: int = defaults.TOP_NEURONS) -> dict[str, Any]:
    """The wire form (``SweepResponse``): the ``top`` units by |effect| and the ``top`` by |direct
    part| (each with both ranks), their rank correlation, and every unit's values as arrays."""
    units = result.units()
    by_direct = sorted((u for u in units if u.direct_rank is not None), key=lambda u: u.direct_rank or 0)

    def row(u: RankedUnit) -> dict[str, Any]:
        return {"unit": u.label, "kind": u.kind, "layer": u.layer, "index": u.index, "effect": u.effect, "rank": u.rank,
                "direct": u.direct, "direct_rank": u.direct_rank}  # fmt: skip

    ids = sorted(result.strings)
    return {
        "model": result.model,
        "method": result.method,
        "note": note(result),
        "measure": "mean_abs_delta_logprob" if result.selection else "delta_logprob",
        "positions": result.positions,
        "targets": result.targets,
        "logprob": [float(v) for v in result.logprob],
        "units": [row(u) for u in units[:top]],
        "direct_units": [row(u) for u in by_direct[:top]],
        "rank_correlation": result.rank_correlation(),
        "neurons": result.neurons.astype(np.float32),
        "heads": result.heads.astype(np.float32),
        "direct_neurons": None if result.direct_neurons is None else result.direct_neurons.astype(np.float32),
        "direct_heads": None if result.direct_heads is None else result.direct_heads.astype(np.float32),
        "sae": result.sae,
        "features": None if result.features is None else result.features.astype(np.float32),
        "direct_features": None if result.direct_features is None else result.direct_features.astype(np.float32),
        "strings": {"ids": ids, "values": [result.strings[i] for i in ids]},
        "timings_ms": result.timings_ms,
    }
