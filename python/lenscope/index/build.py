"""Build a neuron (or SAE feature) index: tokenize, cut the windows into shards, reduce each
shard (``lenscope.index.reduce``, on an engine), merge exactly (``lenscope.index.shards``).

Per unit it keeps the top-k examples by max activation, at most one per (window, unit), with
the activations around each maximum, and statistics (count, mean, max, a fixed-bin histogram).
Memory is O(units x k) plus O(documents + windows): the corpus's text and tokens, which the
index keeps to show examples, are streamed to disk while tokenizing, each shard's inputs are
read when it runs, and with a shard store, shard results wait on disk, not in memory.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lenscope import defaults
from lenscope.engine.plan import bos_id
from lenscope.errors import InvalidInput, StorageFailed
from lenscope.index.arrays import HIST_EDGES, IndexArrays
from lenscope.index.corpus import Document
from lenscope.index.corpus_store import CorpusWriter
from lenscope.index.describe import describe_index
from lenscope.index.engines import Engine, LocalEngine, ReduceSettings, ShardTask
from lenscope.index.reduce import IndexCancelled, shard_inputs, units_of
from lenscope.index.shard_store import ShardStore
from lenscope.index.shards import OrderedFold, ShardResult, plan_shards, settings_key
from lenscope.models.shape import shape_of
from lenscope.tokens import token_strings

if TYPE_CHECKING:
    from lenscope.sae import SparseAutoencoder


@dataclass(frozen=True)
class BuildOptions:
    k: int = defaults.INDEX_K
    before: int = 50  # tokens of context kept before an example's maximum (Neuroscope: 50)
    after: int = 10
    window: int | None = None  # tokens per window, BOS included; default: the model's n_ctx
    batch_windows: int = 8


Progress = Callable[[dict[str, Any]], None]
SHARD_FORMAT = 1
__all__ = ["HIST_EDGES", "BuildOptions", "IndexArrays", "IndexCancelled", "build_index", "logit_effects"]


def _distinct(tokens: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """The ids that occur, counted a chunk at a time (no sorted copy of the corpus)."""
    seen = np.zeros(0, dtype=bool)
    for i in range(0, len(tokens), chunk):
        part = np.asarray(tokens[i : i + chunk]).astype(np.int64)
        if part.size:
            counts = np.bincount(part)
            seen = np.pad(seen, (0, max(0, len(counts) - len(seen))))
            seen[: len(counts)] |= counts > 0
    return np.flatnonzero(seen)


@torch.inference_mode()
def logit_effects(model: Any, top: int = 10, chunk: int = 1024, directions: torch.Tensor | None = None) -> tuple[np.ndarray, ...]:
    """Per neuron, the ``top`` most boosted and most suppressed tokens of ``W_out[n] @ W_U``
    (or of ``directions[n] @ W_U``: an SAE feature's decoder direction in the residual stream)."""
    w_u = model.W_U.detach().float()  # [d_model, vocab]
    if directions is None:
        w_out = model.W_out.detach().float()  # [L, d_mlp, d_model]
        flat = w_out.reshape(-1, w_out.shape[-1])
    else:
        flat = directions.float().to(w_u.device)
    parts: list[list[torch.Tensor]] = [[], [], [], []]
    for i in range(0, flat.shape[0], chunk):
        effect = flat[i : i + chunk] @ w_u
        hi = effect.topk(top, dim=-1)
        lo = effect.topk(top, dim=-1, largest=False)
        for j, t in enumerate((hi.indices, hi.values, lo.indices, lo.values)):
            parts[j].append(t)
    ids_hi, val_hi, ids_lo, val_lo = (torch.cat(p).cpu().numpy() for p in parts)
    return ids_hi.astype(np.int32), val_hi.astype(np.float32), ids_lo.astype(np.int32), val_lo.astype(np.float32)


@torch.inference_mode()
def build_index(
    model: Any,
    docs: list[Document],
    options: BuildOptions = BuildOptions(),
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    sae: SparseAutoencoder | None = None,
    shards_dir: Path | None = None,
    engine: Engine | None = None,
    model_key: str | None = None,
    stats: dict[str, int] | None = None,
    scratch_dir: Path | None = None,
) -> IndexArrays:
    """With ``sae``, the units are its features (encoded from its hook point) instead of the MLP
    neurons, and logit effects follow each feature's decoder direction; all else is the same.

    The windows are cut into shards (``lenscope.index.shards``) that ``engine`` (default: this
    process) reduces and the build merges exactly. With ``shards_dir`` each shard's result is
    kept there as it is done and reused when its files and the settings are unchanged: a
    killed build resumes, an update after an edit re-runs only the edited files' shards.
    ``model_key`` names the weights in the shards' keys (default: a fingerprint of them);
    ``stats`` gets the number of shards and of those reused. The corpus's text and tokens are
    written to a scratch folder in ``scratch_dir`` (default: the system's temporary folder;
    put it on the index's file system so that writing the index moves them, not copies).
    """
    shape = shape_of(model)
    n_layers, d_mlp, n_ctx = shape.n_layers, shape.d_mlp or 0, shape.n_ctx
    if sae is not None:
        from lenscope.sae import check_fits

        check_fits(sae, model, str(getattr(model.cfg, "model_name", "model")))
        n_layers, d_mlp = 1, sae.d_sae
    elif not d_mlp:
        raise InvalidInput("this model is attention-only: it has no MLP neurons to index")
    if not docs:
        raise InvalidInput("no documents to index")
    if options.k < 1:
        raise InvalidInput("k must be at least 1")
    window = options.window or n_ctx
    body = window - 1
    n_units = n_layers * d_mlp
    k, ctx = options.k, options.before + 1 + options.after
    bos = bos_id(model.tokenizer)
    hooks, encode = units_of(model, sae)

    # the corpus goes to disk as it is tokenized, a document at a time: memory stays flat in its size
    writer = CorpusWriter(model.tokenizer, body, scratch_dir)
    try:
        for d in docs:
            if cancelled and cancelled():
                raise IndexCancelled("the index build was cancelled")
            writer.add(d.text)
        corpus = writer.finish()
    except BaseException:
        writer.discard()
        raise
    windows = writer.windows_array()
    tokens, doc_offsets = corpus.array("tokens"), corpus.array("doc_offsets")
    total = int(doc_offsets[-1])

    key = settings_key(
        model=model_key or weights_fingerprint(model), sae=None if sae is None else weights_fingerprint(sae),
        hooks=hooks, k=k, before=options.before, after=options.after, window=window, batch=options.batch_windows,
        bos=bos, format=SHARD_FORMAT,
    )  # fmt: skip
    plan = plan_shards([d.path for d in docs], [d.sha256 for d in docs], windows, key)
    store = ShardStore(shards_dir, n_units, ctx) if shards_dir is not None else None
    todo = [s for s in plan if not (store and store.has(s.key))]
    # each result is folded in as soon as those before it are (stored ones read back at their
    # turn): memory stays O(units x k) however many shards (10M tokens of the default model: ~600)
    folding = OrderedFold(plan, {s.key for s in todo}, k, lambda key: _load(store, key))
    if stats is not None:
        stats.update(shards=len(plan), reused=len(plan) - len(todo))
    settings = ReduceSettings(k, options.before, options.after, options.batch_windows)
    tasks = [ShardTask(s, partial(shard_inputs, s.windows, tokens, doc_offsets, body, bos)) for s in todo]

    started = time.monotonic()
    reused = total - sum(s.n_tokens for s in todo)
    done = [reused]

    def on_tokens(n: int) -> None:
        done[0] += n
        if progress:
            elapsed = time.monotonic() - started
            rate = (done[0] - reused) / elapsed if elapsed > 0 else 0.0
            eta = (total - done[0]) / rate if rate else None
            progress({"tokens_done": done[0], "tokens_total": total, "rate": rate, "eta_s": eta})

    def on_done(task: ShardTask, result: ShardResult) -> None:
        if store:
            store.save(task.shard.key, result)  # before it counts as done: a kill after this resumes past it
        folding.add(task.shard.key, result)

    if cancelled and cancelled():
        raise IndexCancelled("the index build was cancelled")
    if tasks:
        if progress:  # the size is known once tokenized: say so before the first batch (a panel shows "starting…" till then)
            progress({"tokens_done": reused, "tokens_total": total, "rate": 0.0, "eta_s": None})
        (engine or LocalEngine(model, hooks, encode)).run(tasks, settings, on_done, on_tokens, cancelled)
    elif progress:
        progress({"tokens_done": total, "tokens_total": total, "rate": 0.0, "eta_s": 0.0})
    merged = folding.result()

    # one-time cost, independent of the corpus (for GPT-2 small: 36,864 x 50,257 dot products)
    if sae is None:
        ids_hi, val_hi, ids_lo, val_lo = logit_effects(model)
    else:
        directions = sae.output_directions(model)
        if directions is not None:
            ids_hi, val_hi, ids_lo, val_lo = logit_effects(model, directions=directions)
        else:  # a hook point with no linear path to the residual stream: no logit effects
            none_i, none_v = np.zeros((n_units, 0), np.int32), np.zeros((n_units, 0), np.float32)
            ids_hi, val_hi, ids_lo, val_lo = none_i, none_v, none_i, none_v
    used = np.union1d(_distinct(tokens), np.union1d(ids_hi.reshape(-1), ids_lo.reshape(-1))).tolist()  # no list of every token
    arrays = IndexArrays(
        k=k,
        before=options.before,
        after=options.after,
        window_tokens=window,
        top_values=merged.values,
        top_windows=merged.windows,
        top_positions=merged.positions,
        top_context=merged.context,
        windows=windows,
        corpus=corpus,
        count=merged.count,
        mean=(merged.act_sum / max(merged.count, 1)).astype(np.float32),
        max=merged.act_max,
        hist=merged.hist,
        logit_top_ids=ids_hi,
        logit_top_values=val_hi,
        logit_bottom_ids=ids_lo,
        logit_bottom_values=val_lo,
        strings=dict(zip(used, token_strings(model.tokenizer, used))),
    )
    # a one-line description per unit, chosen on half the files and scored on the other half,
    # shard by shard (a shard's counts are kept and reused while its files and the patterns stand)
    arrays.descriptions = describe_index(model, arrays, [d.path for d in docs], hooks, encode, options.batch_windows,
                                         cancelled, shards=plan, store=store)  # fmt: skip
    if store:
        store.prune({s.key for s in plan} | store.kept_counts)
    return arrays


def _load(store: ShardStore | None, key: str) -> ShardResult:
    found = store.load(key) if store else None
    if found is None:  # removed or damaged since it was checked: the next build computes it again
        raise StorageFailed(f"stored index shard {key} could not be read back; run the build again")
    return found


def weights_fingerprint(module: Any) -> str:
    """A digest of every weight of a model (or an SAE), so that stored shards of one model's
    build are never reused for another's, nor after a single weight was edited: ~20 ms for the
    default model, ~1 s for GPT-2 small."""
    h = hashlib.sha256()
    if hasattr(module, "named_parameters"):
        tensors = list(module.named_parameters())
    else:  # an SAE: its weights are plain tensor attributes
        tensors = sorted((k, v) for k, v in vars(module).items() if isinstance(v, torch.Tensor))
        h.update(repr(sorted((k, v) for k, v in vars(module).items() if isinstance(v, (str, int, float)))).encode())
    for name, p in tensors:
        h.update(f"{name}{tuple(p.shape)}{p.dtype}".encode())
        h.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()
