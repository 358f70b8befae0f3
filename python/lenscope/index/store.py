"""The on-disk index: a folder of ``.npy`` arrays plus ``manifest.json``, opened memory-mapped.

Why a folder of arrays (and not SQLite): every lookup is "row n of a few dense [neurons, ...]
arrays"; ``np.load(mmap_mode="r")`` makes that a page read with no query layer, no parsing
and no copy of the whole index, and the format is readable from any numpy.

Writes are atomic: everything goes to a temporary sibling folder, ``manifest.json`` (with
``"complete": true``) is written last, then the folder is renamed into place (an old index
is moved aside first and removed after). A folder without a complete manifest is never
opened as an index, so a cancelled or crashed build leaves nothing that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lenscope import __version__
from lenscope.errors import LenscopeError
from lenscope.index.arrays import HIST_EDGES, IndexArrays
from lenscope.index.corpus import Document, Skipped
from lenscope.index.corpus_store import ALWAYS as CORPUS_ALWAYS
from lenscope.index.corpus_store import DERIVED as CORPUS_DERIVED
from lenscope.index.corpus_store import FORMAT1 as FORMAT1_CORPUS
from lenscope.index.corpus_store import STORED_SPANS as CORPUS_STORED_SPANS
from lenscope.index.corpus_store import StoredCorpus
from lenscope.index.descriptions import OLD_ARRAYS as OLD_DESCRIBE_ARRAYS
from lenscope.index.samples import SAMPLES_META

FORMAT = 3  # 1: the corpus as code points and stored spans; 2: UTF-8 and uint16 ids (lenscope.index.corpus_store);
# 3: descriptions of several pattern kinds (their arrays listed in the manifest) and samples (lenscope.index.samples)
READABLE = (1, 2, 3)
MANIFEST = "manifest.json"
ARRAYS = (
    "top_values", "top_windows", "top_positions", "top_context", "windows", "mean", "max", "hist", "logit_top_ids",
    "logit_top_values", "logit_bottom_ids", "logit_bottom_values",
)  # fmt: skip


class IndexNotFound(LenscopeError):
    code = "index_not_found"


class IndexBroken(IndexNotFound):
    """A folder that claims to be a complete index but is not readable as one: listed with its
    problem, never served."""


REQUIRED = ("format", "complete", "model", "created", "neurons", "n_layers", "d_mlp", "k", "before", "after", "tokens",
            "files", "hist_edges")  # fmt: skip


def write_index(
    arrays: IndexArrays,
    out: Path,
    *,
    model: str,
    n_layers: int,
    tokenizer: dict[str, Any],
    docs: list[Document],
    skipped: list[Skipped],
    root: str,
    sae: dict[str, Any] | None = None,
    sources: list[str] | None = None,
) -> Path:
    out = out.resolve()
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(arrays, name), allow_pickle=False)
        arrays.corpus.move_into(tmp)  # streamed to disk by the build: moved, never read into memory
        if arrays.descriptions is not None:
            for name, value in arrays.descriptions.as_arrays().items():
                np.save(tmp / f"{name}.npy", value, allow_pickle=False)
        if arrays.samples is not None:
            for name, value in arrays.samples.as_arrays().items():
                np.save(tmp / f"{name}.npy", value, allow_pickle=False)
        (tmp / "strings.json").write_text(
            json.dumps({str(k): v for k, v in arrays.strings.items()}, ensure_ascii=False), encoding="utf-8"
        )
        n_neurons = arrays.top_values.shape[0]
        manifest = {
            "format": FORMAT,
            "complete": True,
            "lenscope": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": model,
            **({"sae": sae} if sae else {}),  # a feature index: {name, hook_point, d_sae}; its units are features
            **({"descriptions": arrays.descriptions.meta} if arrays.descriptions is not None else {}),
            **({"samples": SAMPLES_META} if arrays.samples is not None else {}),
            "tokenizer": tokenizer,
            "neurons": n_neurons,
            "n_layers": n_layers,
            "d_mlp": n_neurons // n_layers,
            "k": arrays.k,
            "before": arrays.before,
            "after": arrays.after,
            "window_tokens": arrays.window_tokens,
            "tokens": arrays.count,
            "corpus": list(arrays.corpus.names),
            "hist_edges": HIST_EDGES.tolist(),
            "root": root,
            **({"sources": sources} if sources else {}),  # the paths the build was asked for: what an update reads again
            "files": [
                {
                    "path": d.path,
                    "sha256": d.sha256,
                    "tokens": int(n),
                    **({"cells": [list(c) for c in d.cells]} if d.cells else {}),
                }
                for d, n in zip(docs, np.diff(arrays.doc_offsets).tolist())
            ],
            "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        }
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:  # last: its presence marks completion
            json.dump(manifest, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        arrays.corpus.folder = out
        shutil.rmtree(old, ignore_errors=True)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Index:
    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]
    strings: dict[int, str]

    @property
    def n_neurons(self) -> int:
        return int(self.manifest["neurons"])

    @property
    def d_mlp(self) -> int:
        return int(self.manifest["d_mlp"])


def open_index(path: Path) -> Index:
    """Open an index memory-mapped.

    Raises :class:`IndexNotFound` without a manifest, and :class:`IndexBroken` when anything in
    it cannot be read or decoded as an index: a manifest that is not UTF-8, not JSON or JSON of
    the wrong shape (:class:`Manifest`), an array file that is missing, truncated, or of the
    wrong dtype or shape, a ``strings.json`` that is not a table of strings. Everything a lookup
    will touch is checked here, once, so a lookup never fails half-way.
    """
    try:
        raw = (path / MANIFEST).read_bytes()
    except OSError as exc:
        raise IndexNotFound(f"no lenscope index at {path.name}: {exc.strerror or exc}") from None
    try:
        manifest = _decode_json(raw, MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") not in READABLE or manifest.get("complete") is not True:
            raise ValueError(f"not a complete lenscope index of format {' or '.join(map(str, READABLE))}")
        missing = [k for k in REQUIRED if k not in manifest]
        if missing:
            raise ValueError(f"manifest lacks {', '.join(missing)}")
        _check_manifest(manifest)
        names = ARRAYS + corpus_names(manifest) + described_arrays(manifest) + sample_arrays(manifest)
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in names}
        strings = _strings(_decode_json((path / "strings.json").read_bytes(), "strings.json"))
        _check_dtypes(arrays)
        _check_shapes(manifest, arrays)
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as exc:
        # UnicodeDecodeError, json.JSONDecodeError and pydantic's ValidationError are ValueErrors
        raise IndexBroken(f"index {path.name} is broken: {_one_line(exc)}") from None
    return Index(path, manifest, arrays, strings)


def described_arrays(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The description arrays an index holds: none (built before them), the old token and pair
    ones, or those its manifest lists."""
    d = manifest.get("descriptions")
    if d is None:
        return ()
    names = d.get("arrays", list(OLD_DESCRIBE_ARRAYS))
    from lenscope.index.descriptions import ARRAYS as NEW

    if names not in (list(OLD_DESCRIBE_ARRAYS), list(NEW)):
        raise ValueError("manifest's descriptions.arrays are not a known set")
    return tuple(names)


