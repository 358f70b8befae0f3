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
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lenscope import defaults
from lenscope.errors import InvalidInput
from lenscope.tokens import TokenSpans, split_context, token_strings
from lenscope.validation import MAX_CONTEXT_CHARS, MAX_TOP_K, MAX_TOP_NEURONS, check_int, check_response_size, check_text
from lenscope.windows import Window, plan_windows

if TYPE_CHECKING:
    from lenscope.interventions import Intervention
    from lenscope.sae import SparseAutoencoder

CHARS_PER_TOKEN_BOUND = 64
"""Context beyond ``body * 64`` characters cannot reach the kept context tokens."""

LOGITS_BUDGET_BYTES = 256 * 2**20
DERIVE_CHUNK_ELEMENTS = 2**22
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


def capture(
    store: list[torch.Tensor], reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> Callable[[torch.Tensor, Any], None]:
    """A forward hook that appends the hooked activation (or ``reduce`` of it, so that a large
    activation such as an attention pattern is never kept whole) to ``store``."""

    def hook(act: torch.Tensor, hook: Any) -> None:
        store.append(act if reduce is None else reduce(act))

    return hook


_HOOK_POINTS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _hook_point(model: Any, name: str) -> Any | None:
    """The hook point ``run_with_hooks`` would resolve ``name`` to, found once per model and
    name; None when a hook added to it directly might not behave the same (compatibility-mode
    aliases, a model that is not a bridge) or the name does not resolve."""
    points = _HOOK_POINTS.setdefault(model, {})
    if name not in points:
        hp = None
        if not getattr(model, "compatibility_mode", True) and hasattr(model, "_resolve_hook_point"):
            try:
                from transformer_lens.model_bridge.bridge_core import build_alias_to_canonical_map

                hook_dict = model.hook_dict
                _, hp = model._resolve_hook_point(name, build_alias_to_canonical_map(hook_dict), hook_dict)
            except Exception:  # run_with_hooks gives the error, in its own words
                hp = None
        points[name] = hp
    return points[name]


def _run_hooked(model: Any, x: torch.Tensor, fwd: list[tuple[Any, Callable[..., Any]]]) -> torch.Tensor:
    """``model.run_with_hooks(x, fwd_hooks=fwd)`` without its per-call cost when every hook names
    a hook point: rebuilding the model's hook dictionary and alias map on each call costs ~0.5 ms,
    a few % of a small model's forward. The hooks are added to their points directly (through
    the bridge's own checks) and removed after."""
    if not fwd:
        out: torch.Tensor = model(x)
        return out
    points: list[Any] = [_hook_point(model, name) if isinstance(name, str) else None for name, _ in fwd]
    if any(hp is None for hp in points):
        out = model.run_with_hooks(x, fwd_hooks=fwd)
        return out
    added: list[tuple[Any, Any]] = []
    try:
        for hp, (name, fn) in zip(points, fwd):
            model.check_hooks_to_add(hp, hp.name or name, fn, dir="fwd")
            added.append((hp, hp.add_hook(fn, dir="fwd")))
        out = model(x)
    finally:
        for hp, handle in added:
            handle.hook.remove()
            hp.fwd_hooks[:] = [h for h in hp.fwd_hooks if h is not handle]
    return out


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
    "feature_index",
    "feature_activation",
)


@dataclass
class _Plan:
    """What one call runs: the token sequence S (kept context + text) and its windows."""

    spans: TokenSpans
    seq: list[int]
    keep: int  # context tokens kept
    first: int  # S position whose output predicts text token 0 (-1: the BOS)
    windows: list[Window]
    window: int
    bos: int


