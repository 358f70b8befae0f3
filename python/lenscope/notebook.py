"""lenscope in a notebook: results as circuitsvis views and tables, rendered offline.

circuitsvis's own ``RenderedHTML`` pings an internet host to choose between its CDN and its
inline bundle; these views always inline the bundle that ships in the circuitsvis package, so
they render the same with no network and never wait on one.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from lenscope.analysis import AnalysisResult, NeuronActivations


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
