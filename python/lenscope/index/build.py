"""Build a neuron index in one streaming pass over a tokenized corpus.

Per neuron it keeps the top-k examples by max activation, at most one per (window, neuron),
with the activations around each maximum, and running statistics (count, mean, max, a
fixed-bin histogram). Merging a batch is one ``torch.topk`` over the running store and the
batch's per-window maxima, for all neurons at once: memory is O(neurons x k), flat in the
corpus size (plus the corpus's own tokens, which the index keeps to show examples).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lenscope import defaults
from lenscope.analysis import bos_id, capture, mlp_hook_names, model_dims
from lenscope.errors import InvalidInput, JobCancelled
from lenscope.index.arrays import HIST_EDGES, IndexArrays
from lenscope.index.corpus import Document
from lenscope.index.describe import describe_index
from lenscope.tokens import token_strings, tokenize_with_spans

if TYPE_CHECKING:
    from lenscope.sae import SparseAutoencoder


class IndexCancelled(JobCancelled):
    pass


@dataclass(frozen=True)
class BuildOptions:
    k: int = defaults.INDEX_K
    before: int = 50  # tokens of context kept before an example's maximum (Neuroscope: 50)
    after: int = 10
    window: int | None = None  # tokens per window, BOS included; default: the model's n_ctx
    batch_windows: int = 8


Progress = Callable[[dict[str, Any]], None]


def _windows_of(n_tokens: list[int], body: int) -> np.ndarray:
    rows = [(d, s, min(body, n - s)) for d, n in enumerate(n_tokens) for s in range(0, n, body)]
    return np.asarray(rows, dtype=np.int32).reshape(-1, 3)


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
) -> IndexArrays:
    """With ``sae``, the units are its features (encoded from its hook point) instead of the MLP
    neurons, and logit effects follow each feature's decoder direction; all else is the same."""
    n_layers, d_mlp, _, n_ctx = model_dims(model)
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
    n_neurons = n_layers * d_mlp
    k, ctx = options.k, options.before + 1 + options.after
    device = next(model.parameters()).device
    bos = bos_id(model.tokenizer)
    hooks = [sae.hook_point] if sae is not None else mlp_hook_names(model)
    # an SAE's features are encoded inside the hook: its input is never kept
    encode = (lambda act: sae.encode(act[:, 1:]).cpu()) if sae is not None else (lambda act: act[:, 1:].float().cpu())

    spans = [tokenize_with_spans(model.tokenizer, d.text) for d in docs]
    n_tokens = [len(s.ids) for s in spans]
    doc_offsets = np.concatenate([[0], np.cumsum(n_tokens)]).astype(np.int64)
    tokens = np.concatenate([s.ids for s in spans]).astype(np.int32)
    windows = _windows_of(n_tokens, body)
    total = int(doc_offsets[-1])

    top_v = torch.full((n_neurons, k), float("-inf"))
    top_w = torch.full((n_neurons, k), -1, dtype=torch.int32)
    top_p = torch.zeros((n_neurons, k), dtype=torch.int32)
    top_c = torch.full((n_neurons, k, ctx), float("nan"), dtype=torch.float16)
    act_sum = torch.zeros(n_neurons, dtype=torch.float64)
    act_max = torch.full((n_neurons,), float("-inf"))
    lo, inv_width = float(HIST_EDGES[0]), 1.0 / float(HIST_EDGES[1] - HIST_EDGES[0])
    n_bins = len(HIST_EDGES) + 1
    hist = torch.zeros(n_neurons * n_bins, dtype=torch.int64)
    offsets = torch.arange(-options.before, options.after + 1)
    neuron_ids = torch.arange(n_neurons)
    neuron_offsets = neuron_ids * n_bins

    started, done = time.monotonic(), 0
    for b0 in range(0, len(windows), options.batch_windows):
        if cancelled and cancelled():
            raise IndexCancelled("the index build was cancelled")
        batch = windows[b0 : b0 + options.batch_windows]
        x = torch.full((len(batch), body + 1), bos, dtype=torch.int64)
        for i, (d, s, n) in enumerate(batch.tolist()):
            x[i, 1 : 1 + n] = torch.from_numpy(tokens[doc_offsets[d] + s : doc_offsets[d] + s + n].astype(np.int64))
        acts: list[torch.Tensor] = []
        model.run_with_hooks(x.to(device), fwd_hooks=[(h, capture(acts, encode)) for h in hooks])
        a = torch.cat(acts, dim=-1)  # [B, body, N], BOS dropped
        lengths = torch.from_numpy(batch[:, 2].astype(np.int64))
        full = bool((lengths == body).all())
        for i, n in enumerate(batch[:, 2].tolist()):
            if n < body:
                a[i, n:] = float("-inf")  # padding never wins a maximum
        b_val, b_pos = a.max(dim=1)  # [B, N]: one example per (window, neuron)
        # the activations around each maximum, NaN outside the window
        p = b_pos[:, :, None] + offsets  # [B, N, ctx]
        inside = (p >= 0) & (p < lengths[:, None, None])
        pc = p.clamp(0, body - 1)
        b_ctx = a[torch.arange(len(batch))[:, None, None], pc, neuron_ids[None, :, None]]
        b_ctx = b_ctx.masked_fill(~inside, float("nan")).to(torch.float16)
        # merge: one topk over the running store and this batch's maxima
        cand_v = torch.cat([top_v, b_val.T], dim=1)
        cand_w = torch.cat([top_w, torch.arange(b0, b0 + len(batch), dtype=torch.int32)[None, :].expand(n_neurons, -1)], dim=1)
        cand_p = torch.cat([top_p, b_pos.T.to(torch.int32)], dim=1)
        cand_c = torch.cat([top_c, b_ctx.transpose(0, 1)], dim=1)
        top_v, idx = cand_v.topk(k, dim=1)
        top_w, top_p = cand_w.gather(1, idx), cand_p.gather(1, idx)
        top_c = cand_c.gather(1, idx[:, :, None].expand(-1, -1, ctx))
        # running statistics over the real (unpadded) tokens
        flat = a.reshape(-1, n_neurons) if full else a[torch.arange(body)[None, :] < lengths[:, None]]
        act_sum += flat.sum(dim=0).double()
        act_max = torch.maximum(act_max, b_val.max(dim=0).values)
        # uniform bins [lo + i w, lo + (i+1) w): arithmetic, not a search (bucketize is 3x slower)
        # shifted by one bin so truncation toward zero is the floor; below the first edge -> bin 0
        bins = ((flat - lo) * inv_width + 1).clamp_(0, n_bins - 1).to(torch.int64) + neuron_offsets
        hist += torch.bincount(bins.reshape(-1), minlength=n_neurons * n_bins)
        done += int(lengths.sum())
        if progress:
            elapsed = time.monotonic() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            progress({"tokens_done": done, "tokens_total": total, "rate": rate, "eta_s": (total - done) / rate if rate else None})

    # one-time cost, independent of the corpus (for GPT-2 small: 36,864 x 50,257 dot products)
    if sae is None:
        ids_hi, val_hi, ids_lo, val_lo = logit_effects(model)
    else:
        directions = sae.output_directions(model)
        if directions is not None:
            ids_hi, val_hi, ids_lo, val_lo = logit_effects(model, directions=directions)
        else:  # a hook point with no linear path to the residual stream: no logit effects
            none_i, none_v = np.zeros((n_neurons, 0), np.int32), np.zeros((n_neurons, 0), np.float32)
            ids_hi, val_hi, ids_lo, val_lo = none_i, none_v, none_i, none_v
    used = sorted(set(tokens.tolist()) | set(ids_hi.reshape(-1).tolist()) | set(ids_lo.reshape(-1).tolist()))
    arrays = IndexArrays(
        k=k,
        before=options.before,
        after=options.after,
        window_tokens=window,
        top_values=top_v.numpy().astype(np.float32),
        top_windows=top_w.numpy().astype(np.int32),
        top_positions=top_p.numpy().astype(np.int32),
        top_context=top_c.numpy(),
        windows=windows,
        tokens=tokens,
        token_start=np.concatenate([s.start for s in spans]).astype(np.int32),
        token_end=np.concatenate([s.end for s in spans]).astype(np.int32),
        doc_offsets=doc_offsets,
        text=np.frombuffer("".join(d.text for d in docs).encode("utf-32-le"), dtype=np.uint32),
        doc_chars=np.concatenate([[0], np.cumsum([len(d.text) for d in docs])]).astype(np.int64),
        count=total,
        mean=(act_sum / max(total, 1)).numpy().astype(np.float32),
        max=act_max.numpy().astype(np.float32),
        hist=hist.reshape(n_neurons, n_bins).numpy(),
        logit_top_ids=ids_hi,
        logit_top_values=val_hi,
        logit_bottom_ids=ids_lo,
        logit_bottom_values=val_lo,
        strings=dict(zip(used, token_strings(model.tokenizer, used))),
    )
    # a one-line description per unit, chosen on half the files and scored on the other half
    arrays.descriptions = describe_index(model, arrays, [d.path for d in docs], hooks, encode, options.batch_windows, cancelled)
    return arrays
