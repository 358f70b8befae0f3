"""Typed errors of the core library.

Each carries a stable machine-readable ``code``; the server maps codes to HTTP statuses in one
place (``lenscope_server.errors``), the CLI prints the message. Messages name the problem and,
where there is one, the limit or the missing piece.
"""

from __future__ import annotations


class LenscopeError(Exception):
    code = "lenscope_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(LenscopeError):
    """The request itself is wrong: empty text, a NUL byte, top_k out of range, ..."""

    code = "invalid_input"


class InputTooLarge(InvalidInput):
    code = "input_too_large"


class UnknownModel(LenscopeError):
    """No model of that name in the registry, on disk, or among TransformerLens's names."""

    code = "unknown_model"


class ModelUnavailable(LenscopeError):
    """The model is known but cannot be loaded here and now (offline and not cached, ...)."""

    code = "model_unavailable"


class JobCancelled(LenscopeError):
    """Long work (an index build, a comparison) stopped because it was asked to."""

    code = "cancelled"


class StorageFailed(LenscopeError):
    """Writing results to disk failed (the disk is full, the folder is read-only): nothing
    partial was left where a reader would take it for complete."""

    code = "storage_failed"


class EngineUnavailable(LenscopeError):
    """The distributed engine asked for (a Ray cluster) is not installed or not reachable."""

    code = "engine_unavailable"
