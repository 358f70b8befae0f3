"""What if: components removed, set, scaled or steered while the text is re-run.

An :class:`Intervention` names a component and what to do to it:

==========  ====================================  =========================================
component   hook (TransformerLens name)           ops
==========  ====================================  =========================================
neuron      ``blocks.L.mlp.hook_post[..., n]``    zero, mean, set (to ``value``), scale (by
                                                  ``value``), steer (add ``value * W_out[n]``
                                                  to the MLP's output)
head        ``blocks.L.attn.hook_z[..., h, :]``   zero, mean, scale, steer (add ``value`` times
                                                  the head's own output: ``z *= 1 + value``)
mlp         ``blocks.L.hook_mlp_out``             zero, mean, scale
attn        ``blocks.L.hook_attn_out``            zero, mean, scale
resid       ``blocks.L.hook_resid_pre``           zero, mean, scale
==========  ====================================  =========================================

Every component can also be **patched**: set to its activation in a run over ``source`` (another
text of the same token count, with the same context; both in one window), as activation patching
does with a clean and a corrupted text (:mod:`lenscope.patching`).

``positions`` are text token indices (the token's own position: a neuron "at" token ``i``);
``None`` means every position after the BOS, context included. A **mean** is taken over the
text's tokens of a plain run, unless the caller passes a neuron's mean from a workspace index
(``neuron_means``; the server does when the model has an index), and the result says which.
The hooks run in the windows ``analyze`` reads the text in, so a position is intervened in the
window that reports it and in every other window that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from lenscope.errors import InvalidInput
from lenscope.windows import Window

Component = Literal["neuron", "head", "mlp", "attn", "resid"]
Op = Literal["zero", "mean", "set", "scale", "steer", "patch"]
OPS: dict[str, tuple[str, ...]] = {
    "neuron": ("zero", "mean", "set", "scale", "steer", "patch"),
    "head": ("zero", "mean", "scale", "steer", "patch"),
    "mlp": ("zero", "mean", "scale", "patch"),
    "attn": ("zero", "mean", "scale", "patch"),
    "resid": ("zero", "mean", "scale", "patch"),
}


@dataclass(frozen=True)
class Intervention:
    component: Component
    layer: int
    index: int | None = None  # the neuron or head; None for a whole layer
    op: Op = "zero"
    value: float = 0.0  # set: the value; scale: the factor; steer: the coefficient
    positions: tuple[int, ...] | None = None  # text token indices; None: every position
    source: str | None = None  # patch: the text whose activation is patched in

    def label(self) -> str:
        what = {"neuron": f"L{self.layer}.N{self.index}", "head": f"L{self.layer}.H{self.index}", "mlp": f"L{self.layer}.MLP",
                "attn": f"L{self.layer}.ATTN", "resid": f"L{self.layer}.RESID"}[self.component]  # fmt: skip
        how = {"zero": "zero", "mean": "mean", "set": f"set {self.value:g}", "scale": f"x{self.value:g}",
               "steer": f"steer {self.value:+g}", "patch": "patched"}[self.op]  # fmt: skip
        where = "" if self.positions is None else " @" + ",".join(str(p) for p in self.positions)
        return f"{what} {how}{where}"

    def hook_name(self) -> str:
        if self.component == "neuron" and self.op == "steer":
            return f"blocks.{self.layer}.hook_mlp_out"
        names = {"neuron": "mlp.hook_post", "head": "attn.hook_z", "mlp": "hook_mlp_out", "attn": "hook_attn_out",
                 "resid": "hook_resid_pre"}  # fmt: skip
        return f"blocks.{self.layer}.{names[self.component]}"


SPEC = re.compile(r"^L(\d+)\.(?:N(\d+)|H(\d+)|(MLP|ATTN|RESID))$", re.I)


def parse_component(spec: str) -> tuple[Component, int, int | None]:
    """``L0.N123`` (a neuron), ``L0.H3`` (a head), ``L0.MLP``, ``L0.ATTN`` (a whole layer), ``L0.RESID``
    (the residual stream before the layer)."""
    m = SPEC.match(spec.strip())
    if not m:
        raise InvalidInput(f"{spec!r} is not a component: write L0.N123 (a neuron), L0.H3 (a head), L0.MLP, L0.ATTN or L0.RESID")
    layer = int(m.group(1))
    if m.group(2) is not None:
        return "neuron", layer, int(m.group(2))
    if m.group(3) is not None:
        return "head", layer, int(m.group(3))
    whole: dict[str, Component] = {"MLP": "mlp", "ATTN": "attn", "RESID": "resid"}
    return whole[m.group(4).upper()], layer, None


def check(model: Any, interventions: Sequence[Intervention], n_text: int) -> None:
    """Every intervention names a component of this model, an op it supports, text positions."""
    from lenscope.analysis import model_dims

    n_layers, d_mlp, _, _ = model_dims(model)
    n_heads = int(model.cfg.n_heads)
    for i, iv in enumerate(interventions):
        where = f"interventions[{i}] ({iv.component} {iv.op})"
        if iv.component not in OPS:
            raise InvalidInput(f"{where}: component must be one of {', '.join(OPS)}")
        if iv.op not in OPS[iv.component]:
            raise InvalidInput(f"{where}: a {iv.component} can be {', '.join(OPS[iv.component])}, not {iv.op}")
        if not 0 <= iv.layer < n_layers:
            raise InvalidInput(f"{where}: layer must be between 0 and {n_layers - 1}, got {iv.layer}")
        if iv.component in ("neuron", "mlp") and not d_mlp:
            raise InvalidInput(f"{where}: this model is attention-only: it has no MLP")
        limit = {"neuron": d_mlp, "head": n_heads}.get(iv.component)
        if limit is not None and (iv.index is None or not 0 <= iv.index < limit):
            raise InvalidInput(f"{where}: index must be between 0 and {limit - 1}, got {iv.index}")
        if limit is None and iv.index is not None:
            raise InvalidInput(f"{where}: a whole layer takes no index")
        if (iv.op == "patch") != (iv.source is not None):
            raise InvalidInput(f"{where}: source (the text to patch from) goes with op patch, and only with it")
        if iv.positions is not None:
            if not iv.positions:
                raise InvalidInput(f"{where}: positions is empty (leave it out for every position)")
            bad = [p for p in iv.positions if not 0 <= p < n_text]
            if bad:
                raise InvalidInput(f"{where}: positions must be text tokens 0 .. {n_text - 1}, got {bad[0]}")


@dataclass
class Means:
    """What a mean ablation sets each component to (and where that mean came from), and what a
    patch sets it to: the source run's activation at each position of the one window."""

    values: dict[int, torch.Tensor]  # intervention's place in the list -> its mean activation
    source: dict[int, str]  # "index" or "selection"
    patches: dict[int, torch.Tensor] = field(default_factory=dict)  # place -> [window positions, ...]


