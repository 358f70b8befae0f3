"""The end of the forward on residual vectors given by the caller: the model's own final norm
and unembedding, with no block run.

A change that reaches the logits only through the last block's output (a last-layer neuron's
``act * W_out[n]`` taken out of the residual stream) is exact this way for thousands of rows at
the cost of one unembedding each, where a forward would rerun every position of every row.
"""

from __future__ import annotations

from typing import Any

import torch

from lenscope.engine.protocol import HookedModel


def unembed_resid(model: HookedModel, resid: torch.Tensor) -> torch.Tensor:
    """Logits of residual-stream vectors ``[..., d_model]`` (the last block's output), through
    the model's final norm (none when it has none) and unembedding: ``[..., d_vocab]``."""
    bridge: Any = model  # ``unembed`` is a TransformerLens model's, outside the HookedModel contract
    norm = getattr(model, "ln_final", None)
    x = resid if norm is None else norm(resid)
    logits: torch.Tensor = bridge.unembed(x)
    return logits
