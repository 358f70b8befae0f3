"""Reading the weights of 1-layer models directly (Elhage et al. 2021, "A Mathematical Framework
for Transformer Circuits"): each head's OV and QK circuits over the vocabulary, its copying
score, and each neuron's input side.

Approximations, stated once: a token is read "alone" through the LayerNorms. Its embedding row
is centred, divided by its own scale and given the LayerNorm's weight and bias (as if it were
the whole residual stream: the positional embedding and other heads are left out). At the output,
a head's write is centred and weighted by the final LayerNorm; the final scale is taken as 1. The
final scale is one number per position, so rankings within a source token do not change.

Memory stays bounded for large vocabularies: the vocab x vocab circuits are never held whole.
They are computed a block of rows at a time, and a running top-k is kept. Copying scores use
the small ``d_head x d_head`` matrix that has the same non-zero eigenvalues as the full circuit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lenscope.engine.layernorm import ln_params
from lenscope.errors import InvalidInput
from lenscope.models.shape import shape_of
from lenscope.validation import check_int

ROWS_PER_BLOCK = 512


def _block(model: Any, layer: int) -> Any:
    return model.blocks[layer]


def tokens_through_ln(model: Any, ln: Any) -> torch.Tensor:
    """Every token's embedding row through a LayerNorm, read alone: ``[vocab, d_model]``."""
    d_model = int(model.cfg.d_model)
    w, b = ln_params(ln, d_model)
    e = model.W_E.detach().float()
    centred = e - e.mean(-1, keepdim=True)
    eps = float(getattr(model.cfg, "eps", 1e-5))
    scale = (centred.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    out: torch.Tensor = centred / scale * w + b
    return out


def _check_head(model: Any, layer: int, head: int) -> None:
    check_int(layer, "layer", 0, int(model.cfg.n_layers) - 1)
    check_int(head, "head", 0, int(model.cfg.n_heads) - 1)


def _running_topk(best: tuple[torch.Tensor, torch.Tensor] | None, values: torch.Tensor, offset: int, k: int,
                  largest: bool) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Merge a block's top-k (flat indices shifted by ``offset``) into the running top-k."""
    top_v, top_i = values.reshape(-1).topk(min(k, values.numel()), largest=largest)
    top_i = top_i + offset
    if best is not None:
        top_v, idx = torch.cat([best[0], top_v]).topk(min(k, len(best[0]) + len(top_v)), largest=largest)
        top_i = torch.cat([best[1], top_i])[idx]
    return top_v, top_i


def _top_pairs(rows: torch.Tensor, right: torch.Tensor, bias: torch.Tensor | None, k: int, largest: bool = True
               ) -> list[tuple[int, int, float]]:  # fmt: skip
    """Top-k entries of ``rows @ right (+ bias)`` ([n, m]), a block of rows at a time: ``(i, j, value)``."""
    m = right.shape[1]
    best = None
    for start in range(0, rows.shape[0], ROWS_PER_BLOCK):
        block = rows[start : start + ROWS_PER_BLOCK] @ right
        if bias is not None:
            block = block + bias
        best = _running_topk(best, block, start * m, k, largest)
    assert best is not None
    return [(int(i // m), int(i % m), float(v)) for v, i in zip(best[0].tolist(), best[1].tolist())]


@dataclass
class HeadCircuits:
    layer: int
    head: int
    ov_top: list[tuple[int, int, float]]  # (source token, boosted output token, logit effect)
    ov_bottom: list[tuple[int, int, float]]  # most suppressed
    qk_top: list[tuple[int, int, float]]  # (query token, key token, attention score)
    copying_score: float  # Re(sum of eigenvalues) / sum of |eigenvalues| of the OV circuit
    positive_share: float  # share of the (non-zero) eigenvalues with a positive real part
    eigenvalues: np.ndarray  # complex [d_head]


@torch.inference_mode()
def ov_rows(model: Any, layer: int, head: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The OV circuit as ``left @ right``: left ``[vocab, d_head]`` (tokens through LN1 and W_V,
    plus b_V), right ``[d_head, vocab]`` (W_O, centred, final LayerNorm weight, W_U)."""
    d_model = int(model.cfg.d_model)
    x = tokens_through_ln(model, _block(model, layer).ln1)
    left = x @ model.W_V.detach().float()[layer, head] + model.b_V.detach().float()[layer, head]
    w_o = model.W_O.detach().float()[layer, head]  # [d_head, d_model]
    w_final, _ = ln_params(model.ln_final, d_model)
    right = ((w_o - w_o.mean(-1, keepdim=True)) * w_final) @ model.W_U.detach().float()
    return left, right


@torch.inference_mode()
def head_circuits(model: Any, layer: int, head: int, top: int = 20) -> HeadCircuits:
    _check_head(model, layer, head)
    left, right = ov_rows(model, layer, head)
    x = tokens_through_ln(model, _block(model, layer).ln1)
    q = x @ model.W_Q.detach().float()[layer, head] + model.b_Q.detach().float()[layer, head]
    kk = x @ model.W_K.detach().float()[layer, head] + model.b_K.detach().float()[layer, head]
    d_head = q.shape[1]
    # eig(left @ right) and eig(right @ left) share their non-zero eigenvalues
    eig = torch.linalg.eigvals(right.double() @ left.double()).numpy()
    nonzero = eig[np.abs(eig) > 1e-9 * max(1.0, float(np.abs(eig).max()))]
    return HeadCircuits(
        layer=layer,
        head=head,
        ov_top=_top_pairs(left, right, None, top),
        ov_bottom=_top_pairs(left, right, None, top, largest=False),
        qk_top=_top_pairs(q / d_head**0.5, kk.T, None, top),
        copying_score=float(nonzero.sum().real / np.abs(nonzero).sum()) if nonzero.size else 0.0,
        positive_share=float((nonzero.real > 0).mean()) if nonzero.size else 0.0,
        eigenvalues=eig,
    )


@torch.inference_mode()
def neuron_inputs(model: Any, layer: int, neuron: int, top: int = 20) -> list[tuple[int, float]]:
    """The tokens that most raise a neuron's pre-activation on their own, through LN2 and W_in."""
    shape = shape_of(model)
    n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
    if not d_mlp:
        raise InvalidInput("this model has no MLP neurons (attention-only)")
    check_int(layer, "layer", 0, n_layers - 1)
    check_int(neuron, "neuron index", 0, d_mlp - 1)
    x = tokens_through_ln(model, _block(model, layer).ln2)
    pre = x @ model.W_in.detach().float()[layer, :, neuron] + model.b_in.detach().float()[layer, neuron]
    values, ids = pre.topk(min(top, len(pre)))
    return [(int(i), float(v)) for i, v in zip(ids.tolist(), values.tolist())]


def head_card_wire(model: Any, name: str, layer: int, head: int, top: int = 20) -> dict[str, Any]:
    from lenscope.tokens import token_strings

    c = head_circuits(model, layer, head, top)

    def pairs(rows: list[tuple[int, int, float]]) -> list[dict[str, Any]]:
        return [{"source": i, "target": j, "value": v} for i, j, v in rows]

    ids = sorted({t for rows in (c.ov_top, c.ov_bottom, c.qk_top) for i, j, _ in rows for t in (i, j)})
    return {
        "model": name,
        "layer": layer,
        "head": head,
        "ov_top": pairs(c.ov_top),
        "ov_bottom": pairs(c.ov_bottom),
        "qk_top": pairs(c.qk_top),
        "copying_score": c.copying_score,
        "positive_share": c.positive_share,
        "strings": {"ids": ids, "values": token_strings(model.tokenizer, ids)},
    }


def neuron_inputs_wire(model: Any, name: str, layer: int, neuron: int, top: int = 20) -> dict[str, Any]:
    from lenscope.tokens import token_strings

    rows = neuron_inputs(model, layer, neuron, top)
    texts = token_strings(model.tokenizer, [i for i, _ in rows])
    return {
        "model": name,
        "layer": layer,
        "index": neuron,
        "inputs": [{"id": i, "token": t, "value": v} for (i, v), t in zip(rows, texts)],
    }
