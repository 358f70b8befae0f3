"""Any neurons' and SAE features' activations at every token of a text, by unit name.

A neuron (``L0.N224``) reads its MLP post-activation; a feature (``F1741``) reads the SAE's
``encode`` of the activation at its hook point (:mod:`lenscope.sae`), so a feature's number is
the one ``analyze(sae=)`` lists. Same tokenization, context and windows as ``analyze``: row
``i`` is at text token ``i``. Only the hook points asked for are captured, and only the features
asked for are kept from each encoding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lenscope.engine.plan import plan_input
from lenscope.engine.run import Capture, forward_named
from lenscope.errors import InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of
from lenscope.tokens import TokenSpans
from lenscope.units import Unit, parse_unit
from lenscope.validation import MAX_TOP_NEURONS
from lenscope.wire_convert import tokens_to_wire

if TYPE_CHECKING:
    from lenscope.sae import SparseAutoencoder

MAX_UNITS = MAX_TOP_NEURONS


@dataclass
class UnitActivations:
    model: str
    tokens: TokenSpans
    token_texts: list[str]
    units: list[Unit]  # in the order asked
    activations: np.ndarray  # float32 [n_tokens, n_units]
    sae: SparseAutoencoder | None = None  # whose features the ``F`` units are
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [u.name for u in self.units]


def check_units(model: Any, units: object, sae: SparseAutoencoder | None) -> list[Unit]:
    """The units asked for, read from their names (or given as :class:`Unit`) and checked
    against the model and the SAE: each one's problem is named with its place in the list."""
    if isinstance(units, (str, bytes)) or not isinstance(units, Sequence) or not 1 <= len(units) <= MAX_UNITS:
        raise InvalidInput(f"units must be a list of 1 to {MAX_UNITS} unit names, e.g. ['L0.N224', 'F1741']")
    shape = shape_of(model)
    out = []
    for i, spec in enumerate(units):
        unit = spec if isinstance(spec, Unit) else parse_unit(spec)
        where = f"units[{i}] {unit.name}"
        if unit.kind == "feature":
            if sae is None:
                raise InvalidInput(f"{where} is a feature, but no SAE is loaded for it: name its SAE (sae)")
            if not 0 <= (unit.index or 0) < sae.d_sae:
                raise InvalidInput(f"{where}: SAE {sae.name!r} has features F0 .. F{sae.d_sae - 1}")
        elif unit.kind == "neuron":
            if not shape.d_mlp:
                raise InvalidInput(f"{where}: this model is attention-only: it has no MLP neurons")
            if not 0 <= (unit.layer or 0) < shape.n_layers:
                raise InvalidInput(f"{where}: the model has layers 0 .. {shape.n_layers - 1}")
            if not 0 <= (unit.index or 0) < shape.d_mlp:
                raise InvalidInput(f"{where}: a layer has neurons N0 .. N{shape.d_mlp - 1}")
        else:
            raise InvalidInput(
                f"{where} is a {unit.kind}: only neurons (L0.N5) and SAE features (F12) have one activation per token"
            )
        out.append(unit)
    return out


@torch.inference_mode()
def unit_activations(
    model: Any,
    text: str,
    units: Sequence[str | Unit],
    sae: SparseAutoencoder | None = None,
    context: str = "",
    *,
    model_name: str | None = None,
    window: int | None = None,
    token_ids: Sequence[int] | None = None,
) -> UnitActivations:
    """The activation of each of ``units`` (``"L0.N224"``, ``"F1741"``: :mod:`lenscope.units`) at
    every token of ``text``; features are ``sae``'s, which must fit the model. ``token_ids`` runs
    those ids as given instead of a text (``text`` empty), as :func:`lenscope.analysis.analyze` does."""
    asked = check_units(model, units, sae)
    if sae is not None and any(u.kind == "feature" for u in asked):
        from lenscope.sae import check_fits

        check_fits(sae, model, model_name or "model")
    timings = {"tokenize": 0.0, "forward": 0.0, "derive": 0.0}
    plan = plan_input(model, text, context, token_ids, window, timings)
    features = sorted({u.index or 0 for u in asked if u.kind == "feature"})
    captures: dict[str, Capture] = {
        f"L{layer}": hook_names.mlp_post(layer) for layer in sorted({u.layer or 0 for u in asked if u.kind == "neuron"})
    }
    if features and sae is not None:
        captures["F"] = (sae.hook_point, lambda a: sae.encode(a)[..., features])  # only the features asked are kept
    parts = []
    for _, _, acts in forward_named(model, plan, captures, timings):
        t1 = time.perf_counter()
        columns = [
            acts[f"L{u.layer}"][:, u.index] if u.kind == "neuron" else acts["F"][:, features.index(u.index or 0)] for u in asked
        ]
        parts.append(torch.stack(columns, dim=-1).float())
        timings["derive"] += (time.perf_counter() - t1) * 1000
    values = torch.cat(parts)[1:].cpu().numpy().astype(np.float32)  # drop the row before token 0
    return UnitActivations(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        tokens=plan.spans,
        token_texts=plan.spans.texts(plan.text),
        units=asked,
        activations=values,
        sae=sae if features else None,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
    )


def unit_activations_to_wire(result: UnitActivations) -> dict[str, Any]:
    """The wire form (``UnitActivationsResponse``)."""
    sae = result.sae
    return {
        "model": result.model,
        "tokens": tokens_to_wire(result.tokens),
        "units": [{"name": u.name, "kind": u.kind, "layer": u.layer, "index": u.index} for u in result.units],
        "sae": None if sae is None else {"name": sae.name, "hook_point": sae.hook_point, "d_sae": sae.d_sae},
        "activations": np.ascontiguousarray(result.activations, dtype=np.float32),
        "timings_ms": dict(result.timings_ms),
    }
