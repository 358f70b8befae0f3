"""A one-line description for every unit of an index, computed locally from the index itself.

The index's windows are split into a *choose* half and a *score* half: by file when there are
two files or more (in the order of a hash of their paths, each file joins the half with fewer
tokens so far: about even halves, decided by the paths and sizes alone), else by window
(alternately). Each unit's pattern is chosen from its top examples that lie in the choose half
only; it is then scored in one streaming pass of the model over the score half, so the score is
measured on text the pattern was not chosen on.

- Threshold: a unit *fires* where its activation is above half its maximum over the choose half
  (the first choose-half entry of its top examples is that maximum). Units whose choose-half
  maximum is not positive get no pattern.
- Pattern: among the choose-half top examples that fire, the peak token seen most often (ties:
  the highest example); then the (preceding token, token) pair seen most often among the
  examples that peak on that token (within the example's window: the first token of a window
  follows the BOS). The pair is the pattern when at least 2 examples and at
  least 3/4 of those on the token share it (a pair is more specific: taken only when it costs
  almost none of the examples), else the token alone.
- Score, on the score half: ``precision = P(fires | pattern occurs)``,
  ``recall = P(pattern occurs | fires)``, with the counts kept.

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
from lenscope.index.descriptions import METHOD, Descriptions
from lenscope.index.shard_store import ShardStore, counts_key
from lenscope.index.shards import Shard

UNITS_PER_STEP = 8192
"""Units counted at once: ``[batch, body, 8192]`` booleans, 67 MB for 8 windows of 1,024 tokens."""


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


def peak_tokens(arrays: IndexArrays) -> tuple[np.ndarray, np.ndarray]:
    """The token at each top example's maximum and the one before it in its window (-1 at the
    window's first token, where the model saw the BOS): int64 [N, k] each, -1 where there is no
    example."""
    w = arrays.top_windows.clip(0)
    doc, start = arrays.windows[w, 0], arrays.windows[w, 1]
    g = arrays.doc_offsets[doc] + start + arrays.top_positions
    tok = arrays.tokens[g].astype(np.int64)
    prev = np.where(arrays.top_positions > 0, arrays.tokens[(g - 1).clip(0)], -1).astype(np.int64)
    missing = arrays.top_windows < 0
    return np.where(missing, -1, tok), np.where(missing, -1, prev)


def choose_patterns(arrays: IndexArrays, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each unit's pattern from its choose-half top examples only: ``(token, prev, threshold,
    examples)`` as in :class:`Descriptions` (vectorized over units and examples)."""
    n, k = arrays.top_values.shape
    tok, prev = peak_tokens(arrays)
    values = arrays.top_values.astype(np.float64)
    chosen = (arrays.top_windows >= 0) & (score[arrays.top_windows.clip(0)] == 0)
    best = np.where(chosen, values, -np.inf).max(axis=1) if k else np.full(n, -np.inf)
    has = np.isfinite(best) & (best > 0)
    threshold = np.where(has, best / 2, np.inf)
    fire = chosen & (values > threshold[:, None])
    same = (tok[:, :, None] == tok[:, None, :]) & fire[:, :, None] & fire[:, None, :]  # [N, k, k]
    tok_count = np.where(fire, same.sum(axis=2), 0)
    j = tok_count.argmax(axis=1)  # first of the most frequent: top examples are sorted, highest first
    rows = np.arange(n)
    p_tok, c_tok = tok[rows, j], tok_count[rows, j]
    pair = same & (prev[:, :, None] == prev[:, None, :]) & (prev >= 0)[:, :, None]
    on_tok = fire & (tok == p_tok[:, None])
    pair_count = np.where(on_tok & (prev >= 0), pair.sum(axis=2), 0)
    jp = pair_count.argmax(axis=1)
    c_pair = pair_count[rows, jp]
    use_pair = (c_pair >= 2) & (4 * c_pair >= 3 * c_tok)
    token = np.where(has, p_tok, -1).astype(np.int32)
    before = np.where(has & use_pair, prev[rows, jp], -1).astype(np.int32)
    examples = np.stack([np.where(use_pair, c_pair, c_tok), fire.sum(axis=1)], axis=1) * has[:, None]
    return token, before, threshold.astype(np.float32), examples.astype(np.int32)


