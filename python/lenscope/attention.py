"""Where each head attends: every text token's strongest sources, for any length of text.

A pattern over a long text is ``[heads, n, n]``; only the ``k`` largest weights of each
query row are kept (a reduce inside the forward hook, so no window's whole pattern outlives its
layer), with their sources named by text token index: ``-1`` for the BOS, ``-2`` for a context
token before the text, ``-3`` for nothing (a row with fewer than ``k`` keys). With ``k`` at least
the window's length the rows are the whole of ``hook_pattern``.

A head's **positional share** on this text says whether it picks its keys by their position or
by their content. With each LayerNorm scale frozen at its observed value, a key vector is a sum
``k_j = kp_j + kc_j + const``: ``kp_j`` from the positional embedding at ``j`` and ``kc_j`` from
the rest of the residual stream (the token, and earlier layers). For a query ``q_i`` the spread
of its scores across keys is then ``Var_j(q_i . kp_j)`` from position and ``Var_j(q_i . kc_j)``
from content (the BOS, an attention sink, left out; the covariance of the two left out too); the
share is ``sum_i Var_pos / sum_i (Var_pos + Var_content)`` over the text's queries with at least
two keys. A model without a learned positional embedding (rotary, none) gets NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lenscope import defaults
from lenscope.engine.layernorm import ln_params
from lenscope.engine.plan import plan_input
from lenscope.engine.run import forward_windows, model_device
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of
from lenscope.tokens import TokenSpans, token_strings
from lenscope.validation import MAX_RESPONSE_CELLS, MAX_TEXT_TOKENS, check_int

BOS, CONTEXT, NONE = -1, -2, -3


@dataclass
class AttentionResult:
    model: str
    tokens: TokenSpans
    token_texts: list[str]
    layers: list[int]
    n_heads: int
    sources: (
        np.ndarray
    )  # int32 [layers, heads, n, k'] (k' = k, or the window's length when shorter): text token index, or BOS / CONTEXT / NONE
    weights: np.ndarray  # float32 [layers, heads, n, k], largest first
    positional_share: np.ndarray  # float32 [layers, heads]
    strings: dict[int, str]


def _top_sources(k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``hook_pattern`` [B, H, q, keys] -> [B, q, H, k, 2]: (weight, local key index), largest first."""

    def reduce(pattern: torch.Tensor) -> torch.Tensor:
        w, i = pattern.float().topk(min(k, pattern.shape[-1]), dim=-1)
        return torch.stack([w, i.float()], -1).permute(0, 2, 1, 3, 4)

    return reduce


