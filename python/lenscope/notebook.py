"""lenscope in a notebook: results as circuitsvis views and tables, rendered offline.

circuitsvis's own ``RenderedHTML`` pings an internet host to choose between its CDN and its
inline bundle; these views always inline the bundle that ships in the circuitsvis package, so
they render the same with no network and never wait on one.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lenscope.analysis import AnalysisResult, NeuronActivations

if TYPE_CHECKING:
    from lenscope.attention import AttentionResult
    from lenscope.logitlens import LogitLens


class View:
    """Anything with HTML: Jupyter shows it; ``str()`` gives the HTML."""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup


def _circuitsvis(element: str, **props: Any) -> View:
    from circuitsvis.utils.render import render_local

    return View(render_local(element, **props))


def token_log_probs(result: AnalysisResult) -> View:
    """circuitsvis ``TokenLogProbs``: tokens coloured by log-prob, top-k on hover (offline)."""
    p, n = result.predictions, len(result.token_texts)
    k = p.top_ids.shape[1]
    return _circuitsvis(
        "TokenLogProbs",
        prompt=["<bos>", *result.token_texts],  # circuitsvis drops the first token from view
        topKLogProbs=p.top_logprobs[:n].tolist(),
        topKTokens=[[result.strings[int(t)] for t in row] for row in p.top_ids[:n, :k]],
        correctTokenRank=(p.actual_rank[:n] - 1).tolist(),  # circuitsvis ranks from 0
        correctTokenLogProb=p.actual_logprob[:n].tolist(),
    )


def neuron_activations(result: NeuronActivations) -> View:
    """circuitsvis ``TextNeuronActivations`` for the neurons asked, as one layer of neurons."""
    acts = np.asarray(result.activations, dtype=np.float32)[:, None, :]  # [tokens, 1, neurons]
    return _circuitsvis("TextNeuronActivations", tokens=result.token_texts, activations=acts.tolist())


def attention_matrix(result: AttentionResult, layer: int | None = None) -> np.ndarray:
    """A layer's kept weights as dense ``[heads, 1 + n, 1 + n]`` rows over ``<bos>`` + the text
    (a context token's weight is left out; a BOS row attends to itself). Exact when the result
    was computed with ``k`` at least the window's length."""
    layer = result.layers[0] if layer is None else layer
    if layer not in result.layers:
        raise ValueError(f"layer {layer} is not in this result (it has layers {result.layers})")
    li = result.layers.index(layer)
    sources, weights = result.sources[li], result.weights[li]
    heads, n, _ = sources.shape
    dense = np.zeros((heads, n + 1, n + 1), np.float32)
    dense[:, 0, 0] = 1.0
    h, i, j = np.nonzero(sources >= -1)  # a text token or the BOS
    np.add.at(dense, (h, i + 1, sources[h, i, j] + 1), weights[h, i, j])
    return dense


def attention(result: AttentionResult, layer: int | None = None) -> View:
    """circuitsvis ``AttentionHeads`` for one layer (default: the first in the result), offline:
    every head's pattern over the text, a head picker, hover a token to see where it attends."""
    dense = attention_matrix(result, layer)
    layer = result.layers[0] if layer is None else layer
    names = [f"L{layer}H{h} ({share:.0%} positional)" if not np.isnan(share) else f"L{layer}H{h}"
             for h, share in enumerate(result.positional_share[result.layers.index(layer)])]  # fmt: skip
    return _circuitsvis(
        "AttentionHeads",
        tokens=["<bos>", *result.token_texts],
        attention=dense.tolist(),
        attentionHeadNames=names,
        maskUpperTri=True,
    )


def _visible(text: str) -> str:
    return html.escape(text.replace(" ", "·").replace("\n", "↵").replace("\t", "→"))


def logit_lens(result: LogitLens, position: int | None = None) -> View:
    """The logit lens at one text token (default: the first in the result) as a table: a row per
    residual stream read (``embed``, ``L0`` ...), its top tokens with log-probs, and the actual next
    token's rank and log-prob, shaded by rank (translucent, so light and dark themes both read)."""
    position = result.positions[0] if position is None else position
    if position not in result.positions:
        raise ValueError(f"position {position} is not in this result (it has positions {result.positions[:20]})")
    col = result.positions.index(position)
    actual = int(result.actual_ids[col])
    k = result.top_ids.shape[-1]
    title = f"logit lens at token {position} {_visible(result.token_texts[position])!s}"
    title += f" → next {_visible(result.strings[actual])}" if actual >= 0 else " (the last token: no next token)"
    cell = "padding:2px 6px;border:1px solid rgba(128,128,128,0.3);font-family:monospace;white-space:pre"
    head = "".join(f"<th style='{cell}'>{h}</th>" for h in ["", *(f"#{j + 1}" for j in range(k)), "rank", "log-prob"])
    body = []
    for r, name in enumerate(result.rows):
        tops = []
        for tok, lp in zip(result.top_ids[r, col].tolist(), result.top_logprobs[r, col].tolist()):
            mark = "font-weight:bold;outline:1px solid rgba(34,139,34,0.9);" if tok == actual else ""
            tops.append(f"<td style='{cell};{mark}'>{_visible(result.strings[tok])} <small>{lp:.2f}</small></td>")
        rank, lp = int(result.actual_rank[r, col]), float(result.actual_logprob[r, col])
        # shade: full green at rank 1, fading with log10(rank); nothing without a next token
        alpha = 0.0 if rank <= 0 else max(0.0, 0.6 * (1 - np.log10(rank) / 4))
        shade = f"background:rgba(34,139,34,{alpha:.2f})"
        rank_text, lp_text = (str(rank), f"{lp:.2f}") if rank > 0 else ("", "")
        body.append(
            f"<tr><th style='{cell}'>{name}</th>{''.join(tops)}"
            f"<td style='{cell};{shade}'>{rank_text}</td><td style='{cell}'>{lp_text}</td></tr>"
        )
    return View(
        f"<div class='lenscope-logit-lens'><div>{title}</div><table style='border-collapse:collapse'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def table(rows: Sequence[Any], columns: Sequence[str], limit: int = 50) -> View:
    """A plain HTML table of dataclass rows (comparison rows, groups), whitespace made visible."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        text = str(v).replace(" ", "·").replace("\n", "↵")
        return html.escape(text)

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(getattr(r, c))}</td>" for c in columns) + "</tr>" for r in list(rows)[:limit])
    return View(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
