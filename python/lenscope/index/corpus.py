"""Documents for an index or a scan: files read as UTF-8 text, notebooks as their cells' sources,
with what was skipped and why.

Only regular files are read: FIFOs, sockets and devices (which could block a read forever),
names that are not valid UTF-8, symlink loops and links out of the root are skipped and listed,
never followed or opened.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lenscope.paths import is_hidden, resolve_quietly
from lenscope.validation import clean_string

CELL_SEPARATOR = "\n\n"
"""Between two cells' sources in a notebook's text, so that no token spans two cells."""


@dataclass(frozen=True)
class Document:
    path: str  # as recorded in the index (relative to the corpus root)
    text: str
    sha256: str
    cells: tuple[tuple[int, int], ...] = ()  # notebooks: each cell's (start, end) in ``text``, code points


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def locate(cells: tuple[tuple[int, int], ...] | list[list[int]], offset: int) -> tuple[int | None, int]:
    """``(cell, offset within that cell)`` of a document offset; ``(None, offset)`` for a plain file."""
    if not cells:
        return None, offset
    c = max(0, bisect.bisect_right([s for s, _ in cells], offset) - 1)
    return c, offset - cells[c][0]


def notebook_text(raw: bytes) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The sources of a notebook's cells (every cell, so indices match the notebook's), joined."""
    nb = json.loads(raw.decode("utf-8"))
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError("no cells list")
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    at = 0
    for cell in cells:
        src = cell.get("source", "") if isinstance(cell, dict) else ""
        src = "".join(src) if isinstance(src, list) else str(src)
        spans.append((at, at + len(src)))
        parts.append(src)
        at += len(src) + len(CELL_SEPARATOR)
    return CELL_SEPARATOR.join(parts), tuple(spans)


def _utf8_name(rel: str) -> bool:
    try:
        rel.encode("utf-8")  # surrogate-escaped bytes of a non-UTF-8 name fail here
        return True
    except UnicodeEncodeError:
        return False


def _shown(rel: str) -> str:
    """A name that can be shown and sent (undecodable bytes replaced)."""
    return os.fsencode(rel).decode("utf-8", "replace")


def _walk(root: Path, folder: Path, real_root: Path, skipped: list[Skipped]) -> list[Path]:
    """Files under ``folder``, sorted; hidden entries and links out of the root left out."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                out.append(Path(dirpath) / name)
        for d in dirnames:  # a symlinked folder: followed only while it stays inside the root
            p = Path(dirpath) / d
            if p.is_symlink():
                real = resolve_quietly(p)
                if real is None or not real.is_relative_to(real_root):
                    skipped.append(Skipped(_shown(p.relative_to(root).as_posix()), "a link that leaves the root or loops"))
                    continue
                out += _walk(root, p, real_root, skipped)
    return out


def read_documents(root: Path, paths: Iterable[str], *, allow_hidden: bool = False) -> tuple[list[Document], list[Skipped]]:
    """Read ``paths`` (relative to ``root``; folders expand to their files, sorted).

    Binary, undecodable, non-regular and unreachable files are skipped and listed, not fatal.
    Callers that take paths from users check them against the root first
    (:func:`lenscope.paths.safe_relative`).
    """
    docs: list[Document] = []
    skipped: list[Skipped] = []
    files: list[Path] = []
    real_root = root.resolve()
    for rel in paths:
        p = root / rel
        if p.is_dir():
            files += _walk(root, p, real_root, skipped)
        else:
            files.append(p)
    seen: set[Path] = set()
    for f in files:
        if f in seen:
            continue
        seen.add(f)
        rel = f.relative_to(root).as_posix()
        if not _utf8_name(rel):
            skipped.append(Skipped(_shown(rel), "file name is not valid UTF-8"))
            continue
        if not allow_hidden and is_hidden(rel):
            skipped.append(Skipped(rel, "hidden"))
            continue
        real = resolve_quietly(f)
        if real is None or not real.is_relative_to(real_root):
            skipped.append(Skipped(rel, "a link that leaves the root or loops"))
            continue
        try:
            mode = real.stat().st_mode
        except OSError as exc:
            skipped.append(Skipped(rel, f"unreadable: {exc.strerror or exc}"))
            continue
        if not stat.S_ISREG(mode):
            skipped.append(Skipped(rel, "not a regular file (a FIFO, socket or device)"))
            continue
        try:
            raw = real.read_bytes()
        except OSError as exc:
            skipped.append(Skipped(rel, f"unreadable: {exc.strerror or exc}"))
            continue
        if b"\x00" in raw[:8192]:
            skipped.append(Skipped(rel, "binary (NUL bytes)"))
            continue
        cells: tuple[tuple[int, int], ...] = ()
        try:
            if rel.endswith(".ipynb"):
                text, cells = notebook_text(raw)
            else:
                text = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(Skipped(rel, "not valid UTF-8"))
            continue
        except (ValueError, AttributeError):
            skipped.append(Skipped(rel, "not a readable notebook (invalid JSON)"))
            continue
        if not text.strip():
            skipped.append(Skipped(rel, "empty"))
            continue
        try:
            clean_string(text)
        except ValueError as exc:  # a notebook's JSON can spell NULs and lone surrogates
            skipped.append(Skipped(rel, f"not text: {exc}"))
            continue
        docs.append(Document(rel, text, hashlib.sha256(raw).hexdigest(), cells))
    return docs, skipped
