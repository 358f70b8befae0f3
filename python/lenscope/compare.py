"""Where is a model good? Per-token log-probs over a corpus (``scan``), and two models compared
token by token (``compare``), e.g. GELU-1L against attention-only-1L to find where the MLP matters.

A scan is stored once per model, so a later comparison is a join, not a re-run. Scans use
``analyze`` itself (same windows, same context rule), so their log-probs are the ones the
inline view shows.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lenscope.analysis import analyze
from lenscope.defaults import CLAMP, MIN_COUNT
from lenscope.errors import InvalidInput
from lenscope.index.corpus import Document, locate

CONTEXT_BEFORE, CONTEXT_AFTER = 40, 20  # characters of context kept with each row


@dataclass
class DocScan:
    path: str
    text: str
    token_start: np.ndarray  # int32 [n], code points
    token_end: np.ndarray
    ids: np.ndarray  # int32 [n]
    logprob: np.ndarray  # float32 [n]: log p(token i | everything before it in the file)
    cells: tuple[tuple[int, int], ...] = ()  # a notebook's cells in ``text`` (see ``Document``)


@dataclass
class Scan:
    model: str
    docs: list[DocScan]


def same_tokenizer(a: Any, b: Any) -> bool:
    ta, tb = a.tokenizer, b.tokenizer
    return bool(ta.get_vocab() == tb.get_vocab() and ta.bos_token_id == tb.bos_token_id)


def scan(model: Any, docs: Iterable[Document], model_name: str, progress: Callable[[int, int], None] | None = None) -> Scan:
    """Per-token log-prob of every token of every document (each file read as one text)."""
    docs = list(docs)
    out = []
    for i, d in enumerate(docs):
        r = analyze(model, d.text, top_k=1, top_neurons=0, model_name=model_name)
        n = len(r.tokens.ids)
        out.append(
            DocScan(
                d.path,
                d.text,
                r.tokens.start,
                r.tokens.end,
                r.tokens.ids.astype(np.int32),
                r.predictions.actual_logprob[:n].copy(),
                d.cells,
            )
        )
        if progress:
            progress(i + 1, len(docs))
    return Scan(model_name, out)


def save_scan(result: Scan, path: Path, hashes: dict[str, str]) -> None:
    """Write a scan as one ``.npz`` (atomically), so a later comparison is a join, not a re-run."""
    arrays: dict[str, Any] = {"meta": np.frombuffer(json.dumps({"model": result.model, "files": [
        {"path": d.path, "sha256": hashes.get(d.path, "")} for d in result.docs]}).encode(), dtype=np.uint8)}  # fmt: skip
    for i, d in enumerate(result.docs):
        arrays[f"ids_{i}"], arrays[f"lp_{i}"] = d.ids, d.logprob
        arrays[f"start_{i}"], arrays[f"end_{i}"] = d.token_start, d.token_end
    tmp = path.with_name(f".{path.name}.tmp.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_scan(path: Path, docs: list[Document]) -> Scan | None:
    """A stored scan of exactly these files (same contents), or None."""
    try:
        z = np.load(path)
        meta = json.loads(z["meta"].tobytes())
    except (OSError, ValueError, KeyError):
        return None
    if [(f["path"], f["sha256"]) for f in meta["files"]] != [(d.path, d.sha256) for d in docs]:
        return None
    out = [
        DocScan(d.path, d.text, z[f"start_{i}"], z[f"end_{i}"], z[f"ids_{i}"], z[f"lp_{i}"], d.cells) for i, d in enumerate(docs)
    ]
    return Scan(meta["model"], out)


def scan_path(scans_dir: Path, model_name: str) -> Path:
    return scans_dir / f"{model_name.replace('/', '__')}.npz"


def stored_or_new_scan(
    load: Callable[[], Any],
    model_name: str,
    docs: list[Document],
    scans_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Scan, bool]:
    """The stored scan of exactly these files, or a new one (then stored); and whether it was stored.

    ``load`` returns the model and is only called when a scan has to run.
    """
    path = scan_path(scans_dir, model_name)
    stored = load_scan(path, docs)
    if stored is not None:
        return stored, True
    result = scan(load(), docs, model_name, progress=progress)
    save_scan(result, path, {d.path: d.sha256 for d in docs})
    return result, False


@dataclass(frozen=True)
class GoodAt:
    key: str
    count: int
    mean_lp: float
    mean_baseline: float  # the corpus's own add-one bigram log-prob of the same tokens

    @property
    def advantage(self) -> float:
        return self.mean_lp - self.mean_baseline


def good_at(result: Scan, min_count: int = MIN_COUNT) -> tuple[list[GoodAt], list[tuple[str, int, float, str]]]:
    """What a model is good at: token groups ranked by mean log-prob over a bigram baseline fitted
    on the same corpus, and the most confidently correct tokens (path, line, log-prob, token)."""
    ids = np.concatenate([d.ids for d in result.docs]).astype(np.int64)
    vocab = int(ids.max()) + 1 if len(ids) else 1
    prev = np.concatenate([np.r_[-1, d.ids[:-1]] for d in result.docs]).astype(np.int64)
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    firsts: dict[int, int] = defaultdict(int)
    for p, t in zip(prev.tolist(), ids.tolist()):
        pairs[(p, t)] += 1
        firsts[p] += 1
    baseline = np.asarray([np.log((pairs[(p, t)] + 1) / (firsts[p] + vocab)) for p, t in zip(prev.tolist(), ids.tolist())])
    lps = np.concatenate([d.logprob for d in result.docs])
    texts = [d.text[s:e] for d in result.docs for s, e in zip(d.token_start.tolist(), d.token_end.tolist())]
    by: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(texts):
        if t:
            by[t].append(i)
    groups = [GoodAt(k, len(v), float(lps[v].mean()), float(baseline[v].mean())) for k, v in by.items() if len(v) >= min_count]
    groups.sort(key=lambda g: -g.advantage)
    confident = []
    offset = 0
    for d in result.docs:
        where = Locator(d.text, d.cells)
        for i, (s, e) in enumerate(zip(d.token_start.tolist(), d.token_end.tolist())):
            if e > s and texts[offset + i].strip():
                cell, line, _, _ = where(s)
                place = d.path if cell is None else f"{d.path} cell {cell}"
                confident.append((place, line, float(d.logprob[i]), texts[offset + i]))
        offset += len(d.ids)
    confident.sort(key=lambda r: -r[2])
    return groups, confident


@dataclass(frozen=True)
class Row:
    path: str
    cell: int | None  # notebooks: the cell; line, start and end are then within its source
    token_index: int
    line: int  # 1-based
    start: int  # code points
    end: int
    token: str
    previous: str  # the token before it ("" at the start of a file)
    before: str  # up to 40 characters of the file before the token, then up to 20 after
    after: str
    lp_a: float
    lp_b: float
    diff: float  # lp_a - max(lp_b, clamp)


def compare_scans(a: Scan, b: Scan, clamp: float = CLAMP) -> list[Row]:
    """Join two scans of the same files, tokenized alike; rows ranked by ``diff``, largest first.

    ``diff = lp_A - max(lp_B, clamp)``: clamping the weaker model's log-prob keeps the list from
    being flooded by tokens it simply gets badly wrong.
    """
    if [d.path for d in a.docs] != [d.path for d in b.docs]:
        raise InvalidInput("the two scans cover different files")
    rows: list[Row] = []
    for da, db in zip(a.docs, b.docs):
        if not np.array_equal(da.ids, db.ids):
            raise InvalidInput(
                f"{da.path}: the two models tokenize it differently; comparing them token by token needs one tokenizer"
            )
        texts = [da.text[s:e] for s, e in zip(da.token_start.tolist(), da.token_end.tolist())]
        diff = da.logprob - np.maximum(db.logprob, clamp)
        where = Locator(da.text, da.cells)
        for i, (s, e) in enumerate(zip(da.token_start.tolist(), da.token_end.tolist())):
            if e == s:
                continue  # leading bytes of a split character: no text of its own
            cell, line, lo, hi = where(s)
            if s >= hi:
                continue  # only the separator between two notebook cells: in no cell
            rows.append(
                Row(
                    path=da.path,
                    cell=cell,
                    token_index=i,
                    line=line,
                    start=s - lo,
                    end=min(e, hi) - lo,  # a token that runs into the cell separator ends with its cell
                    token=texts[i],
                    previous=texts[i - 1] if i else "",
                    before=da.text[max(lo, s - CONTEXT_BEFORE) : s],
                    after=da.text[e : min(hi, e + CONTEXT_AFTER)],
                    lp_a=float(da.logprob[i]),
                    lp_b=float(db.logprob[i]),
                    diff=float(diff[i]),
                )
            )
    rows.sort(key=lambda r: -r.diff)
    return rows


class Locator:
    """Where an offset of a document's text is: ``(cell, 1-based line, cell start, cell end)``;
    for a plain file the "cell" is the whole text and ``cell`` is None."""

    def __init__(self, text: str, cells: tuple[tuple[int, int], ...] = ()) -> None:
        self.text, self.cells = text, cells
        self.newlines = np.flatnonzero(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == 10) + 1

    def __call__(self, offset: int) -> tuple[int | None, int, int, int]:
        cell, _ = locate(self.cells, offset)
        lo, hi = self.cells[cell] if cell is not None else (0, len(self.text))
        line = int(np.searchsorted(self.newlines, offset, side="right") - np.searchsorted(self.newlines, lo, side="right")) + 1
        return cell, line, lo, hi


def row_dict(r: Row) -> dict[str, Any]:
    return {f: getattr(r, f) for f in FIELDS}


def group_dict(g: Group) -> dict[str, Any]:
    return {"key": g.key, "count": g.count, "mean_diff": g.mean_diff, "mean_lp_a": g.mean_lp_a, "mean_lp_b": g.mean_lp_b,
            "examples": [row_dict(r) for r in g.examples]}  # fmt: skip


def compare(model_a: Any, model_b: Any, docs: list[Document], names: tuple[str, str], clamp: float = CLAMP) -> list[Row]:
    if not same_tokenizer(model_a, model_b):
        raise InvalidInput(f"{names[0]} and {names[1]} use different tokenizers: a token-by-token comparison needs one tokenizer")
    return compare_scans(scan(model_a, docs, names[0]), scan(model_b, docs, names[1]), clamp)


@dataclass(frozen=True)
class Group:
    key: str
    count: int
    mean_diff: float
    mean_lp_a: float
    mean_lp_b: float
    examples: list[Row]


def group_rows(rows: list[Row], by: str, min_count: int = MIN_COUNT, top_examples: int = 3) -> list[Group]:
    """Groups by ``token`` or ``previous`` (the token before), ranked by mean diff."""
    if by not in ("token", "previous"):
        raise InvalidInput("group by 'token' or 'previous'")
    buckets: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        buckets[getattr(r, by)].append(r)
    groups = [
        Group(
            key=k,
            count=len(v),
            mean_diff=float(np.mean([r.diff for r in v])),
            mean_lp_a=float(np.mean([r.lp_a for r in v])),
            mean_lp_b=float(np.mean([r.lp_b for r in v])),
            examples=sorted(v, key=lambda r: -r.diff)[:top_examples],
        )
        for k, v in buckets.items()
        if len(v) >= min_count
    ]
    return sorted(groups, key=lambda g: -g.mean_diff)


FIELDS = ("path", "cell", "token_index", "line", "start", "end", "token", "previous", "before", "after", "lp_a", "lp_b", "diff")


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(FIELDS)
    for r in rows:
        w.writerow([getattr(r, f) for f in FIELDS])
    return buf.getvalue()


def to_jsonl(rows: list[Row]) -> str:
    return "".join(json.dumps(row_dict(r), ensure_ascii=False) + "\n" for r in rows)
