"""lenscope in a notebook: results as circuitsvis views and tables, rendered offline, and
``show(result)``: lenscope's own MIME output.

circuitsvis's own ``RenderedHTML`` pings an internet host to choose between its CDN and its
inline bundle; these views always inline the bundle that ships in the circuitsvis package, so
they render the same with no network and never wait on one. The bundle (1.3 MB) is evaluated
once per page: a guard on ``window.CircuitsVis`` skips it in every later output (each output
still carries it, so any one of them renders on its own, in any order, after a reload).

``show(result)`` returns an object whose MIME bundle holds the result in lenscope's wire schema
(``application/vnd.lenscope.analysis+json``: the ``POST analyze`` response as JSON, with the
text it is of), which lenscope's JupyterLab extension renders with the editor's colours and
tooltips; ``text/html`` (the circuitsvis view) where that renderer is absent, and ``text/plain``.
"""

from __future__ import annotations

import functools
import html
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenscope.analysis import AnalysisResult, NeuronActivations

if TYPE_CHECKING:
    from lenscope.activations import UnitActivations
    from lenscope.attention import AttentionResult
    from lenscope.attribution import Attribution
    from lenscope.headscores import HeadScores
    from lenscope.logitlens import LogitLens
    from lenscope.sweep import Sweep


class View:
    """Anything with HTML: Jupyter shows it; ``str()`` gives the HTML."""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup


CIRCUITSVIS_LOADS = "__lenscopeCircuitsVisLoads"
"""A window global the guarded bundle increments each time it is evaluated (tests read it)."""


