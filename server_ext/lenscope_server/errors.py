"""The one place where errors become HTTP statuses and ``{error: {code, message}}`` bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack

MSGPACK = "application/msgpack"

STATUS_BY_CODE: dict[str, int] = {
    "invalid_input": 400,
    "bad_request": 400,
    "input_too_large": 413,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "unknown_model": 404,
    "index_not_found": 404,
    "not_found": 404,
    "forbidden": 403,
    "forbidden_path": 403,
    "job_not_found": 404,
    "method_not_allowed": 405,
    "model_unavailable": 503,
    "sae_unavailable": 503,
    "worker_died": 503,
    "queue_full": 503,
    "out_of_memory": 503,
    "worker_timeout": 504,
    "storage_failed": 503,  # a full disk: only in job errors today; 503 if one ever surfaces in a request
    "engine_unavailable": 503,
    "kernel_unavailable": 503,
    "kernel_busy": 504,
    "internal": 500,
}
RETRY_AFTER_S: dict[str, int] = {"queue_full": 1, "worker_died": 2, "out_of_memory": 5, "model_unavailable": 30}
CODE_BY_STATUS = {403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "bad_request"}


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, 500)


def error_body(code: str, message: str, as_msgpack: bool) -> tuple[bytes, str]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if as_msgpack:
        packed: bytes = msgpack.packb(body, use_bin_type=True)
        return packed, MSGPACK
    return json.dumps(body).encode(), "application/json"


def relative_to_root(message: str, root: Path | None) -> str:
    """A message with the server's root folder taken out of its paths: what a client sees names
    files as the contents API does (relative to the root), never the server's own layout."""
    if root is None:
        return message
    base = str(root)
    return message.replace(base + "/", "").replace(base, ".")
