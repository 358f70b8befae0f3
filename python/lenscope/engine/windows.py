"""Split a token sequence longer than the model's context into overlapping windows.

Every window is ``[BOS] + S[start:start+body]``. Window 0 reports its positions from the BOS
on; every later window starts ``stride = body - body // 2`` after the previous one (the last one
is pulled back to end at the end of ``S``) and reports what is not yet covered, at most its
second half, so each reported position has at least ``body // 2`` tokens of left
context inside its window and every position is reported by exactly one window.
Positions are indices into ``S``; ``-1`` stands for the BOS (only window 0 has it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    start: int  # index into S of the window's first token after BOS
    stop: int  # exclusive
    report_from: int  # first S index whose outputs come from this window (-1: the BOS)
    report_to: int  # exclusive

    def local(self, pos: int) -> int:
        """Index inside the window's input (which starts with BOS) of S position ``pos``."""
        return pos - self.start + 1


def plan_windows(total: int, body: int, first_needed: int = -1) -> list[Window]:
    """Windows over ``S`` of length ``total`` for a model that reads ``body`` tokens after BOS.

    Windows that report nothing at or after ``first_needed`` are left out.
    """
    if body < 2:
        raise ValueError(f"context body must be at least 2 tokens, got {body}")
    if total <= body:
        return [Window(0, total, -1, total)]
    stride = body - body // 2
    out: list[Window] = []
    start, covered = 0, -1
    while covered < total:
        # The last window is pulled back to end at ``total``: same coverage, more context.
        start = min(start, total - body)
        stop = start + body
        if stop > max(covered, first_needed):
            out.append(Window(start, stop, covered, stop))
        covered = stop
        start += stride
    return out
