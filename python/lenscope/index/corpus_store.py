"""The corpus an index shows its examples from: the documents' text and token ids, written to
disk while tokenizing (a build never holds the corpus in memory) and read a window at a time.

Format 2 (format 1 kept code points as uint32 and three int32 arrays a token: ~26 bytes a
token of code; this is ~5.5):

- ``text``         uint8 [bytes]: the documents' UTF-8, one after another
- ``tokens``       uint16 [T] (int32 when the vocabulary has more than 65,536 entries)
- ``doc_offsets``, ``doc_bytes``, ``doc_chars``  int64 [D + 1]: where each document starts
  in ``tokens``, in ``text``, and in code points
- ``window_text``  int64 [W, 3]: per window, in its document, the byte offset of the
  character holding its first token's first byte, that character's index, and the first
  token's byte offset (inside that character when a token ends mid-character)
- ``token_bytes``  int16 [vocab]: bytes of each vocabulary entry, when the tokenizer is
  byte-level and every document's tokens add up to its bytes; token spans are then derived
  from the ids with the same rule as :mod:`lenscope.tokens` (a character belongs to the token
  holding its last byte), so they are exactly what the build's tokenizer gave
- ``token_start``, ``token_end``  int32 [T]: code points in the document, stored only for
  other tokenizers (whose spans cannot be derived from bytes)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from lenscope.processes import alive
from lenscope.tokens import byte_table, tokenize_with_spans

ALWAYS = ("text", "tokens", "doc_offsets", "doc_bytes", "doc_chars", "window_text")
DERIVED = ("token_bytes",)
STORED_SPANS = ("token_start", "token_end")
FORMAT1 = ("tokens", "token_start", "token_end", "doc_offsets", "text", "doc_chars")
_STREAMED = {"text": np.uint8, "token_start": np.int32, "token_end": np.int32}


def _utf8_lengths(cps: np.ndarray) -> np.ndarray:
    return 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


class StoredCorpus:
    """A corpus's arrays in a folder: a build's scratch folder (removed with this object) or an index's."""

    def __init__(self, folder: Path, names: tuple[str, ...], *, scratch: bool = False) -> None:
        self.folder = folder
        self.names = names
        self._cache: dict[str, np.ndarray] = {}
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(folder), True) if scratch else None

    def array(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        return self._cache[name]

    def with_arrays(self, **replaced: np.ndarray) -> StoredCorpus:
        """The same corpus with some arrays replaced in memory (what-if checks: scrambled tokens)."""
        other = StoredCorpus(self.folder, self.names)
        other._cache.update(replaced)
        return other

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: self.array(name) for name in self.names}

    def move_into(self, target: Path) -> None:
        """Put the arrays' files in ``target`` (moved out of a scratch folder, copied from an index)."""
        self._cache.clear()
        for name in self.names:
            src, dst = self.folder / f"{name}.npy", target / f"{name}.npy"
            if self._cleanup is not None:
                shutil.move(src, dst)
            else:
                shutil.copyfile(src, dst)
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None
        self.folder = target


SCRATCH_PREFIX = ".lenscope-corpus-"


def remove_stale_scratch(parent: Path) -> None:
    """Scratch folders of builds whose process is gone (killed before it could clean up)."""
    for folder in parent.glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


