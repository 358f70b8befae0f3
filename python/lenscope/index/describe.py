"""A one-line description for every unit of an index, computed locally from the index itself.

The index's windows are split into a *choose* half and a *score* half: by file when there are
two files or more (in the order of a hash of their paths, each file joins the half with fewer
tokens so far: about even halves, decided by the paths and sizes alone), else by window
(alternately). Each unit's pattern is chosen on the choose half only and scored on the score
half, so the score is measured on text the pattern was not chosen on.

- Threshold: a unit *fires* where its activation is above half its maximum over the choose half
  (the first choose-half entry of its top examples is that maximum). Units whose choose-half
  maximum is not positive get no pattern.
- One pass of the model over every window finds where each unit fires (and records the
  examples of :mod:`lenscope.index.samples`); the patterns are then chosen and counted from
  those firing positions and the tokens alone (:mod:`lenscope.index.patterns`): a token set, a
  token class, either narrowed by a token just before or in the last 8 tokens, whichever has
  the best F1 on the choose half; under the floor it is "no simple pattern".
- Score, on the score half, in the detector convention: ``precision = P(pattern | fires)``,
  ``recall = P(fires | pattern)``, with the counts kept.

Activations come from the same place the build reads them (its hooks and their ``encode``), so
an SAE feature index is described exactly as an MLP neuron index is.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lenscope.engine.plan import bos_id
from lenscope.index.arrays import IndexArrays
from lenscope.index.descriptions import ARRAYS, MAX_SET, METHOD, METRICS, Descriptions
from lenscope.index.patterns import FLOOR, Chooser, Pattern, mask, positions
from lenscope.index.samples import INTERVALS, PER_INTERVAL, RANDOM, SAMPLES_META, Samples, priority
from lenscope.index.shard_store import ShardStore
from lenscope.index.shards import Shard


def _default_encode(act: torch.Tensor) -> torch.Tensor:
    return act[:, 1:].float()


def score_half(windows: np.ndarray, paths: list[str]) -> np.ndarray:
    """uint8 [W]: 1 where a window is in the score half (see the module's docstring)."""
    if len(paths) >= 2:
        sizes = np.bincount(windows[:, 0], weights=windows[:, 2], minlength=len(paths))
        order = sorted(range(len(paths)), key=lambda d: (hashlib.sha256(paths[d].encode("utf-8")).hexdigest(), d))
        doc_score = np.zeros(len(paths), dtype=np.uint8)
        halves = [0.0, 0.0]  # tokens in each half so far: a file joins the smaller half
        for i, d in enumerate(order):
            side = i % 2 if i < 2 else int(halves[1] < halves[0])
            doc_score[d] = side
            halves[side] += sizes[d]
        side_of: np.ndarray = doc_score[windows[:, 0]]
        return side_of
    return (np.arange(len(windows)) % 2).astype(np.uint8)


def thresholds(arrays: IndexArrays, score: np.ndarray) -> np.ndarray:
    """float32 [N]: half each unit's max over the choose half (inf: not positive there)."""
    k = arrays.top_values.shape[1]
    values = arrays.top_values.astype(np.float64)
    chosen = (arrays.top_windows >= 0) & (score[arrays.top_windows.clip(0)] == 0)
    best = np.where(chosen, values, -np.inf).max(axis=1) if k else np.full(len(values), -np.inf)
    has = np.isfinite(best) & (best > 0)
    return np.where(has, best / 2, np.inf).astype(np.float32)


BIG = np.iinfo(np.int64).max


def _keep_smallest(run: tuple[torch.Tensor, torch.Tensor] | None, key: torch.Tensor, value: torch.Tensor, n: int):  # type: ignore[no-untyped-def]
    """The ``n`` smallest keys per unit (column) so far, with their values."""
    if run is not None:
        key, value = torch.cat([run[0], key]), torch.cat([run[1], value])
    k, i = key.topk(min(n, len(key)), dim=0, largest=False)
    return k, value.gather(0, i)


@torch.inference_mode()
def firing_pass(
    model: Any,
    arrays: IndexArrays,
    threshold: np.ndarray,
    hooks: list[str],
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_windows: int = 8,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, Samples]:
    """One forward per batch of the index's windows: ``(units, positions)`` of every token where a
    unit's activation is above its threshold (positions in window order), and the samples."""
    from lenscope.index.reduce import IndexCancelled, run_units

    n_units = len(threshold)
    body = int(arrays.window_tokens) - 1
    device = next(model.parameters()).device
    bos = bos_id(model.tokenizer)
    encode = encode or _default_encode
    thr = torch.from_numpy(threshold.astype(np.float32)).to(device)
    top = torch.from_numpy(np.array(arrays.max, dtype=np.float32)).to(device)
    prio = priority(len(arrays.tokens))
    above = torch.zeros((2, n_units), dtype=torch.int64, device=device)
    runs: list[Any] = [None] * (INTERVALS + 1)
    ev_u, ev_p = [], []
    lengths = arrays.windows[:, 2].astype(np.int64)
    first_p = np.cumsum(lengths) - lengths
    tokens = arrays.tokens
    for b0 in range(0, len(arrays.windows), batch_windows):
        if cancelled and cancelled():
            raise IndexCancelled("the index build was cancelled")
        batch = arrays.windows[b0 : b0 + batch_windows]
        x = torch.full((len(batch), body + 1), bos, dtype=torch.int64)
        key = torch.full((len(batch), body), BIG, dtype=torch.int64)
        for i, (d, s, n) in enumerate(batch.tolist()):
            g0 = int(arrays.doc_offsets[d]) + s
            x[i, 1 : 1 + n] = torch.from_numpy(tokens[g0 : g0 + n].astype(np.int64))
            key[i, :n] = torch.from_numpy(prio[g0 : g0 + n])
        a = run_units(model, x.to(device), hooks, encode).to(device).float()  # [B, body, N]
        key = key.to(device)
        real = (key < BIG)[:, :, None]
        fires = (a > thr) & real
        above[0] += ((a > 0) & real).sum(dim=(0, 1))
        above[1] += fires.sum(dim=(0, 1))
        b, t, u = fires.nonzero(as_tuple=True)
        ev_u.append(u.cpu().numpy())
        ev_p.append(first_p[b0 + b.cpu().numpy()] + t.cpu().numpy())
        bins = (torch.ceil(a / top * INTERVALS) - 1).clamp(max=INTERVALS - 1)
        flat_a, flat_key = a.reshape(-1, n_units), key.reshape(-1, 1).expand(-1, n_units)
        flat_bins, flat_real = bins.reshape(-1, n_units), ((a > 0) & real).reshape(-1, n_units)
        for i in range(INTERVALS):
            k = torch.where(flat_real & (flat_bins == i), flat_key, BIG)
            runs[i] = _keep_smallest(runs[i], k, flat_a, PER_INTERVAL)
        k = torch.where(fires.reshape(-1, n_units), flat_key, BIG)
        runs[INTERVALS] = _keep_smallest(runs[INTERVALS], k, flat_a, RANDOM)
    order = np.argsort(prio)  # a priority's corpus token

    def where(run: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        k, v = run[0].cpu().numpy(), run[1].cpu().numpy().astype(np.float32)
        k, v = np.pad(k, ((0, n - len(k)), (0, 0)), constant_values=BIG), np.pad(v, ((0, n - len(v)), (0, 0)))
        found = k < BIG
        return np.where(found, order[np.where(found, k, 0)], -1).T, np.where(found, v, 0).T

    q = [where(r, PER_INTERVAL) for r in runs[:INTERVALS]]
    rp, rv = where(runs[INTERVALS], RANDOM)
    positions_ = np.stack([p for p, _ in q], axis=1).astype(np.int32)  # a corpus of under 2**31 tokens
    samples = Samples(positions_, np.stack([v for _, v in q], axis=1), rp.astype(np.int32), rv,
                      above.T.cpu().numpy())  # fmt: skip
    units = np.concatenate(ev_u) if ev_u else np.zeros(0, np.int64)
    pos = np.concatenate(ev_p) if ev_p else np.zeros(0, np.int64)
    return units.astype(np.int64), pos.astype(np.int64), samples


def choose_and_count(
    arrays: IndexArrays, score: np.ndarray, threshold: np.ndarray, units: np.ndarray, pos: np.ndarray
) -> tuple[list[Pattern], np.ndarray, np.ndarray]:
    """Each unit's pattern chosen on the choose half, ``counts`` [N, 3] on the score half and the
    top examples ``[matched, chosen from]`` [N, 2], from the firing positions alone."""
    at = positions(arrays.windows, arrays.doc_offsets, arrays.tokens, score)
    chooser = Chooser(at, arrays.strings)
    in_half = np.cumsum(at.half == 0) - 1, np.cumsum(at.half == 1) - 1  # a position's index within its half
    score_tok, score_prev = at.tok[at.half == 1], at.prev[at.half == 1]
    order = np.lexsort((pos, units))
    units, pos = units[order], pos[order]
    bounds = np.searchsorted(units, np.arange(len(threshold) + 1))
    lengths = arrays.windows[:, 2].astype(np.int64)
    first_p = np.cumsum(lengths) - lengths
    w = arrays.top_windows.clip(0)
    top_p = first_p[w] + arrays.top_positions
    top_fire = (arrays.top_windows >= 0) & (score[w] == 0) & (arrays.top_values > threshold[:, None])
    patterns, counts = [], np.zeros((len(threshold), 3), dtype=np.int64)
    examples = np.zeros((len(threshold), 2), dtype=np.int32)
    for u in range(len(threshold)):
        p = pos[bounds[u] : bounds[u + 1]]
        half = at.half[p]
        pat = chooser.choose(in_half[0][p[half == 0]]) if np.isfinite(threshold[u]) else Pattern()
        patterns.append(pat)
        if pat.kind == 0:
            continue
        occurs = mask(pat, score_tok, score_prev, chooser.members)
        fired = in_half[1][p[half == 1]]
        counts[u] = occurs.sum(), len(fired), occurs[fired].sum()
        tp = top_p[u][top_fire[u]]
        examples[u] = mask(pat, at.tok[tp], at.prev[tp], chooser.members).sum(), len(tp)
    return patterns, counts, examples


def describe_index(
    model: Any,
    arrays: IndexArrays,
    paths: list[str],
    hooks: list[str],
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_windows: int = 8,
    cancelled: Callable[[], bool] | None = None,
    shards: list[Shard] | None = None,
    store: ShardStore | None = None,
) -> Descriptions:
    """Choose every unit's pattern on the choose half and score it on the score half; the pass
    also records the unit's samples (``arrays.samples``).

    ``hooks`` and ``encode`` are the build's: ``encode`` maps a hooked activation ``[B, 1 + body,
    ...]`` to ``[B, body, units]`` with the BOS dropped (default: the activation itself).
    ``shards`` and ``store`` are accepted for the build's call and not used: the pass reads every
    window once (a few seconds on the shipped corpus).
    """
    del shards, store
    t0 = time.perf_counter()
    score = score_half(arrays.windows, paths)
    threshold = thresholds(arrays, score)
    units, pos, samples = firing_pass(model, arrays, threshold, hooks, encode, batch_windows, cancelled)
    arrays.samples = samples
    patterns, counts, examples = choose_and_count(arrays, score, threshold, units, pos)
    n = len(threshold)
    toks = np.full((n, MAX_SET), -1, dtype=np.int32)
    for u, p in enumerate(patterns):
        toks[u, : len(p.tokens)] = p.tokens
    docs = sorted(set(arrays.windows[score == 1, 0].tolist()))
    meta = {
        "method": METHOD,
        "metrics": METRICS,
        "floor": FLOOR,
        "arrays": list(ARRAYS),
        "split": "files" if len(paths) >= 2 else "windows",
        "score_files": docs if len(paths) >= 2 else [],
        "score_tokens": int(arrays.windows[score == 1, 2].sum()),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return Descriptions(
        np.array([p.kind for p in patterns], dtype=np.int8), toks, np.array([p.cls for p in patterns], dtype=np.int8),
        np.array([p.context for p in patterns], dtype=np.int32), np.array([p.within for p in patterns], dtype=np.int8),
        threshold, counts, examples, score, meta,
    )  # fmt: skip


def describe_stored(
    path: Path,
    model: Any,
    hooks: list[str] | None = None,
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_windows: int = 8,
) -> Descriptions:
    """Add descriptions to an index already on disk (one built before them), in place.

    The arrays are written first and the manifest, which is what makes them visible, is
    replaced atomically last: an interrupted run leaves the index as it was. ``hooks`` default
    to the model's MLP post-activations, which is what a neuron index holds.
    """
    from lenscope.engine.run import mlp_hook_names
    from lenscope.errors import InvalidInput
    from lenscope.index.arrays import IndexArrays
    from lenscope.index.store import ARRAYS, MANIFEST, open_index, stored_corpus

    index = open_index(path)
    m = index.manifest
    if m.get("sae") and hooks is None:
        raise InvalidInput(f"{path.name} indexes SAE features: rebuild it to describe them (a build describes its units)")
    stored: dict[str, Any] = {name: np.asarray(index.arrays[name]) for name in ARRAYS}
    arrays = IndexArrays(
        k=int(m["k"]), before=int(m["before"]), after=int(m["after"]), window_tokens=int(m["window_tokens"]),
        count=int(m["tokens"]), strings=index.strings, corpus=stored_corpus(index), **stored,
    )  # fmt: skip
    paths = [f["path"] for f in m["files"]]
    d = describe_index(model, arrays, paths, hooks or mlp_hook_names(model), encode, batch_windows)
    if "descriptions" in m:  # described before: hide the old arrays while they are rewritten
        _replace_manifest(path / MANIFEST, {k: v for k, v in m.items() if k != "descriptions"})
    if "samples" in m:
        _replace_manifest(path / MANIFEST, {k: v for k, v in m.items() if k not in ("descriptions", "samples")})
    assert arrays.samples is not None
    for name, value in {**d.as_arrays(), **arrays.samples.as_arrays()}.items():
        np.save(path / f"{name}.npy", value, allow_pickle=False)
    _replace_manifest(path / MANIFEST, {**m, "descriptions": d.meta, "samples": SAMPLES_META})
    return d


def _replace_manifest(target: Path, manifest: dict[str, Any]) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
