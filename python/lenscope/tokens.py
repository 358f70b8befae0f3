"""Tokenize text and map every token to its span in the text.

Spans are given in code points (Python string indices) and in UTF-16 code units (what
CodeMirror and JavaScript count). A byte-level BPE token can end inside a multi-byte UTF-8
character; the rule here is that **a character belongs to the token holding its last byte**.
So spans never overlap, they tile the text exactly (the concatenation of all slices is the
text), and a token holding only the leading bytes of a character has an empty span at that
character's start and ``partial=True``. Tokenizers that are not byte-level fall back to the
tokenizer's own character offsets.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode`` table used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


@dataclass(frozen=True)
class TokenSpans:
    ids: np.ndarray  # int64 [n]
    start: np.ndarray  # int32 [n], code points
    end: np.ndarray
    start_utf16: np.ndarray  # int32 [n], UTF-16 code units
    end_utf16: np.ndarray
    partial: np.ndarray  # bool [n]: the token's bytes start or end inside a character

    def texts(self, text: str) -> list[str]:
        return [text[s:e] for s, e in zip(self.start.tolist(), self.end.tolist())]

    def after(self, first: int, chars: int, units: int) -> TokenSpans:
        """Tokens ``first..`` with spans made relative to a text starting ``chars`` code points
        (``units`` UTF-16 units) in; a token straddling that start is clipped to it."""
        return TokenSpans(
            ids=self.ids[first:],
            start=np.maximum(self.start[first:] - chars, 0),
            end=self.end[first:] - chars,
            start_utf16=np.maximum(self.start_utf16[first:] - units, 0),
            end_utf16=self.end_utf16[first:] - units,
            partial=self.partial[first:],
        )


def encode(tokenizer: Any, text: str) -> list[int]:
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids


_BYTE_TABLES: weakref.WeakKeyDictionary[Any, tuple[int, np.ndarray]] = weakref.WeakKeyDictionary()


def byte_table(tokenizer: Any) -> np.ndarray:
    """Bytes of every vocabulary entry if it is a byte-level piece, else -1; built once per
    tokenizer (and again if tokens are added to it)."""
    size = len(tokenizer)
    cached = _BYTE_TABLES.get(tokenizer)
    if cached is not None and cached[0] == size:
        return cached[1]
    table = _byte_decoder()
    pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
    out = np.asarray(
        [-1 if piece is None or any(ch not in table for ch in piece) else len(piece) for piece in pieces], dtype=np.int64
    )
    _BYTE_TABLES[tokenizer] = (size, out)
    return out


def _byte_lengths(tokenizer: Any, ids: list[int], text: str, nbytes: int | None = None) -> np.ndarray | None:
    """Bytes per token if the vocabulary is byte-level and the bytes add up to the text."""
    table = byte_table(tokenizer)
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= len(table)):
        return None
    lengths = table[arr]
    if arr.size and int(lengths.min()) < 0:
        return None
    total = len(text.encode("utf-8")) if nbytes is None else nbytes
    return lengths if int(lengths.sum()) == total else None


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _utf8_lengths(cps: np.ndarray) -> np.ndarray:
    return 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)


def _utf16_prefix(text: str, cps: np.ndarray | None = None) -> np.ndarray:
    """``out[i]`` = UTF-16 length of ``text[:i]``."""
    cps = _code_points(text) if cps is None else cps
    return np.concatenate([[0], np.cumsum(1 + (cps >= 0x10000), dtype=np.int32)]).astype(np.int32)


def tokenize_with_spans(tokenizer: Any, text: str) -> TokenSpans:
    ids = encode(tokenizer, text)
    n = len(ids)
    nbytes = len(text.encode("utf-8"))
    lengths = _byte_lengths(tokenizer, ids, text, nbytes)
    if lengths is not None and nbytes == len(text):
        # ASCII: a byte is a character and a UTF-16 unit, so the spans are the byte offsets.
        end = np.cumsum(lengths).astype(np.int32)
        start = np.concatenate([[0], end[:-1]]).astype(np.int32) if n else np.zeros(0, np.int32)
        return TokenSpans(
            ids=np.asarray(ids, dtype=np.int64),
            start=start,
            end=end,
            start_utf16=start.copy(),
            end_utf16=end.copy(),
            partial=np.zeros(n, dtype=bool),
        )
    cps = _code_points(text)
    if lengths is not None:
        # char_end_byte[c] = byte offset just past character c; a token ending at byte b owns
        # every character whose last byte is before b.
        char_bytes = _utf8_lengths(cps)
        char_end_byte = np.cumsum(char_bytes)
        char_start_byte = char_end_byte - char_bytes
        tok_end_byte = np.cumsum(lengths)
        tok_start_byte = tok_end_byte - lengths
        end = np.searchsorted(char_end_byte, tok_end_byte, side="right").astype(np.int32)
        start = np.concatenate([[0], end[:-1]]).astype(np.int32) if n else np.zeros(0, np.int32)
        # which byte offsets are character boundaries (offset 0 counts as a start)
        is_start = np.zeros(nbytes + 1, dtype=bool)
        is_start[char_start_byte] = True
        is_start[0] = True
        is_end = np.zeros(nbytes + 1, dtype=bool)
        is_end[char_end_byte] = True
        partial = ~(is_start[tok_start_byte] & is_end[tok_end_byte])
    else:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        start = np.asarray([o[0] for o in offsets], dtype=np.int32)
        end = np.asarray([o[1] for o in offsets], dtype=np.int32)
        partial = np.zeros(n, dtype=bool)
    u16 = _utf16_prefix(text, cps)
    return TokenSpans(
        ids=np.asarray(ids, dtype=np.int64),
        start=start,
        end=end,
        start_utf16=u16[start],
        end_utf16=u16[end],
        partial=partial,
    )


def split_context(tokenizer: Any, context: str, text: str) -> tuple[list[int], TokenSpans]:
    """Tokenize ``context + text`` as one string; return the context's token ids and the text's spans.

    Tokenizing the two separately would put a token boundary at the selection's start that the
    model never saw in training: a selection starting at ``return`` on an indented line would
    make the context end in a four-space token followed by ``return``, where the file has three
    spaces followed by `` return``. A token that straddles the boundary belongs to the text, its
    span clipped to the text's start; so does a token holding only leading bytes of the text's
    first character.
    """
    if not context:
        return [], tokenize_with_spans(tokenizer, text)
    joint = tokenize_with_spans(tokenizer, context + text)
    c = len(context)
    in_text = (joint.end > c) | ((joint.start == c) & (joint.end == c))
    first = int(np.argmax(in_text)) if in_text.any() else len(joint.ids)
    units = int(_utf16_prefix(context)[-1])
    return joint.ids[:first].tolist(), joint.after(first, c, units)


_STRINGS: weakref.WeakKeyDictionary[Any, dict[int, str]] = weakref.WeakKeyDictionary()


def token_strings(tokenizer: Any, ids: list[int]) -> list[str]:
    """Each id decoded on its own (a lone partial byte decodes to U+FFFD), memoized per tokenizer."""
    known = _STRINGS.setdefault(tokenizer, {})
    missing = [i for i in ids if i not in known]
    if missing:
        decoded = tokenizer.batch_decode([[i] for i in missing], clean_up_tokenization_spaces=False)
        known.update(zip(missing, decoded))
    return [known[i] for i in ids]
