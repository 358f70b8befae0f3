"""Heads found by their role: previous-token, duplicate-token, induction and BOS (attention-sink) scores.

Each score is the attention a head pays to the positions a role names, read from
``hook_pattern`` in one forward pass, in the form TransformerLens's head detector uses
(``transformer_lens.head_detector``: the pattern's mass on a 0/1 "detection pattern"), averaged
over the query positions that have such a target (so a first occurrence, which has no earlier
duplicate, does not dilute the score):

==============  ==========================================================================
role            query ``i`` attends to key ``j`` where
==============  ==========================================================================
previous_token  ``j == i - 1`` (every query after the first token)
duplicate_token ``j < i`` and ``tok[j] == tok[i]`` (an earlier copy of the current token)
induction       ``j - 1 < i - 1`` and ``tok[j - 1] == tok[i]``: the token *after* an earlier
                copy of the current token (Elhage et al. 2021, Olsson et al. 2022)
bos             ``j == 0``: the BOS, an attention sink (every query)
==============  ==========================================================================

The standard probe is a sequence of repeated random tokens: BOS, ``n`` tokens drawn (seeded)
from frequent tokens, then the same ``n`` again. On it the in-context gain (mean loss on the
first copy minus on the second, in nats) measures how much a model copies from context; an
induction head attends from a token of the second copy to the token after its first
occurrence. The same scores are computed on any text (its own duplicates and repeats).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lenscope.engine.plan import bos_id, plan_text
from lenscope.engine.run import model_device, run_capturing
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.frequent import frequent_tokens, shipped_token_counts
from lenscope.models.shape import shape_of
from lenscope.validation import check_int

ROLES = ("previous_token", "duplicate_token", "induction", "bos")
PROBE_LENGTH = 50
PROBE_BATCH = 8
ROLE_THRESHOLD = 0.3
"""A head "has" a role when at least this share of its attention (on average) goes where the role says."""


def detection_patterns(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """0/1 ``[seq, seq]`` masks (query, key) of each role for one sequence (position 0: the BOS)."""
    n = len(tokens)
    same = tokens[:, None] == tokens[None, :]  # [query, key]
    causal = torch.ones(n, n, dtype=torch.bool, device=tokens.device).tril(-1)  # j < i
    prev = torch.zeros(n, n, dtype=torch.bool, device=tokens.device)
    idx = torch.arange(1, n, device=tokens.device)
    prev[idx, idx - 1] = True
    prev[1, 0] = False  # the first token's previous position is the BOS: a sink, not a token
    dup = same & causal
    dup[:, 0] = False
    ind = torch.zeros_like(dup)
    ind[:, 1:] = dup[:, :-1]  # key j where tok[j-1] == tok[i], j - 1 < i
    ind[:, 1] = False  # j - 1 == 0 is the BOS
    bos = torch.zeros_like(dup)
    bos[1:, 0] = True
    return {"previous_token": prev, "duplicate_token": dup, "induction": ind, "bos": bos}


def role_sums(pattern: torch.Tensor, masks: dict[str, torch.Tensor], queries: slice = slice(None)
              ) -> dict[str, tuple[torch.Tensor, int]]:  # fmt: skip
    """Per role, ``(summed mass [heads], query count)`` over ``queries`` that have a target: the
    pattern's (``[heads, query, key]``, one sequence) mass on the role's keys."""
    out = {}
    for role, mask in masks.items():
        rows = mask.any(-1)
        rows[: queries.start or 0] = False
        if queries.stop is not None:
            rows[queries.stop :] = False
        out[role] = ((pattern * mask).sum(-1)[:, rows].sum(-1), int(rows.sum()))
    return out


def role_scores(pattern: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``[heads]`` per role: the mean, over query positions with a target, of the pattern's mass on
    the role's keys. NaN when no query has a target (a text without a repeated token has no
    induction targets)."""
    return {r: total / n if n else torch.full_like(total, float("nan")) for r, (total, n) in role_sums(pattern, masks).items()}


