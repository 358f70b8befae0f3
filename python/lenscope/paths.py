"""Paths from users (HTTP requests, the CLI): only files under a root, checked before anything is read."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from lenscope.errors import LenscopeError


class PathForbidden(LenscopeError):
    code = "forbidden_path"


def is_hidden(rel: str) -> bool:
    """A path with a component starting with '.' (Jupyter's contents API hides these too)."""
    return any(part.startswith(".") for part in PurePosixPath(rel).parts if part != ".")


def resolve_quietly(path: Path) -> Path | None:
    """``path`` resolved through symlinks, or None when that fails (a symlink loop, a name too long)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: "Symlink loop" before Python 3.13
        return None


def safe_relative(root: Path, path: str, *, allow_hidden: bool = False, where: str = "the server root") -> str:
    """``path`` as a POSIX path relative to ``root``, or :class:`PathForbidden`.

    Refused: absolute paths, any ``..`` segment, NUL bytes, hidden components (unless
    ``allow_hidden``), names that cannot be resolved (symlink loops, names too long), and
    anything that resolves (following symlinks) outside the root.
    """
    if not isinstance(path, str) or not path or "\x00" in path:
        raise PathForbidden(f"invalid path {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise PathForbidden(f"{path!r} is absolute: give paths relative to {where}")
    if ".." in pure.parts:
        raise PathForbidden(f"{path!r} has a '..' segment: paths must stay under {where}")
    if not allow_hidden and is_hidden(path):
        raise PathForbidden(f"{path!r} is hidden (a name starting with '.'): hidden files are not read")
    root = root.resolve()
    resolved = resolve_quietly(root / pure)
    if resolved is None:
        raise PathForbidden(f"{path!r} cannot be resolved (a symlink loop, or a name too long)")
    if not resolved.is_relative_to(root):
        raise PathForbidden(f"{path!r} leads outside {where} (a symlink?)")
    try:
        exists = resolved.exists()
    except OSError as exc:
        raise PathForbidden(f"{path!r} cannot be read: {exc.strerror or exc}") from None
    if not exists:
        raise PathForbidden(f"{path!r} does not exist under {where}")
    return resolved.relative_to(root).as_posix() or "."


def relative_to_root(root: Path, path: str, *, where: str = "the root") -> str:
    """For the CLI, where absolute paths are natural: an absolute ``path`` that lies under
    ``root`` as a path relative to it (then checked by :func:`safe_relative` like any other); a
    relative path unchanged. An absolute path outside ``root`` is refused with
    :class:`PathForbidden`, naming the path and the root.

    Under the root means lexically (``/work/ws/src`` under ``/work/ws``) or once both are
    resolved through symlinks (a root given through a link, a path with ``..``).
    """
    if not isinstance(path, str) or not path or "\x00" in path:
        return path  # safe_relative refuses it, with its own message
    pure = PurePosixPath(path)
    if not pure.is_absolute():
        return path
    base = PurePosixPath(os.path.abspath(root))
    if ".." not in pure.parts and pure.is_relative_to(base):
        return pure.relative_to(base).as_posix()
    real_root, resolved = resolve_quietly(root), resolve_quietly(Path(path))
    if real_root is not None and resolved is not None and resolved.is_relative_to(real_root):
        return resolved.relative_to(real_root).as_posix()
    raise PathForbidden(f"{path!r} is outside {where} ({real_root or base}): give a path under it")