class CorpusWriter:
    """Appends documents' text and tokens to files as they are tokenized; keeps only per-document
    and per-window offsets in memory."""

    def __init__(self, tokenizer: Any, body: int, parent: Path | None = None, *, table: np.ndarray | None = None) -> None:
        """``table``: bytes of each vocabulary entry (-1: not a byte-level piece); default: the
        tokenizer's. Synthetic corpora give a table and no tokenizer, and add tokens themselves."""
        self.tokenizer = tokenizer
        self.body = body
        self.table = byte_table(tokenizer) if table is None else table
        self.dtype = np.uint16 if len(self.table) <= 1 << 16 else np.int32
        if parent is not None:
            remove_stale_scratch(parent)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=parent))
        self.byte_level = True
        self.n_tokens: list[int] = []
        self.doc_bytes: list[int] = [0]
        self.doc_chars: list[int] = [0]
        self.windows: list[tuple[int, int, int]] = []
        self.window_text: list[tuple[int, int, int]] = []
        names = ("tokens", *_STREAMED)
        self._files: dict[str, BinaryIO] = {n: open(self.folder / f"{n}.raw", "wb") for n in names}  # noqa: SIM115 (closed in finish)

    def add(self, text: str) -> int:
        """Tokenize one document and append it; returns its number of tokens."""
        spans = tokenize_with_spans(self.tokenizer, text)
        return self.add_tokens(text, spans.ids, spans.start, spans.end)

    def add_tokens(self, text: str, ids: np.ndarray, start: np.ndarray, end: np.ndarray) -> int:
        """Append one document given its tokens' ids and code-point spans (as
        :func:`lenscope.tokens.tokenize_with_spans` gives them)."""
        raw = text.encode("utf-8")
        lengths = self.table[ids] if ids.size and int(ids.max()) < len(self.table) else np.full(len(ids), -1)
        if not (ids.size == 0 or (int(lengths.min()) >= 0 and int(lengths.sum()) == len(raw))):
            self.byte_level = False
            lengths = None
        if ids.size and int(ids.max()) >= np.iinfo(self.dtype).max + 1:
            raise ValueError(f"token id {int(ids.max())} does not fit the corpus's {np.dtype(self.dtype).name} ids")
        d, n = len(self.n_tokens), len(ids)
        firsts = np.arange(0, n, self.body)
        chars = start[firsts].astype(np.int64)
        if len(raw) == len(text):  # ASCII: bytes are characters
            char_bytes = token_bytes = chars
        else:
            char_start = np.concatenate([[0], np.cumsum(_utf8_lengths(_code_points(text)))])
            char_bytes = char_start[chars]
            token_bytes = char_bytes if lengths is None else np.concatenate([[0], np.cumsum(lengths)])[firsts].astype(np.int64)
        for s, cb, c, tb in zip(firsts.tolist(), char_bytes.tolist(), chars.tolist(), token_bytes.tolist()):
            self.windows.append((d, s, min(self.body, n - s)))
            self.window_text.append((cb, c, tb))
        self._files["tokens"].write(ids.astype(self.dtype).tobytes())
        self._files["text"].write(raw)
        self._files["token_start"].write(start.astype(np.int32).tobytes())
        self._files["token_end"].write(end.astype(np.int32).tobytes())
        self.n_tokens.append(n)
        self.doc_bytes.append(self.doc_bytes[-1] + len(raw))
        self.doc_chars.append(self.doc_chars[-1] + len(text))
        return n

    def finish(self) -> StoredCorpus:
        """The corpus as ``.npy`` files (token spans kept only when they cannot be derived)."""
        for f in self._files.values():
            f.close()
        dtypes = {"tokens": self.dtype, **_STREAMED}
        spans = DERIVED if self.byte_level else STORED_SPANS
        for name in ("tokens", "text", *(n for n in STORED_SPANS if n in spans)):
            _raw_to_npy(self.folder / f"{name}.raw", self.folder / f"{name}.npy", np.dtype(dtypes[name]))
        for name in STORED_SPANS:
            (self.folder / f"{name}.raw").unlink(missing_ok=True)
        small = {
            "doc_offsets": np.concatenate([[0], np.cumsum(self.n_tokens, dtype=np.int64)]).astype(np.int64),
            "doc_bytes": np.asarray(self.doc_bytes, dtype=np.int64),
            "doc_chars": np.asarray(self.doc_chars, dtype=np.int64),
            "window_text": np.asarray(self.window_text, dtype=np.int64).reshape(-1, 3),
        }
        if self.byte_level:
            small["token_bytes"] = self.table.astype(np.int16)
        for name, value in small.items():
            np.save(self.folder / f"{name}.npy", value, allow_pickle=False)
        return StoredCorpus(self.folder, (*ALWAYS, *spans), scratch=True)

    def discard(self) -> None:
        for f in self._files.values():
            f.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def windows_array(self) -> np.ndarray:
        return np.asarray(self.windows, dtype=np.int32).reshape(-1, 3)


def _raw_to_npy(raw: Path, out: Path, dtype: np.dtype[Any]) -> None:
    """A ``.npy`` of a file of raw values, streamed (never the whole array in memory)."""
    n = os.path.getsize(raw) // dtype.itemsize
    with open(out, "wb") as f, open(raw, "rb") as src:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                                                 "shape": (n,)})  # fmt: skip
        shutil.copyfileobj(src, f, 1 << 20)
    raw.unlink()


