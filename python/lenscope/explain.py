"""The comparison explained: how much of model A's advantage at a token its MLP carries directly,
through which neurons, and how much of the advantage is lost when those neurons are removed.

A comparison row is a token ``t`` of a document; the prediction of it is made at ``t - 1``. Its
MLP part is the direct logit attribution (``lenscope.attribution``) of the actual token's centred
logit to A's MLP neurons at ``t - 1``, the final LayerNorm's scale frozen, summed over A's layers.
Documents are read as the scans read them (the whole text, no context, ``analyze``'s windows).

"Neurons that carry A's advantage": over the top rows (by diff), each neuron's direct parts
summed, ranked. The causal check zero-ablates chosen neurons at a row's position only and
measures the share of the row's diff ``lp_A - max(lp_B, clamp)`` that disappears.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lenscope.attribution import attribute_all
from lenscope.compare import Row
from lenscope.defaults import CLAMP
from lenscope.engine.plan import bos_id, plan_text
from lenscope.engine.run import model_device, run_hooked
from lenscope.errors import InvalidInput
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of

RowKey = tuple[str, int]  # (path, token_index)


@dataclass(frozen=True)
class RowMlp:
    mlp: float  # A's MLP layers' direct part of the actual token's centred logit
    neurons: tuple[tuple[int, int, float], ...]  # (layer, index, part): the largest |part| first


@dataclass(frozen=True)
class Carrier:
    layer: int
    index: int
    total: float  # summed direct part over the rows
    rows: int  # rows where its part is positive


@dataclass
class Explained:
    rows: dict[RowKey, RowMlp]
    carriers: list[Carrier]


def explain(
    model: Any,
    texts: Mapping[str, str],
    rows: Sequence[Row],
    carrier_rows: Sequence[Row] = (),
    *,
    top: int = 3,
    carriers: int = 20,
    model_name: str | None = None,
    on_doc: Callable[[str], None] | None = None,
) -> Explained:
    """The MLP part and ``top`` neurons of each of ``rows``, and the ``carriers`` neurons whose
    direct parts summed over ``carrier_rows`` are largest. One attribution pass per document,
    after which ``on_doc(path)`` is called (progress, and the place to raise on a cancel)."""
    d_mlp = shape_of(model).d_mlp or 0
    if not d_mlp:
        raise InvalidInput("the model has no MLP: there are no neurons to explain a comparison with")
    by_doc: dict[str, set[int]] = defaultdict(set)
    for r in [*rows, *carrier_rows]:
        if r.token_index >= 1:
            by_doc[r.path].add(r.token_index)
    carrier_keys = {(r.path, r.token_index) for r in carrier_rows}
    explained: dict[RowKey, RowMlp] = {}
    sums = np.zeros((shape_of(model).n_layers, d_mlp), np.float64)
    positive = np.zeros_like(sums, dtype=np.int64)
    for path, tokens in by_doc.items():
        if path not in texts:
            raise InvalidInput(f"{path}: no text for this comparison row's file")
        keep = [t - 1 for t in tokens if (path, t) in carrier_keys]
        parts = attribute_all(model, texts[path], top=top, model_name=model_name, keep_neurons_at=keep)
        for t in tokens:
            p = t - 1
            explained[(path, t)] = RowMlp(
                mlp=float(parts.mlp_total[p].sum()),
                neurons=tuple(
                    (int(la), int(ix), float(v))
                    for la, ix, v in zip(parts.neuron_layer[p], parts.neuron_index[p], parts.neuron_value[p])
                ),
            )
        for p in keep:
            sums += parts.neuron_parts[p]
            positive += parts.neuron_parts[p] > 0
        if on_doc:
            on_doc(path)
    ranked = np.argsort(-sums, axis=None)[:carriers] if carrier_rows else np.array([], dtype=np.int64)
    return Explained(
        rows=explained,
        carriers=[Carrier(int(i // d_mlp), int(i % d_mlp), float(sums.flat[i]), int(positive.flat[i])) for i in ranked],
    )


@torch.inference_mode()
def ablated_logprob(model: Any, text: str, token_index: int, neurons: Sequence[tuple[int, int]]) -> float:
    """log p(token ``token_index`` | what precedes it) with ``neurons`` set to zero at the position
    that predicts it (only there), in the window ``analyze`` reads it in."""
    shape = shape_of(model)
    n_layers, d_mlp = shape.n_layers, shape.d_mlp or 0
    plan = plan_text(model, text, "")
    if not 1 <= token_index < len(plan.spans.ids):
        raise InvalidInput(f"token_index must be between 1 and {len(plan.spans.ids) - 1}, got {token_index}")
    for layer, index in neurons:
        if not (0 <= layer < n_layers and 0 <= index < d_mlp):
            raise InvalidInput(f"L{layer}.N{index} is not a neuron of this model ({n_layers} layers of {d_mlp})")
    s_pos = token_index - 1  # no context: S positions are text positions
    window = next(w for w in plan.windows if w.report_from <= s_pos < w.report_to)
    local = window.local(s_pos)
    x = torch.tensor([[bos_id(model.tokenizer), *plan.seq[window.start : window.start + local]]], device=model_device(model))
    by_layer: dict[int, list[int]] = defaultdict(list)
    for layer, index in neurons:
        by_layer[layer].append(index)

    def zero(indices: list[int]) -> Any:
        def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
            act[:, local, indices] = 0.0
            return act

        return hook

    hooks = [(hook_names.mlp_post(layer), zero(ix)) for layer, ix in by_layer.items()]
    logits = run_hooked(model, x, hooks)[0, local].float()
    return float(torch.log_softmax(logits, -1)[plan.seq[s_pos + 1]])


@dataclass(frozen=True)
class AdvantageLoss:
    lost: np.ndarray  # per row: (diff - diff_ablated) / diff
    median: float
    quartiles: tuple[float, float]


def advantage_lost(
    model_a: Any, texts: Mapping[str, str], rows: Sequence[Row], neurons: Sequence[tuple[int, int]], clamp: float = CLAMP
) -> AdvantageLoss:
    """The share of each row's advantage (``diff`` > 0) that disappears when ``neurons`` are
    zero-ablated at the row's position."""
    lost = []
    for r in rows:
        if r.diff <= 0 or r.token_index < 1:
            raise InvalidInput("advantage_lost reads rows where model A is ahead (diff > 0), past the first token")
        lp = ablated_logprob(model_a, texts[r.path], r.token_index, neurons)
        lost.append((r.diff - (lp - max(r.lp_b, clamp))) / r.diff)
    arr = np.asarray(lost, dtype=np.float64)
    q1, med, q3 = np.quantile(arr, [0.25, 0.5, 0.75]) if len(arr) else (np.nan, np.nan, np.nan)
    return AdvantageLoss(arr, float(med), (float(q1), float(q3)))
