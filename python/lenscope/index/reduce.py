"""One shard's forward passes and reduction (torch): what every engine runs, in any process.

Kept apart from the planning and the merge (``lenscope.index.shards``, numpy only) so that a
Ray worker imports exactly this and the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from lenscope.engine.run import mlp_hook_names, run_hooked
from lenscope.errors import JobCancelled
from lenscope.index.arrays import HIST_EDGES
from lenscope.index.shards import N_BINS, ShardResult
from lenscope.native_memory import release_freed_memory

Encode = Callable[[torch.Tensor], torch.Tensor]


class IndexCancelled(JobCancelled):
    pass


def shard_inputs(windows: np.ndarray, tokens: np.ndarray, doc_offsets: np.ndarray, body: int, bos: int) -> np.ndarray:
    """int32 [w, 1 + body]: each window's tokens after a BOS, padded with the BOS."""
    x = np.full((len(windows), body + 1), bos, dtype=np.int32)
    for i, (d, s, n) in enumerate(windows.tolist()):
        g = int(doc_offsets[d]) + s
        x[i, 1 : 1 + n] = tokens[g : g + n]
    return x


def mlp_encode(act: torch.Tensor) -> torch.Tensor:
    return act[:, 1:].float().cpu()


def units_of(model: Any, sae: Any = None) -> tuple[list[str], Encode]:
    """The hooks an index reads and how it turns a hooked activation ``[B, 1 + body, ...]`` into
    units ``[B, body, units]``: the MLP neurons, or ``sae``'s features (encoded inside the hook,
    so its input is never kept)."""
    if sae is None:
        return mlp_hook_names(model), mlp_encode
    return [sae.hook_point], lambda act: sae.encode(act[:, 1:]).cpu()


class _Enough(Exception):
    """Raised by the last unit hook: the rest of the forward (later blocks, the unembedding)
    is not needed for an index."""


def run_units(model: Any, x: torch.Tensor, hooks: list[str], encode: Encode) -> torch.Tensor:
    """``[B, body, units]``: the hooked activations, encoded, for one batch of windows. The
    forward stops once the last hook has fired: on the default model the unembedding alone is
    ~40% of a forward pass, and no index needs the logits."""
    acts: list[torch.Tensor] = []

    def hook(act: torch.Tensor, hook: Any) -> None:
        acts.append(encode(act))
        if len(acts) == len(hooks):
            raise _Enough

    with contextlib.suppress(_Enough):
        run_hooked(model, x, [(h, hook) for h in hooks])
    if len(acts) != len(hooks):
        raise RuntimeError(f"{len(hooks) - len(acts)} of the index's hooks did not fire: {hooks}")
    return torch.cat(acts, dim=-1)


@torch.inference_mode()
def reduce_shard(
    model: Any,
    hooks: list[str],
    encode: Encode,
    x: np.ndarray,
    lengths: np.ndarray,
    *,
    k: int,
    before: int,
    after: int,
    batch_windows: int,
    cancelled: Callable[[], bool] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ShardResult:
    """Forward the shard's windows ``batch_windows`` at a time and keep, per unit, its top ``k``
    windows by max activation (one example per window, with the activations around the max), the
    sum, max and histogram of its activations over the real (unpadded) tokens.

    The store stays sorted by value, highest first, ties by window: each merge is a stable sort
    of the store followed by the batch (whose windows all come later).
    """
    body = x.shape[1] - 1
    device = next(model.parameters()).device
    ctx = before + 1 + after
    offsets = torch.arange(-before, after + 1)
    lo, inv_width = float(HIST_EDGES[0]), 1.0 / float(HIST_EDGES[1] - HIST_EDGES[0])
    top_v = top_w = top_p = top_c = None
    act_sum: torch.Tensor | None = None
    act_max: torch.Tensor | None = None
    hist: torch.Tensor | None = None
    for b0 in range(0, len(x), batch_windows):
        if cancelled and cancelled():
            raise IndexCancelled("the index build was cancelled")
        xb = torch.from_numpy(x[b0 : b0 + batch_windows].astype(np.int64))
        lengths_b = torch.from_numpy(lengths[b0 : b0 + batch_windows].astype(np.int64))
        a = run_units(model, xb.to(device), hooks, encode)  # [B, body, N], BOS dropped
        n_units = a.shape[-1]
        if top_v is None:
            act_sum = torch.zeros(n_units, dtype=torch.float64)
            act_max = torch.full((n_units,), float("-inf"))
            hist = torch.zeros(n_units * N_BINS, dtype=torch.int64)
        assert act_sum is not None and act_max is not None and hist is not None
        full = bool((lengths_b == body).all())
        for i, n in enumerate(lengths_b.tolist()):
            if n < body:
                a[i, n:] = float("-inf")  # padding never wins a maximum
        b_val, b_pos = a.max(dim=1)  # [B, N]: one example per (window, unit)
        p = b_pos[:, :, None] + offsets  # [B, N, ctx]: the activations around each max, NaN outside the window
        inside = (p >= 0) & (p < lengths_b[:, None, None])
        b_ctx = a[torch.arange(len(xb))[:, None, None], p.clamp(0, body - 1), torch.arange(n_units)[None, :, None]]
        b_ctx = b_ctx.masked_fill(~inside, float("nan")).to(torch.float16)
        cand = [b_val.T, torch.arange(b0, b0 + len(xb), dtype=torch.int32)[None, :].expand(n_units, -1),
                b_pos.T.to(torch.int32), b_ctx.transpose(0, 1)]  # fmt: skip
        if top_v is not None:
            assert top_w is not None and top_p is not None and top_c is not None
            cand = [torch.cat([s, c], dim=1) for s, c in zip((top_v, top_w, top_p, top_c), cand)]
        order = torch.sort(cand[0], dim=1, descending=True, stable=True).indices[:, :k]
        top_v, top_w, top_p = (c.gather(1, order) for c in cand[:3])
        top_c = cand[3].gather(1, order[:, :, None].expand(-1, -1, ctx))
        flat = a.reshape(-1, n_units) if full else a[torch.arange(body)[None, :] < lengths_b[:, None]]
        act_sum += flat.sum(dim=0).double()
        torch.maximum(act_max, b_val.max(dim=0).values, out=act_max)
        # uniform bins [lo + i w, lo + (i+1) w): arithmetic, not a search (bucketize is 3x slower);
        # shifted by one bin so truncation toward zero is the floor; below the first edge -> bin 0
        bins = ((flat - lo) * inv_width + 1).clamp_(0, N_BINS - 1).to(torch.int64) + torch.arange(n_units) * N_BINS
        hist += torch.bincount(bins.reshape(-1), minlength=n_units * N_BINS)
        if on_batch:
            on_batch(int(lengths_b.sum()))
    release_freed_memory()  # the batches' freed temporaries, back to the system (see lenscope.native_memory)
    if top_v is None:
        raise ValueError("a shard has no windows")
    assert top_w is not None and top_p is not None and top_c is not None and hist is not None
    assert act_sum is not None and act_max is not None
    return ShardResult(
        top_v.numpy().astype(np.float32),
        top_w.numpy().astype(np.int32),
        top_p.numpy().astype(np.int32),
        top_c.numpy(),
        act_sum.numpy(),
        act_max.numpy().astype(np.float32),
        hist.reshape(n_units, N_BINS).numpy(),
        int(lengths.sum()),
    )
