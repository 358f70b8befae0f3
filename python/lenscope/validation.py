"""Input bounds, in one place, with stable messages.

The server validates requests with these same functions, so a bad input gets the same message
from the CLI, the Python API and HTTP.
"""

from __future__ import annotations

from lenscope.errors import InputTooLarge, InvalidInput

MAX_TEXT_CHARS = 200_000
"""Upper bound on ``text`` (code points): about 60k tokens of code, minutes of CPU forward."""

MAX_CONTEXT_CHARS = 200_000
MAX_TOP_NEURONS = 100


def _lone_surrogate_at(text: str) -> int:
    for i, ch in enumerate(text):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return i
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
    nul = text.find("\x00")
    if nul >= 0:
        raise InvalidInput(f"{field} contains a NUL byte at character {nul}")
    sur = _lone_surrogate_at(text)
    if sur >= 0:
        raise InvalidInput(f"{field} contains a lone UTF-16 surrogate (U+{ord(text[sur]):04X}) at character {sur}")
    return text


def check_int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low} and {high}, got {value}")
    return value