def _plan(model: Any, text: str, context: str, window: int | None, timings: dict[str, float]) -> _Plan:
    """Validate the text, tokenize context + text together, keep what fits, cut windows."""
    n_ctx = model_dims(model)[3]
    check_text(text)
    check_text(context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
    window = n_ctx if window is None else check_int(window, "window", 3, n_ctx)
    body = window - 1
    t0 = time.perf_counter()
    # No kept context token is longer than this many characters: cut the rest before tokenizing.
    ctx_ids, spans = split_context(model.tokenizer, context[-body * CHARS_PER_TOKEN_BOUND :], text)
    keep = min(len(ctx_ids), max(body - len(spans.ids), body // 2))
    seq = ctx_ids[len(ctx_ids) - keep :] + spans.ids.tolist()
    timings["tokenize"] = (time.perf_counter() - t0) * 1000
    windows = plan_windows(len(seq), body, keep - 1)
    return _Plan(spans, seq, keep, keep - 1, windows, window, bos_id(model.tokenizer))


@dataclass
class _ForwardBatch:
    """One forward over a batch of windows: the logits and hooked activations, with where each
    window's reported positions are in them."""

    windows: list[Window]
    locals_: list[slice]  # the reported positions of window b in row b of the batch
    positions: list[torch.Tensor]  # the S positions window b reports
    logits: torch.Tensor  # [1, reported rows of every window in order, vocab] when ``picked``, else [batch, width, vocab]
    picked: bool
    acts: list[torch.Tensor]

    def reported_logits(self) -> torch.Tensor | None:
        """The logits of every reported position of the batch, in S order, as one 2-D view (None
        when the whole batch was unembedded: then they are not one block)."""
        return self.logits[0] if self.picked else None

    def per_window(self) -> Iterator[tuple[Window, torch.Tensor, torch.Tensor, list[torch.Tensor]]]:
        offset = 0
        for b, (w, local, positions) in enumerate(zip(self.windows, self.locals_, self.positions)):
            if self.picked:
                window_logits = self.logits[0, offset : offset + len(positions)]
                offset += len(positions)
            else:
                window_logits = self.logits[b, local]  # a view, not a copy
            yield w, positions, window_logits, [a[b, local] for a in self.acts]


def _forward_windows(
    model: Any,
    plan: _Plan,
    hooks: Sequence[str | tuple[str, Callable[[torch.Tensor], torch.Tensor]]],
    timings: dict[str, float],
    reduce: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    intervene: Callable[[list[Window]], list[tuple[str, Callable[..., Any]]]] | None = None,
    reported_logits_only: bool = False,
) -> Iterator[tuple[Window, torch.Tensor, torch.Tensor, list[torch.Tensor]]]:
    """Run the plan's windows in batches; yield ``(window, positions, logits, hooked acts)``.

    ``positions`` are the S positions the window reports (from ``plan.first`` on), ``logits``
    and each of ``acts`` are already indexed at them (their dimension 1 must be the position:
    ``reduce`` may reshape an activation to make it so; a ``(name, reduce)`` entry of ``hooks``
    captures the same hook point again with a reduce of its own). ``intervene(batch)`` gives hooks that
    change the forward of a batch of windows (row ``b`` is ``batch[b]``, BOS first); they run
    before the captures, so what is captured is the intervened activation. Time spent outside the forward (in the
    caller, between yields) is the caller's to count.

    With ``reported_logits_only`` the unembedding is applied to the reported positions only (a
    hook hands it just those rows of its input): windows overlap by half, so a long text's
    forward otherwise computes logits for about twice the positions anyone reads, and on a
    small model the unembedding is the largest matmul of the pass.
    """
    for batch in _forward_batches(model, plan, hooks, timings, reduce, intervene, reported_logits_only):
        yield from batch.per_window()


def _forward_batches(
    model: Any,
    plan: _Plan,
    hooks: Sequence[str | tuple[str, Callable[[torch.Tensor], torch.Tensor]]],
    timings: dict[str, float],
    reduce: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    intervene: Callable[[list[Window]], list[tuple[str, Callable[..., Any]]]] | None = None,
    reported_logits_only: bool = False,
) -> Iterator[_ForwardBatch]:
    """What :func:`_forward_windows` yields window by window, one forward batch at a time."""
    device = _model_device(model)
    d_vocab = model_dims(model)[2]
    body = max(w.stop - w.start for w in plan.windows)
    per_batch = max(1, LOGITS_BUDGET_BYTES // ((body + 1) * d_vocab * 4))
    seq_t = torch.tensor(plan.seq, dtype=torch.int64, device=device)
    for batch in _batches(plan.windows, per_batch):
        x = torch.full((len(batch), body + 1), plan.bos, dtype=torch.int64, device=device)
        for b, w in enumerate(batch):  # right padding is harmless: attention is causal
            x[b, 1 : 1 + w.stop - w.start] = seq_t[w.start : w.stop]
        acts: list[torch.Tensor] = []
        t0 = time.perf_counter()
        fwd = (intervene(batch) if intervene else []) + [
            (h, capture(acts, (reduce or {}).get(h))) if isinstance(h, str) else (h[0], capture(acts, h[1])) for h in hooks
        ]
        locals_ = [slice(max(w.report_from, plan.first) - w.start + 1, w.report_to - w.start + 1) for w in batch]
        rows = None
        if reported_logits_only and _hook_point(model, UNEMBED_IN) is not None:
            width = body + 1
            rows = torch.cat(
                [torch.arange(b * width + sl.start, b * width + sl.stop, device=device) for b, sl in enumerate(locals_)]
            )
            logits = _run_hooked(model, x, [*fwd, (UNEMBED_IN, _pick_rows(rows))])
            if logits.shape[:2] != (1, len(rows)):  # the model reshaped what it unembeds: do it all
                acts.clear()
                rows, logits = None, _run_hooked(model, x, fwd)
        else:
            logits = _run_hooked(model, x, fwd)
        timings["forward"] += (time.perf_counter() - t0) * 1000
        positions = [torch.arange(sl.start + w.start - 1, w.report_to, device=device) for w, sl in zip(batch, locals_)]
        yield _ForwardBatch(batch, locals_, positions, logits, rows is not None, acts)


UNEMBED_IN = "unembed.hook_in"


def _pick_rows(rows: torch.Tensor) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """A hook giving the unembedding only ``rows`` of its ``[batch, pos, d_model]`` input (as ``[1, rows, d_model]``)."""

    def hook(resid: torch.Tensor, hook: Any) -> torch.Tensor:
        return resid.reshape(-1, resid.shape[-1]).index_select(0, rows)[None]

    return hook


@torch.inference_mode()
def _derive_predictions(
    model: Any,
    plan: _Plan,
    top_k: int,
    top_neurons: int,
    timings: dict[str, float],
    intervene: Callable[[list[Window]], list[tuple[str, Callable[..., Any]]]] | None = None,
    sae: SparseAutoencoder | None = None,
    top_features: int = 0,
) -> dict[str, torch.Tensor]:
    """Predictions and top neurons of S positions ``plan.first .. len(seq) - 1``, one row each.

    Row ``r`` belongs to S position ``first + r``: its next-token distribution and its neurons
    (the first row's neurons are at the BOS or a context token; callers drop them). With an
    ``sae``, also its ``top_features`` strongest features per row, encoded inside the hook so no
    ``[n, d_sae]`` array is kept (values and indices travel as one float tensor).
    """
    d_mlp = model_dims(model)[1]
    hooks: list[str | tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = list(mlp_hook_names(model)) if top_neurons else []
    n_mlp = len(hooks)
    if sae is not None and top_features:

        def top_of(act: torch.Tensor) -> torch.Tensor:
            val, idx = sae.encode(act).topk(top_features, dim=-1)
            return torch.cat([val, idx.float()], dim=-1)

        hooks.append((sae.hook_point, top_of))
    seq_t = torch.tensor([*plan.seq, 0], dtype=torch.int64, device=_model_device(model))  # + a dummy target
    parts: dict[str, list[torch.Tensor]] = {f: [] for f in FIELDS}
    # Rows are derived in chunks so each temporary stays ~16 MB: fresh multi-hundred-MB
    # tensors cost more in page faults than the arithmetic on them (GPT-2's vocabulary).
    chunk = max(1, DERIVE_CHUNK_ELEMENTS // max(model_dims(model)[2], d_mlp * model_dims(model)[0], 1))

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

    for batch in _forward_batches(model, plan, hooks, timings, intervene=intervene, reported_logits_only=True):
        t1 = time.perf_counter()
        # The reported rows of all the batch's windows are consecutive S positions, unembedded
        # as one block: read them in one go (a short text's second window reports a row or two,
        # and each of the dozen operations below has a fixed cost).
        together = batch.reported_logits()
        if together is not None and len(together):
            predictions(together, int(batch.positions[0][0]))
        for _, positions, window_logits, window_acts in batch.per_window():
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
                if len(window_acts) > n_mlp:
                    f = window_acts[n_mlp][part]
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

    ``sae`` (:mod:`lenscope.sae`) adds its ``top_features`` strongest features at each token
    (``predictions.feature_*``); it must read a hook point of this model with its width.
    """
    n_layers, d_mlp, d_vocab, _ = model_dims(model)
    check_int(top_k, "top_k", 1, min(d_vocab, MAX_TOP_K))
    # An attention-only model has no neurons: any top_neurons asks for none of them.
    check_int(top_neurons, "top_neurons", 0, min(MAX_TOP_NEURONS, n_layers * d_mlp) if d_mlp else MAX_TOP_NEURONS)
    timings = {"tokenize": 0.0, "forward": 0.0, "derive": 0.0}
    plan = _plan(model, text, context, window, timings)
    spans = plan.spans
    if sae is not None:
        from lenscope.sae import check_fits

        check_fits(sae, model, model_name or "model")
        check_int(top_features, "top_features", 1, min(MAX_TOP_NEURONS, sae.d_sae))
    top_features = top_features if sae is not None else 0
    check_response_size(len(spans.ids), top_k, (top_neurons if d_mlp else 0) + top_features)
    intervene, applied = None, []
    if interventions:
        from lenscope.interventions import check, patch_sources, selection_means, window_hooks

        check(model, interventions, len(spans.ids))
        means = selection_means(model, plan, interventions, neuron_means)
        means.patches = patch_sources(model, plan, context, interventions)
        intervene = window_hooks(model, plan, interventions, means)
        applied = [{"label": iv.label(), "mean_from": means.source.get(i)} for i, iv in enumerate(interventions)]
    out = _derive_predictions(model, plan, top_k, top_neurons if d_mlp else 0, timings, intervene, sae, top_features)

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
        token_texts=spans.texts(text),
        predictions=preds,
        strings=strings,
        context_tokens=plan.keep,
        windowed=len(plan.seq) > plan.window - 1,
        windows=len(plan.windows),
        window_tokens=plan.window,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        interventions=applied,
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
    n_layers, d_mlp, _, _ = model_dims(model)
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
    plan = _plan(model, text, context, window, timings)
    layers = sorted({layer for layer, _ in neurons})
    hooks = [mlp_hook_names(model)[layer] for layer in layers]
    parts = []
    for _, _, _, acts in _forward_windows(model, plan, hooks, timings):
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