def patch_sources(model: Any, plan: Any, context: str, interventions: Sequence[Intervention]) -> dict[int, torch.Tensor]:
    """Each patch's source run: the same context, the same token count, one window."""
    from lenscope.analysis import _plan

    out: dict[int, torch.Tensor] = {}
    for i, iv in enumerate(interventions):
        if iv.op != "patch":
            continue
        assert iv.source is not None
        source = _plan(model, iv.source, context, None, {"tokenize": 0.0})
        if len(plan.windows) != 1 or len(source.seq) != len(plan.seq):
            raise InvalidInput(
                f"interventions[{i}] (patch): the source is {len(source.spans.ids)} tokens and the text "
                f"{len(plan.spans.ids)}; patching needs the same count, in one window"
            )
        x = torch.tensor([[source.bos, *source.seq]], device=next(model.parameters()).device)
        _, cache = model.run_with_cache(x, names_filter=lambda name, iv=iv: name == iv.hook_name())
        act = cache[iv.hook_name()][0]
        out[i] = act[:, iv.index] if iv.component in ("neuron", "head") else act
    return out


def selection_means(
    model: Any, plan: Any, interventions: Sequence[Intervention], neuron_means: Mapping[tuple[int, int], float] | None
) -> Means:
    """Means for the ``mean`` interventions: a neuron's from ``neuron_means`` when it is there,
    otherwise each over the text's tokens of a plain run (one extra pass, only when needed)."""
    from lenscope.analysis import _forward_windows

    out = Means({}, {})
    need: dict[int, Intervention] = {}
    for i, iv in enumerate(interventions):
        if iv.op != "mean":
            continue
        key = (iv.layer, iv.index or 0)
        if iv.component == "neuron" and neuron_means is not None and key in neuron_means:
            out.values[i] = torch.tensor(float(neuron_means[key]))
            out.source[i] = "index"
        else:
            need[i] = iv
    if not need:
        return out
    hooks = sorted({iv.hook_name() for iv in need.values()}, key=_firing_order)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for _, positions, _, acts in _forward_windows(model, plan, hooks, {"forward": 0.0}):
        text = positions >= plan.keep  # text tokens only (not the BOS or context)
        count += int(text.sum())
        for h, a in zip(hooks, acts):
            s = a[text].double().sum(0)
            sums[h] = sums[h] + s if h in sums else s
    for i, iv in need.items():
        mean = (sums[iv.hook_name()] / max(count, 1)).float()
        out.values[i] = mean[iv.index] if iv.component in ("neuron", "head") else mean
        out.source[i] = "selection"
    return out


def _firing_order(hook: str) -> tuple[int, int]:
    layer = int(hook.split(".")[1])
    return layer, ["hook_resid_pre", "attn.hook_z", "hook_attn_out", "mlp.hook_post", "hook_mlp_out"].index(hook.split(".", 2)[2])


def window_hooks(
    model: Any, plan: Any, interventions: Sequence[Intervention], means: Means
) -> Callable[[list[Window]], list[tuple[str, Callable[..., Any]]]]:
    """``intervene(batch)`` for ``analysis._forward_windows``: one hook per intervention, each
    acting on the rows and local positions of the batch's windows."""
    w_out = model.W_out.detach() if any(iv.op == "steer" and iv.component == "neuron" for iv in interventions) else None

    def build(batch: list[Window]) -> list[tuple[str, Callable[..., Any]]]:
        hooks = []
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
            if rows:
                hooks.append((iv.hook_name(), _hook(iv, rows, cols, means.values.get(i), w_out, means.patches.get(i))))
        return hooks

    return build


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