@torch.inference_mode()
def score_patterns(
    model: Any,
    arrays: IndexArrays,
    score: np.ndarray,
    token: np.ndarray,
    prev: np.ndarray,
    threshold: np.ndarray,
    hooks: list[str],
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_windows: int = 8,
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """int64 [N, 3]: over the score half's tokens, where each pattern occurs, where each unit
    fires (activation > threshold), and both: one forward per batch of the index's own windows,
    counted for all units at once."""
    from lenscope.index.reduce import IndexCancelled, run_units

    n_units = len(token)
    body = int(arrays.window_tokens) - 1
    device = next(model.parameters()).device
    bos = bos_id(model.tokenizer)
    encode = encode or _default_encode
    pat_tok = torch.from_numpy(token.astype(np.int64)).to(device)
    pat_prev = torch.from_numpy(prev.astype(np.int64)).to(device)
    any_prev = pat_prev < 0
    thr = torch.from_numpy(threshold.astype(np.float32)).to(device)
    counts = torch.zeros((3, n_units), dtype=torch.int64, device=device)
    scored = np.flatnonzero(score)
    tokens = arrays.tokens  # converted per window below: this runs once per shard, never copy the corpus
    for b0 in range(0, len(scored), batch_windows):
        if cancelled and cancelled():
            raise IndexCancelled("the index build was cancelled")
        batch = arrays.windows[scored[b0 : b0 + batch_windows]]
        x = torch.full((len(batch), body + 1), bos, dtype=torch.int64)
        tok = torch.full((len(batch), body), -2, dtype=torch.int64)  # -2: padding, never a pattern
        before = torch.full((len(batch), body), -1, dtype=torch.int64)  # -1 at the window's start: after the BOS
        for i, (d, s, n) in enumerate(batch.tolist()):
            g0 = int(arrays.doc_offsets[d]) + s
            x[i, 1 : 1 + n] = tok[i, :n] = torch.from_numpy(tokens[g0 : g0 + n].astype(np.int64))
            before[i, 1:n] = tok[i, : n - 1]
        a = run_units(model, x.to(device), hooks, encode).to(device)  # [B, body, N]
        tok, before = tok.to(device), before.to(device)
        real = (tok >= 0)[:, :, None]
        for u in range(0, n_units, UNITS_PER_STEP):  # bounds the [B, body, units] booleans (GPT-2 small: 36,864 units)
            v = slice(u, u + UNITS_PER_STEP)
            fires = (a[:, :, v] > thr[v]) & real
            occurs = (tok[:, :, None] == pat_tok[v]) & (any_prev[v] | (before[:, :, None] == pat_prev[v]))
            counts[0, v] += occurs.sum(dim=(0, 1))
            counts[1, v] += fires.sum(dim=(0, 1))
            counts[2, v] += (occurs & fires).sum(dim=(0, 1))
    result: np.ndarray = counts.T.cpu().numpy()
    return result


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
    """Choose every unit's pattern on the choose half and score it on the score half.

    ``hooks`` and ``encode`` are the build's: ``encode`` maps a hooked activation ``[B, 1 + body,
    ...]`` to ``[B, body, units]`` with the BOS dropped (default: the activation itself).
    With the build's ``shards``, the score half is counted shard by shard (integer counts: the
    sum is the same), and with a ``store`` each shard's counts are kept and reused while the
    shard and every unit's pattern are unchanged.
    """
    t0 = time.perf_counter()
    score = score_half(arrays.windows, paths)
    token, prev, threshold, examples = choose_patterns(arrays, score)
    if shards is None:
        counts = score_patterns(model, arrays, score, token, prev, threshold, hooks, encode, batch_windows, cancelled)
    else:
        digest = hashlib.sha256(b"".join(a.tobytes() for a in (token, prev, threshold))).hexdigest()
        counts = np.zeros((len(token), 3), dtype=np.int64)
        for shard in shards:
            mask = np.zeros_like(score)
            span = slice(shard.first_window, shard.first_window + len(shard.windows))
            mask[span] = score[span]
            if not mask.any():
                continue
            key = counts_key(shard.key, hashlib.sha256(digest.encode() + mask[span].tobytes()).hexdigest())
            part = store.load_counts(key) if store else None
            if part is None:
                part = score_patterns(model, arrays, mask, token, prev, threshold, hooks, encode, batch_windows, cancelled)
                if store:
                    store.save_counts(key, part)
            if store:
                store.kept_counts.add(key)
            counts += part
    docs = sorted(set(arrays.windows[score == 1, 0].tolist()))
    meta = {
        "method": METHOD,
        "split": "files" if len(paths) >= 2 else "windows",
        "score_files": docs if len(paths) >= 2 else [],
        "score_tokens": int(arrays.windows[score == 1, 2].sum()),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return Descriptions(token, prev, threshold, counts, examples, score, meta)


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
    for name, value in d.as_arrays().items():
        np.save(path / f"{name}.npy", value, allow_pickle=False)
    _replace_manifest(path / MANIFEST, {**m, "descriptions": d.meta})
    return d


def _replace_manifest(target: Path, manifest: dict[str, Any]) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
