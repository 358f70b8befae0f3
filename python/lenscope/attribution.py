"""Direct logit attribution: why the model predicted a token at a position.

The residual stream at the last layer is a sum of parts: the token embedding, the positional
embedding, every attention head's output (itself a sum over the source positions it reads,
``pattern[d, s] * v_s @ W_O[h]``), every MLP neuron's output (``act * W_out[n]``) and the
biases. The final LayerNorm is linear once its scale is fixed, so with the scale **frozen at its
observed value** each part's direct effect on a logit is exact:

    part -> ((part - mean(part)) / scale) * w_ln @ u,   u = W_U[:, t] - mean_v W_U[:, v]

(``u`` for the centred logit of ``t``; ``W_U[:, t] - W_U[:, t2]`` for a logit difference), and
the parts plus the constant terms (the LN bias and the unembedding bias through ``u``) sum to the
centred logit of ``t`` exactly. Direct only: in a multi-layer model an earlier layer's output
also acts through later layers (via their attention and MLP inputs); that indirect effect is not
in any part here.

Only what one position needs is kept: the pattern row of the position, the values, the MLP
activations at the position and the LN scale there; no ``[positions, heads, d_model]`` tensor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lenscope import defaults
from lenscope.engine.layernorm import final_ln_params
from lenscope.engine.plan import bos_id, plan_text
from lenscope.engine.run import forward_windows, model_device, run_hooked
from lenscope.errors import InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of
from lenscope.validation import check_int

if TYPE_CHECKING:
    from lenscope.sae import SparseAutoencoder


@dataclass
class Attribution:
    """The parts of one prediction's (centred) logit, all in logits."""

    model: str
    position: int  # text token whose output is explained (it predicts token position + 1)
    target: int
    baseline: int | None  # explains logit(target) - logit(baseline) when given
    value: float  # the centred logit (or the difference), as the model computed it
    ln_scale: float  # the final LayerNorm's scale at the position, frozen
    embed: float
    pos_embed: float
    constant: float  # LN bias and unembedding bias, through u
    attn_bias: np.ndarray  # [n_layers]
    mlp_bias: np.ndarray  # [n_layers] (zeros without an MLP)
    heads: np.ndarray  # [n_layers, n_heads]: each head's whole direct part
    head_sources: np.ndarray  # [n_layers, n_heads, n_sources]: per source position (BOS first)
    pattern: np.ndarray  # [n_layers, n_heads, n_sources]: the attention weights from the position
    source_tokens: list[int]  # the window's tokens read as sources: BOS, context, text up to the position
    source_text_index: list[int]  # for each source, its text token index (-1: BOS or context)
    neurons: np.ndarray  # [n_layers, d_mlp] (empty without an MLP)
    strings: dict[int, str] = field(default_factory=dict)
    features: FeatureParts | None = None  # the SAE's re-split of its layer's MLP part, when asked

    def total(self) -> float:
        return float(
            self.embed
            + self.pos_embed
            + self.constant
            + self.attn_bias.sum()
            + self.mlp_bias.sum()
            + self.heads.sum()
            + self.neurons.sum()
        )


@dataclass
class FeatureParts:
    """An MLP-output SAE's view of one layer's neuron parts: ``sum(parts) + bias + error`` equals
    the sum of that layer's neuron parts (the features re-split the MLP part; they are not added
    to :meth:`Attribution.total`). ``error`` is what the reconstruction misses."""

    sae: str
    layer: int
    parts: np.ndarray  # [d_sae]: activation x direct(W_dec[f] @ W_out)
    activations: np.ndarray  # [d_sae]
    bias: float  # the decoder bias's part
    error: float


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(-1, keepdim=True)


