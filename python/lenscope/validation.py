"""Input bounds, in one place, with stable messages.

The server validates requests with these same functions, so a bad input gets the same message
from the CLI, the Python API and HTTP.
"""

from __future__ import annotations

from lenscope.errors import InputTooLarge, InvalidInput

MAX_TEXT_CHARS = 200_000
"""Upper bound on ``text`` (code points): about 60k tokens of code, minutes of CPU forward."""

MAX_CONTEXT_CHARS = 200_000
MAX_TOP_K = 100
"""Predictions per position (and never more than the model's vocabulary)."""
MAX_TOP_NEURONS = 100
MAX_TEXT_TOKENS = 65_536
"""Tokens of ``text`` after tokenizing (checked by the worker, which has the tokenizer)."""
MAX_RESPONSE_CELLS = 2_000_000
"""Bound on ``tokens x (top_k + top_neurons)``: about 6 bytes a cell, so an analysis response
stays under ~12 MB of msgpack (~40 MB of JSON) however the other limits are combined."""
MAX_INTERVENTIONS = 64
MAX_INTERVENTION_VALUE = 1e6
MAX_LAYERS = 1_024
MAX_NEURON_INDEX = 2**20 - 1
"""Schema bounds on neuron references; the model's own shape is checked where it is known."""
MAX_NAME_CHARS = 200
"""Model names, index names and paths in requests."""
MAX_PATHS = 1_000
MAX_INDEX_K = 200
MAX_MIN_COUNT = 1_000_000
MIN_CLAMP = -50.0


def _lone_surrogate_at(text: str) -> int:
    """Index of the first lone surrogate in ``text``, or -1: the only code points strict UTF-8
    cannot encode, so the codec finds them at C speed (a Python loop cost ~0.3 ms per 4k
    characters, on every analyze request, three times)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return int(exc.start)
    return -1


def check_text(text: object, field: str = "text", *, allow_empty: bool = False, limit: int = MAX_TEXT_CHARS) -> str:
    """Return ``text`` if it is analysable, else raise :class:`InvalidInput` naming the problem."""
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be a string, got {type(text).__name__}")
    if not text:
        if allow_empty:
            return text
        raise InvalidInput(f"{field} is empty: select some text to analyze")
    if not allow_empty and not text.strip():
        raise InvalidInput(f"{field} is only whitespace: select some text to analyze")
    if len(text) > limit:
        raise InputTooLarge(f"{field} is {len(text):,} characters; the limit is {limit:,}")
    try:
        return clean_string(text)
    except ValueError as exc:
        raise InvalidInput(f"{field} {exc}") from None


def clean_string(value: str) -> str:
    """A request string without NUL bytes or lone surrogates: such strings cannot be sent to the
    worker (msgpack needs valid UTF-8), written to a file name, or shown. Used by the schema."""
    nul = value.find("\x00")
    if nul >= 0:
        raise ValueError(f"contains a NUL byte at character {nul}")
    sur = _lone_surrogate_at(value)
    if sur >= 0:
        raise ValueError(f"contains a lone UTF-16 surrogate (U+{ord(value[sur]):04X}) at character {sur}")
    return value


def check_response_size(tokens: int, top_k: int, top_neurons: int) -> None:
    """Bound what one analysis returns (see :data:`MAX_RESPONSE_CELLS`)."""
    if tokens > MAX_TEXT_TOKENS:
        raise InputTooLarge(f"text is {tokens:,} tokens; the limit is {MAX_TEXT_TOKENS:,}: select less text")
    cells = tokens * (top_k + top_neurons)
    if cells > MAX_RESPONSE_CELLS:
        raise InputTooLarge(
            f"{tokens:,} tokens x (top_k {top_k} + top_neurons {top_neurons}) = {cells:,} values; the limit is "
            f"{MAX_RESPONSE_CELLS:,}: select less text or ask for fewer predictions or neurons"
        )


def check_int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low} and {high}, got {value}")
    return value
