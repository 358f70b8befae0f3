"""Per-token analysis of a text: next-token predictions and the strongest MLP neurons.

How inference runs (one forward per window, hooks only on the MLP post-activations) is kept
apart from what is derived from it (log-softmax, top-k, rank, entropy, top neurons), so the
derivation can be checked against an independent computation and reused by corpus scans.

Indexing: ``tokens`` are the text's tokens. Prediction row ``j`` is the model's distribution
over token ``j`` given everything before it (the BOS, the context, tokens ``< j``); row ``n``
is the distribution after the last token, which has no actual token. So "at token ``i``, the
predictions for the next token" is row ``i + 1``. Neuron row ``i`` is at token ``i``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lenscope.errors import InvalidInput
from lenscope.tokens import TokenSpans, split_context, token_strings
from lenscope.validation import MAX_CONTEXT_CHARS, MAX_TOP_NEURONS, check_int, check_text
from lenscope.windows import Window, plan_windows

CHARS_PER_TOKEN_BOUND = 64
"""Context beyond ``body * 64`` characters cannot reach the kept context tokens."""

LOGITS_BUDGET_BYTES = 256 * 2**20
"""Windows per forward batch are chosen so the float32 logits stay under this."""


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


def model_dims(model: Any) -> tuple[int, int, int, int]:
    """(n_layers, d_mlp or 0 when attention-only, d_vocab, n_ctx)."""
    cfg = model.cfg
    d_mlp = 0 if getattr(cfg, "attn_only", False) else int(cfg.d_mlp or 0)
    return int(cfg.n_layers), d_mlp, int(cfg.d_vocab), int(cfg.n_ctx)


def bos_id(tokenizer: Any) -> int:
    tok = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if tok is None:
        raise InvalidInput("the model's tokenizer has neither a BOS nor an EOS token to start a window with")
    return int(tok)


def mlp_hook_names(model: Any) -> list[str]:
    n_layers, d_mlp, _, _ = model_dims(model)
    return [f"blocks.{layer}.mlp.hook_post" for layer in range(n_layers)] if d_mlp else []


def _model_device(model: Any) -> torch.device:
    device: torch.device = next(model.parameters()).device
    return device


def _batches(windows: list[Window], per_batch: int) -> list[list[Window]]:
    return [windows[i : i + per_batch] for i in range(0, len(windows), per_batch)]


FIELDS = (
    "top_ids",
    "top_logprobs",
    "actual_logprob",
    "actual_rank",
    "entropy",
    "neuron_layer",
    "neuron_index",
    "neuron_activation",
)


@torch.inference_mode()
def _run(
    model: Any,
    seq: list[int],
    bos: int,
    windows: list[Window],
    first: int,
    top_k: int,
    top_neurons: int,
    timings: dict[str, float],
) -> dict[str, torch.Tensor]:
    """Forward every window and derive the outputs of S positions ``first .. len(seq) - 1``.

    Row ``r`` of each returned tensor belongs to S position ``first + r``: its next-token
    distribution and its neurons (the BOS row's neurons are meaningless; callers drop them).
    """
    _, d_mlp, d_vocab, _ = model_dims(model)
    hooks = mlp_hook_names(model) if top_neurons else []
    device = _model_device(model)
    body = max(w.stop - w.start for w in windows)
    per_batch = max(1, LOGITS_BUDGET_BYTES // ((body + 1) * d_vocab * 4))
    parts: dict[str, list[torch.Tensor]] = {f: [] for f in FIELDS}
    seq_t = torch.tensor([*seq, 0], dtype=torch.int64, device=device)  # + a dummy target after the end
    for batch in _batches(windows, per_batch):
        x = torch.full((len(batch), body + 1), bos, dtype=torch.int64, device=device)
        for b, w in enumerate(batch):  # right padding is harmless: attention is causal
            x[b, 1 : 1 + w.stop - w.start] = seq_t[w.start : w.stop]
        acts: list[torch.Tensor] = []
        t0 = time.perf_counter()
        if hooks:

            def keep(act: torch.Tensor, hook: Any, acts: list[torch.Tensor] = acts) -> None:
                acts.append(act)

            logits = model.run_with_hooks(x, fwd_hooks=[(h, keep) for h in hooks])
        else:
            logits = model(x)
        t1 = time.perf_counter()
        for b, w in enumerate(batch):
            positions = torch.arange(max(w.report_from, first), w.report_to, device=device)
            local = positions - w.start + 1
            lp = torch.log_softmax(logits[b, local].float(), dim=-1)
            top_lp, top_id = lp.topk(top_k, dim=-1)
            has_next = positions + 1 < len(seq)
            actual = lp.gather(1, seq_t[positions + 1][:, None])[:, 0]
            rank = (lp > actual[:, None]).sum(-1) + 1  # no sort: count what beats the actual
            parts["top_ids"].append(top_id)
            parts["top_logprobs"].append(top_lp)
            parts["actual_logprob"].append(torch.where(has_next, actual, float("nan")))
            parts["actual_rank"].append(torch.where(has_next, rank, 0))
            parts["entropy"].append(-(lp.exp() * lp).sum(-1))
            if hooks:
                acts_here = torch.cat([a[b, local].float() for a in acts], dim=-1)
                n_val, n_flat = acts_here.topk(top_neurons, dim=-1)
                parts["neuron_layer"].append(n_flat // d_mlp)
                parts["neuron_index"].append(n_flat % d_mlp)
                parts["neuron_activation"].append(n_val)
        timings["forward"] += (t1 - t0) * 1000
        timings["derive"] += (time.perf_counter() - t1) * 1000
    rows = len(seq) - first
    empty = {
        "neuron_layer": torch.zeros(rows, 0, dtype=torch.int64),
        "neuron_index": torch.zeros(rows, 0, dtype=torch.int64),
        "neuron_activation": torch.zeros(rows, 0),
    }
    return {f: torch.cat(v) if v else empty[f] for f, v in parts.items()}


def analyze(
    model: Any,
    text: str,
    context: str = "",
    top_k: int = 10,
    top_neurons: int = 10,
    *,
    model_name: str | None = None,
    window: int | None = None,
) -> AnalysisResult:
    """Analyze ``text`` token by token with ``model`` (a TransformerLens ``TransformerBridge``).

    ``context`` is text before ``text`` that conditions the predictions but is not reported;
    the two are tokenized as one string (see :func:`lenscope.tokens.split_context`) and the last
    ``max(body - n_text, body // 2)`` context tokens are kept (``body`` = tokens per window
    after the BOS). ``window`` (tokens per window, BOS included) defaults to the
    model's ``n_ctx``; a smaller value is useful for tests.
    """
    n_layers, d_mlp, d_vocab, n_ctx = model_dims(model)
    check_text(text)
    check_text(context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
    check_int(top_k, "top_k", 1, d_vocab)
    # An attention-only model has no neurons: any top_neurons asks for none of them.
    check_int(top_neurons, "top_neurons", 0, min(MAX_TOP_NEURONS, n_layers * d_mlp) if d_mlp else MAX_TOP_NEURONS)
    window = n_ctx if window is None else check_int(window, "window", 3, n_ctx)
    body = window - 1
    tokenizer = model.tokenizer
    bos = bos_id(tokenizer)
    timings = {"tokenize": 0.0, "forward": 0.0, "derive": 0.0}

    t0 = time.perf_counter()
    # No kept context token is longer than this many characters: cut the rest before tokenizing.
    ctx_ids, spans = split_context(tokenizer, context[-body * CHARS_PER_TOKEN_BOUND :], text)
    n = len(spans.ids)
    keep = min(len(ctx_ids), max(body - n, body // 2))
    ctx_ids = ctx_ids[len(ctx_ids) - keep :]
    seq = ctx_ids + spans.ids.tolist()
    timings["tokenize"] = (time.perf_counter() - t0) * 1000

    first = keep - 1  # S position whose output predicts text token 0 (-1: the BOS)
    windows = plan_windows(len(seq), body, first)
    m = top_neurons if d_mlp else 0
    out = _run(model, seq, bos, windows, first, top_k, m, timings)

    t1 = time.perf_counter()
    arr = {f: t.cpu().numpy() for f, t in out.items()}  # n + 1 rows: positions first .. end
    preds = Predictions(
        top_ids=arr["top_ids"].astype(np.int32),
        top_logprobs=arr["top_logprobs"].astype(np.float32),
        actual_logprob=arr["actual_logprob"].astype(np.float32),
        actual_rank=arr["actual_rank"].astype(np.int32),
        entropy=arr["entropy"].astype(np.float32),
        neuron_layer=arr["neuron_layer"][1:].astype(np.int32),  # neurons are at tokens: drop row 0
        neuron_index=arr["neuron_index"][1:].astype(np.int32),
        neuron_activation=arr["neuron_activation"][1:].astype(np.float32),
    )
    ids = sorted(set(preds.top_ids.reshape(-1).tolist()) | set(spans.ids.tolist()))
    strings = dict(zip(ids, token_strings(tokenizer, ids)))
    timings["derive"] += (time.perf_counter() - t1) * 1000
    return AnalysisResult(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        tokens=spans,
        token_texts=spans.texts(text),
        predictions=preds,
        strings=strings,
        context_tokens=keep,
        windowed=len(seq) > body,
        windows=len(windows),
        window_tokens=window,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
    )
