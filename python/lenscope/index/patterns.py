"""Choosing and scoring unit patterns from firing events (numpy only).

A pattern is a *base* — a small set of tokens, or a token class (:data:`CLASSES`) — optionally
narrowed by a *context*: a given token somewhere in the last ``within`` tokens of the same
window (``within`` 1: the token just before). Positions are the index's tokens in window order;
a unit's *events* are the positions where it fires (activation above its threshold).

Each unit's pattern is chosen by F1 on the choose half only (:func:`choose`) and counted on the
score half (:func:`count`), so the score is measured on text it was not chosen on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lenscope.index.descriptions import MAX_SET, WITHIN, class_members

FLOOR = 0.1
"""A unit whose best pattern's F1 on the choose half is under this has "no simple pattern"."""
CONTEXT_GAIN = 1.05
"""A context is kept only when it raises the choose half's F1 by this factor at least."""
PRIOR = 10
"""Tokens join a set in the order of ``fires_on_it / (occurrences + PRIOR)``: a token seen once
where the unit fired is not preferred to one seen a hundred times where it fired 90 (without
it, held-out F1 of lenscope-gelu-1l's neurons fell from 0.13 to 0.03: sets of one-off tokens)."""
CANDIDATES = 6
"""Context tokens tried per unit and window: those seen most often before its firing base."""


@dataclass
class Positions:
    """The index's tokens in window order: id, and the ``WITHIN`` tokens before each in its
    window (``prev[:, j]``: j + 1 tokens back, -1 before the window's first token)."""

    tok: np.ndarray  # int64 [P]
    prev: np.ndarray  # int64 [P, WITHIN]
    half: np.ndarray  # uint8 [P]: 1 in the score half
    g: np.ndarray  # int64 [P]: the token's index in the corpus


def positions(windows: np.ndarray, doc_offsets: np.ndarray, tokens: np.ndarray, score: np.ndarray) -> Positions:
    starts = np.asarray(doc_offsets)[windows[:, 0]] + windows[:, 1]
    n = windows[:, 2].astype(np.int64)
    first = np.repeat(np.cumsum(n) - n, n)
    t = np.arange(int(n.sum())) - first  # index within the window
    g = np.repeat(starts, n) + t
    tok = np.asarray(tokens)[g].astype(np.int64)
    prev = np.full((len(tok), WITHIN), -1, dtype=np.int64)
    for j in range(WITHIN):
        ok = t > j
        prev[ok, j] = tok[np.flatnonzero(ok) - j - 1]
    return Positions(tok, prev, np.repeat(score.astype(np.uint8), n), g)


@dataclass
class Pattern:
    kind: int = 0  # 0: none, 1: tokens, 2: class; negative: under the floor ("no simple pattern")
    tokens: tuple[int, ...] = ()
    cls: int = -1
    context: int = -1
    within: int = 0
    f1: float = 0.0  # on the choose half


def mask(p: Pattern, tok: np.ndarray, prev: np.ndarray, members: np.ndarray) -> np.ndarray:
    """bool: where the pattern occurs, at positions of ids ``tok`` with ``prev`` before them."""
    if p.kind == 0:
        return np.zeros(len(tok), dtype=bool)
    base = members[p.cls][tok] if abs(p.kind) == 2 else np.isin(tok, p.tokens)
    if p.context >= 0:
        base &= (prev[:, : p.within] == p.context).any(axis=1)
    return base


def _f1(both: np.ndarray | float, occurs: np.ndarray | float, fires: float) -> Any:
    return 2 * np.asarray(both, dtype=np.float64) / np.maximum(np.asarray(occurs, dtype=np.float64) + fires, 1)


class Chooser:
    """Choose-half statistics shared by every unit (token and class counts, context counts per base)."""

    def __init__(self, pos: Positions, strings: dict[int, str]) -> None:
        self.pos = pos
        choose = pos.half == 0
        self.tok, self.prev = pos.tok[choose], pos.prev[choose]
        self.vocab = int(max(pos.tok.max(initial=0), max(strings, default=0))) + 1
        self.members = class_members(strings, self.vocab)  # bool [C, V]
        self.occ = np.bincount(self.tok, minlength=self.vocab)
        self.occ_cls = self.members[:, self.tok].sum(axis=1)
        self._ctx: dict[tuple[Any, ...], np.ndarray] = {}

    def _context_counts(self, key: tuple[Any, ...], base: np.ndarray, within: int) -> np.ndarray:
        """[V]: for each token Y, the base's choose-half positions with Y in the last ``within``."""
        found = self._ctx.get((key, within))
        if found is None:
            found = np.bincount(self._distinct_before(np.flatnonzero(base), within), minlength=self.vocab).astype(np.int32)
            if key[0] == 2 or len(key[1]) == 1:  # shared by many units: kept (a token set is one unit's)
                self._ctx[(key, within)] = found
        return found

    def _distinct_before(self, rows: np.ndarray, within: int) -> np.ndarray:
        """The tokens in the last ``within`` before each of ``rows``, each counted once per row."""
        sub = self.prev[rows, :within]
        valid = sub >= 0
        pairs = np.unique(np.repeat(np.arange(len(rows)), within).reshape(-1, within)[valid] * self.vocab + sub[valid])
        y: np.ndarray = pairs % self.vocab
        return y

    def choose(self, events: np.ndarray) -> Pattern:
        """The best pattern for a unit firing at choose-half positions ``events`` (indexes into
        the choose half), by F1 on the choose half."""
        fires = len(events)
        if not fires:
            return Pattern()
        ids, both = np.unique(self.tok[events], return_counts=True)
        occ = self.occ[ids]
        # a token set: the best prefix by the share of each token's occurrences that fire
        # (for a ratio of sums, the best set of any size is such a prefix)
        order = np.lexsort((ids, -both, -both / (occ + PRIOR)))[:MAX_SET]
        f1s = _f1(np.cumsum(both[order]), np.cumsum(occ[order]), fires)
        n = int(f1s.argmax()) + 1
        best = Pattern(1, tuple(sorted(ids[order[:n]].tolist())), f1=float(f1s[n - 1]))
        one = int(order[0])
        if n > 1 and float(_f1(both[one], occ[one], fires)) * CONTEXT_GAIN >= best.f1:
            best = Pattern(1, (int(ids[one]),), f1=float(_f1(both[one], occ[one], fires)))
        cls_both = (self.members[:, ids] * both).sum(axis=1)
        cls_f1 = _f1(cls_both, self.occ_cls, fires)
        c = int(cls_f1.argmax())
        if cls_f1[c] > best.f1 * CONTEXT_GAIN:
            best = Pattern(2, cls=c, f1=float(cls_f1[c]))
        base_key = (best.kind, best.tokens, best.cls)
        base = mask(best, self.tok, self.prev, self.members)
        on_base = events[base[events]]
        top = best
        for within in sorted({1, WITHIN}):
            y = self._distinct_before(on_base, within)
            y_ids, y_both = np.unique(y, return_counts=True)
            if not len(y_ids):
                continue
            cand = np.argsort(-y_both, kind="stable")[:CANDIDATES]
            occ_y = self._context_counts(base_key, base, within)[y_ids[cand]]
            f1y = _f1(y_both[cand], occ_y, fires)
            j = int(f1y.argmax())
            if f1y[j] > top.f1 * CONTEXT_GAIN:
                top = Pattern(best.kind, best.tokens, best.cls, int(y_ids[cand][j]), within, float(f1y[j]))
        if top.f1 < FLOOR:
            top.kind = -top.kind
        return top
