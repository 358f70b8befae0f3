"""Reading the weights of 1-layer models directly (Elhage et al. 2021, "A Mathematical Framework
for Transformer Circuits"): each head's OV and QK circuits over the vocabulary, its copying
score, and each neuron's input side.

Approximations, stated once: a token is read "alone" through the LayerNorms. Its embedding row
is centred, divided by its own scale and given the LayerNorm's weight and bias (as if it were
the whole residual stream: the positional embedding and other heads are left out). At the output,
a head's write is centred and weighted by the final LayerNorm; the final scale is taken as 1. The
final scale is one number per position, so rankings within a source token do not change.

Over the vocabulary, most pairs are rare-token noise: a card reads its circuits over the
``FREQUENT_TOKENS`` most frequent tokens of the model's index corpus (:func:`vocab_pool`; the
whole vocabulary on request), and reports the copying score on both.

Positional QK (:func:`positional_qk`): each position's row of ``W_pos`` read alone through LN1
the same way, ``p_i = (P_i - mean(P_i)) / sqrt(var(P_i) + eps) * w_ln1 + b_ln1``, and
``score[i, j] = (p_i W_Q + b_Q) . (p_j W_K + b_K) / sqrt(d_head)`` for keys ``j <= i`` (NaN
above the diagonal): the heatmap on which a previous-token head is the diagonal ``j = i - 1``.

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
from lenscope.models.frequent import FREQUENT_TOKENS
from lenscope.models.shape import shape_of
from lenscope.validation import check_int

ROWS_PER_BLOCK = 512
POSITIONS_WHOLE = 256
"""Positional QK is the whole ``n_ctx x n_ctx`` matrix up to this context; longer contexts get
their first ``POSITIONS_CAPPED`` positions."""
POSITIONS_CAPPED = 128
VOCABS = ("frequent", "all")


def _block(model: Any, layer: int) -> Any:
    return model.blocks[layer]


def tokens_through_ln(model: Any, ln: Any) -> torch.Tensor:
    """Every token's embedding row through a LayerNorm, read alone: ``[vocab, d_model]``."""
    return rows_through_ln(model, ln, model.W_E.detach().float())


def rows_through_ln(model: Any, ln: Any, e: torch.Tensor) -> torch.Tensor:
    """Rows of ``[n, d_model]`` (embedding rows) through a LayerNorm, each read alone."""
    d_model = int(model.cfg.d_model)
    w, b = ln_params(ln, d_model)
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
    copying_score: float  # Re(sum of eigenvalues) / sum of |eigenvalues| of the OV circuit (over ``ids``)
    positive_share: float  # share of the (non-zero) eigenvalues with a positive real part
    eigenvalues: np.ndarray  # complex [d_head]
    ids: np.ndarray | None = None  # the tokens read (sources, outputs, queries and keys); None: all


def vocab_pool(model: Any, name: str, vocab: str = "frequent", n: int = FREQUENT_TOKENS) -> np.ndarray | None:
    """The token ids a card reads: the ``n`` most frequent tokens of the model's shipped index
    corpus (byte-level BPE merge order for other models), or None for ``vocab="all"``."""
    from lenscope.models.frequent import frequent_tokens, shipped_token_counts

    if vocab not in VOCABS:
        raise InvalidInput(f"vocab must be 'frequent' or 'all', got {vocab!r}")
    if vocab == "all":
        return None
    d_vocab = shape_of(model).d_vocab
    check_int(n, "frequent tokens", 1, 10**7)
    return frequent_tokens(model, min(n, d_vocab), counts=shipped_token_counts(name, d_vocab))


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


