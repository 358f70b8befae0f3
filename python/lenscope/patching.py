"""Activation patching (as in the IOI notebook): which component, at which position, carries
what makes a clean text's prediction differ from a corrupted one's.

Two texts of the same token count (clean and corrupted, e.g. `name = "Alice"` vs `name = "Bob"`);
a metric, the logit difference ``logit(target) - logit(baseline)`` at one position (default: the
last token, predicting what follows). For every layer and position, one component's activation
of the corrupted run is replaced by the clean run's there (``resid_pre``, ``attn_out``,
``mlp_out``, and each head's ``z``), and the metric is read again. Reported as the restored
share ``(patched - corrupted) / (clean - corrupted)``: 1 where the patch restores the clean
value, 0 where it changes nothing. A (layer, component) is one batched forward, one row per
position. The texts must fit in one window (no context), so positions mean the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lenscope.engine.plan import bos_id
from lenscope.engine.run import model_device, run_capturing, run_hooked
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of
from lenscope.tokens import TokenSpans, token_strings, tokenize_with_spans
from lenscope.validation import MAX_RESPONSE_CELLS, check_int, check_text

LAYER_COMPONENTS = ("resid_pre", "attn_out", "mlp_out")
MAX_PATCH_WORK = 10**12
"""Patched token-rows x layers x d_model^2: the work of one grid, bounded so that a request ends
in minutes on 2 CPU cores (the default model at 256 tokens is 5e10; GPT-2 small at 40 tokens
is 2e12, about 10 minutes there)."""
HOOKS = {"resid_pre": hook_names.resid_pre, "attn_out": hook_names.attn_out, "mlp_out": hook_names.mlp_out,
         "head": hook_names.attn_z}  # fmt: skip


@dataclass
class PatchGrid:
    model: str
    clean: TokenSpans
    corrupted: TokenSpans
    clean_texts: list[str]
    corrupted_texts: list[str]
    target: int
    baseline: int
    position: int  # the text token whose prediction the metric reads
    clean_value: float
    corrupted_value: float
    restored: dict[str, np.ndarray]  # component -> float32 [layers, positions]
    heads: np.ndarray  # float32 [layers, heads, positions]
    strings: dict[int, str]


def _tokens(model: Any, text: str, what: str) -> TokenSpans:
    check_text(text, what)
    spans = tokenize_with_spans(model.tokenizer, text)
    n_ctx = shape_of(model).n_ctx
    if len(spans.ids) > n_ctx - 1:
        raise InputTooLarge(f"{what} is {len(spans.ids)} tokens; patching reads one window: at most {n_ctx - 1}")
    return spans


@torch.inference_mode()
def patch_grid(
    model: Any,
    clean: str,
    corrupted: str,
    target: int,
    baseline: int,
    *,
    position: int | None = None,
    model_name: str | None = None,
) -> PatchGrid:
    shape = shape_of(model)
    n_layers, d_mlp, d_vocab = shape.n_layers, shape.d_mlp or 0, shape.d_vocab
    n_heads = int(model.cfg.n_heads)
    a, b = _tokens(model, clean, "clean"), _tokens(model, corrupted, "corrupted")
    n = len(a.ids)
    if len(b.ids) != n:
        raise InvalidInput(f"clean is {n} tokens and corrupted {len(b.ids)}: patching needs the same token count")
    check_int(target, "target", 0, d_vocab - 1)
    check_int(baseline, "baseline", 0, d_vocab - 1)
    position = n - 1 if position is None else check_int(position, "position", 0, n - 1)
    cells = n * n_layers * (len(LAYER_COMPONENTS) + n_heads)
    if cells > MAX_RESPONSE_CELLS:
        raise InputTooLarge(f"{n} positions x {n_layers} layers is {cells:,} values; the limit is {MAX_RESPONSE_CELLS:,}")
    d_model = int(model.cfg.d_model)
    work = n_layers * (len(LAYER_COMPONENTS) + n_heads) * n * (n + 1) * n_layers * d_model**2
    if work > MAX_PATCH_WORK:
        raise InputTooLarge(
            f"patching {n} tokens of a {n_layers}-layer, d_model {d_model} model is {work:.1e} units of work "
            f"(patched rows x layers x d_model^2); the limit is {MAX_PATCH_WORK:.0e}: patch shorter texts"
        )
    device = model_device(model)
    bos = bos_id(model.tokenizer)
    x_clean = torch.tensor([[bos, *a.ids.tolist()]], device=device)
    x_corrupt = torch.tensor([[bos, *b.ids.tolist()]], device=device)
    at = position + 1  # BOS first

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return (logits[:, at, target] - logits[:, at, baseline]).float()

    components = [c for c in LAYER_COMPONENTS if c != "mlp_out" or d_mlp]
    names = [HOOKS[c](layer) for layer in range(n_layers) for c in [*components, "head"]]
    clean_logits, cache = run_capturing(model, x_clean, names)
    clean_value = float(metric(clean_logits)[0])
    corrupted_value = float(metric(run_hooked(model, x_corrupt, []))[0])
    span = clean_value - corrupted_value
    if abs(span) < 1e-6:
        raise InvalidInput(
            f"the metric is the same on both texts ({clean_value:.4f}): nothing to restore; choose texts or tokens that differ"
        )
    restored = {c: np.full((n_layers, n), np.nan, np.float32) for c in LAYER_COMPONENTS}
    heads = np.zeros((n_layers, n_heads, n), np.float32)
    rows = torch.arange(n, device=device)
    batch = x_corrupt.expand(n, -1)
    head_rows = torch.arange(n_heads * n, device=device)
    h_of, p_of = head_rows // n, head_rows % n
    for layer in range(n_layers):
        for c in components:
            clean_act = cache[HOOKS[c](layer)][0]

            def patch(act: torch.Tensor, hook: Any, clean_act: torch.Tensor = clean_act) -> torch.Tensor:
                act = act.clone()
                act[rows, rows + 1] = clean_act[rows + 1]  # row p patches position p (BOS first)
                return act

            got = metric(run_hooked(model, batch, [(HOOKS[c](layer), patch)]))
            restored[c][layer] = ((got - corrupted_value) / span).cpu().numpy()
        clean_z = cache[HOOKS["head"](layer)][0]  # [T, heads, d_head]

        def patch_head(act: torch.Tensor, hook: Any, clean_z: torch.Tensor = clean_z) -> torch.Tensor:
            act = act.clone()
            act[head_rows, p_of + 1, h_of] = clean_z[p_of + 1, h_of]  # row h * n + p patches head h at p
            return act

        got = metric(run_hooked(model, x_corrupt.expand(n_heads * n, -1), [(HOOKS["head"](layer), patch_head)]))
        heads[layer] = ((got - corrupted_value) / span).reshape(n_heads, n).cpu().numpy()
    ids = sorted({target, baseline, *a.ids.tolist(), *b.ids.tolist()})
    return PatchGrid(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        clean=a,
        corrupted=b,
        clean_texts=a.texts(clean),
        corrupted_texts=b.texts(corrupted),
        target=target,
        baseline=baseline,
        position=position,
        clean_value=clean_value,
        corrupted_value=corrupted_value,
        restored=restored,
        heads=heads,
        strings=dict(zip(ids, token_strings(model.tokenizer, ids))),
    )


def patch_grid_to_wire(result: PatchGrid) -> dict[str, Any]:
    from lenscope.wire_convert import tokens_to_wire

    ids = sorted(result.strings)
    return {
        "model": result.model,
        "clean": tokens_to_wire(result.clean),
        "corrupted": tokens_to_wire(result.corrupted),
        "target": result.target,
        "baseline": result.baseline,
        "position": result.position,
        "clean_value": result.clean_value,
        "corrupted_value": result.corrupted_value,
        "resid_pre": result.restored["resid_pre"],
        "attn_out": result.restored["attn_out"],
        "mlp_out": result.restored["mlp_out"],
        "heads": result.heads,
        "strings": {"ids": ids, "values": [result.strings[i] for i in ids]},
    }
