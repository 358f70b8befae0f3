"""Wire data <-> bytes: msgpack (arrays as little-endian bytes) and JSON (arrays as flat lists,
NaN as ``null``), both decoding to the same numpy arrays, bit for bit; and exact equality of
wire data. Knows nothing of the schema (:mod:`lenscope.wire`) or of the core's results."""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack
import numpy as np


def _pack(obj: Any, binary: bool) -> Any:
    if isinstance(obj, np.ndarray):
        data: Any
        if binary:
            data = obj.astype(obj.dtype.newbyteorder("<"), copy=False).tobytes()
        elif obj.dtype.kind == "f":
            data = [None if math.isnan(x) else x for x in obj.reshape(-1).tolist()]
        else:
            data = obj.reshape(-1).tolist()
        return {"dtype": str(obj.dtype), "shape": list(obj.shape), "data": data}
    if isinstance(obj, dict):
        return {k: _pack(v, binary) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_pack(v, binary) for v in obj]
    return obj


def _unpack(obj: Any) -> Any:
    if isinstance(obj, dict):
        if obj.keys() == {"dtype", "shape", "data"}:
            dtype = np.dtype(obj["dtype"]).newbyteorder("<")
            data = obj["data"]
            if isinstance(data, bytes):
                arr = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="))
            else:
                arr = np.asarray([math.nan if x is None else x for x in data], dtype=dtype.newbyteorder("="))
            return arr.reshape(obj["shape"])
        return {k: _unpack(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v) for v in obj]
    return obj


def plain(obj: Any) -> Any:
    """``obj`` with every array as the wire's ``NDArray`` holding a flat list (NaN as None): what
    ``json.dumps`` and msgpack both carry as they are."""
    return _pack(obj, binary=False)


def _packed_array(obj: Any) -> dict[str, Any]:
    """msgpack's hook for what it cannot pack itself: an array becomes what ``_pack`` makes of it."""
    if isinstance(obj, np.ndarray):
        return _pack(obj, binary=True)  # type: ignore[no-any-return]
    raise TypeError(f"can not serialize {type(obj).__name__!r} object")


def encode_msgpack(wire: dict[str, Any]) -> bytes:
    # msgpack walks the structure in C and calls back for arrays only: the same bytes as
    # packing ``_pack(wire, binary=True)``, without a Python call per key and token string
    out: bytes = msgpack.packb(wire, use_bin_type=True, default=_packed_array)
    return out


def encode_json(wire: dict[str, Any]) -> bytes:
    return json.dumps(_pack(wire, binary=False), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_msgpack(payload: bytes) -> dict[str, Any]:
    out: dict[str, Any] = _unpack(msgpack.unpackb(payload, raw=False))
    return out


def decode_json(payload: bytes | str) -> dict[str, Any]:
    out: dict[str, Any] = _unpack(json.loads(payload))
    return out


def wire_equal(a: Any, b: Any) -> bool:
    """Exact equality of two wire objects (arrays: same dtype, shape and bits; NaN == NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(wire_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(wire_equal(x, y) for x, y in zip(a, b))
    return bool(a == b) and type(a) is type(b)
