"""Every unit zeroed in turn at a position, batched: the exact change in a target's log-prob, and
its first-order estimate. The mechanics behind :mod:`lenscope.sweep`.

**Exact.** A unit zeroed at position ``p`` changes nothing before ``p``, so the prediction at
``p`` is read from a forward of the tokens up to ``p``. One forward serves many ablations: at
the unit's hook point the batch is *widened*, row ``r`` a copy of the activation with its unit
zeroed at its position, and only each row's own position is unembedded. Rows go position by
position, so a chunk's forward reads the tokens only up to its last position.

A last-layer neuron reaches the logits only through ``act * W_out[n]`` added to the residual
stream, so its rows need no forward: the last block's output less that term, through the
model's own final norm and unembedding (:mod:`lenscope.engine.tail`). Whether that holds is
checked on the clean run each time (the MLP's output is ``post @ W_out + b_out``, the tail gives
the run's logits); else those neurons take the widened forward too.

An SAE feature is zeroed as the feature interventions do it (:mod:`lenscope.interventions`): the
activation at the SAE's hook point becomes ``x - a_f W_dec[f]``, the error term kept. A feature
that is off at ``p`` changes nothing: only the active ones are run.

**Estimate** (attribution patching): ``Δ ≈ -a · ∂log p/∂a`` (a head: summed over its ``z``; a
feature: ``-a_f W_dec[f] · ∂log p/∂x``), one forward and backward, one row per position, so each
row's gradient is of its own position's log-prob only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch

from lenscope.engine.plan import Plan
from lenscope.engine.run import hook_point, model_device, run_capturing, run_hooked
from lenscope.engine.tail import unembed_resid
from lenscope.errors import InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of

if TYPE_CHECKING:
    from lenscope.sae import SparseAutoencoder

Method = Literal["exact", "estimate"]
ROW_ELEMENTS = 2**24
"""A widened forward's rows are chunked so its largest activation stays about this many floats."""
FEATURE_ROWS_GUESS = 256
"""Active features assumed per position when estimating the work of an SAE without a fixed k."""
Edit = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]
"""``edit(wide, rows, at, r)``: change ``wide`` (the widened activation) at ``(rows, at)`` for the global rows ``r``."""


@dataclass
class Group:
    """The positions one window reports, and its tokens up to the last of them (BOS first)."""

    x: torch.Tensor  # int64 [1, T]
    locals_: torch.Tensor  # int64 [P]: each position's index in x
    positions: list[int]  # text token indices
    next_ids: list[int | None]  # the token that really follows each (None: the text ends)


@dataclass
class Effects:
    """Each position's Δ log-prob of its target, per unit (or the estimate of it)."""

    neurons: torch.Tensor  # [P, n_layers, d_mlp] (d_mlp 0: attention-only)
    heads: torch.Tensor  # [P, n_layers, n_heads]
    features: torch.Tensor | None  # [P, d_sae] with an SAE
    targets: list[int]
    logprob: torch.Tensor  # [P]: the target's log-prob, nothing ablated


def groups(model: Any, plan: Plan, positions: list[int]) -> list[Group]:
    """``positions`` (text tokens) grouped by the window that reports each, as ``attribute`` reads them."""
    device = model_device(model)
    out: list[Group] = []
    for w in plan.windows:
        mine = [p for p in positions if w.report_from <= plan.keep + p < w.report_to]
        if not mine:
            continue
        x = torch.tensor([[plan.bos, *plan.seq[w.start : plan.keep + mine[-1] + 1]]], dtype=torch.int64, device=device)
        nexts = [plan.seq[plan.keep + p + 1] if plan.keep + p + 1 < len(plan.seq) else None for p in mine]
        out.append(Group(x, torch.tensor([w.local(plan.keep + p) for p in mine], device=device), mine, nexts))
    return out


def work(model: Any, parts: list[Group], method: Method, sae: SparseAutoencoder | None = None) -> int:
    """Multiply-adds a sweep will cost, about: every widened row's forward from its layer on and
    its unembedding, the last layer's neurons' unembeddings; for the estimate, a forward and a
    backward per position."""
    shape = shape_of(model)
    n_layers, d_mlp, n_heads = shape.n_layers, shape.d_mlp or 0, int(model.cfg.n_heads)
    per_layer = 4 * shape.d_model**2 + 2 * shape.d_model * d_mlp
    unembed = shape.d_model * shape.d_vocab
    feature_layer = hook_names.layer_of(sae.hook_point) if sae is not None else None
    feature_rows = 0 if sae is None else min(sae.d_sae, sae.k or FEATURE_ROWS_GUESS)
    total = 0
    for g in parts:
        t, p = g.x.shape[1], len(g.positions)
        if method == "estimate":
            total += 3 * p * t * (n_layers * per_layer + unembed)
            continue
        for local in g.locals_.tolist():  # a position's rows read the tokens up to it
            for layer in range(n_layers):
                rows = n_heads + (d_mlp if layer < n_layers - 1 else 0)
                total += rows * ((local + 1) * (n_layers - layer) * per_layer + unembed)
            after = n_layers - (feature_layer or 0)
            total += feature_rows * ((local + 1) * after * per_layer + unembed)
        total += p * d_mlp * unembed
    return total


