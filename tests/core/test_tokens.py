"""Token spans in code points and UTF-16 code units, including tokens that split a character."""

from __future__ import annotations

import pytest

from lenscope.tokens import tokenize_with_spans

SAMPLES = [
    "plain ascii, nothing odd",
    "emoji 😀🧪 and more 🫠",
    "CJK 日本語 中文 한국어",
    "combining e\u0301 a\u0308 and ZWJ 👩\u200d💻",
    "\u00a0\t\r\n mixed whitespace \u2028 line sep",
]


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


@pytest.mark.parametrize("text", SAMPLES)
def test_spans_tile_the_text_in_both_units(gelu, text: str) -> None:
    sp = tokenize_with_spans(gelu.tokenizer, text)
    starts, ends = sp.start.tolist(), sp.end.tolist()
    assert starts[0] == 0 and ends[-1] == len(text)
    assert all(e == s for e, s in zip(ends, starts[1:]))  # contiguous, no overlap
    assert "".join(sp.texts(text)) == text
    for s, e, s16, e16 in zip(starts, ends, sp.start_utf16.tolist(), sp.end_utf16.tolist()):
        assert s16 == utf16_len(text[:s]) and e16 == utf16_len(text[:e])


def test_split_character_belongs_to_the_token_holding_its_last_byte(gelu) -> None:
    tok = gelu.tokenizer
    text = "x 🫠 y"  # a rare emoji: a 4-byte character that byte-level BPE splits
    sp = tokenize_with_spans(tok, text)
    pieces = [tok.convert_ids_to_tokens(i) for i in sp.ids.tolist()]
    assert len(sp.ids) > 3, pieces
    emoji = text.index("🫠")
    owners = [i for i, (s, e) in enumerate(zip(sp.start.tolist(), sp.end.tolist())) if s <= emoji < e]
    assert len(owners) == 1
    owner = owners[0]
    # the tokens before the owner that hold the emoji's leading bytes have empty spans there
    leading = [i for i in range(owner) if sp.partial[i]]
    assert leading, "the emoji should be split across tokens"
    for i in leading:
        assert sp.start[i] == sp.end[i] == emoji
    assert sp.partial[owner]
    assert sp.end_utf16[owner] - sp.start_utf16[owner] == 2  # a surrogate pair in UTF-16
    # byte lengths of the pieces add up to the UTF-8 encoding
    assert sum(len(p) for p in pieces) == len(text.encode("utf-8"))
