"""Finding and opening neuron indexes for the server (memory-mapped, in the server process:
a lookup reads a few rows and needs no model, so it never waits behind the worker)."""

from __future__ import annotations

from pathlib import Path

from lenscope.index.store import MANIFEST, Index, IndexNotFound, open_index


def _shipped_dir() -> Path:
    import lenscope.models

    return Path(lenscope.models.__file__).resolve().parent / "indexes"


class IndexRegistry:
    """Indexes under ``{root}/.lenscope/indexes/`` (built in this workspace) and the ones shipped
    with the package; a workspace index for a model wins over the shipped one."""

    def __init__(self, workspace_dir: Path) -> None:
        self.workspace_dir = workspace_dir
        self._open: dict[Path, tuple[float, Index]] = {}

    def candidates(self) -> list[Path]:
        out: list[Path] = []
        for base in (self.workspace_dir, _shipped_dir()):
            if base.is_dir():
                # hidden folders are builds in progress or old copies being replaced: never served
                out += sorted(p for p in base.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())
        return out

    def open(self, path: Path) -> Index:
        mtime = (path / MANIFEST).stat().st_mtime
        cached = self._open.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        index = open_index(path)
        self._open[path] = (mtime, index)
        return index

    def listing(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for path in self.candidates():
            try:
                m = self.open(path).manifest
            except IndexNotFound:
                continue
            shipped = path.parent == _shipped_dir()
            out.append(
                {
                    "name": path.name,
                    "model": m["model"],
                    "files": len(m["files"]),
                    "tokens": m["tokens"],
                    "created": m["created"],
                    "shipped": shipped,
                }
            )
        return out

    def for_model(self, model: str) -> Index:
        for path in self.candidates():
            try:
                index = self.open(path)
            except IndexNotFound:
                continue
            if index.manifest.get("model") == model:
                return index
        raise IndexNotFound(
            f"no neuron index for model {model!r}: build one (lenscope index PATH --model {model} --out .lenscope/indexes/NAME)"
        )