def _copying(left: torch.Tensor, right: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """Copying score, positive share and eigenvalues of ``left @ right`` (square), from the small
    ``right @ left``: they share their non-zero eigenvalues."""
    eig = torch.linalg.eigvals(right.double() @ left.double()).cpu().numpy()
    nonzero = eig[np.abs(eig) > 1e-9 * max(1.0, float(np.abs(eig).max()))]
    if not nonzero.size:
        return 0.0, 0.0, eig
    return float(nonzero.sum().real / np.abs(nonzero).sum()), float((nonzero.real > 0).mean()), eig


def _qk_sides(model: Any, layer: int, head: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries (scaled by 1/sqrt(d_head)) and keys of rows ``x`` already through LN1."""
    q = x @ model.W_Q.detach().float()[layer, head] + model.b_Q.detach().float()[layer, head]
    k = x @ model.W_K.detach().float()[layer, head] + model.b_K.detach().float()[layer, head]
    return q / q.shape[1] ** 0.5, k


def _remap(pairs: list[tuple[int, int, float]], ids: np.ndarray | None) -> list[tuple[int, int, float]]:
    if ids is None:
        return pairs
    return [(int(ids[i]), int(ids[j]), v) for i, j, v in pairs]


@torch.inference_mode()
def head_circuits(model: Any, layer: int, head: int, top: int = 20, ids: np.ndarray | None = None) -> HeadCircuits:
    """A head's OV and QK extremes and copying score over the tokens ``ids`` (sources, outputs,
    queries and keys all among them; None: the whole vocabulary)."""
    _check_head(model, layer, head)
    x = tokens_through_ln(model, _block(model, layer).ln1)
    left, right = ov_rows(model, layer, head, x)
    q, kk = _qk_sides(model, layer, head, x)
    if ids is not None:
        idx = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=left.device)
        left, right, q, kk = left[idx], right[:, idx], q[idx], kk[idx]
    copying, positive, eig = _copying(left, right)
    ov_top, ov_bottom = _extreme_pairs(left, right, None, top)
    return HeadCircuits(
        layer=layer,
        head=head,
        ov_top=_remap(ov_top, ids),
        ov_bottom=_remap(ov_bottom, ids),
        qk_top=_remap(_top_pairs(q, kk.T, None, top), ids),
        copying_score=copying,
        positive_share=positive,
        eigenvalues=eig,
        ids=ids,
    )


def _row_top(values: torch.Tensor, ids: np.ndarray | None, top: int, largest: bool) -> list[tuple[int, float]]:
    v, j = values.topk(min(top, len(values)), largest=largest)
    return [(int(ids[i]) if ids is not None else int(i), float(x)) for i, x in zip(j.tolist(), v.tolist())]


@torch.inference_mode()
def ov_row(model: Any, layer: int, head: int, source: int, top: int = 20, ids: np.ndarray | None = None
           ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:  # fmt: skip
    """What the head writes when it attends to token ``source``: the output tokens (among
    ``ids``) its OV row raises most and lowers most, ``(token, logit effect)``."""
    _check_head(model, layer, head)
    x = rows_through_ln(model, _block(model, layer).ln1, model.W_E.detach().float()[source : source + 1])
    left, right = ov_rows(model, layer, head, x)
    if ids is not None:
        right = right[:, torch.as_tensor(np.asarray(ids, dtype=np.int64), device=right.device)]
    row = (left @ right)[0]
    return _row_top(row, ids, top, True), _row_top(row, ids, top, False)


@torch.inference_mode()
def qk_row(model: Any, layer: int, head: int, query: int, top: int = 20, ids: np.ndarray | None = None
           ) -> list[tuple[int, float]]:  # fmt: skip
    """Which keys (among ``ids``) a query token ``query`` looks for: the highest attention scores
    of its QK row, ``(key token, score)``."""
    _check_head(model, layer, head)
    x = tokens_through_ln(model, _block(model, layer).ln1)
    q, kk = _qk_sides(model, layer, head, x)
    if ids is not None:
        kk = kk[torch.as_tensor(np.asarray(ids, dtype=np.int64), device=kk.device)]
    return _row_top(kk @ q[query], ids, top, True)


def positions_shown(n_ctx: int) -> int:
    return n_ctx if n_ctx <= POSITIONS_WHOLE else POSITIONS_CAPPED


@torch.inference_mode()
def positional_qk(model: Any, layer: int, head: int, positions: int | None = None) -> np.ndarray | None:
    """``[p, p]`` float32 (query position x key position): ``score[i, j] = q(p_i) . k(p_j) /
    sqrt(d_head)`` with each ``W_pos`` row read alone through LN1 (see the module's docstring);
    NaN for ``j > i`` (causal). ``p``: the first ``positions`` (default :func:`positions_shown`).
    None for a model without a learned positional embedding."""
    _check_head(model, layer, head)
    w_pos = getattr(model, "W_pos", None)
    if w_pos is None or str(getattr(model.cfg, "positional_embedding_type", "standard")) != "standard":
        return None
    n_ctx = int(w_pos.shape[0])
    p = positions_shown(n_ctx) if positions is None else min(positions, n_ctx)
    x = rows_through_ln(model, _block(model, layer).ln1, w_pos.detach().float()[:p])
    q, k = _qk_sides(model, layer, head, x)
    scores = (q @ k.T).cpu().numpy().astype(np.float32)
    scores[np.triu_indices(p, 1)] = np.nan
    return scores


def positional_summary(scores: np.ndarray) -> dict[str, float]:
    """A positional QK matrix in a few numbers: the mean score on the previous-position diagonal
    (``j = i - 1``), on the diagonal (``j = i``) and on the other keys ``j < i - 1``; and, with
    the scores alone as the pattern (softmax over ``j <= i``), the mean weight on ``i - 1`` and
    the share of queries whose highest-scoring key is ``i - 1`` (queries ``i >= 1``)."""
    p = scores.shape[0]
    i = np.arange(1, p)
    prev = scores[i, i - 1]
    lower = np.tril(np.ones((p, p), dtype=bool), -2)
    s = np.where(np.isnan(scores), -np.inf, scores.astype(np.float64))
    e = np.exp(s - s.max(1, keepdims=True))
    pattern = e / e.sum(1, keepdims=True)
    return {
        "previous": float(prev.mean()) if p > 1 else float("nan"),
        "diagonal": float(np.diag(scores).mean()),
        "other": float(scores[lower].mean()) if lower.any() else float("nan"),
        "previous_weight": float(pattern[i, i - 1].mean()) if p > 1 else float("nan"),
        "previous_argmax_share": float((s[1:].argmax(1) == i - 1).mean()) if p > 1 else float("nan"),
    }


def token_id(model: Any, value: str | int, what: str) -> int:
    """A token named by its id (an integer, or a string of digits) or its text (which must be
    exactly one token); :class:`InvalidInput` naming ``what`` otherwise."""
    from lenscope.tokens import encode

    d_vocab = shape_of(model).d_vocab
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit() and value.strip().isascii()):
        i = int(value)
        if not 0 <= i < d_vocab:
            raise InvalidInput(f"{what}: token id {i} is not in the vocabulary (0 to {d_vocab - 1})")
        return i
    if not value:
        raise InvalidInput(f"{what}: empty token")
    ids = encode(model.tokenizer, value)
    if len(ids) != 1:
        raise InvalidInput(f"{what}: unknown token {value!r}: it is {len(ids)} tokens, not one (give the id instead)")
    return int(ids[0])


@torch.inference_mode()
def neuron_inputs(model: Any, layer: int, neuron: int, top: int = 20, ids: np.ndarray | None = None
                  ) -> list[tuple[int, float]]:  # fmt: skip
    """The tokens (among ``ids``; None: all) that most raise a neuron's pre-activation on their
    own, through LN2 and W_in."""
    shape = shape_of(model)
    n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
    if not d_mlp:
        raise InvalidInput("this model has no MLP neurons (attention-only)")
    check_int(layer, "layer", 0, n_layers - 1)
    check_int(neuron, "neuron index", 0, d_mlp - 1)
    x = tokens_through_ln(model, _block(model, layer).ln2)
    if ids is not None:
        x = x[torch.as_tensor(np.asarray(ids, dtype=np.int64), device=x.device)]
    pre = x @ model.W_in.detach().float()[layer, :, neuron] + model.b_in.detach().float()[layer, neuron]
    return _row_top(pre, ids, top, True)


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


def head_card_wire(model: Any, name: str, layer: int, head: int, top: int = 20, vocab: str = "frequent",
                   source: str | int | None = None, query: str | int | None = None) -> dict[str, Any]:  # fmt: skip
    """A head's card as the wire sends it: its OV and QK circuits' extremes over ``vocab``
    (``frequent``: :data:`FREQUENT_TOKENS` of the index corpus; ``all``), its copying score on
    the frequent tokens and on the whole vocabulary, its positional QK, and (on request) the OV
    row of a ``source`` token and the QK row of a ``query`` token. Computed once per model, head
    and question (:data:`HEAD_CARDS`)."""
    _check_head(model, layer, head)
    if vocab not in VOCABS:
        raise InvalidInput(f"vocab must be 'frequent' or 'all', got {vocab!r}")
    src = None if source is None else token_id(model, source, "source")
    qry = None if query is None else token_id(model, query, "query")
    key = (name, layer, head, top, vocab, src, qry)
    return HEAD_CARDS.get(model, key, lambda: _head_card(model, name, layer, head, top, vocab, src, qry))


def _head_card(model: Any, name: str, layer: int, head: int, top: int, vocab: str, source: int | None,
               query: int | None) -> dict[str, Any]:  # fmt: skip
    from lenscope.tokens import token_strings

    frequent = vocab_pool(model, name, "frequent")
    pool = frequent if vocab == "frequent" else None
    c = head_circuits(model, layer, head, top, pool)
    x = tokens_through_ln(model, _block(model, layer).ln1)
    left, right = ov_rows(model, layer, head, x)
    if pool is None:
        whole = (c.copying_score, c.positive_share)
        assert frequent is not None
        idx = torch.as_tensor(frequent, device=left.device)
        freq = _copying(left[idx], right[:, idx])[:2]
    else:
        freq = (c.copying_score, c.positive_share)
        whole = _copying(left, right)[:2]

    def pairs(rows: list[tuple[int, int, float]]) -> list[dict[str, Any]]:
        return [{"source": i, "target": j, "value": v} for i, j, v in rows]

    named = {t for rows in (c.ov_top, c.ov_bottom, c.qk_top) for i, j, _ in rows for t in (i, j)}
    source_row = query_row = None
    if source is not None:
        up, down = ov_row(model, layer, head, source, top, pool)
        source_row = {"token": source, "boosted": [{"id": i, "value": v} for i, v in up],
                      "suppressed": [{"id": i, "value": v} for i, v in down]}  # fmt: skip
        named |= {source, *(i for i, _ in up), *(i for i, _ in down)}
    if query is not None:
        keys = qk_row(model, layer, head, query, top, pool)
        query_row = {"token": query, "keys": [{"id": i, "value": v} for i, v in keys]}
        named |= {query, *(i for i, _ in keys)}
    positional = None
    scores = positional_qk(model, layer, head)
    if scores is not None:
        n_ctx = int(model.W_pos.shape[0])
        summary = positional_summary(scores)
        positional = {
            "positions": int(scores.shape[0]),
            "n_ctx": n_ctx,
            "capped": int(scores.shape[0]) < n_ctx,
            "scores": scores,
            "summary": {k: (None if np.isnan(v) else v) for k, v in summary.items()},
        }
    ids = sorted(named)
    return {
        "model": name,
        "layer": layer,
        "head": head,
        "vocab": vocab,
        "tokens_read": len(pool) if pool is not None else shape_of(model).d_vocab,
        "frequent_tokens": len(frequent) if frequent is not None else 0,
        "ov_top": pairs(c.ov_top),
        "ov_bottom": pairs(c.ov_bottom),
        "qk_top": pairs(c.qk_top),
        "copying_score": whole[0],
        "positive_share": whole[1],
        "copying_score_frequent": freq[0],
        "positive_share_frequent": freq[1],
        "source_row": source_row,
        "query_row": query_row,
        "positional": positional,
        "strings": {"ids": ids, "values": token_strings(model.tokenizer, ids)},
    }


def plain_arrays(card: dict[str, Any]) -> dict[str, Any]:
    """The card with its arrays as the wire's ``NDArray`` with a flat list (NaN as None): what
    msgpack frames and ``json.dumps`` both carry as is."""
    from lenscope.wire_codec import plain

    out: dict[str, Any] = plain(card)
    return out


def neuron_inputs_wire(model: Any, name: str, layer: int, neuron: int, top: int = 20, vocab: str = "frequent"
                       ) -> dict[str, Any]:  # fmt: skip
    """A neuron's input side over ``vocab`` (``frequent`` tokens of the index corpus, or ``all``)."""
    from lenscope.tokens import token_strings

    pool = vocab_pool(model, name, vocab)
    rows = neuron_inputs(model, layer, neuron, top, pool)
    texts = token_strings(model.tokenizer, [i for i, _ in rows])
    return {
        "model": name,
        "layer": layer,
        "index": neuron,
        "vocab": vocab,
        "tokens_read": len(pool) if pool is not None else shape_of(model).d_vocab,
        "inputs": [{"id": i, "token": t, "value": v} for (i, v), t in zip(rows, texts)],
    }
