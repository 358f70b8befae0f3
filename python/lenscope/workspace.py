"""Long work over a workspace's files, one implementation for the CLI and the server's job
worker: read the corpus, build a neuron index, compare two models (with their exports).

Each takes ``progress`` (a dict: tokens_done, tokens_total, rate, eta_s) and ``cancelled`` (a
callable polled between batches or files), and returns the typed job result of the wire
schema (``IndexJobResult``, ``CompareJobResult``) as plain data.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lenscope import defaults
from lenscope.errors import InvalidInput, JobCancelled
from lenscope.index.corpus import Document, Skipped, read_documents
from lenscope.paths import safe_relative

if TYPE_CHECKING:
    from lenscope.index.engines import Engine
    from lenscope.sae import SparseAutoencoder

Progress = Callable[[dict[str, Any]], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class Corpus:
    root: Path
    docs: list[Document]
    skipped: list[Skipped]
    sources: tuple[str, ...] = ()  # the paths asked for (files or folders), relative to root: an update reads them again

    def skipped_wire(self) -> list[dict[str, str]]:
        return [{"path": s.path, "reason": s.reason} for s in self.skipped]


def read_corpus(root: Path, paths: list[str], *, allow_hidden: bool = False, where: str = "the server root") -> Corpus:
    """Check ``paths`` against ``root`` (:func:`lenscope.paths.safe_relative`), then read them.

    Raises :class:`InvalidInput` when nothing readable is left, naming what was skipped.
    """
    if not paths:
        raise InvalidInput(f"no paths: give files or folders under {where}")
    rel = [safe_relative(root, p, allow_hidden=allow_hidden, where=where) for p in paths]
    docs, skipped = read_documents(root, rel, allow_hidden=allow_hidden)
    if not docs:
        listed = ", ".join(f"{s.path} ({s.reason})" for s in skipped[:10]) or "none"
        raise InvalidInput(f"no readable text among the paths; skipped: {listed}")
    return Corpus(root, docs, skipped, tuple(rel))


def throttled(progress: Progress | None, per_s: float = 5.0) -> Progress:
    """At most ``per_s`` progress reports a second, and always the last one."""
    last = [0.0]

    def report(p: dict[str, Any]) -> None:
        if progress and (time.monotonic() - last[0] > 1 / per_s or p["tokens_done"] >= p["tokens_total"]):
            last[0] = time.monotonic()
            progress(p)

    return report


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build_index_over(
    load: Callable[[], Any],
    model_name: str,
    corpus: Corpus,
    out: Path,
    *,
    k: int = defaults.INDEX_K,
    progress: Progress | None = None,
    cancelled: CancelCheck | None = None,
    root_label: str = ".",
    sae: SparseAutoencoder | None = None,
    engine: Engine | None = None,
    model_key: str | None = None,
    keep_shards: bool = True,
) -> dict[str, Any]:
    """Build a neuron index of ``corpus`` (of ``sae``'s features, when given) and write it
    atomically to ``out``; shard results are kept beside it (``.{out}.shards/``), so a build
    that is killed resumes and one after an edit re-runs only the edited files' shards
    (``keep_shards=False``: none are kept, for a corpus too big to keep its shards' results)."""
    from lenscope.index.build import BuildOptions, build_index
    from lenscope.index.shard_store import shards_dir_for
    from lenscope.index.store import write_index

    model = load()
    t0 = time.perf_counter()
    stats: dict[str, int] = {}
    shards_dir = shards_dir_for(out) if keep_shards else None
    arrays = build_index(model, corpus.docs, BuildOptions(k=k), progress=throttled(progress), cancelled=cancelled,
                         sae=sae, shards_dir=shards_dir, engine=engine, model_key=model_key, stats=stats,
                         scratch_dir=_made(out.parent))  # fmt: skip
    tokenizer = {"name_or_path": str(getattr(model.tokenizer, "name_or_path", "")), "vocab": len(model.tokenizer)}
    write_index(
        arrays,
        out,
        model=model_name,
        n_layers=1 if sae is not None else int(model.cfg.n_layers),
        tokenizer=tokenizer,
        docs=corpus.docs,
        skipped=corpus.skipped,
        root=root_label,
        sae=None if sae is None else {"name": sae.name, "hook_point": sae.hook_point, "d_sae": sae.d_sae},
        sources=list(corpus.sources),
    )
    return {
        "kind": "index",
        "name": out.name,
        "files": len(corpus.docs),
        "tokens": arrays.count,
        "skipped": corpus.skipped_wire(),
        "shards": stats.get("shards", 0),
        "shards_reused": stats.get("reused", 0),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def export_stem(model_a: str, model_b: str) -> str:
    """A file name for a comparison's exports that the export route serves (letters, digits, ``._-``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{model_a}-vs-{model_b}")
    return stem if stem[:1].isalnum() else f"x{stem}"


def compare_over(
    load: Callable[[str], Any],
    model_a: str,
    model_b: str,
    corpus: Corpus,
    *,
    clamp: float = defaults.CLAMP,
    min_count: int = defaults.MIN_COUNT,
    progress: Progress | None = None,
    cancelled: CancelCheck | None = None,
    exports_dir: Path | None = None,
    scans_dir: Path | None = None,
    on_reused: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """Both models over the corpus (stored scans reused), ranked rows and groups; with
    ``exports_dir`` (the server: ``{root}/.lenscope/compare/``) every row is also written there
    as CSV and JSON lines, atomically. Scans are stored in ``scans_dir`` (default
    ``{root}/.lenscope/scans/``; ``on_reused(model)`` is told of each one used instead of running the model).
    Returns the job result (the top rows and groups) and all rows.

    When A has an MLP, the rows returned (not the exports) get A's MLP part and top neurons, and
    the result the neurons that carry A's advantage (``lenscope.explain``): one more attribution
    pass of A over the files those rows are in."""
    from lenscope.compare import compare_scans, group_dict, group_rows, row_dict, stored_or_new_scan, to_csv, to_jsonl
    from lenscope.explain import explain
    from lenscope.models.shape import shape_of

    docs = corpus.docs
    sizes = [len(d.text) for d in docs]
    total, done, started = 2 * sum(sizes), [0], time.monotonic()
    report = throttled(progress)

    def step(i: int, n: int) -> None:
        if cancelled and cancelled():
            raise JobCancelled("the comparison was cancelled")
        done[0] += sizes[i - 1]
        rate = done[0] / max(time.monotonic() - started, 1e-6)
        report({"tokens_done": done[0], "tokens_total": total, "rate": rate, "eta_s": (total - done[0]) / rate})

    stored = scans_dir if scans_dir is not None else corpus.root / defaults.SCANS_DIR
    report({"tokens_done": 0, "tokens_total": total, "rate": 0.0, "eta_s": None})  # started: the size is known
    scans = []
    for name in (model_a, model_b):

        def load_this(name: str = name) -> Any:
            return load(name)

        scanned, reused = stored_or_new_scan(load_this, name, docs, stored, step)
        if reused and on_reused is not None:
            on_reused(name)
        if reused:  # nothing ran: the progress bar still covers this half
            for i in range(len(docs)):
                step(i + 1, len(docs))
        scans.append(scanned)
    rows = compare_scans(scans[0], scans[1], clamp)
    exports = []
    if exports_dir is not None:
        exports_dir.mkdir(parents=True, exist_ok=True)
        stem = export_stem(model_a, model_b)
        for fmt, text in (("csv", to_csv(rows)), ("jsonl", to_jsonl(rows))):
            name = f"{stem}.{fmt}"
            tmp = exports_dir / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(exports_dir / name)  # atomic: a reader sees the old export or the new one, never half of it
            exports.append({"format": fmt, "name": name, "url": f"exports/{name}"})
    grouped = {by: group_rows(rows, by, min_count=min_count)[: defaults.COMPARE_GROUPS] for by in ("token", "previous")}
    shown = [*rows[: defaults.COMPARE_ROWS], *(r for gs in grouped.values() for g in gs for r in g.examples)]
    carrier_rows = [r for r in rows[: defaults.CARRIER_ROWS] if r.diff > 0]
    model = load(model_a)
    explained = None
    if shape_of(model).has_mlp:
        texts = {d.path: d.text for d in docs}
        paths = {r.path for r in [*shown, *carrier_rows]}
        explain_total = sum(len(texts[p]) for p in paths)
        total += explain_total

        def explained_doc(path: str) -> None:
            if cancelled and cancelled():
                raise JobCancelled("the comparison was cancelled")
            done[0] += len(texts[path])
            rate = done[0] / max(time.monotonic() - started, 1e-6)
            report({"tokens_done": done[0], "tokens_total": total, "rate": rate, "eta_s": (total - done[0]) / rate})

        explained = explain(model, texts, shown, carrier_rows, carriers=defaults.CARRIERS, model_name=model_a,
                            on_doc=explained_doc)  # fmt: skip

    def wire_row(r: Any) -> dict[str, Any]:
        out = row_dict(r)
        e = explained.rows.get((r.path, r.token_index)) if explained else None
        if e is not None:
            out["mlp_a"] = e.mlp
            out["neurons_a"] = [{"layer": la, "index": ix, "value": v} for la, ix, v in e.neurons]
        return out

    groups = {by: [{**group_dict(g), "examples": [wire_row(r) for r in g.examples]} for g in gs] for by, gs in grouped.items()}
    result: dict[str, Any] = {
        "kind": "compare",
        "model_a": model_a,
        "model_b": model_b,
        "clamp": clamp,
        "files": len(docs),
        "tokens": len(rows),
        "skipped": corpus.skipped_wire(),
        "rows": [wire_row(r) for r in rows[: defaults.COMPARE_ROWS]],
        "groups_token": groups["token"],
        "groups_previous": groups["previous"],
        "exports": exports,
        "carriers": [{"layer": c.layer, "index": c.index, "total": c.total, "rows": c.rows} for c in explained.carriers]
        if explained
        else [],
    }
    return result, rows
