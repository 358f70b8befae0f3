"""Documents for an index: files read as UTF-8 text, with what was skipped and why."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Document:
    path: str  # as recorded in the index (relative to the corpus root)
    text: str
    sha256: str


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def read_documents(root: Path, paths: Iterable[str]) -> tuple[list[Document], list[Skipped]]:
    """Read ``paths`` (relative to ``root``; folders expand to their files, sorted).

    Binary and undecodable files are skipped and listed, not fatal. Callers that take paths
    from users check them against the root first (the server does: ``lenscope_server.paths``).
    """
    docs: list[Document] = []
    skipped: list[Skipped] = []
    files: list[Path] = []
    for rel in paths:
        p = root / rel
        if p.is_dir():
            # hidden files and folders (.git, .lenscope, ...) are not corpus; symlinks out of the root are not followed
            real_root = root.resolve()
            files += sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(root).parts)
                and f.resolve().is_relative_to(real_root)
            )
        else:
            files.append(p)
    seen: set[Path] = set()
    for f in files:
        if f in seen:
            continue
        seen.add(f)
        rel = f.relative_to(root).as_posix()
        try:
            raw = f.read_bytes()
        except OSError as exc:
            skipped.append(Skipped(rel, f"unreadable: {exc.strerror or exc}"))
            continue
        if b"\x00" in raw[:8192]:
            skipped.append(Skipped(rel, "binary (NUL bytes)"))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(Skipped(rel, "not valid UTF-8"))
            continue
        if not text.strip():
            skipped.append(Skipped(rel, "empty"))
            continue
        docs.append(Document(rel, text, hashlib.sha256(raw).hexdigest()))
    return docs, skipped
