"""What one call runs: the text (and the context before it) as one token sequence, cut into windows.

``S`` is the kept context tokens followed by the text's tokens. Position ``first`` of ``S`` is
the one whose output predicts text token 0 (``-1``: the BOS). Every feature plans a text this
way, so "token ``i``" means the same token in analyze, attention, attribution and the lens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lenscope.engine.protocol import HookedModel
from lenscope.engine.windows import Window, plan_windows
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.models.shape import shape_of
from lenscope.tokens import TokenSpans, split_context, token_strings
from lenscope.validation import MAX_CONTEXT_CHARS, MAX_TEXT_TOKENS, check_int, check_text

CHARS_PER_TOKEN_BOUND = 64
"""Context beyond ``body * 64`` characters cannot reach the kept context tokens."""


def bos_id(tokenizer: Any) -> int:
    """The token every window starts with: the tokenizer's BOS, else its EOS."""
    tok = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if tok is None:
        raise InvalidInput("the model's tokenizer has neither a BOS nor an EOS token to start a window with")
    return int(tok)


@dataclass
class Plan:
    """The token sequence S (kept context + text) and its windows."""

    spans: TokenSpans
    seq: list[int]
    keep: int  # context tokens kept
    first: int  # S position whose output predicts text token 0 (-1: the BOS)
    windows: list[Window]
    window: int  # tokens per window, BOS included
    bos: int
    text: str  # what the spans index: the text asked about, or the token ids' own strings joined

    @property
    def windowed(self) -> bool:
        return len(self.seq) > self.window - 1


def plan_text(model: HookedModel, text: str, context: str = "", window: int | None = None,
              timings: dict[str, float] | None = None) -> Plan:  # fmt: skip
    """Validate the text, tokenize context + text together, keep what fits, cut windows.

    The last ``max(body - n_text, body // 2)`` context tokens are kept (``body`` = tokens per
    window after the BOS); ``window`` defaults to the model's ``n_ctx``.
    """
    n_ctx = shape_of(model).n_ctx
    check_text(text)
    check_text(context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
    window = n_ctx if window is None else check_int(window, "window", 3, n_ctx)
    body = window - 1
    t0 = time.perf_counter()
    # No kept context token is longer than this many characters: cut the rest before tokenizing.
    ctx_ids, spans = split_context(model.tokenizer, context[-body * CHARS_PER_TOKEN_BOUND :], text)
    keep = min(len(ctx_ids), max(body - len(spans.ids), body // 2))
    seq = ctx_ids[len(ctx_ids) - keep :] + spans.ids.tolist()
    if timings is not None:
        timings["tokenize"] = (time.perf_counter() - t0) * 1000
    windows = plan_windows(len(seq), body, keep - 1)
    return Plan(spans, seq, keep, keep - 1, windows, window, bos_id(model.tokenizer), text)


def plan_input(model: HookedModel, text: str, context: str, token_ids: Sequence[int] | None, window: int | None = None,
               timings: dict[str, float] | None = None) -> Plan:  # fmt: skip
    """A feature's input: ``text`` (with its ``context``), or ``token_ids`` as given (then
    ``text`` and ``context`` must be empty)."""
    if token_ids is None:
        return plan_text(model, text, context, window, timings)
    if text or context:
        raise InvalidInput("give text or token ids, not both")
    return plan_tokens(model, token_ids, window)


def plan_tokens(model: HookedModel, ids: Sequence[int], window: int | None = None) -> Plan:
    """A plan over token ids as given (a probe of random tokens, a sequence a tokenizer would
    never produce): no context, no re-tokenization. The "text" is each id's own string, joined,
    so every token has a span and a result reads like one over text."""
    shape = shape_of(model)
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise InvalidInput(f"token ids must be a list of integers, got {type(ids).__name__}")
    if not ids:
        raise InvalidInput("token ids are empty: give at least one")
    if len(ids) > MAX_TEXT_TOKENS:
        raise InputTooLarge(f"{len(ids):,} token ids; the limit is {MAX_TEXT_TOKENS:,}")
    for i, t in enumerate(ids):
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < shape.d_vocab:
            raise InvalidInput(f"token ids[{i}] is {t!r}: ids must be integers from 0 to {shape.d_vocab - 1}")
    window = shape.n_ctx if window is None else check_int(window, "window", 3, shape.n_ctx)
    pieces = token_strings(model.tokenizer, list(ids))
    lengths = np.array([len(p) for p in pieces], dtype=np.int32)
    units = np.array([len(p.encode("utf-16-le")) // 2 for p in pieces], dtype=np.int32)
    end, end16 = np.cumsum(lengths, dtype=np.int32), np.cumsum(units, dtype=np.int32)
    spans = TokenSpans(
        ids=np.asarray(ids, dtype=np.int64),
        start=end - lengths,
        end=end,
        start_utf16=end16 - units,
        end_utf16=end16,
        partial=np.zeros(len(ids), dtype=bool),
    )
    seq = [int(t) for t in ids]
    windows = plan_windows(len(seq), window - 1, -1)
    return Plan(spans, seq, 0, -1, windows, window, bos_id(model.tokenizer), "".join(pieces))
