"""Every text operation of the API, declared once: run the model over a text, derive something.

One :class:`Operation` per operation (``analyze``, ``attention``, ...) says everything the server
needs, and nothing is written per operation anywhere else:

* the route (``POST {PREFIX}/{name}``: :mod:`lenscope.routes` adds one per entry, and the OpenAPI
  spec comes from the routes);
* the handler (``lenscope_server.handlers.OperationHandler`` serves every entry);
* the service (``LenscopeService.run``: checks, cache, sharing of identical requests, the queue);
* the worker op (``Worker.handle`` runs any entry through :func:`execute`, the name is the op).

Adding an operation touches its wire types (:mod:`lenscope.wire`), its core function, and this
table. The core function and the converter are named by dotted path and imported only where
they run (the model worker, or a notebook kernel holding an attached model): importing this
module imports no torch, so the Jupyter server process never does.

How a request becomes a call, for every entry alike:

* the request's fields, without ``model`` and without unset (``None``) ones, are the arguments;
  a field of ``only_with`` is dropped while the field it depends on is unset, so it changes
  neither the result nor the cache key;
* ``text`` and ``context`` fields are checked by :func:`lenscope.validation.check_text` on the
  server; a request with ``interventions`` gets the model's index means for mean ablations;
* in the worker, arguments are decoded by name (:data:`DECODERS`: ``sae`` names become loaded
  SAEs, ``interventions`` :class:`~lenscope.interventions.Intervention` objects, ...), then
  ``compute(model, **arguments, model_name=name)``; the ``wire_args`` go to the converter instead.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from lenscope import wire

TEXT_ERRORS = (400, 403, 404, 413, 415, 503, 504)
"""Statuses a text operation can answer besides 200 (each is described in the spec)."""

CachePolicy = Literal["lru", "none"]
"""``lru``: finished responses are kept in the server's LRU (by model, arguments and encoding)
and identical concurrent requests share one computation; ``none``: every request is computed."""


@dataclass(frozen=True)
class Operation:
    name: str
    """The worker op, and the route's path (``/{name}``)."""
    operation_id: str
    summary: str
    request: type[BaseModel]
    response: type[BaseModel]
    compute: str
    """``module:function``, called as ``f(model, **arguments, model_name=name)``."""
    to_wire: str
    """``module:function``, called as ``f(result, **wire_args)``; returns the response's wire data."""
    cache: CachePolicy = "none"
    wire_args: tuple[str, ...] = ()
    """Request fields for the converter rather than the core function (how much of it to send)."""
    timing: str | None = None
    """When set, the response's ``timings_ms`` is ``{timing: ms}``: the worker's own time for the
    computation and the conversion (for results that do not time themselves)."""
    only_with: tuple[tuple[str, str], ...] = ()
    """``(field, other)``: ``field`` means something only when ``other`` is set."""
    errors: tuple[int, ...] = TEXT_ERRORS

    @property
    def path(self) -> str:
        return "/" + self.name

    def arguments(self, request: BaseModel) -> tuple[str | None, dict[str, Any]]:
        """The model asked for (``None``: the server's default) and the operation's arguments."""
        fields = request.model_dump()
        model = fields.pop("model", None)
        args = {k: v for k, v in fields.items() if v is not None}
        for field, other in self.only_with:
            if other not in args:
                args.pop(field, None)
        return model, args


def _load(dotted: str) -> Callable[..., Any]:
    module, _, name = dotted.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


def _interventions(value: list[dict[str, Any]], load_sae: Callable[[str], Any]) -> Any:
    from lenscope.interventions import Intervention

    return [Intervention(**{**iv, "positions": None if iv.get("positions") is None else tuple(iv["positions"])}) for iv in value]


DECODERS: Mapping[str, Callable[[Any, Callable[[str], Any]], Any]] = {
    "sae": lambda name, load_sae: load_sae(name),
    "interventions": _interventions,
    "neuron_means": lambda rows, load_sae: {(int(la), int(ix)): float(m) for la, ix, m in rows},
    "neurons": lambda refs, load_sae: [(int(n["layer"]), int(n["index"])) for n in refs],
}
"""Worker-side decoding of an argument, by its name, for every operation that takes it."""

