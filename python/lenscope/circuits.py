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

import copy
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
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


def _running_topk(best: tuple[torch.Tensor, torch.Tensor] | None, values: torch.Tensor, flat: torch.Tensor, k: int,
                  largest: bool) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Merge candidates (``values`` at flat indices ``flat``) into the running top-k."""
    if best is not None:
        values, flat = torch.cat([best[0], values]), torch.cat([best[1], flat])
    top_v, idx = values.topk(min(k, len(values)), largest=largest)
    return top_v, flat[idx]


def _top_pairs(rows: torch.Tensor, right: torch.Tensor, bias: torch.Tensor | None, k: int, largest: bool = True
               ) -> list[tuple[int, int, float]]:  # fmt: skip
    """Top-k entries of ``rows @ right (+ bias)`` ([n, m]), a block of rows at a time: ``(i, j, value)``."""
    return _extreme_pairs(rows, right, bias, k, (largest,))[0]


def _extreme_pairs(rows: torch.Tensor, right: torch.Tensor, bias: torch.Tensor | None, k: int,
                   sides: tuple[bool, ...] = (True, False)) -> list[list[tuple[int, int, float]]]:  # fmt: skip
    """The top-k (largest, then smallest, as ``sides`` asks) entries of ``rows @ right (+ bias)``,
    from one pass over blocks of rows.

    The k best entries of a block are among its rows' own k best, and only rows whose best entry
    beats the running k-th best can contribute: each block costs a row-wise max, then a row-wise
    top-k of those rows only (far cheaper than one top-k over the whole block), and their
    ``rows x k`` candidates are merged into the running top-k."""
    m = right.shape[1]
    best: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(sides)
    for start in range(0, rows.shape[0], ROWS_PER_BLOCK):
        block = rows[start : start + ROWS_PER_BLOCK] @ right
        if bias is not None:
            block = block + bias
        for s, largest in enumerate(sides):
            ids = torch.arange(block.shape[0])
            held = best[s]
            if held is not None and len(held[0]) >= k:
                edge = held[0][-1]  # the running k-th best
                ids = torch.nonzero(block.amax(1) > edge if largest else block.amin(1) < edge).squeeze(1)
                if not len(ids):
                    continue
            v, j = block[ids].topk(min(k, m), dim=1, largest=largest)
            flat = (ids.unsqueeze(1) + start) * m + j
            best[s] = _running_topk(held, v.reshape(-1), flat.reshape(-1), k, largest)
    out = []
    for b in best:
        assert b is not None
        out.append([(int(i // m), int(i % m), float(v)) for v, i in zip(b[0].tolist(), b[1].tolist())])
    return out


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
def ov_rows(model: Any, layer: int, head: int, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The OV circuit as ``left @ right``: left ``[vocab, d_head]`` (tokens through LN1 and W_V,
    plus b_V), right ``[d_head, vocab]`` (W_O, centred, final LayerNorm weight, W_U). ``x``: the
    tokens through LN1, when the caller has them already."""
    d_model = int(model.cfg.d_model)
    if x is None:
        x = tokens_through_ln(model, _block(model, layer).ln1)
    left = x @ model.W_V.detach().float()[layer, head] + model.b_V.detach().float()[layer, head]
    w_o = model.W_O.detach().float()[layer, head]  # [d_head, d_model]
    w_final, _ = ln_params(model.ln_final, d_model)
    right = ((w_o - w_o.mean(-1, keepdim=True)) * w_final) @ model.W_U.detach().float()
    return left, right


@torch.inference_mode()
def head_circuits(model: Any, layer: int, head: int, top: int = 20) -> HeadCircuits:
    _check_head(model, layer, head)
    x = tokens_through_ln(model, _block(model, layer).ln1)
    left, right = ov_rows(model, layer, head, x)
    q = x @ model.W_Q.detach().float()[layer, head] + model.b_Q.detach().float()[layer, head]
    kk = x @ model.W_K.detach().float()[layer, head] + model.b_K.detach().float()[layer, head]
    d_head = q.shape[1]
    # eig(left @ right) and eig(right @ left) share their non-zero eigenvalues
    eig = torch.linalg.eigvals(right.double() @ left.double()).numpy()
    nonzero = eig[np.abs(eig) > 1e-9 * max(1.0, float(np.abs(eig).max()))]
    ov_top, ov_bottom = _extreme_pairs(left, right, None, top)
    return HeadCircuits(
        layer=layer,
        head=head,
        ov_top=ov_top,
        ov_bottom=ov_bottom,
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


class HeadCardCache:
    """Head cards already computed, per model (held weakly: an unloaded model's go with it).

    A card is a function of the weights only, so one is computed once per head; a model whose
    parameters change (replaced, or edited in place: ``with torch.no_grad(): p[...] = 0``, as in
    a kernel) gets its cards computed again. An edit through ``p.data`` is not seen (PyTorch does
    not count it); such a model's cards are computed again after :meth:`clear`."""

    def __init__(self, per_model: int = 256) -> None:
        self.per_model = per_model
        self.hits = 0
        self.misses = 0
        self._cards: weakref.WeakKeyDictionary[Any, tuple[Any, OrderedDict[tuple[Any, ...], dict[str, Any]]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @staticmethod
    def _weights(model: Any) -> tuple[tuple[int, int, int], ...] | None:
        """What changes when the parameters do; None when that cannot be told (inference tensors
        keep no version counter): then nothing is cached."""
        try:
            return tuple((id(p), p.data_ptr(), p._version) for p in model.parameters())
        except (RuntimeError, AttributeError, TypeError):
            return None

    def get(self, model: Any, key: tuple[Any, ...], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        weights = self._weights(model)
        if weights is None:
            return compute()
        with self._lock:
            held = self._cards.get(model)
            card = held[1].get(key) if held is not None and held[0] == weights else None
            if card is not None:
                held[1].move_to_end(key)  # type: ignore[index]
                self.hits += 1
                return copy.deepcopy(card)
            self.misses += 1
        card = compute()
        with self._lock:
            held = self._cards.get(model)
            if held is None or held[0] != weights:
                held = (weights, OrderedDict())
                self._cards[model] = held
            held[1][key] = copy.deepcopy(card)
            while len(held[1]) > self.per_model:
                held[1].popitem(last=False)
        return card

    def clear(self) -> None:
        with self._lock:
            self._cards.clear()


HEAD_CARDS = HeadCardCache()


def head_card_wire(model: Any, name: str, layer: int, head: int, top: int = 20) -> dict[str, Any]:
    """A head's card (its OV and QK circuits' extremes and copying score), as the wire sends it;
    computed once per model and head (:data:`HEAD_CARDS`)."""
    return HEAD_CARDS.get(model, (name, layer, head, top), lambda: _head_card(model, name, layer, head, top))


def _head_card(model: Any, name: str, layer: int, head: int, top: int) -> dict[str, Any]:
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
