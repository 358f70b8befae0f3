"""A LayerNorm's parameters, read one way (the bridge wraps the original module; a folded or
parameter-free norm has none: ones and zeros stand in)."""

from __future__ import annotations

from typing import Any

import torch

from lenscope.engine.protocol import HookedModel
from lenscope.errors import InvalidInput


def ln_params(module: Any, d_model: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, bias)`` as float32 tensors of ``[d_model]``."""
    inner = getattr(module, "_original_component", module)
    w, b = getattr(inner, "weight", None), getattr(inner, "bias", None)
    return (
        w.detach().float() if w is not None else torch.ones(d_model, device=device),
        b.detach().float() if b is not None else torch.zeros(d_model, device=device),
    )


def final_ln_params(model: HookedModel, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The final LayerNorm's weight and bias; a model without a LayerNorm (RMSNorm) is refused,
    since the linear read-outs that use this (direct logit attribution) assume centring."""
    norm = str(getattr(model.cfg, "normalization_type", "LN"))
    if norm not in ("LN", "LNPre"):
        raise InvalidInput(f"direct logit attribution needs a LayerNorm model; this one uses {norm}")
    return ln_params(model.ln_final, int(model.cfg.d_model), device)