TRANSPORT = ("model", "encoding")
"""Arguments the worker's frame carries beside the operation's own: the model's name and how to
encode the response."""


def execute(operation: Operation, model: Any, args: Mapping[str, Any], load_sae: Callable[[str], Any]) -> dict[str, Any]:
    """Run ``operation`` on a loaded ``model`` with the server's ``args``: the response's wire data.

    Runs where the model lives (the worker, or the kernel of an attached model), never on the
    server's event loop. ``load_sae`` gives a loaded SAE by name.
    """
    compute, to_wire = _load(operation.compute), _load(operation.to_wire)
    kwargs = {
        k: DECODERS[k](v, load_sae) if k in DECODERS else v
        for k, v in args.items()
        if k not in TRANSPORT and k not in operation.wire_args
    }
    t0 = time.perf_counter()
    result = compute(model, **kwargs, model_name=args["model"])
    out: dict[str, Any] = to_wire(result, **{k: args[k] for k in operation.wire_args})
    if operation.timing is not None:
        out = {**out, "timings_ms": {operation.timing: (time.perf_counter() - t0) * 1000}}
    return out


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "analyze", "analyze", "Per-token next-token predictions and top MLP neurons of a text",
        wire.AnalyzeRequest, wire.AnalyzeResponse, "lenscope.analysis:analyze", "lenscope.wire_convert:to_wire",
        cache="lru", only_with=(("top_features", "sae"),),
    ),
    Operation(
        "activations", "activations", "Post-activations of chosen MLP neurons at every token of a text",
        wire.ActivationsRequest, wire.ActivationsResponse,
        "lenscope.analysis:neuron_activations", "lenscope.wire_convert:activations_to_wire",
    ),
    Operation(
        "unit_activations", "unitActivations",
        "Activations of chosen neurons and SAE features, by unit name, at every token of a text",
        wire.UnitActivationsRequest, wire.UnitActivationsResponse,
        "lenscope.activations:unit_activations", "lenscope.activations:unit_activations_to_wire",
    ),
    Operation(
        "attribute", "attribute",
        "Why a prediction: direct logit attribution to heads (by source), neurons, embeddings and biases",
        wire.AttributeRequest, wire.AttributionResponse, "lenscope.attribution:attribute",
        "lenscope.attribution:attribution_to_wire", wire_args=("top",), timing="attribute",
    ),
    Operation(
        "sweep", "sweep",
        "Rank by causal effect: every neuron, head (and SAE feature) zero-ablated in turn at a prediction, "
        "beside the direct-attribution ranking; or a selection's mean |delta|; or the gradient x activation estimate",
        wire.SweepRequest, wire.SweepResponse, "lenscope.sweep:sweep", "lenscope.sweep:sweep_to_wire",
        cache="lru", wire_args=("top",),
    ),
    Operation(
        "attention", "attention",
        "Where each head attends: every token's strongest sources, and each head's positional share",
        wire.AttentionRequest, wire.AttentionResponse, "lenscope.attention:attend", "lenscope.attention:attention_to_wire",
        timing="attention",
    ),
    Operation(
        "logit_lens", "logitLens",
        "The logit lens: each block's residual stream through the final LayerNorm and unembedding, at chosen tokens",
        wire.LogitLensRequest, wire.LogitLensResponse, "lenscope.logitlens:logit_lens", "lenscope.logitlens:logit_lens_to_wire",
    ),
    Operation(
        "patch", "patch",
        "Activation patching: the restored share of a logit difference, per layer, component and position",
        wire.PatchRequest, wire.PatchResponse, "lenscope.patching:patch_grid", "lenscope.patching:patch_grid_to_wire",
        timing="patch",
    ),
    Operation(
        "head_scores_text", "headScoresOnText",
        "Every head's role scores (previous-token, duplicate-token, induction, BOS) on a text",
        wire.HeadScoresTextRequest, wire.HeadScoresResponse,
        "lenscope.headscores:text_scores", "lenscope.headscores:scores_to_wire",
        cache="lru",
    ),
)  # fmt: skip

BY_NAME: Mapping[str, Operation] = {op.name: op for op in OPERATIONS}
