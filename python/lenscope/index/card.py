"""Neuron lookups over an opened index: the neuron card, and which neurons fire on a token."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lenscope.errors import InvalidInput
from lenscope.index.corpus import locate
from lenscope.index.corpus_store import corpus_reader
from lenscope.index.descriptions import describe_row, search_descriptions
from lenscope.index.store import Index, IndexBroken, IndexNotFound
from lenscope.validation import check_int

LOOKUP_ERRORS = (IndexError, ValueError, KeyError, TypeError, OverflowError)
"""What a lookup raises over an index that opened but holds values out of range (an id past the
vocabulary, a window past the windows): reported as a broken index, never a server error."""


def _described(a: dict[str, np.ndarray]) -> bool:
    return "describe_kind" in a or "describe_token" in a  # either generation; older indexes have none


def score_tokens(index: Index) -> int | None:
    """The held-out tokens the index's descriptions were scored on (None: not recorded)."""
    n = (index.manifest.get("descriptions") or {}).get("score_tokens")
    return int(n) if isinstance(n, int) else None


def neuron_row(index: Index, layer: int, neuron: int) -> int:
    n_layers = int(index.manifest["n_layers"])
    check_int(layer, "layer", 0, n_layers - 1)
    check_int(neuron, "neuron index", 0, index.d_mlp - 1)
    return layer * index.d_mlp + neuron


