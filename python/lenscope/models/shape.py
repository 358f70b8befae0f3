"""A model's shape, in one place and with one convention: ``d_mlp`` is None for an attention-only model.

Known without loading for embedded and native models (the registry reads it from their
config), and read off a loaded model's ``cfg`` by :func:`shape_of`. No torch import: the
Jupyter server lists shapes without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelShape:
    n_layers: int
    d_model: int
    d_mlp: int | None  # None: attention-only
    d_vocab: int
    n_ctx: int
    n_heads: int | None = None  # None: not known without loading (a hub model's config may not say)

    @property
    def has_mlp(self) -> bool:
        return self.d_mlp is not None

    @property
    def neurons(self) -> int:
        """MLP neurons over all layers (0 for an attention-only model)."""
        return self.n_layers * (self.d_mlp or 0)


def shape_of(model: Any) -> ModelShape:
    """The shape of a loaded model (anything with a TransformerLens ``cfg``)."""
    cfg = model.cfg
    attn_only = bool(getattr(cfg, "attn_only", False)) or not cfg.d_mlp
    return ModelShape(
        n_layers=int(cfg.n_layers),
        d_model=int(cfg.d_model),
        d_mlp=None if attn_only else int(cfg.d_mlp),
        d_vocab=int(cfg.d_vocab),
        n_ctx=int(cfg.n_ctx),
        n_heads=int(cfg.n_heads) if getattr(cfg, "n_heads", None) else None,
    )
