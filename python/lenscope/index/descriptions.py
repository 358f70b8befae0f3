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

ARRAYS = ("describe_kind", "describe_tokens", "describe_class", "describe_context", "describe_within",
          "describe_threshold", "describe_counts", "describe_examples", "describe_score")  # fmt: skip
"""Per unit: the pattern's kind (0 none, 1 a token set, 2 a token class; negative: its best
pattern is under the F1 floor, "no simple pattern"), its tokens (-1 padded), class
(:data:`CLASSES`, -1), context token (-1: none) and how far back it may be, the firing threshold,
the held-out counts ``[occurs, fires, both]``, the top examples ``[matched, chosen from]``; per
window: 1 where the window is in the score half."""

OLD_ARRAYS = ("describe_token", "describe_prev", "describe_threshold", "describe_counts", "describe_examples", "describe_score")
"""The arrays of descriptions before pattern kinds (a token, or a (preceding, token) pair): still read."""

METHOD = ("token set, token class, either with a token in the last 1 or 8 before it; chosen by F1 on the choose half, "
          "scored on the other half")  # fmt: skip
MIN_SCORE_TOKENS = 10_000
"""A description scored on fewer held-out tokens than this says "too few tokens to score" instead
of its precision and recall: over a few hundred tokens a pattern that occurs twice and fires
twice reads as precision 1.00 (a small workspace index)."""
MAX_SET = 8
"""The most tokens in a token-set pattern."""
WITHIN = 8
"""How far back a context token is looked for (besides just before)."""
METRICS = "precision = P(pattern | fires), recall = P(fires | pattern), on held-out text"
"""The detector convention, said on every card."""


def _digits(t: str) -> bool:
    return t.strip().isdigit()


def _indent(t: str) -> bool:
    return bool(t) and t.isspace()


CLASSES: tuple[tuple[str, Any], ...] = (
    ("digit", _digits),
    ("whitespace indentation", _indent),
    ("newline", lambda t: "\n" in t),
    ("closing bracket", lambda t: bool(t.strip()) and set(t.strip()) <= set(")]}:,;'\"")  and bool(set(t) & set(")]}"))),
    ("opening bracket", lambda t: bool(set(t.strip()) & set("([{")) and set(t.strip()) <= set("([{'\"")),
    ("string quote", lambda t: bool(set(t) & set("'\"`"))),
    ("operator", lambda t: bool(t.strip()) and set(t.strip()) <= set("+-*/%=<>!&|^~@")),
    ("punctuation", lambda t: bool(t.strip()) and not any(c.isalnum() or c == "_" for c in t)),
    ("keyword", lambda t: keyword.iskeyword(t.strip()) or t.strip() in ("self", "None", "True", "False")),
    ("identifier word", lambda t: t[:1] == " " and t.strip().isidentifier() and not keyword.iskeyword(t.strip())),
    ("identifier part", lambda t: t[:1].isalpha() and t.isidentifier()),
    ("capitalized word", lambda t: t.strip()[:1].isupper() and t.strip().isalpha()),
    ("upper case word", lambda t: len(t.strip()) > 1 and t.strip().isupper() and t.strip().replace("_", "").isalpha()),
)  # fmt: skip
"""Token classes a pattern may name: (name, test of the token's text)."""


def class_members(strings: dict[int, str], vocab: int) -> np.ndarray:
    """bool [len(CLASSES), vocab]: which token ids are in each class (ids without a string: none)."""
    out = np.zeros((len(CLASSES), vocab), dtype=bool)
    for i, text in strings.items():
        if 0 <= i < vocab:
            for c, (_, test) in enumerate(CLASSES):
                out[c, i] = bool(test(text))
    return out


@dataclass
class Descriptions:
    """What :func:`lenscope.index.describe.describe_index` computes, as the store writes it."""

    kind: np.ndarray  # int8 [N]: 0 none, 1 token set, 2 token class; negative: under the floor
    tokens: np.ndarray  # int32 [N, MAX_SET]: a token set's ids, -1 padded
    cls: np.ndarray  # int8 [N]: a token class (CLASSES), -1
    context: np.ndarray  # int32 [N]: a token that must be among the last ``within`` before, -1: none
    within: np.ndarray  # int8 [N]
    threshold: np.ndarray  # float32 [N]: half the unit's max over the choose half (inf: no pattern)
    counts: np.ndarray  # int64 [N, 3]: score-half tokens where the pattern occurs, the unit fires, both
    examples: np.ndarray  # int32 [N, 2]: choose-half firing top examples the pattern matches, and all of them
    score: np.ndarray  # uint8 [W]: 1 where the index's window is in the score half
    meta: dict[str, Any] = field(default_factory=dict)  # the manifest's "descriptions" entry

    def as_arrays(self) -> dict[str, np.ndarray]:
        values = (self.kind, self.tokens, self.cls, self.context, self.within, self.threshold, self.counts,
                  self.examples, self.score)  # fmt: skip
        return dict(zip(ARRAYS, values))


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


def pattern_of(row: int, arrays: dict[str, np.ndarray]) -> tuple[int, list[int], int, int, int]:
    """``(kind, tokens, class, context, within)`` of unit ``row``, from either generation of arrays."""
    if "describe_kind" in arrays:
        toks = [int(t) for t in arrays["describe_tokens"][row] if t >= 0]
        return (int(arrays["describe_kind"][row]), toks, int(arrays["describe_class"][row]),
                int(arrays["describe_context"][row]), int(arrays["describe_within"][row]))  # fmt: skip
    tok, prev = int(arrays["describe_token"][row]), int(arrays["describe_prev"][row])
    return (0, [], -1, -1, 0) if tok < 0 else (1, [tok], -1, prev, 1 if prev >= 0 else 0)


