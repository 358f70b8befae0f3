"""Reading neuron descriptions (numpy only, so the server needs no torch): the one-line text,
the category words that make them searchable, and the search itself.

A description is computed by :mod:`lenscope.index.describe` and stored in the index folder as
the arrays of :data:`ARRAYS` plus a ``"descriptions"`` entry in the manifest. Everything shown
(the line, the categories) is derived here from those arrays and the index's token strings, so
changing the wording never needs a rebuild.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ARRAYS = ("describe_token", "describe_prev", "describe_threshold", "describe_counts", "describe_examples", "describe_score")
"""Per unit: the pattern's token and preceding token (-1: none), the firing threshold, the
held-out counts ``[occurs, fires, both]``, the top examples ``[matched, chosen from]``; per
window: 1 where the window is in the score half."""

METHOD = "peak token or (preceding, peak) pair of the choose half's top examples; scored on the other half"

MIN_SCORE_TOKENS = 10_000
"""A description scored on fewer held-out tokens than this says "too few tokens to score" instead
of its precision and recall: over a few hundred tokens a pattern that occurs twice and fires
twice reads as precision 1.00 (a small workspace index)."""


@dataclass
class Descriptions:
    """What :func:`lenscope.index.describe.describe_index` computes, as the store writes it."""

    token: np.ndarray  # int32 [N]: the pattern's token, -1 when the unit has no pattern
    prev: np.ndarray  # int32 [N]: the token before it, -1 for a one-token pattern
    threshold: np.ndarray  # float32 [N]: half the unit's max over the choose half (inf: no pattern)
    counts: np.ndarray  # int64 [N, 3]: score-half tokens where the pattern occurs, the unit fires, both
    examples: np.ndarray  # int32 [N, 2]: choose-half firing top examples the pattern matches, and all of them
    score: np.ndarray  # uint8 [W]: 1 where the index's window is in the score half
    meta: dict[str, Any] = field(default_factory=dict)  # the manifest's "descriptions" entry

    def as_arrays(self) -> dict[str, np.ndarray]:
        return dict(zip(ARRAYS, (self.token, self.prev, self.threshold, self.counts, self.examples, self.score)))


_BRACKETS_CLOSE, _BRACKETS_OPEN, _QUOTES = set(")]}"), set("([{"), set("'\"`")
_OPERATORS = set("+-*/%=<>!&|^~@")
_PUNCT = {",": "comma", ".": "dot", ":": "colon", ";": "semicolon", "#": "comment"}
_SYNONYMS = {
    "paren": "bracket", "parenthesis": "bracket", "parentheses": "bracket", "brace": "bracket", "braces": "bracket",
    "close": "closing", "closes": "closing", "open": "opening", "opens": "opening", "quotes": "quote",
    "number": "digit", "numbers": "digit", "digits": "digit", "indent": "indentation", "spaces": "whitespace",
    "space": "whitespace", "line": "newline", "lines": "newline", "keywords": "keyword", "operators": "operator",
    "identifiers": "identifier", "name": "identifier", "names": "identifier", "word": "identifier", "words": "identifier",
    "string": "quote", "strings": "quote", "brackets": "bracket", "comments": "comment",
}  # fmt: skip
_STOP = {"neuron", "neurons", "feature", "features", "about", "on", "the", "a", "an", "that", "fire", "fires", "firing", "for",
         "of", "with", "in", "after", "token", "tokens", "unit", "units", "and"}  # fmt: skip


def categories(text: str) -> list[str]:
    """Words that say what kind of token ``text`` is, for search ("closing bracket", "keyword def")."""
    out: list[str] = []
    s = text.strip()
    if "\n" in text:
        out.append("newline")
    if text and text.isspace():
        # a newline followed by spaces or tabs is the next line's indentation
        after = text.rsplit("\n", 1)[-1]
        indented = len(after) > 1 if "\n" not in text else bool(after)
        out += ["whitespace", "indentation"] if indented else ["whitespace"]
        if "\t" in text:
            out.append("tab")
    elif text.startswith("  ") and s:
        out.append("indentation")
    chars = set(s)
    if chars & _BRACKETS_CLOSE:
        out.append("closing bracket")
    if chars & _BRACKETS_OPEN:
        out.append("opening bracket")
    if chars & _QUOTES:
        out.append("string quote")
    if s and chars <= _OPERATORS:
        out.append("operator")
    out += [_PUNCT[c] for c in sorted(chars) if c in _PUNCT]
    if s.isdigit():
        out.append("digit")
    if keyword.iskeyword(s) or s in ("self", "None", "True", "False"):
        out += ["keyword", f"keyword {s}"]
    elif s.isidentifier():
        out.append("identifier" if text[:1].isspace() or not text else "identifier part")
    return out


def _quote(text: str) -> str:
    return repr(text)[1:-1].replace('"', '\\"').join('""')


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def describe_row(
    row: int, arrays: dict[str, np.ndarray], strings: dict[int, str], score_tokens: int | None = None
) -> dict[str, Any] | None:
    """Unit ``row``'s description as the card shows it, or None when it has no pattern.

    ``score_tokens``: the held-out tokens it was scored on (the manifest's ``descriptions``); under
    :data:`MIN_SCORE_TOKENS` the line says "too few tokens to score" instead of the ratios."""
    tok = int(arrays["describe_token"][row])
    if tok < 0:
        return None
    prev = int(arrays["describe_prev"][row])
    occurs, fires, both = (int(x) for x in arrays["describe_counts"][row])
    matched, chosen = (int(x) for x in arrays["describe_examples"][row])
    precision, recall = _ratio(both, occurs), _ratio(both, fires)
    pattern = [strings.get(tok, "")] if prev < 0 else [strings.get(prev, ""), strings.get(tok, "")]
    line = f"fires on {_quote(pattern[-1])}" + (f" after {_quote(pattern[0])}" if prev >= 0 else "")
    too_few = score_tokens is not None and score_tokens < MIN_SCORE_TOKENS
    if too_few:
        line += f"  (too few tokens to score: {score_tokens:,} held-out tokens, fewer than {MIN_SCORE_TOKENS:,})"
    elif precision is None or recall is None:
        line += "  (no held-out occurrences to score it on)" if precision is None else "  (never fires on held-out text)"
    else:
        line += f"  (precision {precision:.2f}, recall {recall:.2f} on held-out text)"
    return {
        "text": line,
        "pattern": pattern,
        "pattern_ids": [tok] if prev < 0 else [prev, tok],
        "categories": categories(pattern[-1]),
        "precision": precision,
        "recall": recall,
        "occurs": occurs,
        "fires": fires,
        "both": both,
        "threshold": float(arrays["describe_threshold"][row]),
        "examples_matched": matched,
        "examples_chosen": chosen,
        "score_tokens": score_tokens,
        "too_few_tokens": too_few,
    }


def query_words(query: str) -> list[str]:
    """The content words of a search ("neurons about closing brackets" -> closing, bracket)."""
    raw = re.findall(r"[a-z0-9_]+|[^\sa-z0-9_]+", query.lower())
    words = []
    for i, w in enumerate(raw):
        w = _SYNONYMS.get(w, w)
        if w.endswith("s") and len(w) > 3 and not keyword.iskeyword(w) and w not in ("class", "pass", "whitespace"):
            w = _SYNONYMS.get(w[:-1], w[:-1])
        # "for", "in", "and", "with" are Python keywords too: kept alone or after "keyword"
        if w not in _STOP or (keyword.iskeyword(w) and (len(raw) == 1 or (i and raw[i - 1] == "keyword"))):
            words.append(w)
    return words


def search_descriptions(
    arrays: dict[str, np.ndarray], strings: dict[int, str], query: str, limit: int = 20
) -> list[tuple[int, float]]:
    """Rows whose description matches every content word of ``query`` (in its categories or its
    pattern's token text), best F1 on held-out text first: ``[(row, f1)]``."""
    words = query_words(query)
    if not words or "describe_token" not in arrays:
        return []
    token = np.asarray(arrays["describe_token"])
    # which pattern tokens match, decided once per distinct token (not per unit)
    ids = np.unique(token[token >= 0])
    kept = []
    for i in ids.tolist():
        text = strings.get(i, "")
        bag = {w.lower() for c in categories(text) for w in c.split()} | {text.strip().lower()}
        if all(w in bag for w in words):
            kept.append(i)
    good = np.asarray(kept, dtype=np.int64)
    rows = np.flatnonzero(np.isin(token, good))
    if not len(rows):
        return []
    counts = np.asarray(arrays["describe_counts"])[rows].astype(np.float64)
    f1 = np.where(counts[:, 0] + counts[:, 1] > 0, 2 * counts[:, 2] / np.maximum(counts[:, 0] + counts[:, 1], 1), 0.0)
    order = np.lexsort((rows, -f1))[:limit]
    return [(int(rows[o]), float(f1[o])) for o in order]
