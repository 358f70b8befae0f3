"""Core results -> wire data: plain dicts whose numpy arrays are cast to their wire dtypes.

What each field means is the schema's business (:mod:`lenscope.wire`); how the dicts are encoded,
:mod:`lenscope.wire_codec`'s. Converters of results that live with their derivation
(``attribution_to_wire``, ``attention_to_wire``, ...) use :func:`tokens_to_wire` from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lenscope.wire import DType, PredictionsWire

if TYPE_CHECKING:
    from lenscope.analysis import AnalysisResult, NeuronActivations
    from lenscope.tokens import TokenSpans

FLOAT_DTYPES: dict[str, DType] = {
    "top_logprobs": "float16",
    "actual_logprob": "float32",
    "entropy": "float16",
    "neuron_activation": "float16",
    "feature_activation": "float16",
}


def wire_dtype(name: str, a: np.ndarray) -> np.dtype[Any]:
    if name in FLOAT_DTYPES:
        return np.dtype(FLOAT_DTYPES[name])
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if lo >= 0 and hi < 2**8:
        return np.dtype(np.uint8)
    if lo >= 0 and hi < 2**16:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)


def cast(name: str, a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=wire_dtype(name, a))


def to_wire(result: AnalysisResult) -> dict[str, Any]:
    """The response as plain data with numpy arrays cast to their wire dtypes."""
    p = result.predictions
    ids = sorted(result.strings)
    return {
        "model": result.model,
        "tokens": tokens_to_wire(result.tokens),
        "predictions": {k: cast(k, getattr(p, k)) for k in PredictionsWire.model_fields},
        "strings": {"ids": cast("string_ids", np.asarray(ids, dtype=np.int64)), "values": [result.strings[i] for i in ids]},
        "context_tokens": result.context_tokens,
        "windowed": result.windowed,
        "windows": result.windows,
        "window_tokens": result.window_tokens,
        "timings_ms": dict(result.timings_ms),
        "interventions": list(result.interventions),
        "features": None
        if result.sae is None
        else {
            "sae": result.sae.name,
            "hook_point": result.sae.hook_point,
            "d_sae": result.sae.d_sae,
            "index": np.ascontiguousarray(p.feature_index, dtype=np.int32),
            "activation": cast("feature_activation", p.feature_activation),
        },
    }


def tokens_to_wire(spans: TokenSpans) -> dict[str, Any]:
    return {k: cast(k, getattr(spans, k)) for k in ("ids", "start", "end", "start_utf16", "end_utf16", "partial")}


def activations_to_wire(result: NeuronActivations) -> dict[str, Any]:
    return {
        "model": result.model,
        "tokens": tokens_to_wire(result.tokens),
        "neurons": [{"layer": la, "index": ix} for la, ix in result.neurons],
        "activations": np.ascontiguousarray(result.activations, dtype=np.float16),
        "timings_ms": dict(result.timings_ms),
    }
