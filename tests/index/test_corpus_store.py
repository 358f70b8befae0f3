"""The index's corpus (format 2): every token's string and span read back from UTF-8 text and
ids equals what the tokenizer gave, for byte-level tokenizers (spans derived) and others
(spans stored), with windows that start inside a character."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lenscope.index.build import BuildOptions, build_index
from lenscope.index.card import neuron_card, stored_document
from lenscope.index.corpus import Document
from lenscope.index.corpus_store import ALWAYS as CORPUS_ALWAYS
from lenscope.index.corpus_store import DERIVED, CorpusWriter, corpus_reader
from lenscope.index.store import FORMAT, MANIFEST, open_index, write_index
from lenscope.tokens import tokenize_with_spans

TEXTS = [
    "def f(x):\n    return x + 1  # plain ASCII\n",
    "naïve café — 東京 🙂🙃 e\u0301 \U0001f9ea𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ok",  # multi-byte, combining, astral
    "🙂" * 7 + "x" + "漢字" * 5,  # byte-level tokens end inside characters
    "a",
]


def read_back(tokenizer: Any, body: int) -> int:
    writer = CorpusWriter(tokenizer, body)
    for t in TEXTS:
        writer.add(t)
    corpus = writer.finish()
    arrays = {**corpus.arrays(), "windows": writer.windows_array()}
    reader = corpus_reader(arrays)
    for d, text in enumerate(TEXTS):
        assert reader.document(d) == text
    checked = 0
    for w, (d, start, n) in enumerate(arrays["windows"].tolist()):
        want = tokenize_with_spans(tokenizer, TEXTS[d])
        for first in range(start, start + n):
            for count in range(1, start + n - first + 1):
                strings, s, e = reader.tokens(w, first, count)
                assert s.tolist() == want.start[first : first + count].tolist(), (d, w, first, count)
                assert e.tolist() == want.end[first : first + count].tolist(), (d, w, first, count)
                assert strings == want.texts(TEXTS[d])[first : first + count]
                checked += 1
    return checked


def test_byte_level_spans_are_derived_exactly(gelu: Any) -> None:
    tok = gelu.tokenizer
    partial = tokenize_with_spans(tok, TEXTS[2]).partial
    assert partial.any()  # the case of a window starting inside a character is really there
    writer = CorpusWriter(tok, 3)
    for t in TEXTS:
        writer.add(t)
    corpus = writer.finish()
    assert "token_bytes" in corpus.names and "token_start" not in corpus.names
    assert corpus.array("tokens").dtype == np.uint16 and corpus.array("text").dtype == np.uint8
    assert bytes(corpus.array("text")) == "".join(TEXTS).encode("utf-8")
    assert sum(read_back(tok, body) for body in (1, 2, 3, 7, 1000)) > 1000


@pytest.fixture(scope="module")
def word_level() -> Any:
    """A tokenizer that is not byte-level and whose spans leave gaps (spaces belong to no token)."""
    vocab = {"[UNK]": 0}
    for t in TEXTS:
        for word in pre_tokenizers.Whitespace().pre_tokenize_str(t):
            vocab.setdefault(word[0], len(vocab))
    inner = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="[UNK]")


def test_other_tokenizers_keep_their_spans(word_level: Any) -> None:
    writer = CorpusWriter(word_level, 2)
    for t in TEXTS:
        writer.add(t)
    corpus = writer.finish()
    assert "token_start" in corpus.names and "token_bytes" not in corpus.names
    assert sum(read_back(word_level, body) for body in (1, 2, 5, 1000)) > 50


def test_scratch_folder_goes_with_the_corpus(gelu: Any) -> None:
    writer = CorpusWriter(gelu.tokenizer, 8)
    writer.add(TEXTS[0])
    corpus = writer.finish()
    folder = corpus.folder
    assert folder.is_dir() and not list(folder.glob("*.raw"))
    del corpus
    assert not folder.exists()


def test_format_1_indexes_read_as_before(gelu: Any, tmp_path: Path) -> None:
    """An index written before format 2 (code points, stored spans) gives the same cards and
    documents as the same index in the current format."""
    docs = [Document(f"d{i}.py", t * 3, str(i)) for i, t in enumerate(TEXTS)]
    arrays = build_index(gelu, docs, BuildOptions(k=4, window=9))
    new = write_index(arrays, tmp_path / "v2", model="m", n_layers=1, tokenizer={}, docs=docs, skipped=[], root=".")
    old = tmp_path / "v1"
    shutil.copytree(new, old)
    for name in CORPUS_ALWAYS + DERIVED:
        (old / f"{name}.npy").unlink()
    spans = [tokenize_with_spans(gelu.tokenizer, d.text) for d in docs]
    v1 = {
        "tokens": np.concatenate([s.ids for s in spans]).astype(np.int32),
        "token_start": np.concatenate([s.start for s in spans]).astype(np.int32),
        "token_end": np.concatenate([s.end for s in spans]).astype(np.int32),
        "doc_offsets": np.concatenate([[0], np.cumsum([len(s.ids) for s in spans])]).astype(np.int64),
        "text": np.frombuffer("".join(d.text for d in docs).encode("utf-32-le"), dtype=np.uint32),
        "doc_chars": np.concatenate([[0], np.cumsum([len(d.text) for d in docs])]).astype(np.int64),
    }
    for name, value in v1.items():
        np.save(old / f"{name}.npy", value)
    manifest = json.loads((old / MANIFEST).read_text())
    del manifest["corpus"]
    (old / MANIFEST).write_text(json.dumps({**manifest, "format": 1}))
    a, b = open_index(new), open_index(old)
    assert a.manifest["format"] == FORMAT and b.manifest["format"] == 1
    for n in range(a.d_mlp):
        ca, cb = neuron_card(a, 0, n), neuron_card(b, 0, n)
        assert {**ca, "index_path": ""} == {**cb, "index_path": ""}
    assert any(e["tokens"] and not e["tokens"][0].isascii() for n in range(a.d_mlp) for e in neuron_card(a, 0, n)["examples"])
    for d in docs:
        assert stored_document(a, d.path) == stored_document(b, d.path) == {"path": d.path, "cell": None, "text": d.text}


def test_a_killed_builds_scratch_is_removed_by_the_next(gelu: Any, tmp_path: Path) -> None:
    dead = tmp_path / ".lenscope-corpus-999999999-abc"  # no such process
    dead.mkdir()
    (dead / "text.raw").write_bytes(b"x" * 100)
    writer = CorpusWriter(gelu.tokenizer, 8, tmp_path)
    assert not dead.exists() and writer.folder.parent == tmp_path
    other = CorpusWriter(gelu.tokenizer, 8, tmp_path)  # a live build's folder stays
    assert writer.folder.exists() and other.folder.exists()
    writer.discard()
    other.discard()
