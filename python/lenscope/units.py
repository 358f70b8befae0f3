"""Units by name: one naming scheme for the CLI, interventions, activations and attribution.

==========  ===========  ====================================================
name        kind         what
==========  ===========  ====================================================
``L0.N224``  neuron       MLP neuron 224 of layer 0 (its post-activation)
``F1741``    feature      feature 1741 of the SAE in use (it says the hook point)
``L1.H3``    head         head 3 of layer 1
``L0.MLP``   mlp          layer 0's whole MLP output
``L0.ATTN``  attn         layer 0's whole attention output
``L0.RESID`` resid        the residual stream before layer 0
==========  ===========  ====================================================

Names are read case-insensitively (``l0.n224``, ``f12``) and always written as above. A feature
has no layer: which SAE it belongs to is said once beside the units (``sae=``), never per name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lenscope.errors import InvalidInput

UnitKind = Literal["neuron", "head", "feature", "mlp", "attn", "resid"]

NAME = re.compile(r"^(?:L(\d+)\.(?:N(\d+)|H(\d+)|(MLP|ATTN|RESID))|F(\d+))$", re.I)
HELP = "L0.N123 (a neuron), F123 (a feature of the SAE in use), L0.H3 (a head), L0.MLP, L0.ATTN or L0.RESID"


@dataclass(frozen=True)
class Unit:
    kind: UnitKind
    layer: int | None  # None for a feature (its SAE's hook point says where)
    index: int | None  # None for a whole layer

    @property
    def name(self) -> str:
        return unit_name(self.kind, self.layer, self.index)


def unit_name(kind: str, layer: int | None, index: int | None) -> str:
    """``L0.N5``, ``F12``, ``L0.H3``, ``L0.MLP``, ``L0.ATTN``, ``L0.RESID``."""
    if kind == "feature":
        return f"F{index}"
    whole = {"mlp": "MLP", "attn": "ATTN", "resid": "RESID"}
    return f"L{layer}." + whole.get(kind, f"{'N' if kind == 'neuron' else 'H'}{index}")


def parse_unit(spec: object) -> Unit:
    """A unit from its name (see the module's table); a clear error for anything else."""
    m = NAME.match(spec.strip()) if isinstance(spec, str) else None
    if m is None:
        raise InvalidInput(f"{spec!r} is not a unit: write {HELP}")
    if m.group(5) is not None:
        return Unit("feature", None, int(m.group(5)))
    layer = int(m.group(1))
    if m.group(2) is not None:
        return Unit("neuron", layer, int(m.group(2)))
    if m.group(3) is not None:
        return Unit("head", layer, int(m.group(3)))
    whole: dict[str, UnitKind] = {"MLP": "mlp", "ATTN": "attn", "RESID": "resid"}
    return Unit(whole[m.group(4).upper()], layer, None)