def _float(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else float(x)


def neuron_card(index: Index, layer: int, neuron: int, available: Callable[[str], bool] = lambda path: False) -> dict[str, Any]:
    """Everything the panel shows for one neuron, read from a few rows of the mapped arrays.

    ``available(path)`` says whether an example's file is in the reader's workspace. Offsets in
    a notebook are within the example's cell.
    """
    n = neuron_row(index, layer, neuron)
    try:
        return _card(index, layer, neuron, n, available)
    except LOOKUP_ERRORS as exc:  # values out of range in a readable index
        raise IndexBroken(f"index {index.path.name} is broken: {exc}") from None


def _card(index: Index, layer: int, neuron: int, n: int, available: Callable[[str], bool]) -> dict[str, Any]:
    a, m, s = index.arrays, index.manifest, index.strings
    before = int(m["before"])
    corpus = corpus_reader(a)
    examples = []
    for j in range(int(m["k"])):
        w = int(a["top_windows"][n, j])
        if w < 0:
            continue
        doc, start, _ = (int(x) for x in a["windows"][w])
        pos = int(a["top_positions"][n, j])
        acts = np.asarray(a["top_context"][n, j], dtype=np.float32)
        keep = ~np.isnan(acts)  # context positions inside the example's window
        first = start + pos - before + int(np.argmax(keep))
        count = int(keep.sum())
        if count < 1:
            raise ValueError(f"example {j} of row {n} has no activations")
        strings, starts, ends = corpus.tokens(w, first, count)
        max_start = int(starts[before - int(np.argmax(keep))])
        entry = m["files"][doc]
        cells = entry.get("cells", [])
        cell, within = locate(cells, max_start)
        shift = max_start - within  # the cell's start: offsets are reported within the cell
        doc_chars = int(a["doc_chars"][doc + 1]) - int(a["doc_chars"][doc])
        width = cells[cell][1] - cells[cell][0] if cell is not None else doc_chars
        examples.append(
            {
                "file": entry["path"],
                "cell": cell,
                "available": available(entry["path"]),
                "value": float(a["top_values"][n, j]),
                "tokens": strings,
                "activations": [float(x) for x in acts[keep]],
                "max_token": before - int(np.argmax(keep)),  # index of the maximum in "tokens"
                # clipped to the cell: an example's context may reach into the cells around it
                "char_start": min(max(0, int(starts[0]) - shift), width),
                "char_end": min(max(0, int(ends[-1]) - shift), width),
                "max_char_start": min(within, width),
            }
        )
    hist = np.asarray(a["hist"][n]).tolist()

    def effect(ids: str, values: str) -> list[dict[str, Any]]:
        return [{"id": int(i), "token": s.get(int(i), ""), "value": float(v)} for i, v in zip(a[ids][n], a[values][n])]

    return {
        "model": m["model"],
        "layer": layer,
        "index": neuron,
        "examples": examples,
        **_samples(index, n, available),
        "logit_boosted": effect("logit_top_ids", "logit_top_values"),
        "logit_suppressed": effect("logit_bottom_ids", "logit_bottom_values"),
        "stats": {"count": int(m["tokens"]), "mean": float(a["mean"][n]), "max": _float(float(a["max"][n]))},
        "histogram": {"edges": m["hist_edges"], "counts": hist},
        "index_path": index.path.name,
        "description": describe_row(n, a, s, score_tokens(index)) if _described(a) else None,  # older indexes have none
    }


SAMPLE_BEFORE, SAMPLE_AFTER = 12, 4
"""Tokens of context shown around a quantile or random example (only its own activation is kept)."""


def _sample(index: Index, corpus: Any, g: int, value: float, available: Callable[[str], bool]) -> dict[str, Any]:
    """A sampled example at corpus token ``g``: its window's tokens around it, its activation."""
    a, m = index.arrays, index.manifest
    win = np.asarray(a["windows"])
    starts = np.asarray(a["doc_offsets"])[win[:, 0]] + win[:, 1]
    w = int(np.searchsorted(starts, g, side="right")) - 1
    doc, start, n = (int(x) for x in win[w])
    at = g - int(starts[w])
    lo, hi = max(0, at - SAMPLE_BEFORE), min(n, at + SAMPLE_AFTER + 1)
    strings, first, last = corpus.tokens(w, start + lo, hi - lo)
    entry = m["files"][doc]
    cell, within = locate(entry.get("cells", []), int(first[at - lo]))
    shift = int(first[at - lo]) - within
    return {"file": entry["path"], "cell": cell, "available": available(entry["path"]), "value": float(value),
            "tokens": strings, "max_token": at - lo, "char_start": max(0, int(first[0]) - shift),
            "char_end": max(0, int(last[-1]) - shift), "max_char_start": within}  # fmt: skip


def _samples(index: Index, n: int, available: Callable[[str], bool]) -> dict[str, Any]:
    """The card's quantile and random examples and firing share; None for an index built before them."""
    a, m = index.arrays, index.manifest
    if "quantile_positions" not in a:
        return {"quantiles": None, "random_examples": None, "firing": None}
    corpus = corpus_reader(a)
    top = float(a["max"][n])
    intervals = int(m["samples"]["intervals"])
    quantiles = []
    for i in range(intervals):
        found = [(int(g), float(v)) for g, v in zip(a["quantile_positions"][n, i], a["quantile_values"][n, i]) if g >= 0]
        quantiles.append({"low": top * i / intervals, "high": top * (i + 1) / intervals,
                          "examples": [_sample(index, corpus, g, v, available) for g, v in found]})  # fmt: skip
    rand = [(int(g), float(v)) for g, v in zip(a["random_positions"][n], a["random_values"][n]) if g >= 0]
    above_zero, above = (int(x) for x in a["fire_counts"][n])
    total = max(int(m["tokens"]), 1)
    thr = float(a["describe_threshold"][n]) if "describe_threshold" in a else None
    return {
        "quantiles": quantiles[::-1],  # highest first, as a reader scans down
        "random_examples": [_sample(index, corpus, g, v, available) for g, v in rand],
        "firing": {
            "above_zero": above_zero / total,
            "above_threshold": above / total,
            "threshold": thr if thr is not None and math.isfinite(thr) else None,
            "tokens": total,
        },
    }


def neurons_for_token(index: Index, token: str, limit: int = 20) -> list[dict[str, Any]]:
    """Neurons whose top examples peak most often (and highest) on ``token``'s string."""
    if not token:
        raise InvalidInput("token is empty")
    ids = [i for i, text in index.strings.items() if text == token or text.strip() == token.strip()]
    if not ids:
        return []
    try:
        return _for_token(index, ids, limit)
    except LOOKUP_ERRORS as exc:  # values out of range in a readable index
        raise IndexBroken(f"index {index.path.name} is broken: {exc}") from None


def _for_token(index: Index, ids: list[int], limit: int) -> list[dict[str, Any]]:
    a = index.arrays
    windows, positions = np.asarray(a["top_windows"]), np.asarray(a["top_positions"])
    win = np.asarray(a["windows"])
    valid = windows >= 0
    doc, start = win[windows.clip(0), 0], win[windows.clip(0), 1]
    g = np.asarray(a["doc_offsets"])[doc] + start + positions
    hits = valid & np.isin(np.asarray(a["tokens"])[g], ids)
    score = np.where(hits, np.asarray(a["top_values"]), 0).sum(axis=1)
    order = np.argsort(-score)[:limit]
    d_mlp = index.d_mlp
    return [
        {
            "layer": int(r // d_mlp),
            "index": int(r % d_mlp),
            "hits": int(hits[r].sum()),
            "score": float(score[r]),
            "description": describe_row(int(r), a, index.strings, score_tokens(index)) if _described(a) else None,
        }
        for r in order
        if score[r] > 0
    ]


def neurons_for_description(index: Index, query: str, limit: int = 20) -> list[dict[str, Any]]:
    """Neurons whose description matches ``query``'s words ("closing bracket"), best held-out F1 first."""
    if not query.strip():
        raise InvalidInput("query is empty")
    a, d_mlp = index.arrays, index.d_mlp
    try:
        return [
            {"layer": r // d_mlp, "index": r % d_mlp, "hits": int(a["describe_examples"][r, 0]), "score": f1,
             "description": describe_row(r, a, index.strings, score_tokens(index))}
            for r, f1 in search_descriptions(a, index.strings, query, limit)
        ]  # fmt: skip
    except LOOKUP_ERRORS as exc:  # values out of range in a readable index
        raise IndexBroken(f"index {index.path.name} is broken: {exc}") from None


def stored_document(index: Index, path: str, cell: int | None = None) -> dict[str, Any]:
    """A file's text as the index stored it (a notebook: its cells' sources, or one cell's)."""
    files = index.manifest["files"]
    doc = next((i for i, f in enumerate(files) if f["path"] == path), None)
    if doc is None:
        raise IndexNotFound(f"index {index.path.name} has no file {path!r}")
    cells = files[doc].get("cells") or []
    if cell is not None and not 0 <= cell < len(cells):
        raise InvalidInput(f"{path!r} has no cell {cell}")
    try:
        text = corpus_reader(index.arrays).document(doc)
    except LOOKUP_ERRORS as exc:
        raise IndexBroken(f"index {index.path.name} is broken: {exc}") from None
    if cell is not None:
        text = text[cells[cell][0] : cells[cell][1]]
    return {"path": path, "cell": cell, "text": text}
