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
feature     the SAE's hook point                  zero, mean, set, scale, steer (``a + value``)
==========  ====================================  =========================================

A **feature** (``F12``: :mod:`lenscope.units`) is one of an SAE's (``sae=``; it has no layer).
Only its contribution changes, the SAE's error term is kept: the activation ``x`` at the hook
point becomes ``x + (a' - a) W_dec[f]``, where ``a`` is the feature's activation (``encode(x)``)
and ``a'`` what the op makes of it. All of a list's feature interventions edit one reading of
``x`` (encoded once, where the first of them is in the list), so that zeroing two features of a
TopK SAE does not re-select the second after the first; an empty list leaves the model as it is.

Every component can also be **patched**: set to its activation in a run over ``source`` (another
text of the same token count, with the same context; both in one window), as activation patching
does with a clean and a corrupted text (:mod:`lenscope.patching`).

``positions`` are text token indices (the token's own position: a neuron "at" token ``i``);
``None`` means every position after the BOS, context included. A **mean** is taken over the
text's tokens of a plain run, unless the caller passes a neuron's mean from a workspace index
(``neuron_means``; the server does when the model has an index), and the result says which.
The hooks run in the windows ``analyze`` reads the text in, so a position is intervened in the
window that reports it and in every other window that holds it.

This module is the specification (what may be asked, checked against a model); the engine's
:mod:`lenscope.engine.intervene` turns a list of them into forward hooks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from lenscope.errors import InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of
from lenscope.units import parse_unit, unit_name

if TYPE_CHECKING:
    from lenscope.sae import SparseAutoencoder

Component = Literal["neuron", "head", "mlp", "attn", "resid", "feature"]
Op = Literal["zero", "mean", "set", "scale", "steer", "patch"]
OPS: dict[str, tuple[str, ...]] = {
    "neuron": ("zero", "mean", "set", "scale", "steer", "patch"),
    "head": ("zero", "mean", "scale", "steer", "patch"),
    "mlp": ("zero", "mean", "scale", "patch"),
    "attn": ("zero", "mean", "scale", "patch"),
    "resid": ("zero", "mean", "scale", "patch"),
    "feature": ("zero", "mean", "set", "scale", "steer"),
}


@dataclass(frozen=True)
class Intervention:
    component: Component
    layer: int | None  # None for a feature (its SAE's hook point says where)
    index: int | None = None  # the neuron, head or feature; None for a whole layer
    op: Op = "zero"
    value: float = 0.0  # set: the value; scale: the factor; steer: the coefficient
    positions: tuple[int, ...] | None = None  # text token indices; None: every position
    source: str | None = None  # patch: the text whose activation is patched in

    def label(self) -> str:
        what = unit_name(self.component, self.layer, self.index)
        how = {"zero": "zero", "mean": "mean", "set": f"set {self.value:g}", "scale": f"x{self.value:g}",
               "steer": f"steer {self.value:+g}", "patch": "patched"}[self.op]  # fmt: skip
        where = "" if self.positions is None else " @" + ",".join(str(p) for p in self.positions)
        return f"{what} {how}{where}"

    def hook_name(self, sae: SparseAutoencoder | None = None) -> str:
        """The hook point it acts on (a feature's: its SAE's)."""
        if self.component == "feature":
            if sae is None:
                raise InvalidInput(f"{self.label()}: a feature needs its SAE (sae=)")
            return sae.hook_point
        assert self.layer is not None
        if self.component == "neuron" and self.op == "steer":
            return hook_names.mlp_out(self.layer)
        by_component = {"neuron": hook_names.mlp_post, "head": hook_names.attn_z, "mlp": hook_names.mlp_out,
                        "attn": hook_names.attn_out, "resid": hook_names.resid_pre}  # fmt: skip
        return by_component[self.component](self.layer)


def parse_component(spec: str) -> tuple[Component, int | None, int | None]:
    """``(component, layer, index)`` of a unit's name (:func:`lenscope.units.parse_unit`): ``L0.N123``
    (a neuron), ``L0.H3`` (a head), ``L0.MLP``, ``L0.ATTN`` (a whole layer), ``L0.RESID`` (the residual
    stream before the layer), ``F12`` (a feature of the SAE in use: no layer)."""
    unit = parse_unit(spec)
    return unit.kind, unit.layer, unit.index


def check(model: Any, interventions: Sequence[Intervention], n_text: int, sae: SparseAutoencoder | None = None,
          model_name: str = "model") -> None:  # fmt: skip
    """Every intervention names a unit of this model (a feature: of ``sae``, which must fit the
    model), an op it supports, a finite value, text positions."""
    shape = shape_of(model)
    n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
    n_heads = int(model.cfg.n_heads)
    if sae is not None and any(iv.component == "feature" for iv in interventions):
        from lenscope.sae import check_fits

        check_fits(sae, model, model_name)
    for i, iv in enumerate(interventions):
        where = f"interventions[{i}] ({iv.component} {iv.op})"
        if iv.component not in OPS:
            raise InvalidInput(f"{where}: component must be one of {', '.join(OPS)}")
        if iv.op not in OPS[iv.component]:
            raise InvalidInput(f"{where}: a {iv.component} can be {', '.join(OPS[iv.component])}, not {iv.op}")
        if not math.isfinite(iv.value):
            raise InvalidInput(f"{where}: value must be a finite number, got {iv.value}")
        if iv.component == "feature":
            check_feature(iv, where, sae)
        elif iv.layer is None:
            raise InvalidInput(f"{where}: a {iv.component} needs a layer")
        elif not 0 <= iv.layer < n_layers:
            raise InvalidInput(f"{where}: layer must be between 0 and {n_layers - 1}, got {iv.layer}")
        if iv.component in ("neuron", "mlp") and not d_mlp:
            raise InvalidInput(f"{where}: this model is attention-only: it has no MLP")
        limit = {"neuron": d_mlp, "head": n_heads}.get(iv.component)
        if limit is not None and (iv.index is None or not 0 <= iv.index < limit):
            raise InvalidInput(f"{where}: index must be between 0 and {limit - 1}, got {iv.index}")
        if iv.component in ("mlp", "attn", "resid") and iv.index is not None:
            raise InvalidInput(f"{where}: a whole layer takes no index")
        if (iv.op == "patch") != (iv.source is not None):
            raise InvalidInput(f"{where}: source (the text to patch from) goes with op patch, and only with it")
        if iv.positions is not None:
            if not iv.positions:
                raise InvalidInput(f"{where}: positions is empty (leave it out for every position)")
            bad = [p for p in iv.positions if not 0 <= p < n_text]
            if bad:
                raise InvalidInput(f"{where}: positions must be text tokens 0 .. {n_text - 1}, got {bad[0]}")


def check_feature(iv: Intervention, where: str, sae: SparseAutoencoder | None) -> None:
    """A feature intervention names a feature of the SAE given, and no layer."""
    name = unit_name("feature", None, iv.index)
    if sae is None:
        raise InvalidInput(f"{where}: {name} is a feature, but no SAE is loaded for it: name its SAE (sae)")
    if iv.index is None or not 0 <= iv.index < sae.d_sae:
        raise InvalidInput(f"{where}: SAE {sae.name!r} has features F0 .. F{sae.d_sae - 1}, not {name}")
    if iv.layer is not None:
        raise InvalidInput(f"{where}: a feature takes no layer (SAE {sae.name!r} reads {sae.hook_point})")
