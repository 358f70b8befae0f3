"""What one call runs: the text (and the context before it) as one token sequence, cut into windows.

``S`` is the kept context tokens followed by the text's tokens. Position ``first`` of ``S`` is
the one whose output predicts text token 0 (``-1``: the BOS). Every feature plans a text this
way, so "token ``i``" means the same token in analyze, attention, attribution and the lens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lenscope.engine.protocol import HookedModel
from lenscope.engine.windows import Window, plan_windows
from lenscope.errors import InvalidInput
from lenscope.models.shape import shape_of
from lenscope.tokens import TokenSpans, split_context
from lenscope.validation import MAX_CONTEXT_CHARS, check_int, check_text

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
    return Plan(spans, seq, keep, keep - 1, windows, window, bos_id(model.tokenizer))
