"""Paths from requests: only files under the server root, checked before anything is read."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from lenscope.errors import LenscopeError


class PathForbidden(LenscopeError):
    code = "forbidden_path"


def safe_relative(root: Path, path: str) -> str:
    """``path`` as a POSIX path relative to ``root``, or :class:`PathForbidden`.

    Refused: absolute paths, any ``..`` segment, NUL bytes, and anything that resolves
    (following symlinks) outside the root.
    """
    if not isinstance(path, str) or not path or "\x00" in path:
        raise PathForbidden(f"invalid path {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise PathForbidden(f"{path!r} is absolute: give paths relative to the server root")
    if ".." in pure.parts:
        raise PathForbidden(f"{path!r} has a '..' segment: paths must stay under the server root")
    root = root.resolve()
    resolved = (root / pure).resolve()
    if not resolved.is_relative_to(root):
        raise PathForbidden(f"{path!r} leads outside the server root (a symlink?)")
    if not resolved.exists():
        raise PathForbidden(f"{path!r} does not exist under the server root")
    return resolved.relative_to(root).as_posix() or "."