class _Spread:
    """Per layer, a reduce on ``hook_k`` that turns (q, k and the frozen positional part of k)
    into per-query score variances ``[B, q, H, 2]`` (position, content); it reads the ``ln1``
    scale, ``hook_pos_embed`` and ``hook_q`` captured just before, in firing order."""

    def __init__(self, model: Any, layer: int) -> None:
        d_model = int(model.cfg.d_model)
        w_ln, _ = ln_params(model.blocks[layer].ln1, d_model)
        self.w_ln = w_ln.to(model_device(model))
        self.w_k = model.W_K[layer].detach().float()  # [H, d_model, d_head]
        self.seen: dict[str, torch.Tensor] = {}

    def keep(self, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        def reduce(act: torch.Tensor) -> torch.Tensor:
            self.seen[name] = act
            return act[..., :1]  # a placeholder the windows' loop discards

        return reduce

    def __call__(self, k: torch.Tensor) -> torch.Tensor:
        q, pos, scale = self.seen["q"].float(), self.seen["pos"].float(), self.seen["scale"].float()
        scale = scale.reshape(*scale.shape[:2], -1)[..., :1]  # [B, T, 1] (some bridges broadcast it)
        pos = pos.expand(q.shape[0], -1, -1) if pos.shape[0] == 1 else pos
        p = (pos - pos.mean(-1, keepdim=True)) / scale * self.w_ln
        kp = torch.einsum("btm,hmd->bthd", p, self.w_k)
        kc = k.float() - kp  # content and the constant (the constant has no spread over keys)
        t = q.shape[1]
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
        mask[:, 0] = False  # the BOS
        count = mask.sum(-1).clamp(min=1)  # [T]
        out = []
        for part in (kp, kc):
            s = torch.einsum("bqhd,bkhd->bhqk", q, part).masked_fill(~mask, 0.0)
            mean = s.sum(-1, keepdim=True) / count[:, None]
            var = ((s - mean).masked_fill(~mask, 0.0) ** 2).sum(-1) / count  # [B, H, T]
            out.append(torch.where(count >= 2, var, torch.zeros_like(var)))
        self.seen.clear()
        return torch.stack(out, -1).permute(0, 2, 1, 3)  # [B, T, H, 2]


@torch.inference_mode()
def attend(
    model: Any,
    text: str,
    *,
    context: str = "",
    layers: list[int] | None = None,
    k: int = defaults.ATTENTION_K,
    model_name: str | None = None,
    token_ids: list[int] | None = None,
) -> AttentionResult:
    """The ``k`` strongest sources of every text token for every head of ``layers`` (default:
    all), and each head's positional share on this text (or on ``token_ids`` as given, ``text``
    empty)."""
    n_layers = shape_of(model).n_layers
    n_heads = int(model.cfg.n_heads)
    layers = list(range(n_layers)) if layers is None else sorted(set(layers))
    if not layers:
        raise InvalidInput("layers: name at least one layer")
    for layer in layers:
        check_int(layer, "layer", 0, n_layers - 1)
    check_int(k, "k", 1, defaults.MAX_ATTENTION_K)
    plan = plan_input(model, text, context, token_ids)
    n = len(plan.spans.ids)
    if n > MAX_TEXT_TOKENS:
        raise InputTooLarge(f"text is {n:,} tokens; the limit is {MAX_TEXT_TOKENS:,}: select less text")
    cells = n * len(layers) * n_heads * k
    if cells > MAX_RESPONSE_CELLS:
        raise InputTooLarge(
            f"{n:,} tokens x {len(layers)} layers x {n_heads} heads x k {k} = {cells:,} values; the limit is "
            f"{MAX_RESPONSE_CELLS:,}: ask for fewer layers, a smaller k or less text"
        )
    has_pos = (
        getattr(model, "W_pos", None) is not None
        and str(getattr(model.cfg, "positional_embedding_type", "standard")) == "standard"
    )
    hooks: list[str] = []
    reduce: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    spreads: dict[int, _Spread] = {}
    if has_pos:
        hooks.append(hook_names.POS_EMBED)
    for layer in layers:
        if has_pos:
            spread = spreads[layer] = _Spread(model, layer)
            names = (hook_names.ln1_scale(layer), hook_names.attn_q(layer), hook_names.attn_k(layer))
            hooks += names
            reduce[names[0]], reduce[names[1]], reduce[names[2]] = spread.keep("scale"), spread.keep("q"), spread
        pattern = hook_names.attn_pattern(layer)
        hooks.append(pattern)
        reduce[pattern] = _top_sources(k)
    if has_pos:
        # every layer's spread reads the one positional embedding, captured first
        first = hooks[0]
        reduce[first] = _share_pos(spreads)
    per: dict[str, list[torch.Tensor]] = {"weights": [], "sources": [], "spread": []}
    for w, positions, _, acts in forward_windows(model, plan, hooks, {"forward": 0.0}, reduce):
        a = dict(zip(hooks, acts))
        top = torch.stack([a[hook_names.attn_pattern(layer)] for layer in layers], 1)  # [P, L, H, k', 2]
        local = top[..., 1].long()
        s_index = w.start + local - 1  # the key's S position (local 0 is the BOS)
        source = torch.where(s_index < plan.keep, CONTEXT, s_index - plan.keep)
        source = torch.where(local == 0, BOS, source)
        weight = top[..., 0]
        # keys after the query (zero weight, causal mask) are nothing
        query_local = (positions - w.start + 1)[:, None, None, None]
        source = torch.where(local > query_local, NONE, source)
        weight = torch.where(local > query_local, 0.0, weight)
        per["weights"].append(weight)
        per["sources"].append(source)
        if has_pos:
            per["spread"].append(torch.stack([a[hook_names.attn_k(layer)] for layer in layers], 1))  # [P, L, H, 2]
    weights = torch.cat(per["weights"])[1:]  # row 0: the BOS or a context token
    sources = torch.cat(per["sources"])[1:]
    if has_pos:
        total = torch.cat(per["spread"])[1:].double().sum(0)  # [L, H, 2]
        share = (total[..., 0] / (total[..., 0] + total[..., 1])).float()
    else:
        share = torch.full((len(layers), n_heads), float("nan"))
    ids = plan.spans.ids.tolist()
    uniq = sorted(set(ids))
    return AttentionResult(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        tokens=plan.spans,
        token_texts=plan.spans.texts(plan.text),
        layers=layers,
        n_heads=n_heads,
        sources=sources.permute(1, 2, 0, 3).to(torch.int32).cpu().numpy(),
        weights=weights.permute(1, 2, 0, 3).float().cpu().numpy(),
        positional_share=share.cpu().numpy().astype(np.float32),
        strings=dict(zip(uniq, token_strings(model.tokenizer, uniq))),
    )


def _share_pos(spreads: dict[int, _Spread]) -> Callable[[torch.Tensor], torch.Tensor]:
    def reduce(pos: torch.Tensor) -> torch.Tensor:
        for s in spreads.values():
            s.seen["pos"] = pos
        return pos[..., :1]

    return reduce


def attention_to_wire(result: AttentionResult) -> dict[str, Any]:
    """The wire form (``AttentionResponse``); weights travel as float16 (display precision)."""
    from lenscope.wire_convert import tokens_to_wire

    ids = sorted(result.strings)
    return {
        "model": result.model,
        "tokens": tokens_to_wire(result.tokens),
        "layers": result.layers,
        "n_heads": result.n_heads,
        "sources": np.ascontiguousarray(result.sources, dtype=np.int32),
        "weights": np.ascontiguousarray(result.weights, dtype=np.float16),
        "positional_share": np.ascontiguousarray(result.positional_share, dtype=np.float32),
        "strings": {"ids": ids, "values": [result.strings[i] for i in ids]},
    }
