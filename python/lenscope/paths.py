"""Paths from users (HTTP requests, the CLI): only files under a root, checked before anything is read."""

from __future__ import annotations

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