def sample_arrays(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The samples' arrays: none in an index built before them."""
    s = manifest.get("samples")
    if s is None:
        return ()
    if s != SAMPLES_META:
        raise ValueError("manifest's samples are not of this version")
    return tuple(SAMPLES_META["arrays"])  # type: ignore[arg-type]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


class ManifestFile(_Strict):
    path: Annotated[str, Field(min_length=1)]
    sha256: str
    tokens: Count | None = None
    cells: list[Annotated[list[Count], Field(min_length=2, max_length=2)]] | None = None


class ManifestSae(_Strict):
    name: str
    hook_point: str | None = None
    d_sae: Positive | None = None


class Manifest(_Strict):
    """The manifest's fields that readers use, with their types: a manifest that is JSON of
    another shape (a list, a number where a name goes, ...) makes its index broken."""

    format: int
    complete: bool
    model: Annotated[str, Field(min_length=1)]
    created: str
    neurons: Positive
    n_layers: Positive
    d_mlp: Positive
    k: Positive
    before: Count
    after: Count
    window_tokens: Positive | None = None
    tokens: Count
    files: list[ManifestFile]
    hist_edges: list[float]
    corpus: list[str] | None = None
    sae: ManifestSae | None = None
    descriptions: dict[str, Any] | None = None
    samples: dict[str, Any] | None = None
    tokenizer: dict[str, Any] | None = None
    root: str | None = None
    sources: list[str] | None = None
    skipped: list[dict[str, Any]] | None = None
    lenscope: str | None = None


def _check_manifest(manifest: dict[str, Any]) -> None:
    try:
        Manifest.model_validate(manifest)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ValueError(f"manifest's {where}: {e['msg']}{more}") from None


def _decode_json(raw: bytes, name: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from None


def _strings(table: object) -> dict[int, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ValueError("strings.json is not a table of token strings")
    return {int(k): v for k, v in table.items()}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


INTEGER, FLOAT = "iu", "f"
KINDS: dict[str, str] = {
    "top_values": FLOAT, "top_windows": INTEGER, "top_positions": INTEGER, "top_context": FLOAT, "windows": INTEGER,
    "mean": FLOAT, "max": FLOAT, "hist": INTEGER, "logit_top_ids": INTEGER, "logit_top_values": FLOAT,
    "logit_bottom_ids": INTEGER, "logit_bottom_values": FLOAT, "text": "u", "tokens": INTEGER, "doc_offsets": INTEGER,
    "doc_bytes": INTEGER, "doc_chars": INTEGER, "window_text": INTEGER, "token_bytes": INTEGER, "token_start": INTEGER,
    "token_end": INTEGER, "describe_token": INTEGER, "describe_prev": INTEGER, "describe_threshold": FLOAT,
    "describe_counts": INTEGER, "describe_examples": INTEGER, "describe_score": INTEGER + "b", "describe_kind": INTEGER,
    "describe_tokens": INTEGER, "describe_class": INTEGER, "describe_context": INTEGER, "describe_within": INTEGER,
    "quantile_positions": INTEGER, "quantile_values": FLOAT, "random_positions": INTEGER, "random_values": FLOAT,
    "fire_counts": INTEGER,
}  # fmt: skip
"""The dtype kind (numpy's ``dtype.kind``) each array must have: integers where it holds ids,
offsets or counts, floats where it holds values."""


def _check_dtypes(a: dict[str, np.ndarray]) -> None:
    for name, array in a.items():
        kinds = KINDS.get(name, INTEGER + FLOAT)
        if array.dtype.kind not in kinds or array.dtype.fields is not None or array.dtype.itemsize > 8:
            want = {INTEGER: "integers", FLOAT: "floats", "u": "unsigned integers"}.get(kinds, "integers")
            raise ValueError(f"{name}.npy holds {array.dtype}, expected {want}")


def corpus_names(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The corpus arrays an index of this manifest holds."""
    if manifest["format"] == 1:
        return FORMAT1_CORPUS
    names = manifest.get("corpus")
    allowed = set(CORPUS_ALWAYS + CORPUS_DERIVED + CORPUS_STORED_SPANS)
    if not isinstance(names, list) or not set(CORPUS_ALWAYS) <= set(names) or not set(names) <= allowed:
        raise ValueError("manifest's corpus arrays are malformed")
    return tuple(names)


def stored_corpus(index: Index) -> StoredCorpus:
    return StoredCorpus(index.path, corpus_names(index.manifest))


def _check_shapes(m: dict[str, Any], a: dict[str, np.ndarray]) -> None:
    n, k, files = int(m["neurons"]), int(m["k"]), m["files"]
    if int(m["n_layers"]) * int(m["d_mlp"]) != n or not isinstance(files, list):
        raise ValueError("manifest's neurons, layers and files disagree")
    if not all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in files):
        raise ValueError("manifest's files are malformed")
    width = int(m["before"]) + 1 + int(m["after"])
    expect = {
        "top_values": (n, k), "top_windows": (n, k), "top_positions": (n, k), "top_context": (n, k, width),
        "mean": (n,), "max": (n,), "hist": (n, len(m["hist_edges"]) + 1),
        "doc_offsets": (len(files) + 1,), "doc_chars": (len(files) + 1,),
    }  # fmt: skip
    for name, shape in expect.items():
        if a[name].shape != shape:
            raise ValueError(f"{name}.npy has shape {a[name].shape}, the manifest implies {shape}")
    tokens = int(a["doc_offsets"][-1]) if len(files) else 0
    for name in ("tokens", "token_start", "token_end"):
        if name in a and a[name].shape != (tokens,):
            raise ValueError(f"{name}.npy has shape {a[name].shape}, expected ({tokens},)")
    if a["windows"].ndim != 2 or a["windows"].shape[1:] != (3,):
        raise ValueError("windows.npy does not match the documents")
    if m["format"] == 1:
        if a["text"].shape != (int(a["doc_chars"][-1]),):
            raise ValueError("text.npy does not match the documents")
    else:
        if a["doc_bytes"].shape != (len(files) + 1,) or a["text"].shape != (int(a["doc_bytes"][-1]),):
            raise ValueError("text.npy does not match the documents")
        if a["window_text"].shape != (len(a["windows"]), 3) or a["text"].dtype != np.uint8:
            raise ValueError("window_text.npy or text.npy does not match the windows")
        if "token_bytes" in a and a["token_bytes"].ndim != 1:  # an id past its end fails the lookup as broken
            raise ValueError("token_bytes.npy is not a table of the vocabulary")
    if "descriptions" in m:
        rows = {"describe_token": (n,), "describe_prev": (n,), "describe_threshold": (n,), "describe_counts": (n, 3),
                "describe_examples": (n, 2), "describe_score": a["windows"].shape[:1], "describe_kind": (n,),
                "describe_class": (n,), "describe_context": (n,), "describe_within": (n,)}  # fmt: skip
        if "describe_tokens" in a and (a["describe_tokens"].ndim != 2 or len(a["describe_tokens"]) != n):
            raise ValueError(f"describe_tokens.npy has shape {a['describe_tokens'].shape}, expected ({n}, tokens)")
        if "quantile_positions" in a:
            rows.update(quantile_positions=(n, SAMPLES_META["intervals"], SAMPLES_META["per_interval"]),
                        quantile_values=(n, SAMPLES_META["intervals"], SAMPLES_META["per_interval"]),
                        random_positions=(n, SAMPLES_META["random"]), random_values=(n, SAMPLES_META["random"]),
                        fire_counts=(n, 2))  # fmt: skip
        for name, shape in rows.items():
            if name in a and a[name].shape != shape:
                raise ValueError(f"{name}.npy has shape {a[name].shape}, the manifest implies {shape}")
    for name in ("logit_top_ids", "logit_top_values", "logit_bottom_ids", "logit_bottom_values"):
        if a[name].ndim != 2 or a[name].shape[:1] != (n,):
            raise ValueError(f"{name}.npy has shape {a[name].shape}, expected ({n}, top)")
    for ids, values in (("logit_top_ids", "logit_top_values"), ("logit_bottom_ids", "logit_bottom_values")):
        if a[ids].shape != a[values].shape:
            raise ValueError(f"{ids}.npy and {values}.npy disagree: {a[ids].shape} and {a[values].shape}")


def changed_files(path: Path, docs: list[Document]) -> list[str] | None:
    """Paths whose content differs from an existing complete index at ``path`` (added, removed
    or edited), or None when there is no such index."""
    try:
        manifest = open_index(path).manifest
    except IndexNotFound:
        return None
    before = {f["path"]: f["sha256"] for f in manifest["files"]}
    now = {d.path: d.sha256 for d in docs}
    return sorted(p for p in before.keys() | now.keys() if before.get(p) != now.get(p))