@torch.inference_mode()
def attribute(
    model: Any,
    text: str,
    position: int,
    *,
    context: str = "",
    target: int | None = None,
    baseline: int | None = None,
    model_name: str | None = None,
    sae: SparseAutoencoder | None = None,
) -> Attribution:
    """The direct parts of the prediction made at text token ``position`` (it predicts token
    ``position + 1``) for ``target`` (default: the token that really came next, else the top
    prediction), optionally as a difference against ``baseline``. With an ``sae`` on an MLP's
    post-activations, that layer's neuron parts are also split into the SAE's features."""
    shape = shape_of(model)
    n_layers, d_mlp, d_vocab = shape.n_layers, shape.d_mlp or 0, shape.d_vocab
    timings = {"tokenize": 0.0}
    plan = plan_text(model, text, context, None, timings)
    n_text = len(plan.spans.ids)
    check_int(position, "position", 0, n_text - 1)
    s_pos = plan.keep + position  # index into the sequence S (context + text)
    window = next(w for w in plan.windows if w.report_from <= s_pos < w.report_to)
    local = window.local(s_pos)
    device = model_device(model)
    tokens = [bos_id(model.tokenizer), *plan.seq[window.start : window.start + local]]
    x = torch.tensor([tokens], dtype=torch.int64, device=device)

    keep: dict[str, torch.Tensor] = {}

    def grab(name: str, at: int | None) -> Any:
        def hook(act: torch.Tensor, hook: Any) -> None:
            keep[name] = (act[0] if at is None else act[0, at]).detach().float()

        return (name, hook)

    hooks = [grab(hook_names.EMBED, -1), grab(hook_names.POS_EMBED, -1), grab(hook_names.LN_FINAL_SCALE, -1)]
    for layer in range(n_layers):
        hooks.append((hook_names.attn_pattern(layer), _row_hook(keep, f"pattern{layer}")))
        hooks.append(grab(hook_names.attn_v(layer), None))
        if d_mlp:
            hooks.append(grab(hook_names.mlp_post(layer), -1))
    logits = run_hooked(model, x, hooks)[0, -1].float()

    next_id = plan.seq[s_pos + 1] if s_pos + 1 < len(plan.seq) else None
    if target is None:
        target = next_id if next_id is not None else int(logits.argmax())
    check_int(target, "target", 0, d_vocab - 1)
    if baseline is not None:
        check_int(baseline, "baseline", 0, d_vocab - 1)

    w_u = model.W_U.detach().float()
    b_u = model.b_U.detach().float() if getattr(model, "b_U", None) is not None else torch.zeros(d_vocab, device=device)
    if baseline is None:
        u = w_u[:, target] - w_u.mean(1)
        u_bias = b_u[target] - b_u.mean()
        value = float(logits[target] - logits.mean())
    else:
        u = w_u[:, target] - w_u[:, baseline]
        u_bias = b_u[target] - b_u[baseline]
        value = float(logits[target] - logits[baseline])
    w_ln, b_ln = final_ln_params(model, model_device(model))
    scale = float(keep[hook_names.LN_FINAL_SCALE].reshape(-1)[0])
    read = w_ln * u / scale  # a centred residual vector r contributes r @ read

    def direct(vectors: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = _centre(vectors) @ read
        return out

    # the bridge stacks every layer's weights on each access: read each stack once
    w_o, b_o = model.W_O.detach().float(), model.b_O.detach().float()  # [layers, heads, d_head, d_model], [layers, d_model]
    w_out, b_out = (model.W_out.detach().float(), model.b_out.detach().float()) if d_mlp else (None, None)
    heads_out, sources_out, attn_bias, mlp_bias, neurons_out, patterns = [], [], [], [], [], []
    features: FeatureParts | None = None
    if sae is not None:
        from lenscope.sae import check_fits

        check_fits(sae, model, model_name or "model")
        if not (sae.hook_point.startswith("blocks.") and sae.hook_point.endswith(".mlp.hook_post")):
            raise InvalidInput(f"feature attribution needs an SAE on MLP post-activations; {sae.name!r} reads {sae.hook_point!r}")
    for layer in range(n_layers):
        g = direct(w_o[layer])  # [heads, d_head]: what one unit of each value dimension adds
        v = keep[hook_names.attn_v(layer)]  # [sources, heads, d_head]
        patterns.append(keep[f"pattern{layer}"])
        per_source = keep[f"pattern{layer}"] * torch.einsum("shd,hd->hs", v, g)  # [heads, sources]
        sources_out.append(per_source)
        heads_out.append(per_source.sum(-1))
        attn_bias.append(float(direct(b_o[layer])))
        if w_out is not None and b_out is not None:
            act = keep[hook_names.mlp_post(layer)]  # [d_mlp]
            neurons_out.append(act * direct(w_out[layer]))
            mlp_bias.append(float(direct(b_out[layer])))
            if sae is not None and sae.hook_point == hook_names.mlp_post(layer):
                f = sae.encode(act[None])[0]
                per_unit = direct(w_out[layer])  # [d_mlp]: what one unit of each neuron adds
                parts = f * (sae.W_dec @ per_unit)
                bias = float(sae.b_dec @ per_unit)
                features = FeatureParts(sae.name, layer, parts.cpu().numpy(), f.cpu().numpy(), bias,
                                        float(neurons_out[-1].sum()) - float(parts.sum()) - bias)  # fmt: skip
        else:
            mlp_bias.append(0.0)
    n_sources = len(tokens)
    text_start = plan.keep - window.start + 1  # local index of text token 0 (sources before it: BOS, context)
    ids = sorted({target, *([baseline] if baseline is not None else []), *tokens})
    from lenscope.tokens import token_strings

    return Attribution(
        model=model_name or str(getattr(model.cfg, "model_name", "model")),
        position=position,
        target=int(target),
        baseline=None if baseline is None else int(baseline),
        value=value,
        ln_scale=scale,
        embed=float(direct(keep[hook_names.EMBED])),
        pos_embed=float(direct(keep[hook_names.POS_EMBED])),
        constant=float(b_ln @ u + u_bias),
        attn_bias=np.asarray(attn_bias, dtype=np.float32),
        mlp_bias=np.asarray(mlp_bias, dtype=np.float32),
        heads=torch.stack(heads_out).cpu().numpy(),
        head_sources=torch.stack(sources_out).reshape(n_layers, -1, n_sources).cpu().numpy(),
        pattern=torch.stack(patterns).reshape(n_layers, -1, n_sources).cpu().numpy(),
        source_tokens=tokens,
        source_text_index=[i - text_start if i >= max(text_start, 1) else -1 for i in range(n_sources)],
        neurons=torch.stack(neurons_out).cpu().numpy() if d_mlp else np.zeros((n_layers, 0), dtype=np.float32),
        strings=dict(zip(ids, token_strings(model.tokenizer, ids))),
        features=features,
    )


def _row_hook(keep: dict[str, torch.Tensor], key: str) -> Any:
    """Keep only the last query row of an attention pattern: ``[heads, sources]``."""

    def hook(act: torch.Tensor, hook: Any) -> None:
        keep[key] = act[0, :, -1, :].detach().float()

    return hook


def top_parts(result: Attribution, k: int = defaults.TOP_NEURONS) -> dict[str, list[tuple[Any, float]]]:
    """The largest parts by magnitude, signed: neurons ``(layer, index)`` and heads ``(layer, head)``."""
    out: dict[str, list[tuple[Any, float]]] = {}
    for name, values in (("neurons", result.neurons), ("heads", result.heads)):
        flat = values.reshape(-1)
        if flat.size == 0:
            out[name] = []
            continue
        order = np.argsort(-np.abs(flat))[:k]
        width = values.shape[1]
        out[name] = [((int(i // width), int(i % width)), float(flat[i])) for i in order]
    return out


def attribution_to_wire(result: Attribution, top: int = defaults.TOP_NEURONS) -> dict[str, Any]:
    """The wire form (``AttributionResponse``): the largest parts listed, the per-source arrays whole."""
    parts = top_parts(result, top)
    d_mlp = result.neurons.shape[1]
    return {
        "model": result.model,
        "position": result.position,
        "target": result.target,
        "baseline": result.baseline,
        "value": result.value,
        "total": result.total(),
        "ln_scale": result.ln_scale,
        "embed": result.embed,
        "pos_embed": result.pos_embed,
        "constant": result.constant,
        "attn_bias": result.attn_bias.astype(np.float32),
        "mlp_bias": result.mlp_bias.astype(np.float32),
        "heads": result.heads.astype(np.float32),
        "mlp_total": result.neurons.sum(axis=1).astype(np.float32) if d_mlp else np.zeros(len(result.heads), np.float32),
        "top_neurons": [{"layer": la, "index": ix, "value": v} for (la, ix), v in parts["neurons"]],
        "pattern": result.pattern.astype(np.float16),
        "head_sources": result.head_sources.astype(np.float32),
        "source_ids": np.asarray(result.source_tokens, dtype=np.int32),
        "source_text_index": np.asarray(result.source_text_index, dtype=np.int32),
        "strings": {"ids": sorted(result.strings), "values": [result.strings[i] for i in sorted(result.strings)]},
        "features": None if result.features is None else _features_wire(result.features, top),
    }


def _features_wire(f: FeatureParts, top: int) -> dict[str, Any]:
    order = [i for i in np.argsort(-np.abs(f.parts))[:top] if f.activations[i] > 0]
    return {
        "sae": f.sae,
        "layer": f.layer,
        "top": [{"index": int(i), "part": float(f.parts[i]), "activation": float(f.activations[i])} for i in order],
        "total": float(f.parts.sum()),
        "bias": f.bias,
        "error": f.error,
    }


@dataclass
class AllAttribution:
    """The direct parts of the prediction at every text token (row i: token i predicting i + 1),
    each for that position's actual next token (the last token: the top prediction)."""

    model: str
    targets: np.ndarray  # int32 [n]
    value: np.ndarray  # float32 [n]: centred logit of the target
    embed: np.ndarray  # [n]
    pos_embed: np.ndarray  # [n]
    constant: np.ndarray  # [n]
    attn_bias: np.ndarray  # [n, n_layers]
    mlp_bias: np.ndarray  # [n, n_layers]
    heads: np.ndarray  # [n, n_layers, n_heads]
    mlp_total: np.ndarray  # [n, n_layers]
    neuron_layer: np.ndarray  # int32 [n, top]: the largest |part| neurons, largest first
    neuron_index: np.ndarray
    neuron_value: np.ndarray
    neuron_parts: dict[int, np.ndarray] = field(default_factory=dict)  # position -> every neuron's part [layers, d_mlp]

    def total(self) -> np.ndarray:
        parts = [self.embed, self.pos_embed, self.constant, self.attn_bias.sum(1), self.mlp_bias.sum(1),
                 self.heads.sum((1, 2)), self.mlp_total.sum(1)]  # fmt: skip
        out: np.ndarray = np.sum(parts, axis=0)
        return out


@torch.inference_mode()
def attribute_all(model: Any, text: str, *, context: str = "", top: int = defaults.TOP_NEURONS,
                  model_name: str | None = None, keep_neurons_at: Iterable[int] = ()) -> AllAttribution:  # fmt: skip
    """:func:`attribute` for every text token at once, from one pass of ``analyze``'s windows:
    the same captures serve every position (``hook_z`` holds each head's mix of values), and
    the read-out direction differs per position only through its target, so each part is a
    matrix product over the positions of a window. Neurons: the ``top`` largest by |part|, and
    every neuron's part at the text positions ``keep_neurons_at`` (bounded by what is asked)."""

    shape = shape_of(model)
    n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
    check_int(top, "top", 0, 1000)
    plan = plan_text(model, text, context)
    # in the order they fire: the windows' forward hands the captures back in that order
    hooks = [hook_names.EMBED, hook_names.POS_EMBED]
    for layer in range(n_layers):
        hooks += [hook_names.attn_z(layer)] + ([hook_names.mlp_post(layer)] if d_mlp else [])
    hooks.append(hook_names.LN_FINAL_SCALE)
    w_u = model.W_U.detach().float()
    device = w_u.device
    b_u = model.b_U.detach().float() if getattr(model, "b_U", None) is not None else torch.zeros(w_u.shape[1], device=device)
    w_ln, b_ln = final_ln_params(model, model_device(model))
    w_o, b_o = _centre(model.W_O.detach().float()), _centre(model.b_O.detach().float())
    w_out, b_out = (_centre(model.W_out.detach().float()), _centre(model.b_out.detach().float())) if d_mlp else (None, None)
    seq = torch.tensor([*plan.seq, 0], dtype=torch.int64, device=device)
    rows: dict[str, list[torch.Tensor]] = {
        k: [] for k in AllAttribution.__dataclass_fields__ if k not in ("model", "neuron_parts")
    }
    wanted = {plan.keep + p for p in keep_neurons_at}  # S positions
    neuron_parts: dict[int, np.ndarray] = {}
    timings = {"forward": 0.0}
    for _, positions, logits, acts in forward_windows(model, plan, hooks, timings):
        a = dict(zip(hooks, acts))
        logits = logits.float()
        has_next = positions + 1 < len(plan.seq)
        targets = torch.where(has_next, seq[positions + 1], logits.argmax(-1))
        u = w_u[:, targets] - w_u.mean(1, keepdim=True)  # [d_model, P]
        scale = a[hook_names.LN_FINAL_SCALE].float().reshape(len(positions), -1)[:, :1]  # [P, 1] (some bridges broadcast it)
        read = w_ln[:, None] * u / scale.reshape(1, -1)  # [d_model, P]

        def direct(vectors: torch.Tensor, read: torch.Tensor = read) -> torch.Tensor:
            """[P, d_model] centred vectors (one per position) -> [P]."""
            return (vectors * read.T).sum(-1)

        rows["targets"].append(targets.to(torch.int32))
        rows["value"].append(logits.gather(1, targets[:, None])[:, 0] - logits.mean(-1))
        rows["embed"].append(direct(_centre(a[hook_names.EMBED].float())))
        rows["pos_embed"].append(direct(_centre(a[hook_names.POS_EMBED].float())))
        rows["constant"].append(b_ln @ u + b_u[targets] - b_u.mean())
        rows["attn_bias"].append((b_o @ read).T)  # [P, layers]
        heads, mlp_total, mlp_bias, parts = [], [], [], []
        for layer in range(n_layers):
            g = torch.einsum("hdm,mp->hdp", w_o[layer], read)
            z = a[hook_names.attn_z(layer)].float().reshape(len(positions), g.shape[0], g.shape[1])  # [P, heads, d_head]
            heads.append(torch.einsum("phd,hdp->ph", z, g))
            if w_out is not None and b_out is not None:
                part = a[hook_names.mlp_post(layer)].float() * (w_out[layer] @ read).T  # [P, d_mlp]
                parts.append(part)
                mlp_total.append(part.sum(-1))
                mlp_bias.append(b_out[layer] @ read)
            else:
                mlp_total.append(torch.zeros(len(positions), device=device))
                mlp_bias.append(torch.zeros(len(positions), device=device))
        rows["heads"].append(torch.stack(heads, 1))
        rows["mlp_total"].append(torch.stack(mlp_total, 1))
        rows["mlp_bias"].append(torch.stack(mlp_bias, 1))
        if parts:
            for r, s_pos in enumerate(positions.tolist()):
                if s_pos in wanted:
                    neuron_parts[s_pos - plan.keep] = torch.stack([part[r] for part in parts]).cpu().numpy()
        if parts and top:
            flat = torch.cat(parts, -1)  # [P, layers * d_mlp]
            idx = flat.abs().topk(min(top, flat.shape[1]), dim=-1).indices
            rows["neuron_layer"].append((idx // d_mlp).to(torch.int32))
            rows["neuron_index"].append((idx % d_mlp).to(torch.int32))
            rows["neuron_value"].append(flat.gather(1, idx))
        else:
            empty = torch.zeros(len(positions), 0, device=device)
            rows["neuron_layer"].append(empty.to(torch.int32))
            rows["neuron_index"].append(empty.to(torch.int32))
            rows["neuron_value"].append(empty)
    out = {k: torch.cat(v)[1:].cpu().numpy() for k, v in rows.items()}  # row 0 is the BOS or a context token
    return AllAttribution(model=model_name or str(getattr(model.cfg, "model_name", "model")), **out, neuron_parts=neuron_parts)