def targets_of(g: Group, at: torch.Tensor, target: int | None) -> torch.Tensor:
    """Each position's target (``at``: its logits, ``[P, vocab]``): the one asked for, else the
    next token, else the top prediction."""
    chosen = [target if target is not None else nxt if nxt is not None else int(at[i].argmax())
              for i, nxt in enumerate(g.next_ids)]  # fmt: skip
    return torch.tensor(chosen, dtype=torch.int64, device=at.device)


def logprob_of(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[rows, vocab]`` logits -> each row's log-prob of its target."""
    return torch.log_softmax(logits.float(), -1).gather(1, targets[:, None])[:, 0]


def _sae_input(act: torch.Tensor, sae: SparseAutoencoder, rows: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """The SAE's input at each row's position: ``act[rows, at]``, from a ``[batch, position, d_in]`` activation."""
    if act.ndim != 3:
        raise InvalidInput(
            f"SAE {sae.name!r} reads {sae.hook_point!r}, a {act.ndim}-D activation; the sweep needs [batch, position, d_in]"
        )
    return act[rows, at]


@torch.inference_mode()
def exact(model: Any, g: Group, target: int | None, sae: SparseAutoencoder | None = None) -> Effects:
    """Every neuron, head (and active feature of ``sae``) zeroed at each of ``g``'s positions."""
    shape = shape_of(model)
    n_layers, d_mlp, n_heads = shape.n_layers, shape.d_mlp or 0, int(model.cfg.n_heads)
    last = n_layers - 1
    names = [hook_names.mlp_post(last), hook_names.mlp_out(last), hook_names.resid_post(last)] if d_mlp else []
    if sae is not None and sae.hook_point not in names:
        names.append(sae.hook_point)
    logits, caps = run_capturing(model, g.x, names)
    targets = targets_of(g, logits[0, g.locals_], target)
    base = logprob_of(logits[0, g.locals_], targets)
    p = len(g.positions)

    def every(n_units: int) -> tuple[torch.Tensor, torch.Tensor]:
        which = torch.arange(p, device=g.x.device).repeat_interleave(n_units)
        return which, torch.arange(n_units, device=g.x.device).repeat(p)

    heads = torch.stack(
        [_widened(model, g, hook_names.attn_z(la), *every(n_heads), targets, base).reshape(p, n_heads) for la in range(n_layers)],
        1,
    )
    neurons = torch.zeros(p, n_layers, 0, device=g.x.device)
    if d_mlp:
        per_layer = [_widened(model, g, hook_names.mlp_post(la), *every(d_mlp), targets, base) for la in range(last)]
        tail = _last_layer_neurons(model, g, caps, logits[0], targets, base)
        if tail is None:
            tail = _widened(model, g, hook_names.mlp_post(last), *every(d_mlp), targets, base)
        neurons = torch.stack([d.reshape(p, d_mlp) for d in [*per_layer, tail]], 1)
    features = (
        None
        if sae is None
        else _features(
            model, g, sae, _sae_input(caps[sae.hook_point], sae, torch.zeros_like(g.locals_), g.locals_), targets, base
        )
    )
    return Effects(neurons, heads, features, targets.tolist(), base)


def _features(model: Any, g: Group, sae: SparseAutoencoder, x: torch.Tensor, targets: torch.Tensor,
              base: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Δ log-prob ``[P, d_sae]`` of each feature zeroed (``x - a_f W_dec[f]`` at its hook point);
    0 where a feature is off."""
    a = sae.encode(x)  # [P, d_sae]
    which, feature = a.nonzero(as_tuple=True)
    out = torch.zeros_like(a)
    if len(which) == 0:
        return out
    w_dec = sae.W_dec

    def edit(wide: torch.Tensor, rows: torch.Tensor, at: torch.Tensor, r: torch.Tensor) -> None:
        wide[rows, at] -= (a[which[r], feature[r]][:, None] * w_dec[feature[r]]).to(wide.dtype)

    out[which, feature] = _widened(model, g, sae.hook_point, which, feature, targets, base, edit)
    return out


def _widened(model: Any, g: Group, name: str, which: torch.Tensor, unit: torch.Tensor, targets: torch.Tensor,
             base: torch.Tensor, edit: Edit | None = None) -> torch.Tensor:  # fmt: skip
    """Δ log-prob ``[R]`` of row ``r``: unit ``unit[r]`` (the last axis of ``name``'s activation after
    the position: a neuron, or a head's whole ``z``) zeroed at position ``which[r]`` of ``g``, or
    ``edit`` applied instead; one forward per chunk of rows, the batch widened at ``name``."""
    device = g.x.device
    shape = shape_of(model)
    picked = hook_point(model, hook_names.UNEMBED_IN) is not None
    width = max(shape.d_mlp or 0, 4 * shape.d_model, int(model.cfg.n_heads) * g.x.shape[1]) + (0 if picked else shape.d_vocab)
    chunk = max(1, ROW_ELEMENTS // (g.x.shape[1] * width))
    total = len(which)
    out = torch.empty(total, device=device)
    for start in range(0, total, chunk):
        r = torch.arange(start, min(start + chunk, total), device=device)
        at = g.locals_[which[r]]
        rows = torch.arange(len(r), device=device)

        def widen(
            act: torch.Tensor, hook: Any, at: torch.Tensor = at, rows: torch.Tensor = rows, r: torch.Tensor = r
        ) -> torch.Tensor:
            wide = act.expand(len(rows), *act.shape[1:]).clone()
            if edit is None:
                wide[rows, at, unit[r]] = 0
            else:
                edit(wide, rows, at, r)
            return wide

        def pick(resid: torch.Tensor, hook: Any, at: torch.Tensor = at, rows: torch.Tensor = rows) -> torch.Tensor:
            return resid[rows, at][:, None]

        fwd: list[tuple[Any, Any]] = [(name, widen), *([(hook_names.UNEMBED_IN, pick)] if picked else [])]
        logits = run_hooked(model, g.x[:, : int(at.max()) + 1], fwd)
        row_logits = logits[:, 0] if picked and logits.shape[:2] == (len(r), 1) else logits[rows, at]
        out[start : start + len(r)] = logprob_of(row_logits, targets[which[r]]) - base[which[r]]
    return out


def _last_layer_neurons(model: Any, g: Group, caps: dict[str, torch.Tensor], logits: torch.Tensor,
                        targets: torch.Tensor, base: torch.Tensor) -> torch.Tensor | None:  # fmt: skip
    """Δ log-prob ``[P * d_mlp]`` of each last-layer neuron: the last block's output less
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
    total = len(g.positions) * d_mlp
    out = torch.empty(total, device=resid.device)
    for start in range(0, total, chunk):
        r = torch.arange(start, min(start + chunk, total), device=resid.device)
        which, unit = r // d_mlp, r % d_mlp
        rows = resid[which] - (post[which, unit][:, None] * w_out[unit]).to(resid.dtype)
        out[start : start + len(r)] = logprob_of(unembed_resid(model, rows), targets[which]) - base[which]
    return out


def estimate(model: Any, g: Group, target: int | None, sae: SparseAutoencoder | None = None) -> Effects:
    """Attribution patching at each of ``g``'s positions, in chunks of positions."""
    shape = shape_of(model)
    t = g.x.shape[1]
    chunk = max(1, ROW_ELEMENTS // (t * max(shape.d_mlp or 0, 4 * shape.d_model, int(model.cfg.n_heads) * t) * 3))
    parts = []
    for s in range(0, len(g.positions), chunk):
        sub = Group(g.x, g.locals_[s : s + chunk], g.positions[s : s + chunk], g.next_ids[s : s + chunk])
        parts.append(_gradient_x_activation(model, sub, target, sae))
    return Effects(
        torch.cat([e.neurons for e in parts]),
        torch.cat([e.heads for e in parts]),
        None if sae is None else torch.cat([e.features for e in parts if e.features is not None]),
        [t for e in parts for t in e.targets],
        torch.cat([e.logprob for e in parts]),
    )


def _gradient_x_activation(model: Any, g: Group, target: int | None, sae: SparseAutoencoder | None) -> Effects:
    shape = shape_of(model)
    n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
    z_names = [hook_names.attn_z(la) for la in range(n_layers)]
    post_names = [hook_names.mlp_post(la) for la in range(n_layers)] if d_mlp else []
    names = list(dict.fromkeys([*z_names, *post_names, *([sae.hook_point] if sae is not None else [])]))
    picked = hook_point(model, hook_names.UNEMBED_IN) is not None
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
        targets = targets_of(g, row_logits.detach(), target)
        lp = logprob_of(row_logits, targets)
        grads = dict(zip(names, torch.autograd.grad(lp.sum(), [deltas[n] for n in names])))

    def minus_act_grad(name: str) -> torch.Tensor:
        return -(acts[name][rows, at].float() * grads[name][rows, at].float())

    heads = torch.stack([minus_act_grad(n).sum(-1) for n in z_names], 1)
    neurons = (
        torch.stack([minus_act_grad(n) for n in post_names], 1) if post_names else torch.zeros(p, n_layers, 0, device=x.device)
    )
    features = None
    if sae is not None:
        x_in = _sae_input(acts[sae.hook_point], sae, rows, at)
        with torch.inference_mode():
            features = -sae.encode(x_in) * (grads[sae.hook_point][rows, at].float() @ sae.W_dec.T)
    return Effects(neurons, heads, features, targets.tolist(), lp.detach())