@dataclass
class HeadScores:
    """Scores ``[layers, heads]`` per role, on what they were measured on."""

    model: str
    on: str  # "probe" (repeated random tokens) or "text"
    scores: dict[str, np.ndarray]  # role -> float32 [layers, heads]
    tokens: int  # tokens per sequence, BOS included
    sequences: int
    in_context_gain: float | None = None  # probe only: loss on the first copy minus on the second (nats)
    loss_first: float | None = None
    loss_second: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def top(self, role: str, k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` highest-scoring heads for ``role``: ``(layer, head, score)``."""
        s = np.nan_to_num(self.scores[role], nan=-1.0)
        flat = np.argsort(-s, axis=None, kind="stable")[:k]
        return [(int(i // s.shape[1]), int(i % s.shape[1]), float(self.scores[role].flat[i])) for i in flat]

    def role_of(self, layer: int, head: int) -> tuple[str, float]:
        """The head's role: its strongest score at or above ``ROLE_THRESHOLD`` (a token role before
        the BOS sink), else ``"diffuse"`` with its strongest score."""
        values = {r: float(np.nan_to_num(self.scores[r][layer, head], nan=0.0)) for r in ROLES}
        best = max((r for r in ROLES if r != "bos"), key=values.__getitem__)
        if values[best] >= ROLE_THRESHOLD:
            return best, values[best]
        if values["bos"] >= ROLE_THRESHOLD:
            return "bos", values["bos"]
        return "diffuse", max(values.values())


def probe_sequences(model: Any, length: int = PROBE_LENGTH, batch: int = PROBE_BATCH, seed: int = 0,
                    pool: np.ndarray | None = None) -> torch.Tensor:  # fmt: skip
    """``[batch, 1 + 2 * length]``: BOS, ``length`` random tokens from ``pool`` (default: frequent
    tokens), the same again; each row drawn without repeats inside its first copy."""
    n_ctx = shape_of(model).n_ctx
    check_int(length, "length", 2, (n_ctx - 1) // 2)
    check_int(batch, "batch", 1, 64)
    pool = frequent_tokens(model) if pool is None else pool
    if len(pool) < length:
        raise InvalidInput(f"the probe needs {length} distinct tokens; only {len(pool)} to draw from")
    gen = np.random.default_rng(seed)
    rows = np.stack([gen.choice(pool, size=length, replace=False) for _ in range(batch)])
    bos = np.full((batch, 1), bos_id(model.tokenizer))
    return torch.from_numpy(np.concatenate([bos, rows, rows], axis=1)).to(model_device(model))


def zero_heads(model: Any, heads: Sequence[tuple[int, int]]) -> list[tuple[str, Callable[..., Any]]]:
    """Forward hooks that zero-ablate ``(layer, head)`` pairs: their ``hook_z`` rows set to 0, so
    nothing they would write reaches the residual stream (the output bias stays)."""
    shape = shape_of(model)
    n_heads = shape.n_heads or 0
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        check_int(layer, "layer", 0, shape.n_layers - 1)
        check_int(head, "head", 0, n_heads - 1)
        by_layer.setdefault(layer, []).append(head)

    def zero(idx: list[int]) -> Callable[..., Any]:
        def hook(z: torch.Tensor, hook: Any) -> torch.Tensor:
            z = z.clone()
            z[:, :, idx] = 0.0
            return z

        return hook

    return [(hook_names.attn_z(layer), zero(idx)) for layer, idx in sorted(by_layer.items())]


@torch.inference_mode()
def score_tokens(model: Any, x: torch.Tensor, *, model_name: str = "model", on: str = "text",
                 ablate: Sequence[tuple[int, int]] = ()) -> HeadScores:  # fmt: skip
    """Every head's role scores on token ids ``x`` (``[batch, seq]``, BOS first), one forward,
    averaged over the batch's sequences; with the heads in ``ablate`` zero-ablated."""
    shape = shape_of(model)
    if x.ndim != 2 or x.shape[1] < 3:
        raise InvalidInput("token ids must be [sequences, tokens] with at least BOS + 2 tokens")
    if x.shape[1] > shape.n_ctx:
        raise InputTooLarge(f"{x.shape[1]} tokens do not fit the model's context of {shape.n_ctx}")
    if int(x.min()) < 0 or int(x.max()) >= shape.d_vocab:
        raise InvalidInput(f"token ids must be between 0 and {shape.d_vocab - 1}")
    names = [hook_names.attn_pattern(layer) for layer in range(shape.n_layers)]
    logits, cache = run_capturing(model, x, names, zero_heads(model, ablate))
    per_seq = []
    for b in range(x.shape[0]):
        masks = detection_patterns(x[b])
        layer_scores = [role_scores(cache[name][b].float(), masks) for name in names]
        per_seq.append({r: torch.stack([s[r] for s in layer_scores]) for r in ROLES})  # [layers, heads]
    scores = {r: torch.nanmean(torch.stack([p[r] for p in per_seq]), 0).cpu().numpy().astype(np.float32) for r in ROLES}
    lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, x[:, 1:, None])[..., 0]  # [batch, seq - 1]
    return HeadScores(model_name, on, scores, int(x.shape[1]), int(x.shape[0]), extra={"logprobs": lp.cpu().numpy()})


def induction_probe(
    model: Any, *, model_name: str = "model", length: int = PROBE_LENGTH, batch: int = PROBE_BATCH, seed: int = 0,
    pool: np.ndarray | None = None, ablate: Sequence[tuple[int, int]] = (),
) -> HeadScores:  # fmt: skip
    """Scores on repeated random tokens, with the in-context gain (loss on the first copy's tokens
    after its first, minus loss on the second copy's tokens after its first); ``ablate``: heads
    zero-ablated in that run, the causal test of which heads carry the gain."""
    x = probe_sequences(model, length, batch, seed, pool)
    result = score_tokens(model, x, model_name=model_name, on="probe", ablate=ablate)
    result.extra["ablated"] = [list(h) for h in ablate]
    lp = result.extra.pop("logprobs")  # lp[:, j] predicts token j + 1
    first = -float(lp[:, 1:length].mean())  # tokens 2..n of the first copy (token 1 follows the BOS)
    second = -float(lp[:, length + 1 :].mean())  # tokens 2..n of the second copy
    result.loss_first, result.loss_second, result.in_context_gain = first, second, first - second
    result.extra["length"] = length
    result.extra["seed"] = seed
    result.extra["sequence"] = x[0].tolist()
    return result


def text_scores(model: Any, text: str, context: str = "", *, model_name: str = "model") -> HeadScores:
    """Scores on a text (its own repeats and duplicates), in ``analyze``'s windows: each query is
    scored in the window that reports it, against the keys of that window."""
    plan = plan_text(model, text, context)
    names = [hook_names.attn_pattern(layer) for layer in range(shape_of(model).n_layers)]
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = dict.fromkeys(ROLES, 0)
    device = model_device(model)
    with torch.inference_mode():
        for w in plan.windows:
            x = torch.tensor([[plan.bos, *plan.seq[w.start : w.stop]]], device=device)
            _, cache = run_capturing(model, x, names)
            masks = detection_patterns(x[0])
            # the window's reported text positions (BOS and kept context are not scored)
            queries = slice(max(w.report_from, plan.keep) - w.start + 1, w.report_to - w.start + 1)
            per_layer = [role_sums(cache[name][0].float(), masks, queries) for name in names]
            for role in ROLES:
                total = torch.stack([p[role][0] for p in per_layer])  # [layers, heads]
                sums[role] = sums[role] + total if role in sums else total
                counts[role] += per_layer[0][role][1]
    scores = {r: (sums[r] / counts[r] if counts[r] else torch.full_like(sums[r], float("nan"))).cpu().numpy().astype(np.float32)
              for r in ROLES}  # fmt: skip
    return HeadScores(model_name, "text", scores, len(plan.seq) + 1, len(plan.windows))


def scores_to_wire(result: HeadScores) -> dict[str, Any]:
    """The ``GET heads/{model}/scores`` response (NaN, a role with no target, as null)."""

    def clean(x: float) -> float | None:
        return None if np.isnan(x) else round(float(x), 5)

    return {
        "model": result.model,
        "on": result.on,
        "roles": list(ROLES),
        "scores": {r: [[clean(v) for v in row] for row in result.scores[r].tolist()] for r in ROLES},
        # a role with no target on a text ranks no head
        "top": {
            r: [{"layer": la, "head": h, "score": round(s, 5)} for la, h, s in result.top(r) if not np.isnan(s)] for r in ROLES
        },
        "tokens": result.tokens,
        "sequences": result.sequences,
        "length": result.extra.get("length"),
        "seed": result.extra.get("seed"),
        "in_context_gain": result.in_context_gain,
        "loss_first": result.loss_first,
        "loss_second": result.loss_second,
        "sequence": result.extra.get("sequence"),
    }


def probe_wire(model: Any, name: str, length: int = PROBE_LENGTH, seed: int = 0) -> dict[str, Any]:
    """The induction probe's scores for the server, on frequent tokens of the shipped corpus when
    there is one for the model."""
    check_int(seed, "seed", 0, 2**31 - 1)
    pool = frequent_tokens(model, counts=shipped_token_counts(name, shape_of(model).d_vocab))
    return scores_to_wire(induction_probe(model, model_name=name, length=length, seed=seed, pool=pool))