class CorpusReader(Protocol):
    def tokens(self, window: int, first: int, count: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Tokens ``first .. first + count`` of a document (all inside ``window``): their strings
        and their code-point spans in the document."""
        ...

    def document(self, doc: int) -> str: ...


def corpus_reader(arrays: Mapping[str, np.ndarray]) -> CorpusReader:
    if "window_text" not in arrays:
        return _Format1(arrays)
    return _Derived(arrays) if "token_bytes" in arrays else _StoredSpans(arrays)


class _Format2:
    def __init__(self, a: Mapping[str, np.ndarray]) -> None:
        self.a = a

    def document(self, doc: int) -> str:
        lo, hi = int(self.a["doc_bytes"][doc]), int(self.a["doc_bytes"][doc + 1])
        return np.asarray(self.a["text"][lo:hi]).tobytes().decode("utf-8")


class _Derived(_Format2):
    """Byte-level tokens: spans from the ids' byte lengths, exactly as :mod:`lenscope.tokens` cut them."""

    def tokens(self, window: int, first: int, count: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        a = self.a
        doc, start, _ = (int(x) for x in a["windows"][window])
        cb, c, tb = (int(x) for x in a["window_text"][window])
        g = int(a["doc_offsets"][doc]) + start
        ids = np.asarray(a["tokens"][g : g + first - start + count]).astype(np.int64)
        lengths = np.asarray(a["token_bytes"])[ids].astype(np.int64)
        ends = tb + np.cumsum(lengths)
        starts = ends - lengths
        base, limit = int(a["doc_bytes"][doc]), int(a["doc_bytes"][doc + 1])
        hi = int(ends[-1]) if len(ends) else tb
        text = a["text"]
        while base + hi < limit and 0x80 <= int(text[base + hi]) < 0xC0:  # a token ended mid-character
            hi += 1
        segment = np.asarray(text[base + cb : base + hi]).tobytes().decode("utf-8")
        char_end = cb + np.cumsum(_utf8_lengths(_code_points(segment)))
        s = np.searchsorted(char_end, starts[-count:], side="right")
        e = np.searchsorted(char_end, ends[-count:], side="right")
        return [segment[i:j] for i, j in zip(s.tolist(), e.tolist())], (s + c).astype(np.int64), (e + c).astype(np.int64)


class _StoredSpans(_Format2):
    def tokens(self, window: int, first: int, count: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        a = self.a
        doc, start, n = (int(x) for x in a["windows"][window])
        cb, c, _ = (int(x) for x in a["window_text"][window])
        g = int(a["doc_offsets"][doc])
        starts = np.asarray(a["token_start"][g + first : g + first + count]).astype(np.int64)
        ends = np.asarray(a["token_end"][g + first : g + first + count]).astype(np.int64)
        last = int(np.asarray(a["token_end"][g + start : g + start + n]).max())
        base, limit = int(a["doc_bytes"][doc]), int(a["doc_bytes"][doc + 1])
        # n characters are at most 4n bytes; a character cut at the end is dropped, never reached
        raw = np.asarray(a["text"][base + cb : min(limit, base + cb + 4 * (last - c))]).tobytes()
        segment = raw.decode("utf-8", errors="ignore")[: last - c]
        return [segment[s - c : e - c] for s, e in zip(starts.tolist(), ends.tolist())], starts, ends


class _Format1:
    """Indexes built before format 2: code points and stored spans."""

    def __init__(self, a: Mapping[str, np.ndarray]) -> None:
        self.a = a

    def tokens(self, window: int, first: int, count: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        a = self.a
        doc = int(a["windows"][window][0])
        g = int(a["doc_offsets"][doc]) + first
        base = int(a["doc_chars"][doc])
        starts = np.asarray(a["token_start"][g : g + count]).astype(np.int64)
        ends = np.asarray(a["token_end"][g : g + count]).astype(np.int64)
        text = a["text"]
        pairs = zip(starts.tolist(), ends.tolist())
        return [np.asarray(text[base + s : base + e]).tobytes().decode("utf-32-le") for s, e in pairs], starts, ends

    def document(self, doc: int) -> str:
        lo, hi = int(self.a["doc_chars"][doc]), int(self.a["doc_chars"][doc + 1])
        return np.asarray(self.a["text"][lo:hi]).tobytes().decode("utf-32-le")
