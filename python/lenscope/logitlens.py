"""The logit lens: what the residual stream would predict if the model stopped after each block.

Row ``embed`` reads ``blocks.0.hook_resid_pre`` (the embeddings), row ``L{l}`` reads
``blocks.{l}.hook_resid_post``; each goes through the model's own final LayerNorm
(``model.ln_final``, applied fresh to that residual, so with its own scale) and the unembedding,
then a log-softmax. The last row is therefore exactly the model's output: the same log-probs,
top-k and ranks as :func:`lenscope.analysis.analyze`.

Indexing follows :func:`lenscope.attribution.attribute`: position ``i`` is text token ``i``, and
its rows are predictions of token ``i + 1`` (analyze's prediction row ``i + 1``).

Nothing of size ``[layers, n, d_vocab]`` is kept: each hook reduces its residual to the top-k and
the actual next token's log-prob and rank of the asked positions (in chunks of rows, so one
temporary stays ~16 MB even for GPT-2's vocabulary), and only the windows that report an asked
position are run at all: a lens for one token costs one window's forward.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lenscope.engine.plan import plan_text
from lenscope.engine.run import DERIVE_CHUNK_ELEMENTS, forward_windows, model_device
from lenscope.engine.windows import Window
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of
from lenscope.tokens import TokenSpans, token_strings
from lenscope.validation import MAX_RESPONSE_CELLS, MAX_TEXT_TOKENS, MAX_TOP_K, check_int

LENS_TOP_K = 5
"""Tokens listed per row by default: the lens is read row by row, five is what fits."""


@dataclass
class LogitLens:
    """Per row (``embed``, then each block) and asked position: the lens's top-k and the actual
    next token's log-prob and rank (1-based among the whole vocabulary)."""

    model: str
    tokens: TokenSpans
    token_texts: list[str]
    positions: list[int]  # text token indices, ascending
    rows: list[str]  # "embed", "L0", "L1", ...
    top_ids: np.ndarray  # int32 [rows, positions, k]
    top_logprobs: np.ndarray  # float32 [rows, positions, k], largest first
    actual_ids: np.ndarray  # int32 [positions]: the next text token, -1 after the last one
    actual_logprob: np.ndarray  # float32 [rows, positions]; NaN after the last token
    actual_rank: np.ndarray  # int32 [rows, positions]; 0 after the last token
    strings: dict[int, str]
    timings_ms: dict[str, float] = field(default_factory=dict)