@functools.cache
def _circuitsvis_bundle() -> str:
    """circuitsvis's browser bundle as a guarded classic script body: evaluated only when the
    page has no ``window.CircuitsVis`` yet (the first circuitsvis output on the page)."""
    import circuitsvis

    source = (Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js").read_text(encoding="utf-8")
    source = source.replace("</script", "<\\/script")  # (circuitsvis itself drops "</script>"; this keeps the code)
    source = source.replace("//# sourceMappingURL=iife.js.map", "")
    # in a function, so its "use strict" prologue still applies and its `var` stays local
    return (
        "if (!window.CircuitsVis) {\n"
        f"window.{CIRCUITSVIS_LOADS} = (window.{CIRCUITSVIS_LOADS} || 0) + 1;\n"
        f"window.CircuitsVis = (function () {{\n{source}\nreturn CircuitsVis;\n}})();\n}}\n"
    )


def _circuitsvis(element: str, **props: Any) -> View:
    """A circuitsvis component, offline: the bundle inline (evaluated once per page), then the
    render call. Props are JSON with ``</`` escaped, so a token ``</script>`` cannot end the script."""
    from circuitsvis.utils.convert_props import convert_props

    uid = f"circuits-vis-{uuid.uuid4().hex[:12]}"
    data = convert_props(props).replace("</", "<\\/")
    return View(
        f'<div id="{uid}" style="margin: 15px 0;"></div>\n'
        f'<script>\n{_circuitsvis_bundle()}\nCircuitsVis.render(\n  "{uid}",\n  CircuitsVis.{element},\n  {data}\n)\n</script>'
    )


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


def unit_activations(result: UnitActivations) -> View:
    """circuitsvis ``TextNeuronActivations`` for the units asked (neurons and SAE features), each
    picked by its name (``L0.N224``, ``F1741``) in the view's unit menu."""
    acts = np.asarray(result.activations, dtype=np.float32)[:, None, :]  # [tokens, 1, units]
    sae = f" of {result.sae.name}" if result.sae is not None else ""
    return _circuitsvis("TextNeuronActivations", tokens=result.token_texts, activations=acts.tolist(),
                        firstDimensionName="Units", secondDimensionName="Unit", firstDimensionLabels=[f"units{sae}"],
                        secondDimensionLabels=result.names)  # fmt: skip


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


def attention_view(result: AttentionResult, layer: int | None = None) -> View:
    """:func:`attention` (a name that ``show``'s ``attention`` argument does not shadow)."""
    return attention(result, layer)


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


ANALYSIS_MIME = "application/vnd.lenscope.analysis+json"
"""``{"version", "text", "context", "analysis", "attention"}``: ``analysis`` is the ``POST analyze``
response (``AnalyzeResponse``) as the server's JSON encodes it; ``text`` is what its spans index
into (the response does not echo it); ``context`` the text before it, or null when not known;
``attention`` a ``POST attention`` response (``AttentionResponse``) of the same tokens, or null."""
COMPARISON_MIME = "application/vnd.lenscope.comparison+json"
"""``{"version", "text", "context", "a", "b", "clamp"}``: two ``AnalyzeResponse`` of the same text
and tokens; the colour is ``lp_a - max(lp_b, clamp)``, as the editor's comparison."""
CARD_MIME = "application/vnd.lenscope.neuron-card+json"
"""``{"version", "card"}``: ``card`` is the ``GET neurons/{model}/{layer}/{index}`` response
(``NeuronCardResponse``) as JSON, as :func:`neuron_card` builds it from an index."""
LENS_MIME = "application/vnd.lenscope.logit-lens+json"
"""``{"version", "text", "context", "lens"}``: ``lens`` is the ``POST logit_lens`` response
(``LogitLensResponse``) as JSON, every text token read; ``text`` what its spans index into. The
extension draws it as the logit lens heatmap (rows: embed and each block; columns: the tokens)."""
ATTRIBUTION_MIME = "application/vnd.lenscope.attribution+json"
"""``{"version", "text", "context", "attribution"}``: ``attribution`` is the ``POST attribute``
response (``AttributionResponse``) as JSON; the extension draws it as a waterfall."""
ATTENTION_MIME = "application/vnd.lenscope.attention+json"
"""``{"version", "text", "context", "attention"}``: ``attention`` is the ``POST attention`` response
(``AttentionResponse``) as JSON (with ``k`` at least the window's length: the whole pattern); the
extension draws every head of a layer side by side, one large with the tokens on both axes."""
HEAD_SCORES_MIME = "application/vnd.lenscope.head-scores+json"
"""``{"version", "scores"}``: ``scores`` is the ``GET heads/{model}/scores`` response
(``HeadScoresResponse``; on a text, ``POST head_scores_text``'s): every head's role scores, with
the probe's in-context gain. Shown as an HTML table of heads (their role, strongest first)."""
MIME_VERSION = 1


class Output:
    """What :func:`show` returns: Jupyter displays it through ``_repr_mimebundle_`` (lenscope's
    MIME type, ``text/html``, ``text/plain``); ``data`` is the MIME type's JSON."""

    def __init__(self, mime: str, data: dict[str, Any], plain: str, html: Any) -> None:
        self.mime = mime
        self.data = data
        self.plain = plain
        self._html = html  # a callable: the circuitsvis view is built only when displayed

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {self.mime: self.data, "text/plain": self.plain}
        if self._html is not None:
            bundle["text/html"] = self._html()
        return bundle

    def __repr__(self) -> str:
        return self.plain


def _analysis_json(result: AnalysisResult) -> dict[str, Any]:
    from lenscope.wire_codec import encode_json
    from lenscope.wire_convert import to_wire

    out: dict[str, Any] = json.loads(encode_json(to_wire(result)))
    return out


def _text_of(result: AnalysisResult) -> str:
    return "".join(result.token_texts)  # the spans tile the analyzed text


def _summary(result: AnalysisResult) -> str:
    n = len(result.token_texts)
    lp = result.predictions.actual_logprob[:n]
    scored = lp[result.predictions.actual_rank[:n] > 0]
    mean = f" · mean log-prob {float(np.mean(scored)):.2f}" if scored.size else ""
    return f"{result.model} · {n} tokens{mean}"


def show(
    result: AnalysisResult | dict[str, Any] | LogitLens | Attribution | AttentionResult | HeadScores,
    compare: AnalysisResult | None = None,
    *,
    context: str | None = None,
    clamp: float | None = None,
    attention: AttentionResult | None = None,
    html: bool = True,
) -> Output:
    """lenscope's view of an analysis in a notebook: ``show(analyze(model, text))``.

    In JupyterLab with lenscope's extension it renders like the editor's decorations: tokens
    coloured by log-prob, a hover tooltip with the top-k, the actual token's rank and log-prob
    and the neuron chips (a chip opens the neuron's card). The output is saved with the notebook
    and renders again when it is reopened, with no kernel. ``compare``: a second model's analysis
    of the same text (the editor's comparison colours, ``lp - max(lp_compare, clamp)``).

    ``show(logit_lens(model, text))``, ``show(attribute(model, text, position))`` and
    ``show(attend(model, text, k=1024))``: the pictures (:func:`lens_heatmap`, :func:`waterfall`,
    :func:`attention_heads`); ``show(induction_probe(model))`` or ``show(text_scores(model, text))``:
    every head's role scores (:func:`head_scores`).

    ``show(neuron_card(layer, index))``: a neuron's card (its top examples coloured by activation,
    its logit effects, its histogram), as the panel shows it.

    ``attention``: :func:`lenscope.attend` of the same text; the output then has the editor's
    attention mode (hover a token: the text it attends to, for the chosen layer and heads).

    ``context``: the text the analysis was conditioned on, if any; with it (or with no context),
    the tooltip's "Why?" and logit lens ask the server for the same model by name. ``html=False``
    leaves out the ``text/html`` fallback (circuitsvis; its bundle is 1.3 MB per output in the
    saved notebook), for notebooks only ever opened where lenscope's extension is installed.
    """
    from lenscope.defaults import CLAMP

    if isinstance(result, dict):
        return _show_card(result, html)
    picture = _show_picture(result, context=context, html=html)
    if picture is not None:
        return picture
    assert isinstance(result, AnalysisResult), "a picture's result is shown above"
    if context is None and result.context_tokens == 0:
        context = ""
    text = _text_of(result)
    if compare is None:
        data = {"version": MIME_VERSION, "text": text, "context": context, "analysis": _analysis_json(result), "attention": None}
        plain = f"lenscope analysis · {_summary(result)}"
        if attention is None:
            return Output(ANALYSIS_MIME, data, plain, (lambda: token_log_probs(result).markup) if html else None)
        from lenscope.attention import attention_to_wire
        from lenscope.wire_codec import encode_json

        if not np.array_equal(attention.tokens.ids, result.tokens.ids):
            raise ValueError("show(result, attention=...): the attention must be of the same text with the same tokens")
        data["attention"] = json.loads(encode_json(attention_to_wire(attention)))
        plain += f" · attention of layers {attention.layers}"
        views = (lambda: token_log_probs(result).markup + attention_view(attention).markup) if html else None
        return Output(ANALYSIS_MIME, data, plain, views)
    if compare.token_texts != result.token_texts or not np.array_equal(compare.tokens.ids, result.tokens.ids):
        raise ValueError("show(a, compare=b): the two analyses must be of the same text with the same tokens")
    clamp = CLAMP if clamp is None else float(clamp)
    data = {
        "version": MIME_VERSION,
        "text": text,
        "context": context,
        "a": _analysis_json(result),
        "b": _analysis_json(compare),
        "clamp": clamp,
    }
    plain = f"lenscope comparison · {_summary(result)} vs {_summary(compare)}"
    return Output(COMPARISON_MIME, data, plain, (lambda: comparison(result, compare, clamp).markup) if html else None)


def comparison(a: AnalysisResult, b: AnalysisResult, clamp: float | None = None) -> View:
    """circuitsvis ``ColoredTokensMulti`` of two models on the same tokens: buttons switch the
    colour between the clamped difference ``lp_a - max(lp_b, clamp)``, ``lp_a`` and ``lp_b``."""
    from lenscope.defaults import CLAMP

    clamp = CLAMP if clamp is None else clamp
    n = len(a.token_texts)
    lp_a = np.nan_to_num(a.predictions.actual_logprob[:n].astype(np.float64))
    lp_b = np.nan_to_num(b.predictions.actual_logprob[:n].astype(np.float64))
    values = np.stack([lp_a - np.maximum(lp_b, clamp), lp_a, lp_b], axis=1)
    return _circuitsvis(
        "ColoredTokensMulti",
        tokens=a.token_texts,
        values=values.round(4).tolist(),
        labels=[f"{a.model} − max({b.model}, {clamp:g})", f"log-prob {a.model}", f"log-prob {b.model}"],
    )


def neuron_card(layer: int, neuron: int, index: str | Path | None = None) -> dict[str, Any]:
    """A neuron's card from a neuron index, as ``GET neurons/{model}/{layer}/{index}`` answers it
    (examples, logit effects, histogram, description): ``index`` is an index folder, or the name
    of one shipped with lenscope (default: the default model's). ``show()`` it."""
    import lenscope.models
    from lenscope.index.card import neuron_card as card_of
    from lenscope.index.store import open_index
    from lenscope.models.registry import DEFAULT_MODEL

    shipped = Path(lenscope.models.__file__).resolve().parent / "indexes"
    name = DEFAULT_MODEL if index is None else index
    folder = shipped / name if isinstance(name, str) and (shipped / name).is_dir() else Path(name)
    return card_of(open_index(folder), layer, neuron)


def _show_card(card: dict[str, Any], html: bool) -> Output:
    from lenscope.wire import NeuronCardResponse

    data = {"version": MIME_VERSION, "card": NeuronCardResponse.model_validate(card).model_dump(mode="json")}
    unit = f"F{card['index']} of {card['sae']}" if card.get("sae") else f"L{card['layer']}.N{card['index']}"
    desc = card.get("description")
    plain = f"lenscope card · {unit} of {card['model']} · {len(card['examples'])} examples" + (
        f" · {desc['text']}" if desc else ""
    )
    return Output(CARD_MIME, data, plain, (lambda: card_examples(card).markup) if html else None)


def card_examples(card: dict[str, Any]) -> View:
    """circuitsvis ``TextNeuronActivations`` of a card's top examples (one sample each)."""
    examples = card["examples"]
    return _circuitsvis(
        "TextNeuronActivations",
        tokens=[list(e["tokens"]) for e in examples],
        activations=[[[[0.0 if a is None else a]] for a in e["activations"]] for e in examples],
        firstDimensionName="Neuron",
        firstDimensionLabels=[f"L{card['layer']}.N{card['index']}"],
    )


def _json(wire: dict[str, Any]) -> dict[str, Any]:
    from lenscope.wire_codec import encode_json

    out: dict[str, Any] = json.loads(encode_json(wire))
    return out


def _show_picture(result: Any, *, context: str | None, html: bool) -> Output | None:
    from lenscope.attention import AttentionResult
    from lenscope.attribution import Attribution
    from lenscope.logitlens import LogitLens

    if isinstance(result, LogitLens):
        return lens_heatmap(result, context=context, html=html)
    if isinstance(result, Attribution):
        return waterfall(result, context=context, html=html)
    if isinstance(result, AttentionResult):
        return attention_heads(result, context=context, html=html)
    from lenscope.headscores import HeadScores

    if isinstance(result, HeadScores):
        return head_scores(result, html=html)
    return None


def lens_heatmap(lens: LogitLens, *, context: str | None = None, html: bool = True) -> Output:
    """The logit lens over a text as a heatmap: ``lens_heatmap(logit_lens(model, text))`` (every
    position). In JupyterLab with lenscope's extension: rows are the embeddings and each block,
    columns the tokens, colour the next token's log-prob (or rank, a toggle), numbers on hover, a
    click for a cell's top 5, as the lenscope tab draws it. Elsewhere: an HTML table of the same
    log-probs. ``context``: the text before it that the lens was conditioned on (for "Copy as code")."""
    from lenscope.logitlens import logit_lens_to_wire

    text = "".join(lens.token_texts)
    data = {"version": MIME_VERSION, "text": text, "context": context, "lens": _json(logit_lens_to_wire(lens))}
    plain = f"lenscope logit lens · {lens.model} · {len(lens.positions)} tokens × {len(lens.rows)} rows"
    return Output(LENS_MIME, data, plain, (lambda: lens_table(lens).markup) if html else None)


def lens_table(lens: LogitLens) -> View:
    """The logit lens heatmap as plain HTML: a row per residual stream read, a column per token
    (vertical labels, whitespace visible), each cell the next token's log-prob, shaded."""
    cell = "padding:0;width:18px;height:22px;border:1px solid rgba(128,128,128,0.25)"
    label = (
        "writing-mode:vertical-rl;transform:rotate(180deg);font-family:monospace;white-space:pre;max-height:7em;overflow:hidden"
    )
    head = "".join(f"<th><div style='{label}'>{_visible(lens.token_texts[p])}</div></th>" for p in lens.positions)
    body = []
    for r, name in enumerate(lens.rows):
        cells = []
        for j, p in enumerate(lens.positions):
            lp, rank = float(lens.actual_logprob[r, j]), int(lens.actual_rank[r, j])
            if rank <= 0:
                cells.append(f"<td style='{cell}'></td>")
                continue
            alpha = min(1.0, max(0.0, lp / -10.0))
            cells.append(
                f"<td style='{cell};background:rgba(214,39,40,{alpha:.2f})' "
                f"title='token {p}: log-prob {lp:.2f}, rank {rank}'></td>"
            )
        body.append(f"<tr><th style='font-family:monospace;padding:0 6px'>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return View(
        "<div class='lenscope-lens-heatmap' style='overflow:auto'><table style='border-collapse:collapse'>"
        f"<thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def waterfall(
    attribution: Attribution, text: str | None = None, *, context: str | None = None, top: int = 30, html: bool = True
) -> Output:
    """The parts of one prediction as a waterfall: ``waterfall(attribute(model, text, position), text)``.
    In JupyterLab with lenscope's extension: the total first, then every direct part (the
    embeddings, each head, each layer's MLP, the biases), largest first, each bar from the running
    sum before it to after it; an MLP row opens its ``top`` listed neurons (and the SAE's features
    when the attribution has them). Elsewhere: an HTML table of the parts. ``text`` (and
    ``context``): what it explained, for "Copy as code"."""
    from lenscope.attribution import attribution_to_wire

    wire = _json(attribution_to_wire(attribution, top))
    data = {"version": MIME_VERSION, "text": text or "", "context": context, "attribution": wire}
    what = "logit difference" if attribution.baseline is not None else "centred logit"
    plain = f"lenscope parts · {attribution.model} · after token {attribution.position} · {what} {attribution.value:+.3f}"
    return Output(ATTRIBUTION_MIME, data, plain, (lambda: parts_table(attribution).markup) if html else None)


def parts_table(a: Attribution) -> View:
    """An attribution's direct parts as plain HTML, largest |part| first, the total first."""
    parts: list[tuple[str, float]] = [
        ("token embedding", a.embed),
        ("positional embedding", a.pos_embed),
        ("LayerNorm + unembedding bias", a.constant),
    ]
    mlp = a.neurons.sum(axis=1) if a.neurons.size else np.zeros(len(a.heads))
    for layer in range(len(a.heads)):
        parts += [(f"L{layer}H{h}", float(v)) for h, v in enumerate(a.heads[layer])]
        parts += [
            (f"MLP L{layer}", float(mlp[layer])),
            (f"MLP bias L{layer}", float(a.mlp_bias[layer])),
            (f"attention bias L{layer}", float(a.attn_bias[layer])),
        ]
    parts.sort(key=lambda p: -abs(p[1]))
    rows = "".join(
        f"<tr><td style='font-family:monospace'>{html.escape(n)}</td><td style='text-align:right'>{v:+.3f}</td></tr>"
        for n, v in parts
        if v != 0
    )
    return View(
        f"<table><thead><tr><th>total</th><th style='text-align:right'>{a.value:+.3f}</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def causal_ranking(result: Sweep, top: int = 20) -> View:
    """Units ranked by causal effect beside their direct-attribution rank:
    ``causal_ranking(sweep(model, text, position))`` (:mod:`lenscope.sweep`). An estimate
    (``method="estimate"``) says so in the heading and the column."""
    from lenscope.sweep import note

    estimated = result.method == "estimate"
    rho = result.rank_correlation()
    measure = "mean |Δ log-prob|" if result.selection else "Δ log-prob"
    head = f"{measure} (estimate)" if estimated else measure
    sign = "" if result.selection else "+"
    rows = "".join(
        f"<tr><td style='text-align:right'>{u.rank}</td><td style='font-family:monospace'>{u.label}</td>"
        f"<td style='text-align:right'>{u.effect:{sign}.4f}</td>"
        f"<td style='text-align:right'>{'' if u.direct is None else f'{u.direct:{sign}.3f}'}</td>"
        f"<td style='text-align:right'>{'' if u.direct_rank is None else u.direct_rank}</td></tr>"
        for u in result.units()[:top]
    )
    title = html.escape(
        f"{result.model} · {note(result)}" + ("" if rho is None else f" · Spearman's ρ with direct attribution {rho:.3f}")
    )
    return View(
        f"<div class='lenscope-sweep' data-method='{result.method}'><div>{'<b>ESTIMATE</b> ' if estimated else ''}{title}</div>"
        f"<table><thead><tr><th>rank</th><th>unit</th><th>{html.escape(head)}</th><th>direct part</th>"
        "<th>direct rank</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def attention_heads(result: AttentionResult, *, context: str | None = None, html: bool = True) -> Output:
    """Every head of a layer side by side, one large with the tokens on both axes:
    ``attention_heads(attend(model, text, k=1024))`` (with ``k`` at least the window's length the
    pattern is whole). In JupyterLab with lenscope's extension it is drawn as the lenscope tab
    draws it (a weight on hover); elsewhere circuitsvis's ``AttentionHeads``, offline."""
    from lenscope.attention import attention_to_wire

    text = "".join(result.token_texts)
    data = {"version": MIME_VERSION, "text": text, "context": context, "attention": _json(attention_to_wire(result))}
    n = len(result.token_texts)
    plain = f"lenscope attention · {result.model} · layers {result.layers} · {result.n_heads} heads · {n} tokens"
    return Output(ATTENTION_MIME, data, plain, (lambda: attention(result).markup) if html else None)


ROLE_NAMES = {"previous_token": "previous-token", "duplicate_token": "duplicate", "induction": "induction", "bos": "BOS"}


def head_scores(result: HeadScores, *, html: bool = True) -> Output:
    """Every head's role scores as a table: ``head_scores(induction_probe(model))`` or
    ``head_scores(text_scores(model, text))`` (also ``show(result)``). Rows: heads, strongest role
    score first; columns: previous-token, duplicate, induction and BOS scores and the head's role
    (:meth:`~lenscope.headscores.HeadScores.role_of`, ``ROLE_THRESHOLD``); the probe's in-context
    gain above it."""
    from html import escape

    from lenscope.headscores import ROLES, scores_to_wire

    wire = scores_to_wire(result)
    n_layers, n_heads = result.scores[ROLES[0]].shape
    rows = []
    for layer in range(n_layers):
        for head in range(n_heads):
            role, value = result.role_of(layer, head)
            rows.append((layer, head, role, value))
    rows.sort(key=lambda r: -r[3])
    gain = (
        f"in-context gain {result.in_context_gain:.2f} nats (loss {result.loss_first:.2f} → {result.loss_second:.2f})"
        if result.in_context_gain is not None and result.loss_first is not None and result.loss_second is not None
        else None
    )
    on = "repeated random tokens" if result.on == "probe" else "the text"
    title = f"{result.model}: head role scores on {on}" + (f"; {gain}" if gain else "")
    plain_rows = [f"L{la}.H{h}  {ROLE_NAMES.get(role, role):15s} " + "  ".join(
        f"{ROLE_NAMES[r]} {_score(result.scores[r][la, h])}" for r in ROLES) for la, h, role, _ in rows]  # fmt: skip
    plain = "\n".join([title, *plain_rows])

    def markup() -> str:
        head = "".join(f"<th>{ROLE_NAMES[r]}</th>" for r in ROLES)
        body = "".join(
            f"<tr><td>L{la}.H{h}</td>" + "".join(f"<td>{_score(result.scores[r][la, h])}</td>" for r in ROLES)
            + f"<td>{escape(ROLE_NAMES.get(role, role))}</td></tr>"
            for la, h, role, _ in rows
        )  # fmt: skip
        return (f'<div class="lenscope-head-scores"><p>{escape(title)}</p><table><thead><tr><th>head</th>{head}'
                f"<th>role</th></tr></thead><tbody>{body}</tbody></table></div>")  # fmt: skip

    data = {"version": MIME_VERSION, "scores": _json(wire)}
    return Output(HEAD_SCORES_MIME, data, plain, markup if html else None)


def _score(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.2f}"
