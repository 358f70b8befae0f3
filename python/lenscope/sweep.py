"""Rank by causal effect: every neuron and every head zero-ablated in turn at one prediction's
position, ranked by how much the target's log-prob changes, beside the direct-attribution
ranking (:mod:`lenscope.attribution`) so the two can be seen to disagree.

**Exact** (``method="exact"``). A unit zeroed at position ``p`` changes nothing before ``p``, so
the prediction at ``p`` is read from a forward of the tokens up to ``p`` (the window that
reports ``p``, as ``attribute`` reads it). One forward serves many ablations: at the unit's hook
point the batch is widened, row ``r`` a copy of the activation with its unit zeroed at ``p``,
and only each row's position ``p`` is unembedded. A last-layer neuron reaches the logits only
through ``act * W_out[n]`` added to the residual stream, so its rows skip the forward altogether:
the last block's output minus that term, through the model's own final norm and unembedding
(:mod:`lenscope.engine.tail`); checked on the clean run each time, else those neurons take the
widened forward too. The result equals one ``run_with_hooks`` per unit (tests/core/test_sweep.py).

**A selection** (``last``): every prediction from ``position`` to ``last``, each unit ablated at
each position *separately*, each time read on that position's own prediction of its actual next
token (the last text token: its top prediction); a unit's score is the mean |Δ log-prob| over
the positions. Exact per position; what an ablation at ``p`` does to later predictions is not in it.

**Estimate** (``method="estimate"``): attribution patching, the first-order estimate of the same
zero-ablation, ``Δ ≈ -a · ∂log p/∂a`` (a head: summed over its ``z``), one forward and backward
per position, for models where the exact sweep is too much work (:data:`MAX_SWEEP_WORK`). It is
labelled as an estimate everywhere it is shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from lenscope import defaults
from lenscope.engine.plan import Plan, plan_text
from lenscope.engine.run import hook_point, model_device, run_capturing, run_hooked
from lenscope.engine.tail import unembed_resid
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import ModelShape, shape_of
from lenscope.tokens import token_strings
from lenscope.validation import check_int

Method = Literal["exact", "estimate"]
METHODS = ("exact", "estimate")
MAX_SWEEP_WORK = 5 * 10**11
"""Multiply-adds a sweep may cost (estimated before it runs, :func:`sweep_work`): about a minute
on 2 busy CPU cores (~9e9 a second). One prediction of the default 2-layer model is 4e10 at 22
tokens, 4e11 at 256; the 1-layer model's is about 1e9 whatever the length. A larger sweep is
refused with a pointer to the estimate."""
ROW_ELEMENTS = 2**24
"""A widened forward's rows are chunked so its largest activation stays about this many floats."""


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
    strings: dict[int, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def units(self) -> list[RankedUnit]:
        """Every unit, largest |effect| first, with both ranks (1 = largest |value|)."""
        neurons: list[tuple[Literal["neuron", "head"], int, int]] = [
            ("neuron", la, i) for la, i in np.ndindex(*self.neurons.shape)
        ]
        heads: list[tuple[Literal["neuron", "head"], int, int]] = [("head", la, h) for la, h in np.ndindex(*self.heads.shape)]
        labels = neurons + heads
        effect = np.concatenate([self.neurons.ravel(), self.heads.ravel()])
        rank = ranks(np.abs(effect))
        direct = direct_rank = None
        if self.direct_neurons is not None and self.direct_heads is not None:
            direct = np.concatenate([self.direct_neurons.ravel(), self.direct_heads.ravel()])
            direct_rank = ranks(np.abs(direct))
        out = []
        for i, (kind, layer, index) in enumerate(labels):
            d = None if direct is None else float(direct[i])
            d_rank = None if direct_rank is None else int(direct_rank[i])
            out.append(RankedUnit(kind, layer, index, float(effect[i]), int(rank[i]), d, d_rank))
        return sorted(out, key=lambda u: u.rank)

    def rank_correlation(self) -> float | None:
        """Spearman's correlation of |effect| and |direct part| over every unit (None: no direct parts)."""
        if self.direct_neurons is None or self.direct_heads is None:
            return None
        a = np.abs(np.concatenate([self.neurons.ravel(), self.heads.ravel()]))
        b = np.abs(np.concatenate([self.direct_neurons.ravel(), self.direct_heads.ravel()]))
        return spearman(a, b)


@dataclass(frozen=True)
class RankedUnit:
    kind: Literal["neuron", "head"]
    layer: int
    index: int
    effect: float
    rank: int
    direct: float | None
    direct_rank: int | None

    @property
    def label(self) -> str:
        return f"L{self.layer}.{'N' if self.kind == 'neuron' else 'H'}{self.index}"


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


@dataclass
class _Group:
    """The positions one window reports: its tokens up to the last of them (BOS first)."""

    x: torch.Tensor  # int64 [1, T]
    locals_: torch.Tensor  # int64 [P]: each position's index in x
    positions: list[int]  # text token indices
    next_ids: list[int | None]  # the token that really follows each (None: the text ends)


def _groups(model: Any, plan: Plan, positions: list[int]) -> list[_Group]:
    device = model_device(model)
    out: list[_Group] = []
    for w in plan.windows:
        mine = [p for p in positions if w.report_from <= plan.keep + p < w.report_to]
        if not mine:
            continue
        end = plan.keep + mine[-1] + 1
        x = torch.tensor([[plan.bos, *plan.seq[w.start : end]]], dtype=torch.int64, device=device)
        nexts = [plan.seq[plan.keep + p + 1] if plan.keep + p + 1 < len(plan.seq) else None for p in mine]
        out.append(_Group(x, torch.tensor([w.local(plan.keep + p) for p in mine], device=device), mine, nexts))
    return out


def _layer_macs(shape: ModelShape) -> int:
    return 4 * shape.d_model**2 + 2 * shape.d_model * (shape.d_mlp or 0)


def sweep_work(model: Any, groups: list[_Group], method: Method) -> int:
    """Multiply-adds the sweep will cost, about: every widened row's forward from its layer on,
    the last layer's neurons' unembeddings; for the estimate, a forward and backward per position."""
    shape = shape_of(model)
    n_layers, d_mlp, n_heads = shape.n_layers, shape.d_mlp or 0, int(model.cfg.n_heads)
    per_layer = _layer_macs(shape)
    total = 0
    for g in groups:
        t, p = g.x.shape[1], len(g.positions)
        if method == "estimate":
            total += 3 * p * t * (n_layers * per_layer + shape.d_model * shape.d_vocab)
            continue
        for local in g.locals_.tolist():  # a position's rows read the tokens up to it
            for layer in range(n_layers):
                rows = n_heads + (d_mlp if layer < n_layers - 1 else 0)
                total += rows * ((local + 1) * (n_layers - layer) * per_layer + shape.d_model * shape.d_vocab)
        total += p * d_mlp * shape.d_model * shape.d_vocab
    return total


def sweep(
    model: Any,
    text: str,
    position: int,
    *,
    context: str = "",
    last: int | None = None,
    target: int | None = None,
    method: Method = "exact",
    model_name: str | None = None,
) -> Sweep:
    """Every neuron and head zero-ablated in turn at text token ``position`` (it predicts token
    ``position + 1``): the change in ``target``'s log-prob (default: the token that really came
    next, else the top prediction). With ``last``, every position from ``position`` to ``last``,
    each ablated and read separately: the mean |Δ| per unit. ``method="estimate"``: gradient ×
    activation instead of the ablations."""
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    shape = shape_of(model)
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
    positions = list(range(position, (position if last is None else last) + 1))
    groups = _groups(model, plan, positions)
    work = sweep_work(model, groups, method)
    if work > MAX_SWEEP_WORK:
        raise InputTooLarge(
            f"ablating every unit at {len(positions)} position(s) of this {shape.n_layers}-layer model is about {work:.1e} "
            f"multiply-adds; the limit is {MAX_SWEEP_WORK:.0e}: use method 'estimate', or fewer or earlier positions"
        )
    neurons, heads, targets, logprob = [], [], [], []
    for g in groups:
        run = _estimate if method == "estimate" else _exact
        n, h, t, lp = run(model, g, target)
        neurons.append(n)
        heads.append(h)
        targets += t
        logprob.append(lp)
    timings = {"sweep": (time.perf_counter() - t0) * 1000}
    per_n, per_h = torch.cat(neurons).cpu().numpy(), torch.cat(heads).cpu().numpy()  # [P, layers, units]
    t1 = time.perf_counter()
    direct_n, direct_h = _direct(model, text, context, positions, targets, last is not None)
    timings["direct"] = (time.perf_counter() - t1) * 1000
    selection = last is not None

    def reduce(per_position: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.abs(per_position).mean(0) if selection else per_position[0]
        return out

    return Sweep(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        method=method,
        positions=positions,
        targets=targets,
        logprob=torch.cat(logprob).cpu().numpy().astype(np.float32),
        selection=selection,
        neurons=reduce(per_n).astype(np.float32),
        heads=reduce(per_h).astype(np.float32),
        direct_neurons=direct_n,
        direct_heads=direct_h,
        strings=dict(zip(sorted(set(targets)), token_strings(model.tokenizer, sorted(set(targets))))),
        timings_ms=timings,
    )


def _targets(g: _Group, at: torch.Tensor, target: int | None) -> torch.Tensor:
    """Each position's target (``at``: its logits, ``[P, vocab]``): the one asked for, else the
    next token, else the top prediction."""
    chosen = [target if target is not None else nxt if nxt is not None else int(at[i].argmax())
              for i, nxt in enumerate(g.next_ids)]  # fmt: skip
    return torch.tensor(chosen, dtype=torch.int64, device=at.device)


def _logprob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[rows, vocab]`` logits -> each row's log-prob of its target."""
    return torch.log_softmax(logits.float(), -1).gather(1, targets[:, None])[:, 0]


@torch.inference_mode()
def _exact(model: Any, g: _Group, target: int | None) -> tuple[torch.Tensor, torch.Tensor, list[int], torch.Tensor]:
    shape = shape_of(model)
    n_layers, d_mlp, n_heads = shape.n_layers, shape.d_mlp or 0, int(model.cfg.n_heads)
    last = n_layers - 1
    names = [hook_names.mlp_post(last), hook_names.mlp_out(last), hook_names.resid_post(last)] if d_mlp else []
    logits, caps = run_capturing(model, g.x, names)
    targets = _targets(g, logits[0, g.locals_], target)
    base = _logprob(logits[0, g.locals_], targets)
    heads = torch.stack([_widened(model, g, hook_names.attn_z(la), n_heads, targets, base) for la in range(n_layers)], 1)
    if not d_mlp:
        return torch.zeros(len(g.positions), n_layers, 0), heads, targets.tolist(), base
    per_layer = [_widened(model, g, hook_names.mlp_post(la), d_mlp, targets, base) for la in range(last)]
    tail = _last_layer_neurons(model, g, caps, logits[0], targets, base)
    per_layer.append(tail if tail is not None else _widened(model, g, hook_names.mlp_post(last), d_mlp, targets, base))
    return torch.stack(per_layer, 1), heads, targets.tolist(), base


def _widened(model: Any, g: _Group, name: str, n_units: int, targets: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """Δ log-prob ``[P, n_units]`` of zeroing each unit (the last axis of ``name``'s activation
    after the position: a neuron, or a head's whole ``z``) at each position, one forward per
    chunk of rows, the batch widened at ``name``. Rows go position by position, and a chunk's
    forward reads the tokens only up to its last position."""
    device = g.x.device
    shape = shape_of(model)
    picked = hook_point(model, hook_names.UNEMBED_IN) is not None
    width = max(shape.d_mlp or 0, 4 * shape.d_model, int(model.cfg.n_heads) * g.x.shape[1]) + (0 if picked else shape.d_vocab)
    chunk = max(1, ROW_ELEMENTS // (g.x.shape[1] * width))
    total = len(g.positions) * n_units
    out = torch.empty(total, device=device)
    for start in range(0, total, chunk):
        r = torch.arange(start, min(start + chunk, total), device=device)
        which, unit = r // n_units, r % n_units
        at = g.locals_[which]
        rows = torch.arange(len(r), device=device)
        x = g.x[:, : int(at.max()) + 1]

        def widen(act: torch.Tensor, hook: Any, at: torch.Tensor = at, unit: torch.Tensor = unit) -> torch.Tensor:
            wide = act.expand(len(at), *act.shape[1:]).clone()
            wide[torch.arange(len(at), device=act.device), at, unit] = 0
            return wide

        def pick(resid: torch.Tensor, hook: Any, at: torch.Tensor = at, rows: torch.Tensor = rows) -> torch.Tensor:
            return resid[rows, at][:, None]

        fwd: list[tuple[Any, Any]] = [(name, widen), *([(hook_names.UNEMBED_IN, pick)] if picked else [])]
        logits = run_hooked(model, x, fwd)
        row_logits = logits[:, 0] if picked and logits.shape[:2] == (len(r), 1) else logits[rows, at]
        out[start : start + len(r)] = _logprob(row_logits, targets[which]) - base[which]
    return out.reshape(len(g.positions), n_units)


def _last_layer_neurons(model: Any, g: _Group, caps: dict[str, torch.Tensor], logits: torch.Tensor,
                        targets: torch.Tensor, base: torch.Tensor) -> torch.Tensor | None:  # fmt: skip
    """Δ log-prob ``[P, d_mlp]`` of each last-layer neuron: the last block's output less
    ``act * W_out[n]``, unembedded. None when the clean run shows that path is not exact for this
    model (its MLP output is not ``post @ W_out + b_out``, or the tail does not give its logits)."""
    shape = shape_of(model)
    last = shape.n_layers - 1
    post = caps[hook_names.mlp_post(last)][0, g.locals_].float()  # [P, d_mlp]
    resid = caps[hook_names.resid_post(last)][0, g.locals_]  # [P, d_model]
    mlp_out = caps[hook_names.mlp_out(last)][0, g.locals_].float()
    w_out = model.W_out.detach()[last].float()
    b_out = getattr(model, "b_out", None)
    bias = b_out.detach()[last].float() if b_out is not None else torch.zeros_like(mlp_out[0])
    scale = float(mlp_out.abs().max()) + 1e-6
    if not torch.allclose(post @ w_out + bias, mlp_out, atol=1e-3 * scale, rtol=0):
        return None
    if not torch.allclose(unembed_resid(model, resid).float(), logits[g.locals_].float(), atol=1e-3, rtol=1e-4):
        return None
    d_mlp = post.shape[1]
    chunk = max(1, ROW_ELEMENTS // (shape.d_vocab + shape.d_model))
    out = torch.empty(len(g.positions) * d_mlp, device=resid.device)
    total = len(out)
    for start in range(0, total, chunk):
        r = torch.arange(start, min(start + chunk, total), device=resid.device)
        which, unit = r // d_mlp, r % d_mlp
        rows = resid[which] - (post[which, unit][:, None] * w_out[unit]).to(resid.dtype)
        out[start : start + len(r)] = _logprob(unembed_resid(model, rows), targets[which]) - base[which]
    return out.reshape(len(g.positions), d_mlp)


def _estimate(model: Any, g: _Group, target: int | None) -> tuple[torch.Tensor, torch.Tensor, list[int], torch.Tensor]:
    """Attribution patching: ``-a · ∂log p/∂a`` at each position, one row per position (each
    row's gradient is of its own position's log-prob only)."""
    shape = shape_of(model)
    n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
    names = [n for la in range(n_layers) for n in ([hook_names.attn_z(la)] + ([hook_names.mlp_post(la)] if d_mlp else []))]
    t = g.x.shape[1]
    chunk = max(1, ROW_ELEMENTS // (t * max(d_mlp, 4 * shape.d_model, int(model.cfg.n_heads) * t) * 3))
    neurons, heads, targets, base = [], [], [], []
    picked = hook_point(model, hook_names.UNEMBED_IN) is not None
    for start in range(0, len(g.positions), chunk):
        sub = _Group(g.x, g.locals_[start : start + chunk], g.positions[start : start + chunk], g.next_ids[start : start + chunk])
        n, h, tg, lp = _gradient_x_activation(model, sub, target, names, picked)
        neurons.append(n)
        heads.append(h)
        targets += tg
        base.append(lp)
    return torch.cat(neurons), torch.cat(heads), targets, torch.cat(base)


def _gradient_x_activation(model: Any, g: _Group, target: int | None, names: list[str],
                           picked: bool) -> tuple[torch.Tensor, torch.Tensor, list[int], torch.Tensor]:  # fmt: skip
    shape = shape_of(model)
    n_layers, d_mlp, n_heads = shape.n_layers, shape.d_mlp or 0, int(model.cfg.n_heads)
    with torch.inference_mode(False), torch.enable_grad():
        p = len(g.positions)
        x = g.x.clone().expand(p, -1)
        at = g.locals_.clone()
        rows = torch.arange(p, device=x.device)
        acts: dict[str, torch.Tensor] = {}
        deltas: dict[str, torch.Tensor] = {}

        def probe(name: str) -> Any:
            def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
                delta = torch.zeros_like(act, requires_grad=True)
                deltas[name], acts[name] = delta, act.detach()
                return act + delta

            return hook

        def pick(resid: torch.Tensor, hook: Any) -> torch.Tensor:
            return resid[rows, at][:, None]

        fwd: list[tuple[Any, Any]] = [(n, probe(n)) for n in names] + ([(hook_names.UNEMBED_IN, pick)] if picked else [])
        logits = run_hooked(model, x, fwd)
        row_logits = logits[:, 0] if picked and logits.shape[:2] == (p, 1) else logits[rows, at]
        targets = _targets(g, row_logits.detach(), target)
        lp = _logprob(row_logits, targets)
        grads = dict(zip(names, torch.autograd.grad(lp.sum(), [deltas[n] for n in names])))
    est_heads = torch.stack(
        [-(acts[hook_names.attn_z(la)][rows, at] * grads[hook_names.attn_z(la)][rows, at]).float().sum(-1)
         for la in range(n_layers)], 1)  # fmt: skip
    if d_mlp:
        est_neurons = torch.stack(
            [-(acts[hook_names.mlp_post(la)][rows, at] * grads[hook_names.mlp_post(la)][rows, at]).float()
             for la in range(n_layers)], 1)  # fmt: skip
    else:
        est_neurons = torch.zeros(p, n_layers, 0, device=x.device)
    assert est_heads.shape == (p, n_layers, n_heads)
    return est_neurons.detach(), est_heads.detach(), targets.tolist(), lp.detach()


def _direct(model: Any, text: str, context: str, positions: list[int], targets: list[int],
            selection: bool) -> tuple[np.ndarray | None, np.ndarray | None]:  # fmt: skip
    """Each unit's direct part of the centred target logit (a selection: the mean |part|), from
    :mod:`lenscope.attribution`; None for a model it does not cover (no LayerNorm)."""
    from lenscope.attribution import attribute, attribute_all

    try:
        if not selection:
            a = attribute(model, text, positions[0], context=context, target=targets[0])
            return a.neurons.astype(np.float32), a.heads.astype(np.float32)
        every = attribute_all(model, text, context=context, top=0, keep_neurons_at=positions)
    except InvalidInput:
        return None, None
    heads = np.abs(every.heads[positions]).mean(0)
    d_mlp = shape_of(model).d_mlp or 0
    neurons = (
        np.abs(np.stack([every.neuron_parts[p] for p in positions])).mean(0)
        if d_mlp
        else np.zeros((heads.shape[0], 0), np.float32)
    )
    return neurons.astype(np.float32), heads.astype(np.float32)


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
        "strings": {"ids": ids, "values": [result.strings[i] for i in ids]},
        "timings_ms": result.timings_ms,
    }
