"""Finding and opening neuron indexes for the server (memory-mapped, in the server process:
a lookup reads a few rows and needs no model, so it never waits behind the worker).

A broken index (malformed manifest, a missing or truncated array) is listed as broken with its
problem and skipped by every lookup: one bad folder never breaks the neuron routes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lenscope.index.store import MANIFEST, Index, IndexBroken, IndexNotFound, open_index
from lenscope.paths import is_hidden


def _shipped_dir() -> Path:
    import lenscope.models

    return Path(lenscope.models.__file__).resolve().parent / "indexes"


def _tokens(index: Index) -> int:
    n = index.manifest.get("tokens")
    return n if isinstance(n, int) else 0


class IndexRegistry:
    """Indexes under ``{root}/.lenscope/indexes/`` (built in this workspace) and the ones shipped
    with the package; a lookup names one, else the model's index with the most tokens answers."""

    def __init__(self, workspace_dir: Path, root: Path, allow_hidden: bool = False) -> None:
        self.workspace_dir = workspace_dir
        self.root = root
        self.allow_hidden = allow_hidden
        self._open: dict[Path, tuple[float, Index | IndexBroken]] = {}

    def candidates(self) -> list[Path]:
        out: list[Path] = []
        for base in (self.workspace_dir, _shipped_dir()):
            try:
                # hidden folders are builds in progress or old copies being replaced: never served
                out += sorted(p for p in base.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())
            except OSError:
                continue
        return out

    def open(self, path: Path) -> Index:
        """The index at ``path``, reopened when its manifest changes; a broken one's error is kept too."""
        try:
            mtime = (path / MANIFEST).stat().st_mtime
        except OSError as exc:
            raise IndexNotFound(f"no index at {path.name}") from exc
        cached = self._open.get(path)
        if cached is None or cached[0] != mtime:
            try:
                cached = (mtime, open_index(path))
            except IndexBroken as exc:
                cached = (mtime, exc)
            self._open[path] = cached
        if isinstance(cached[1], IndexBroken):
            raise IndexBroken(cached[1].message)  # a fresh error each time: no traceback piling up
        return cached[1]

    def listing(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for path in self.candidates():
            shipped = path.parent == _shipped_dir()
            entry: dict[str, object] = {"name": path.name, "shipped": shipped, "state": "ok", "problem": None}
            try:
                m = self.open(path).manifest
            except IndexBroken as exc:
                out.append({**entry, "state": "broken", "problem": exc.message, "model": None, "files": None,
                            "tokens": None, "created": None, "sae": None})  # fmt: skip
                continue
            except IndexNotFound:
                continue
            out.append({**entry, "model": m["model"], "files": len(m["files"]), "tokens": m["tokens"], "created": m["created"],
                        "sae": (m.get("sae") or {}).get("name")})  # fmt: skip
        return out

    def for_model(self, model: str, sae: str | None = None, name: str | None = None) -> Index:
        """The model's neuron index, or with ``sae`` its index of that SAE's features: the one named
        ``name`` (``GET indexes`` lists them), else the one with the most tokens (the shipped index
        over a small workspace index: most tokens, not newest; ties: the first listed)."""
        if name is not None:
            index = self.by_name(name)
            indexed_sae = (index.manifest.get("sae") or {}).get("name")
            if index.manifest.get("model") != model or indexed_sae != sae:
                what = f"SAE {sae!r} of model {model!r}" if sae is not None else f"model {model!r}"
                raise IndexNotFound(f"the index {name!r} is not an index of {what}")
            return index
        best: Index | None = None
        for path in self.candidates():
            try:
                index = self.open(path)
            except IndexNotFound:  # broken ones included: skipped, and listed as broken
                continue
            indexed_sae = (index.manifest.get("sae") or {}).get("name")
            mine = index.manifest.get("model") == model and indexed_sae == sae
            if mine and (best is None or _tokens(index) > _tokens(best)):
                best = index
        if best is not None:
            return best
        if sae is not None:
            raise IndexNotFound(
                f"no feature index for SAE {sae!r} on model {model!r}: build one "
                f"(lenscope index PATH --model {model} --sae {sae} --out .lenscope/indexes/NAME)"
            )
        raise IndexNotFound(
            f"no neuron index for model {model!r}: build one (lenscope index PATH --model {model} --out .lenscope/indexes/NAME)"
        )

    def by_name(self, name: str) -> Index:
        for path in self.candidates():
            if path.name == name:
                return self.open(path)
        raise IndexNotFound(f"no neuron index named {name!r}")

    def availability(self, index: Index) -> Callable[[str], bool]:
        """Whether an example's file is in this workspace: never for a shipped index (its files
        are the package's corpus), else when the file is under the root and not hidden."""
        if index.path.parent == _shipped_dir():
            return lambda path: False

        def available(path: str) -> bool:
            try:
                return (self.allow_hidden or not is_hidden(path)) and (self.root / path).is_file()
            except OSError:
                return False

        return available