def _effect(row: int, arrays: dict[str, np.ndarray], strings: dict[int, str], top: int = 3) -> list[str]:
    if "logit_top_ids" not in arrays or arrays["logit_top_ids"].shape[1] == 0:
        return []
    return [strings.get(int(i), "") for i in arrays["logit_top_ids"][row][:top]]


def describe_row(
    row: int, arrays: dict[str, np.ndarray], strings: dict[int, str], score_tokens: int | None = None
) -> dict[str, Any] | None:
    """Unit ``row``'s description as the card shows it, or None when it has no pattern.

    The line names the input pattern and the output effect (the tokens its output boosts most).
    Metrics follow the detector convention (:data:`METRICS`). A unit whose best pattern is under
    the F1 floor says "no simple pattern" (its best pattern and counts are still given).
    ``score_tokens``: the held-out tokens it was scored on; under :data:`MIN_SCORE_TOKENS` the
    line says "too few tokens to score" instead of the ratios."""
    kind, toks, cls, context, within = pattern_of(row, arrays)
    if kind == 0:
        return None
    occurs, fires, both = (int(x) for x in arrays["describe_counts"][row])
    matched, chosen = (int(x) for x in arrays["describe_examples"][row])
    precision, recall = _ratio(both, fires), _ratio(both, occurs)
    f1 = 2 * both / (occurs + fires) if occurs + fires else None
    texts = [strings.get(t, "") for t in toks]
    what = " or ".join(_quote(t) for t in texts) if abs(kind) == 1 else f"a {CLASSES[cls][0]} token"
    ctx = ""
    if context >= 0:
        ctx = (
            f" right after {_quote(strings.get(context, ''))}"
            if within == 1
            else f" with {_quote(strings.get(context, ''))} in the last {within} tokens"
        )
    effect = _effect(row, arrays, strings)
    line = f"fires on {what}{ctx}"
    if kind < 0:
        line = f"no simple pattern (best: {line[9:]})"
    if effect:
        line += "; boosts " + " ".join(_quote(t) for t in effect)
    too_few = score_tokens is not None and score_tokens < MIN_SCORE_TOKENS
    if too_few:
        line += f"  (too few tokens to score: {score_tokens:,} held-out tokens, fewer than {MIN_SCORE_TOKENS:,})"
    elif precision is None or recall is None:
        line += "  (no held-out occurrences to score it on)" if recall is None else "  (never fires on held-out text)"
    else:
        line += f"  (held-out precision {precision:.2f}, recall {recall:.2f}, F1 {f1:.2f})"
    cats = [CLASSES[cls][0]] if abs(kind) == 2 else sorted({c for t in texts for c in categories(t)})
    if context >= 0:  # searchable by its context too ("is not": " not" with " is" before it)
        cats += [c for c in categories(strings.get(context, "")) if c not in cats]
    return {
        "text": line,
        "pattern": texts if abs(kind) == 1 else [CLASSES[cls][0]],
        "pattern_ids": toks,
        "kind": ("tokens" if abs(kind) == 1 else "class") if kind > 0 else "none",
        "token_class": CLASSES[cls][0] if abs(kind) == 2 else None,
        "context": strings.get(context, "") if context >= 0 else None,
        "context_id": context if context >= 0 else None,
        "within": within if context >= 0 else None,
        "boosts": effect,
        "categories": cats,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "metrics": METRICS,
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


def _bag(texts: list[str]) -> set[str]:
    words = set()
    for t in texts:
        words |= {w.lower() for c in categories(t) for w in c.split()} | {t.strip().lower()}
        words |= set(re.findall(r"[a-z0-9_]+|[^\sa-z0-9_]+", t.lower()))
    return words


def search_descriptions(
    arrays: dict[str, np.ndarray], strings: dict[int, str], query: str, limit: int = 20
) -> list[tuple[int, float]]:
    """Rows whose description matches every content word of ``query`` the way a person types it
    ("is not", "closing bracket", a quoted token): in its tokens' text and kinds, its class, its
    context token; best F1 on held-out text first: ``[(row, f1)]``. "No simple pattern" units last."""
    words = query_words(query.replace('"', " ").replace("`", " ")) or query_words(query)
    if not words or not ({"describe_kind", "describe_token"} & set(arrays)):
        return []
    counts = np.asarray(arrays["describe_counts"]).astype(np.float64)
    found: list[tuple[int, float, bool]] = []
    bags: dict[tuple[Any, ...], set[str]] = {}
    for row in range(len(counts)):
        kind, toks, cls, context, _ = pattern_of(row, arrays)
        if kind == 0:
            continue
        key = (abs(kind), tuple(toks), cls, context)
        if key not in bags:
            texts = [strings.get(t, "") for t in toks] + ([strings.get(context, "")] if context >= 0 else [])
            bag = _bag(texts)
            if abs(kind) == 2:
                bag |= set(CLASSES[cls][0].split())
            bags[key] = bag
        if all(w in bags[key] for w in words):
            o, f, b = counts[row]
            found.append((row, 2 * b / (o + f) if o + f else 0.0, kind < 0))
    found.sort(key=lambda x: (x[2], -x[1], x[0]))
    return [(r, f1) for r, f1, _ in found[:limit]]