class _Lens:
    """The reduce on each residual hook. ``batch_hooks`` (passed as ``_forward_windows``'s
    ``intervene``, adding no hook) is told each batch's windows before its forward, which is how
    the reduce knows every row's next token and which rows were asked for."""

    def __init__(self, model: Any, seq: list[int], first: int, wanted: set[int], top_k: int) -> None:
        self.model = model
        self.first = first
        self.seq = torch.tensor([*seq, -1], dtype=torch.int64, device=model_device(model))  # -1: no next token
        self.wanted = wanted  # S positions
        self.top_k = top_k
        self.chunk = max(1, DERIVE_CHUNK_ELEMENTS // shape_of(model).d_vocab)
        self.targets = torch.empty(0)
        self.mask = torch.empty(0)

    def batch_hooks(self, batch: list[Window]) -> list[tuple[str, Callable[..., Any]]]:
        width = max(w.stop - w.start for w in batch) + 1
        device = self.seq.device
        # local t (0: the BOS) of a window is S position start + t - 1, and predicts S[start + t]
        local = torch.arange(width, device=device)
        s_next = torch.stack([(w.start + local).clamp(max=len(self.seq) - 1) for w in batch])
        self.targets = self.seq[s_next]
        self.mask = torch.tensor(
            [[self._reports(w, w.start + t - 1) for t in range(width)] for w in batch],
            dtype=torch.bool,
            device=device,
        )
        return []

    def _reports(self, w: Window, s: int) -> bool:
        """Whether S position ``s`` is asked for and reported by window ``w`` (one window each)."""
        return s in self.wanted and max(w.report_from, self.first) <= s < w.report_to

    def __call__(self, resid: torch.Tensor) -> torch.Tensor:
        """``[B, T, d_model]`` -> ``[B, T, 2k + 2]``: top log-probs, top ids, the actual token's
        log-prob and rank; zeros at rows not asked for (the caller never reads them)."""
        k = self.top_k
        mask = self.mask[:, : resid.shape[1]]
        rows, targets = resid[mask], self.targets[:, : resid.shape[1]][mask]
        out = torch.zeros(*resid.shape[:2], 2 * k + 2, device=resid.device)
        parts = []
        for c in range(0, rows.shape[0], self.chunk):
            lp = torch.log_softmax(self.model.unembed(self.model.ln_final(rows[c : c + self.chunk])).float(), dim=-1)
            top_lp, top_id = lp.topk(k, dim=-1)
            t = targets[c : c + self.chunk]
            actual = lp.gather(1, t.clamp(min=0)[:, None])[:, 0]
            rank = (lp > actual[:, None]).sum(-1) + 1  # no sort: count what beats it
            has_next = t >= 0
            actual = torch.where(has_next, actual, float("nan"))
            rank = torch.where(has_next, rank, 0)
            parts.append(torch.cat([top_lp, top_id.float(), actual[:, None], rank.float()[:, None]], -1))
        if parts:
            out[mask] = torch.cat(parts)
        return out


@torch.inference_mode()
def logit_lens(
    model: Any,
    text: str,
    *,
    context: str = "",
    top_k: int = LENS_TOP_K,
    positions: Sequence[int] | None = None,
    model_name: str | None = None,
    window: int | None = None,
) -> LogitLens:
    """The logit lens at text tokens ``positions`` (default: every token) of ``text``, after the
    embeddings and after each block. Same tokenization, context and windows as ``analyze``."""
    shape = shape_of(model)
    n_layers, d_vocab = shape.n_layers, shape.d_vocab
    check_int(top_k, "top_k", 1, min(d_vocab, MAX_TOP_K))
    timings = {"tokenize": 0.0, "forward": 0.0, "derive": 0.0}
    plan = plan_text(model, text, context, window, timings)
    n = len(plan.spans.ids)
    if n > MAX_TEXT_TOKENS:
        raise InputTooLarge(f"text is {n:,} tokens; the limit is {MAX_TEXT_TOKENS:,}: select less text")
    if positions is None:
        asked = list(range(n))
    else:
        if isinstance(positions, (str, bytes)) or not isinstance(positions, Sequence) or not positions:
            raise InvalidInput("positions must be a non-empty list of text token indices (or None for every token)")
        asked = sorted({check_int(p, "position", 0, n - 1) for p in positions})
    n_rows = n_layers + 1
    cells = len(asked) * n_rows * (top_k + 2)
    if cells > MAX_RESPONSE_CELLS:
        raise InputTooLarge(
            f"{len(asked):,} positions x {n_rows} rows x (top_k {top_k} + 2) = {cells:,} values; the limit is "
            f"{MAX_RESPONSE_CELLS:,}: ask for fewer positions or a smaller top_k"
        )
    wanted = {plan.keep + p for p in asked}  # S positions
    lens = _Lens(model, plan.seq, plan.first, wanted, top_k)
    runs = [w for w in plan.windows if any(lens._reports(w, s) for s in wanted)]
    hooks = [hook_names.resid_pre(0)] + [hook_names.resid_post(layer) for layer in range(n_layers)]
    rows: list[torch.Tensor] = []
    for _, s_positions, _, acts in forward_windows(
        model, dataclasses.replace(plan, windows=runs), hooks, timings, dict.fromkeys(hooks, lens), lens.batch_hooks
    ):
        keep = torch.tensor([int(s) in wanted for s in s_positions.tolist()], dtype=torch.bool, device=s_positions.device)
        rows.append(torch.stack(acts, 0)[:, keep])  # [rows, kept, 2k + 2]
    t1 = time.perf_counter()
    got = torch.cat(rows, 1).cpu()
    top_ids = got[..., top_k : 2 * top_k].round().to(torch.int32).numpy()
    actual_ids = np.array([plan.seq[s + 1] if s + 1 < len(plan.seq) else -1 for s in sorted(wanted)], np.int32)
    ids = sorted(set(top_ids.reshape(-1).tolist()) | set(actual_ids[actual_ids >= 0].tolist()))
    timings["derive"] += (time.perf_counter() - t1) * 1000
    return LogitLens(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        tokens=plan.spans,
        token_texts=plan.spans.texts(text),
        positions=asked,
        rows=["embed", *(f"L{layer}" for layer in range(n_layers))],
        top_ids=top_ids,
        top_logprobs=got[..., :top_k].numpy().astype(np.float32),
        actual_ids=actual_ids,
        actual_logprob=got[..., 2 * top_k].numpy().astype(np.float32),
        actual_rank=got[..., 2 * top_k + 1].round().to(torch.int32).numpy(),
        strings=dict(zip(ids, token_strings(model.tokenizer, ids))),
        timings_ms={k: round(v, 3) for k, v in timings.items()},
    )


def logit_lens_to_wire(result: LogitLens) -> dict[str, Any]:
    """The wire form (``LogitLensResponse``): top log-probs as float16 (display precision), the
    actual token's log-prob as float32 (it is compared across rows), ids and ranks as int32."""
    from lenscope.wire_convert import tokens_to_wire

    ids = sorted(result.strings)
    return {
        "model": result.model,
        "tokens": tokens_to_wire(result.tokens),
        "positions": result.positions,
        "rows": result.rows,
        "top_ids": np.ascontiguousarray(result.top_ids, dtype=np.int32),
        "top_logprobs": np.ascontiguousarray(result.top_logprobs, dtype=np.float16),
        "actual_ids": np.ascontiguousarray(result.actual_ids, dtype=np.int32),
        "actual_logprob": np.ascontiguousarray(result.actual_logprob, dtype=np.float32),
        "actual_rank": np.ascontiguousarray(result.actual_rank, dtype=np.int32),
        "strings": {"ids": ids, "values": [result.strings[i] for i in ids]},
        "timings_ms": result.timings_ms,
    }
