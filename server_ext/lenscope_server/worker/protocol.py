"""Frames between the server and the model worker: a 4-byte big-endian length, then msgpack.

Server -> worker: ``{"id": int, "op": str, "args": {...}}`` or ``{"id": int, "op": "cancel"}``.
Worker -> server: ``{"id", "ok": True, "result"}``, ``{"id", "ok": False, "error": {code,
message}}``, or, any number of times before the final frame of a long op,
``{"id", "progress": {...}}``. The final frame of a request is the one with ``ok``.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import msgpack

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30


def pack_frame(message: dict[str, Any]) -> bytes:
    body: bytes = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def unpack_body(body: bytes) -> dict[str, Any]:
    message: dict[str, Any] = msgpack.unpackb(body, raw=False)
    return message


def read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    """Blocking read of one frame; None at end of stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes is over the {MAX_FRAME} limit")
    body = stream.read(length)
    if len(body) < length:
        return None
    return unpack_body(body)
