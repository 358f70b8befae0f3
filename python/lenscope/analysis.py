"""Per-token analysis of a text: next-token predictions and the strongest MLP neurons.

Inference runs in the engine (:mod:`lenscope.engine`: one forward per window, hooks only on
the MLP post-activations); this module derives from it (log-softmax, top-k, rank, entropy, top
neurons, top SAE features), so the derivation can be checked against an independent
computation and reused by corpus scans.

Indexing: ``tokens`` are the text's tokens. Prediction row ``j`` is the model's distribution
over token ``j`` given everything before it (the BOS, the context, tokens ``< j``); row ``n``
is the distribution after the last token, which has no actual token. So "at token ``i``, the
predictions for the next token" is row ``i + 1``. Neuron row ``i`` is at token ``i``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lenscope import defaults
from lenscope.engine.intervene import prepare
from lenscope.engine.plan import Plan, plan_input, plan_text
from lenscope.engine.run import (
    DERIVE_CHUNK_ELEMENTS,
    Capture,
    Intervene,
    capture,
    forward_batches,
    forward_windows,
    mlp_hook_names,
    model_device,
)
from lenscope.engine.windows import Window
from lenscope.errors import InvalidInput
from lenscope.models.shape import shape_of
from lenscope.tokens import TokenSpans, token_strings
from lenscope.validation import MAX_TOP_K, MAX_TOP_NEURONS, check_int, check_response_size

if TYPE_CHECKING:
    from lenscope.interventions import Intervention
    from lenscope.sae import SparseAutoencoder


@dataclass
class Predictions:
    """Arrays over prediction rows (``n + 1`` of them) or token rows (``n``)."""

    top_ids: np.ndarray  # int32 [n+1, k]
    top_logprobs: np.ndarray  # float32 [n+1, k]
    actual_logprob: np.ndarray  # float32 [n+1]; NaN in the last row
    actual_rank: np.ndarray  # int32 [n+1]; 1-based among the whole vocabulary, 0 in the last row
    entropy: np.ndarray  # float32 [n+1], nats
    neuron_layer: np.ndarray  # int32 [n, m]
    neuron_index: np.ndarray  # int32 [n, m]
    neuron_activation: np.ndarray  # float32 [n, m]
    feature_index: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))  # int32 [n, f]; -1: none
    feature_activation: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # float32 [n, f]


@dataclass
class AnalysisResult:
    model: str
    tokens: TokenSpans
    token_texts: list[str]  # text[start:end] of each token
    predictions: Predictions
    strings: dict[int, str]  # decoded string of every token id that appears in the result
    context_tokens: int  # context tokens that conditioned the predictions
    windowed: bool
    windows: int
    window_tokens: int  # tokens per forward window, BOS included
    timings_ms: dict[str, float] = field(default_factory=dict)
    interventions: list[dict[str, Any]] = field(default_factory=list)  # applied: label, mean source
    sae: SparseAutoencoder | None = None  # whose features are in ``predictions.feature_*``


FIELDS = (
    "top_ids",
    "top_logprobs",
    "actual_logprob",
    "actual_rank",
    "entropy",
    "neuron_layer",
    "neuron_index",
    "neuron_activation",
    "feature_index",
    "feature_activation",
)


@torch.inference_mode()
def _derive_predictions(
    model: Any,
    plan: Plan,
    top_k: int,
    top_neurons: int,
    timings: dict[str, float],
    intervene: Intervene | None = None,
    sae: SparseAutoencoder | None = None,
    top_features: int = 0,
) -> dict[str, torch.Tensor]:
    """Predictions and top neurons of S positions ``plan.first .. len(seq) - 1``, one row each.

    Row ``r`` belongs to S position ``first + r``: its next-token distribution and its neurons
    (the first row's neurons are at the BOS or a context token; callers drop them). With an
    ``sae``, also its ``top_features`` strongest features per row, encoded inside the hook so no
    ``[n, d_sae]`` array is kept (values and indices travel as one float tensor).
    """
    shape = shape_of(model)
    d_mlp = shape.d_mlp or 0
    hooks: list[Capture] = list(mlp_hook_names(model)) if top_neurons else []
    n_mlp = len(hooks)
    # The features' capture is kept apart from the neurons' (which come in firing order): an SAE's
    # hook point may fire before some MLP (a residual stream's), or be any of the model's.
    feature_store: list[torch.Tensor] = []
    hooked = intervene
    if sae is not None and top_features:

        def top_of(act: torch.Tensor) -> torch.Tensor:
            val, idx = sae.encode(act).topk(top_features, dim=-1)
            return torch.cat([val, idx.float()], dim=-1)

        def hooked(batch: list[Window]) -> list[tuple[str, Any]]:
            feature_store.clear()
            return [*(intervene(batch) if intervene else []), (sae.hook_point, capture(feature_store, top_of))]

    seq_t = torch.tensor([*plan.seq, 0], dtype=torch.int64, device=model_device(model))  # + a dummy target
    parts: dict[str, list[torch.Tensor]] = {f: [] for f in FIELDS}
    # Rows are derived in chunks so each temporary stays ~16 MB: fresh multi-hundred-MB
    # tensors cost more in page faults than the arithmetic on them (GPT-2's vocabulary).
    chunk = max(1, DERIVE_CHUNK_ELEMENTS // max(shape.d_vocab, shape.neurons, 1))

    def predictions(logits: torch.Tensor, first: int) -> None:
        """The fields read off the logits of consecutive S positions ``first, first + 1, ...``."""
        for c in range(0, len(logits), chunk):
            lo = first + c
            lp = torch.log_softmax(logits[c : c + chunk].float(), dim=-1)
            top_lp, top_id = top_k_rows(lp, top_k)
            actual = lp.gather(1, seq_t[lo + 1 : lo + 1 + len(lp), None])[:, 0]
            parts["top_ids"].append(top_id)
            parts["top_logprobs"].append(top_lp)
            parts["actual_logprob"].append(actual)
            parts["actual_rank"].append(ranks(lp, actual, top_lp))
            # -vecdot(exp(lp), lp), which is -(exp(lp) * lp).sum(-1), with one temporary instead of two
            parts["entropy"].append(-lp.exp().mul_(lp).sum(-1))

    for batch in forward_batches(model, plan, hooks, timings, intervene=hooked, reported_logits_only=True):
        t1 = time.perf_counter()
        # The reported rows of all the batch's windows are consecutive S positions, unembedded
        # as one block: read them in one go (a short text's second window reports a row or two,
        # and each of the dozen operations below has a fixed cost).
        together = batch.reported_logits()
        if together is not None and len(together):
            predictions(together, int(batch.positions[0][0]))
        for b, (_, positions, window_logits, window_acts) in enumerate(batch.per_window()):
            first = int(positions[0]) if len(positions) else 0  # positions are consecutive
            if together is None and len(positions):
                predictions(window_logits, first)
            for c in range(0, len(positions), chunk):
                part = slice(c, c + chunk)
                if n_mlp:
                    acts = window_acts[0][part] if n_mlp == 1 else torch.cat([a[part] for a in window_acts[:n_mlp]], dim=-1)
                    n_val, n_flat = acts.float().topk(top_neurons, dim=-1)
                    parts["neuron_layer"].append(n_flat // d_mlp)
                    parts["neuron_index"].append(n_flat % d_mlp)
                    parts["neuron_activation"].append(n_val)
                if feature_store:
                    f = feature_store[-1][b, batch.locals_[b]][part]
                    f_val, f_idx = f[:, :top_features], f[:, top_features:].long()
                    parts["feature_index"].append(torch.where(f_val > 0, f_idx, -1))  # an off feature is no feature
                    parts["feature_activation"].append(f_val)
        timings["derive"] += (time.perf_counter() - t1) * 1000
    t1 = time.perf_counter()
    rows = len(plan.seq) - plan.first
    empty = {
        "neuron_layer": torch.zeros(rows, 0, dtype=torch.int64),
        "neuron_index": torch.zeros(rows, 0, dtype=torch.int64),
        "neuron_activation": torch.zeros(rows, 0),
        "feature_index": torch.zeros(rows, 0, dtype=torch.int64),
        "feature_activation": torch.zeros(rows, 0),
    }
    out = {f: (v[0] if len(v) == 1 else torch.cat(v)) if v else empty[f] for f, v in parts.items()}
    # the last row predicts past the end of the text: there is no actual token there
    out["actual_logprob"][-1] = float("nan")
    out["actual_rank"][-1] = 0
    timings["derive"] += (time.perf_counter() - t1) * 1000
    return out


TOPK_BLOCK = 64


def top_k_rows(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x.topk(k, dim=-1)`` of a 2-D tensor (values, then indices), faster on wide rows.

    The row is cut into blocks of 64; an entry of the top k is in a block whose maximum is
    among the k largest block maxima, so only those k blocks (and the ragged tail) are searched:
    one vectorised max over the row instead of a per-row partial sort of all of it. The
    candidates are laid out as before (the k blocks in the order of their maxima, then the tail),
    so ties come out as they did; their indices are worked out for the k winners only.
    """
    rows, width = x.shape
    nb = width // TOPK_BLOCK
    if nb <= 2 * k or rows == 0 or not x.is_contiguous():
        values, indices = x.topk(k, dim=-1)
        return values, indices
    main = nb * TOPK_BLOCK
    blocks = x.as_strided((rows, nb, TOPK_BLOCK), (width, TOPK_BLOCK, 1))
    _, best = blocks.amax(-1).topk(k, dim=-1)  # [rows, k] block numbers
    if main == width:  # one copy of whole blocks
        flat = best + torch.arange(0, rows * nb, nb, device=x.device)[:, None]
        cand = x.view(rows * nb, TOPK_BLOCK).index_select(0, flat.reshape(-1)).view(rows, k * TOPK_BLOCK)
    else:  # rows do not split into whole blocks: no such view
        cand = blocks.gather(1, best[:, :, None].expand(rows, k, TOPK_BLOCK)).reshape(rows, k * TOPK_BLOCK)
    if main < width:
        cand = torch.cat([cand, x[:, main:]], dim=-1)
    values, at = cand.topk(k, dim=-1)
    in_block = at < k * TOPK_BLOCK
    from_blocks = best.gather(1, torch.where(in_block, at // TOPK_BLOCK, 0)) * TOPK_BLOCK + at % TOPK_BLOCK
    return values, torch.where(in_block, from_blocks, at - k * TOPK_BLOCK + main)


RANK_SUBSET = 0.5
"""Count the whole vocabulary for the rows outside the top k only when they are fewer than this share."""


def ranks(lp: torch.Tensor, actual: torch.Tensor, top_lp: torch.Tensor) -> torch.Tensor:
    """1 + how many entries of each row of ``lp`` are greater than ``actual`` (int32; no sort).

    When the actual entry is at least the row's k-th largest value (``top_lp[:, -1]``) every
    greater entry is among the top k, so the count comes from ``top_lp`` alone; only the other
    rows read the whole vocabulary.
    """
    rank = (top_lp > actual[:, None]).sum(-1, dtype=torch.int32) + 1
    outside = (actual < top_lp[:, -1]).nonzero()[:, 0]
    if len(outside) > RANK_SUBSET * len(lp):
        return (lp > actual[:, None]).sum(-1, dtype=torch.int32) + 1
    if len(outside):
        sub = lp.index_select(0, outside) > actual.index_select(0, outside)[:, None]
        rank.index_copy_(0, outside, sub.sum(-1, dtype=torch.int32) + 1)
    return rank


def analyze(
    model: Any,
    text: str,
    context: str = "",
    top_k: int = defaults.TOP_K,
    top_neurons: int = defaults.TOP_NEURONS,
    *,
    model_name: str | None = None,
    window: int | None = None,
    interventions: Sequence[Intervention] = (),
    neuron_means: Mapping[tuple[int, int], float] | None = None,
    sae: SparseAutoencoder | None = None,
    top_features: int = defaults.TOP_FEATURES,
    token_ids: Sequence[int] | None = None,
) -> AnalysisResult:
    """Analyze ``text`` token by token with ``model`` (a TransformerLens ``TransformerBridge``).

    ``context`` is text before ``text`` that conditions the predictions but is not reported;
    the two are tokenized as one string (see :func:`lenscope.tokens.split_context`) and the last
    ``max(body - n_text, body // 2)`` context tokens are kept (``body`` = tokens per window
    after the BOS). ``window`` (tokens per window, BOS included) defaults to the
    model's ``n_ctx``; a smaller value is useful for tests.

    ``interventions`` (:mod:`lenscope.interventions`) re-run the text with components removed,
    set, scaled or steered; the neurons reported are then the intervened ones. A ``mean``
    ablation of a neuron uses ``neuron_means[(layer, index)]`` when given (an index's), else
    the mean over the text; ``result.interventions`` says which.

    ``token_ids`` analyzes those ids as given instead of a text (``text`` empty): a probe of
    random tokens, a sequence no tokenizer would produce; each token's span is its own string.

    ``sae`` (:mod:`lenscope.sae`) adds its ``top_features`` strongest features at each token
    (``predictions.feature_*``); it must read a hook point of this model with its width.
    Interventions on features (``Intervention("feature", None, 12, ...)``) act through it; the
    features reported are then the SAE's reading of the intervened activation.
    """
    shape = shape_of(model)
    n_layers, d_mlp, d_vocab = shape.n_layers, shape.d_mlp or 0, shape.d_vocab
    check_int(top_k, "top_k", 1, min(d_vocab, MAX_TOP_K))
    # An attention-only model has no neurons: any top_neurons asks for none of them.
    check_int(top_neurons, "top_neurons", 0, min(MAX_TOP_NEURONS, n_layers * d_mlp) if d_mlp else MAX_TOP_NEURONS)
    timings = {"tokenize": 0.0, "forward": 0.0, "derive": 0.0}
    plan = plan_input(model, text, context, token_ids, window, timings)
    spans = plan.spans
    if sae is not None:
        from lenscope.sae import check_fits

        check_fits(sae, model, model_name or "model")
        check_int(top_features, "top_features", 1, min(MAX_TOP_NEURONS, sae.d_sae))
    top_features = top_features if sae is not None else 0
    check_response_size(len(spans.ids), top_k, (top_neurons if d_mlp else 0) + top_features)
    prepared = prepare(model, plan, context, interventions, neuron_means, sae, model_name or "model")
    out = _derive_predictions(model, plan, top_k, top_neurons if d_mlp else 0, timings, prepared.intervene, sae, top_features)

    t1 = time.perf_counter()
    arr = {f: t.cpu().numpy() for f, t in out.items()}  # n + 1 rows: positions first .. end
    preds = Predictions(
        top_ids=arr["top_ids"].astype(np.int32),
        top_logprobs=arr["top_logprobs"].astype(np.float32, copy=False),
        actual_logprob=arr["actual_logprob"].astype(np.float32, copy=False),
        actual_rank=arr["actual_rank"].astype(np.int32, copy=False),
        entropy=arr["entropy"].astype(np.float32, copy=False),
        neuron_layer=arr["neuron_layer"][1:].astype(np.int32),  # neurons are at tokens: drop row 0
        neuron_index=arr["neuron_index"][1:].astype(np.int32),
        neuron_activation=arr["neuron_activation"][1:].astype(np.float32),
        feature_index=arr["feature_index"][1:].astype(np.int32),
        feature_activation=arr["feature_activation"][1:].astype(np.float32),
    )
    ids = np.unique(np.concatenate([preds.top_ids.reshape(-1), spans.ids])).tolist()
    strings = dict(zip(ids, token_strings(model.tokenizer, ids)))
    timings["derive"] += (time.perf_counter() - t1) * 1000
    return AnalysisResult(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        tokens=spans,
        token_texts=spans.texts(plan.text),
        predictions=preds,
        strings=strings,
        context_tokens=plan.keep,
        windowed=plan.windowed,
        windows=len(plan.windows),
        window_tokens=plan.window,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        interventions=prepared.applied,
        sae=sae,
    )


@dataclass
class NeuronActivations:
    model: str
    tokens: TokenSpans
    token_texts: list[str]
    neurons: list[tuple[int, int]]  # (layer, index), in the order asked
    activations: np.ndarray  # float32 [n_tokens, n_neurons]: post-activation at each token
    timings_ms: dict[str, float] = field(default_factory=dict)


@torch.inference_mode()
def neuron_activations(
    model: Any,
    text: str,
    neurons: list[tuple[int, int]],
    context: str = "",
    *,
    model_name: str | None = None,
    window: int | None = None,
) -> NeuronActivations:
    """The post-activations of the given MLP neurons at every token of ``text``.

    Same tokenization, context and windows as :func:`analyze`, so row ``i`` is at the same
    token ``i``; only the layers asked for are hooked.
    """
    shape = shape_of(model)
    n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
    if not d_mlp:
        raise InvalidInput("this model is attention-only: it has no MLP neurons")
    if not isinstance(neurons, list) or not 1 <= len(neurons) <= MAX_TOP_NEURONS:
        raise InvalidInput(f"neurons must be a list of 1 to {MAX_TOP_NEURONS} (layer, index) pairs")
    for pair in neurons:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InvalidInput(f"each neuron must be a (layer, index) pair, got {pair!r}")
        layer, index = pair
        check_int(layer, "layer", 0, n_layers - 1)
        check_int(index, "neuron index", 0, d_mlp - 1)
    timings = {"tokenize": 0.0, "forward": 0.0, "derive": 0.0}
    plan = plan_text(model, text, context, window, timings)
    layers = sorted({layer for layer, _ in neurons})
    hooks = [mlp_hook_names(model)[layer] for layer in layers]
    parts = []
    for _, _, _, acts in forward_windows(model, plan, hooks, timings):
        t1 = time.perf_counter()
        by_layer = dict(zip(layers, acts))
        parts.append(torch.stack([by_layer[layer][:, index].float() for layer, index in neurons], dim=-1))
        timings["derive"] += (time.perf_counter() - t1) * 1000
    values = torch.cat(parts)[1:].cpu().numpy().astype(np.float32)  # drop the row before token 0
    return NeuronActivations(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        tokens=plan.spans,
        token_texts=plan.spans.texts(text),
        neurons=[(int(la), int(ix)) for la, ix in neurons],
        activations=values,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
    )
