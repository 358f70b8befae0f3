"""What the engine needs of a model: the forward contract of a TransformerLens model.

A ``TransformerBridge`` (TransformerLens 4) and a ``HookedTransformer`` both satisfy it. Typed
as a :class:`~typing.Protocol` so the engine's API says what it uses instead of ``Any``;
members only a ``TransformerBridge`` has (its hook registry, used for the fast hook path) are
reached through an ``Any`` view of the model where they are used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class HookedModel(Protocol):
    cfg: Any
    tokenizer: Any
    ln_final: Any  # the final LayerNorm (its parameters: :mod:`lenscope.engine.layernorm`)
    W_out: Any  # [layers, d_mlp, d_model]; only read when a model has an MLP

    def __call__(self, input: torch.Tensor, *args: Any, **kwargs: Any) -> Any: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...

    def run_with_hooks(self, input: torch.Tensor, *args: Any, fwd_hooks: Sequence[tuple[Any, Callable[..., Any]]] = ...,
                       **kwargs: Any) -> Any: ...  # fmt: skip

    def run_with_cache(self, input: torch.Tensor, *args: Any, **kwargs: Any) -> Any: ...
