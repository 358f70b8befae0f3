"""The wire contract: the typed request/response schema (pydantic models), and nothing else.

These models are the one source of truth: ``docs/openapi.json`` is generated from them
(``python -m lenscope.openapi``) and the frontend's TypeScript types from that. Turning core
results into wire data lives in :mod:`lenscope.wire_convert`; encoding wire data as msgpack or
JSON (and back) in :mod:`lenscope.wire_codec`. No numpy, msgpack or torch is imported here.

Arrays travel column-wise as ``{dtype, shape, data}``: ``data`` is little-endian bytes in
msgpack and a flat list of numbers in JSON (NaN as ``null``, since JSON has no NaN). Both
decode to the same numpy arrays, bit for bit. Precision on the wire
(:data:`lenscope.wire_convert.FLOAT_DTYPES`):

* ``top_logprobs``, ``entropy``, ``neuron_activation``: float16, for display. Error at most
  half a unit in the last place: 0.002 for |x| < 8, 0.004 for |x| < 16, 0.008 for |x| < 32.
* ``actual_logprob``: float32, because comparisons and scans subtract and rank them.
* integer arrays (ids, ranks, spans, neuron layers and indices, ``partial``): the smallest of
  uint8, uint16, int32 that holds every value, so a 4k-vocabulary model sends 2-byte ids.

Request bounds (``lenscope.validation``) are part of the schema, so the OpenAPI spec accepts
exactly what the server accepts, field by field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lenscope import defaults
from lenscope.validation import (
    MAX_CONTEXT_CHARS,
    MAX_INDEX_K,
    MAX_INTERVENTION_VALUE,
    MAX_INTERVENTIONS,
    MAX_LAYERS,
    MAX_MIN_COUNT,
    MAX_NAME_CHARS,
    MAX_NEURON_INDEX,
    MAX_PATHS,
    MAX_TEXT_CHARS,
    MAX_TEXT_TOKENS,
    MAX_TOP_K,
    MAX_TOP_NEURONS,
    MIN_CLAMP,
    clean_string,
)

DType = Literal["float16", "float32", "int32", "uint16", "uint8"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(_Strict):
    code: str
    message: str


class ErrorResponse(_Strict):
    error: ErrorDetail


class NDArray(_Strict):
    """A dense array: ``data`` is raw little-endian bytes (msgpack) or a flat list (JSON)."""

    dtype: DType
    shape: list[int]
    data: bytes | list[float | None]


Clean = AfterValidator(clean_string)
"""Every request string: no NUL bytes, no lone surrogates (they cannot travel as UTF-8)."""
ModelName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS), Clean]
RelPath = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS * 20, description="Relative to the server root"), Clean]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), Clean]
TextOrIds = Annotated[str, Field(max_length=MAX_TEXT_CHARS), Clean]
"""A text that may be empty when ``token_ids`` are given instead (else the server's check names it)."""
TokenIds = list[Annotated[int, Field(ge=0)]] | None
TOKEN_IDS_DOC = (
    "Token ids to run as given instead of a text (a probe of random tokens; no BOS, it is added): "
    "text and context must then be empty; ids must be below the model's vocabulary size"
)
Context = Annotated[str, Field(max_length=MAX_CONTEXT_CHARS), Clean]


class InterventionWire(_Strict):
    """One intervention (``lenscope.interventions``): neuron zero/mean/set/scale/steer, head
    zero/mean/scale/steer, a whole MLP or attention layer or the residual stream before a layer
    (``mlp`` / ``attn`` / ``resid``) zero/mean/scale; any of them ``patch`` from ``source``; an SAE
    feature (the request's ``sae``; no layer) zero/mean/set/scale/steer, its error term kept."""

    component: Literal["neuron", "head", "mlp", "attn", "resid", "feature"]
    layer: int | None = Field(
        None, ge=0, le=MAX_LAYERS - 1, description="Required but for a feature (its SAE's hook point says where)"
    )
    index: int | None = Field(None, ge=0, le=MAX_NEURON_INDEX, description="The neuron, head or feature; none for a whole layer")
    op: Literal["zero", "mean", "set", "scale", "steer", "patch"] = "zero"
    value: float = Field(
        0.0,
        ge=-MAX_INTERVENTION_VALUE,
        le=MAX_INTERVENTION_VALUE,
        allow_inf_nan=False,
        description="set: the value; scale: the factor; steer: the coefficient (a neuron: value * W_out[n] added to the "
        "MLP's output; a head: its output times 1 + value; a feature: value added to its activation)",
    )
    positions: list[Annotated[int, Field(ge=0, le=MAX_TEXT_TOKENS - 1)]] | None = Field(
        None, max_length=MAX_TEXT_TOKENS, description="Text token indices; every position (after the BOS) when omitted"
    )
    source: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), Clean] | None = Field(
        None, description="patch: the text (same token count, same context, one window) whose activation is patched in"
    )


class PatchRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    clean: Text = Field(description="The text whose activations are patched in")
    corrupted: Text = Field(description="The text patched (the same token count, one window)")
    target: int = Field(ge=0, le=2**31 - 1, description="Metric: logit(target) - logit(baseline) ...")
    baseline: int = Field(ge=0, le=2**31 - 1)
    position: int | None = Field(None, ge=0, le=MAX_TEXT_TOKENS - 1, description="... at this token; default: the last")


class PatchResponse(_Strict):
    """Restored share ``(patched - corrupted) / (clean - corrupted)`` of the metric, patching one
    component at one position from the clean run into the corrupted run."""

    model: str
    clean: TokensWire
    corrupted: TokensWire
    target: int
    baseline: int
    position: int
    clean_value: float
    corrupted_value: float
    resid_pre: NDArray = Field(description="float32 [layers, positions]: the residual stream before each layer")
    attn_out: NDArray = Field(description="float32 [layers, positions]: each attention layer's output")
    mlp_out: NDArray = Field(description="float32 [layers, positions]: each MLP's output (NaN without an MLP)")
    heads: NDArray = Field(description="float32 [layers, heads, positions]: each head's output (hook_z)")
    strings: IdStrings
    timings_ms: dict[str, float] = Field(default_factory=dict)


class AppliedIntervention(_Strict):
    label: str = Field(description="e.g. 'L0.N5 zero', 'L0.H3 x0.5 @2,3'")
    mean_from: Literal["index", "selection"] | None = Field(description="Where a mean ablation's mean came from")


class AnalyzeRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    text: TextOrIds = Field(description="The text to analyze (the selection); not only whitespace; empty with token_ids")
    context: Context = Field("", description="Text before the selection: conditions the predictions, not reported")
    token_ids: TokenIds = Field(None, max_length=MAX_TEXT_TOKENS, description=TOKEN_IDS_DOC)
    top_k: int = Field(
        defaults.TOP_K, ge=1, le=MAX_TOP_K, description=f"Next-token predictions per position (1 .. min(d_vocab, {MAX_TOP_K}))"
    )
    top_neurons: int = Field(defaults.TOP_NEURONS, ge=0, le=MAX_TOP_NEURONS, description="Strongest MLP neurons per token")
    interventions: list[InterventionWire] = Field(
        default_factory=list,
        max_length=MAX_INTERVENTIONS,
        description="Re-run the text with these components changed (in order); cached apart from the plain analysis",
    )
    sae: ModelName | None = Field(None, description="An SAE (GET saes) whose strongest features per token to add")
    top_features: int = Field(
        defaults.TOP_FEATURES, ge=1, le=MAX_TOP_NEURONS, description="SAE features per token, when an SAE is named"
    )


class TokensWire(_Strict):
    """Token spans tile the request's text: its token texts are ``text[start:end]`` (not sent)."""

    ids: NDArray
    start: NDArray = Field(description="Span start in code points")
    end: NDArray
    start_utf16: NDArray = Field(description="Span start in UTF-16 code units (CodeMirror positions)")
    end_utf16: NDArray
    partial: NDArray = Field(description="1 where the token starts or ends inside a character")


class PredictionsWire(_Strict):
    """Prediction row j (n + 1 rows) is the distribution over token j; neuron row i is at token i."""

    top_ids: NDArray
    top_logprobs: NDArray
    actual_logprob: NDArray
    actual_rank: NDArray
    entropy: NDArray
    neuron_layer: NDArray
    neuron_index: NDArray
    neuron_activation: NDArray


class FeaturesWire(_Strict):
    """An SAE's strongest features at each token (row i is at token i, like the neurons)."""

    sae: str
    hook_point: str
    d_sae: int
    index: NDArray = Field(description="int32 [n, f]: feature indices, strongest first; -1 where fewer than f fire")
    activation: NDArray = Field(description="float16 [n, f]")


class StringsWire(_Strict):
    """Decoded string of every token id in the response (ids[i] -> values[i])."""

    ids: NDArray
    values: list[str]


class AnalyzeResponse(_Strict):
    model: str
    tokens: TokensWire
    predictions: PredictionsWire
    strings: StringsWire
    context_tokens: int
    windowed: bool
    windows: int
    window_tokens: int
    timings_ms: dict[str, float] = Field(
        description="tokenize, forward, derive, in the worker. Over HTTP the Server-Timing header adds the server's "
        "total, the worker round trip when computed for this request, and source;desc=worker|coalesced|cache"
    )
    interventions: list[AppliedIntervention] = Field(default_factory=list, description="Those applied, in order")
    features: FeaturesWire | None = Field(None, description="The named SAE's features; null without one")


class NeuronRef(_Strict):
    layer: int = Field(ge=0, le=MAX_LAYERS - 1)
    index: int = Field(ge=0, le=MAX_NEURON_INDEX)


class ActivationsRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    text: Text
    context: Context = ""
    neurons: list[NeuronRef] = Field(min_length=1, max_length=MAX_TOP_NEURONS, description="The neurons to read")


class ActivationsResponse(_Strict):
    """Post-activations of the asked neurons at every token (same tokens as analyze)."""

    model: str
    tokens: TokensWire
    neurons: list[NeuronRef]
    activations: NDArray = Field(description="float16 [n_tokens, n_neurons]")
    timings_ms: dict[str, float]


UnitName = Annotated[str, Field(min_length=1, max_length=40), Clean]


class UnitActivationsRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    text: TextOrIds = Field(description="The text to read; not only whitespace; empty with token_ids")
    context: Context = Field("", description="Text before it: conditions the activations, not reported")
    token_ids: TokenIds = Field(None, max_length=MAX_TEXT_TOKENS, description=TOKEN_IDS_DOC)
    units: list[UnitName] = Field(
        min_length=1,
        max_length=MAX_TOP_NEURONS,
        description="Units by name (lenscope.units): 'L0.N224' (a neuron), 'F1741' (a feature of sae)",
        examples=[["L0.N7", "L0.N224"]],
    )
    sae: ModelName | None = Field(None, description="The SAE (GET models) whose features the F units are")


class UnitRef(_Strict):
    name: str = Field(description="'L0.N224' or 'F1741', as written everywhere")
    kind: Literal["neuron", "feature"]
    layer: int | None = Field(description="null for a feature")
    index: int


class SaeRef(_Strict):
    name: str
    hook_point: str
    d_sae: int


class UnitActivationsResponse(_Strict):
    """The asked units' activations at every token (the same tokens as analyze): a neuron's
    post-activation, a feature's SAE encoding of its hook point's activation."""

    model: str
    tokens: TokensWire
    units: list[UnitRef] = Field(description="In the order asked; column j of activations")
    sae: SaeRef | None = Field(description="Whose features the feature units are; null without features")
    activations: NDArray = Field(description="float32 [n_tokens, n_units]")
    timings_ms: dict[str, float]


class AttributeRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    text: Text
    context: Context = ""
    position: int = Field(ge=0, le=MAX_TEXT_CHARS, description="Text token whose prediction (of the next token) is explained")
    target: int | None = Field(None, ge=0, le=2**31 - 1, description="Token id explained; default: the actual next token")
    baseline: int | None = Field(None, ge=0, le=2**31 - 1, description="Explain logit(target) - logit(baseline) instead")
    top: int = Field(defaults.TOP_NEURONS, ge=1, le=MAX_TOP_NEURONS, description="Neurons listed, largest |part| first")
    sae: ModelName | None = Field(None, description="Also split its MLP layer's part into this SAE's features")


class AttributedFeature(_Strict):
    index: int
    part: float
    activation: float


class FeatureAttribution(_Strict):
    """An MLP SAE's re-split of one layer's neuron parts: sum of all features' parts + bias + error
    equals that layer's ``mlp_total`` (features are not added to ``total`` again)."""

    sae: str
    layer: int
    top: list[AttributedFeature] = Field(description="Active features, largest |part| first")
    total: float = Field(description="All features' parts together")
    bias: float = Field(description="The decoder bias's part")
    error: float = Field(description="What the reconstruction misses")


class AttributedNeuron(_Strict):
    layer: int
    index: int
    value: float = Field(description="Its direct part of the (centred) logit")


class IdStrings(_Strict):
    ids: list[int]
    values: list[str]


class AttributionResponse(_Strict):
    """Direct logit attribution of one prediction; the parts sum to ``value`` (``total``, exactly
    up to float error). The final LayerNorm's scale is frozen at ``ln_scale``; direct effects only."""

    model: str
    position: int
    target: int
    baseline: int | None
    value: float = Field(description="Centred logit of target (or logit(target) - logit(baseline))")
    total: float = Field(description="Sum of all parts")
    ln_scale: float
    embed: float
    pos_embed: float
    constant: float = Field(description="LayerNorm bias and unembedding bias")
    attn_bias: NDArray = Field(description="float32 [n_layers]")
    mlp_bias: NDArray = Field(description="float32 [n_layers]")
    heads: NDArray = Field(description="float32 [n_layers, n_heads]: each head's part")
    mlp_total: NDArray = Field(description="float32 [n_layers]: all neurons of the layer together")
    top_neurons: list[AttributedNeuron]
    pattern: NDArray = Field(description="float16 [n_layers, n_heads, n_sources]: attention from the position")
    head_sources: NDArray = Field(description="float32 [n_layers, n_heads, n_sources]: each head's part, by source")
    source_ids: NDArray = Field(description="Token ids of the sources (BOS first, then context, then text)")
    source_text_index: NDArray = Field(description="Text token index of each source; -1 for the BOS and context")
    strings: IdStrings = Field(description="Decoded string of the target, baseline and sources")
    timings_ms: dict[str, float] = Field(default_factory=dict)
    features: FeatureAttribution | None = Field(None, description="With sae in the request: its features' parts")


class SweepRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    text: Text
    context: Context = ""
    position: int = Field(ge=0, le=MAX_TEXT_CHARS, description="Text token whose prediction (of the next token) is read")
    last: int | None = Field(
        None, ge=0, le=MAX_TEXT_CHARS,
        description="A selection: every prediction from position to last (inclusive), each unit ablated at each "
        "position separately; the score is the mean |delta log-prob| of each position's actual next token",
    )  # fmt: skip
    target: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="Token id whose log-prob is read (one prediction only); default: the actual next token",
    )
    method: Literal["exact", "estimate"] = Field(
        "exact",
        description="exact: each unit zero-ablated alone; estimate: gradient x activation (first order), for larger models",
    )
    top: int = Field(20, ge=1, le=MAX_TOP_NEURONS, description="Units listed in each ranking")
    sae: ModelName | None = Field(None, description="Also ablate every feature of this SAE (GET models lists them)")


class SweptUnit(_Strict):
    unit: str = Field(description="L0.N224, L1.H3 or F1741")
    kind: Literal["neuron", "head", "feature"]
    layer: int | None = Field(description="None for a feature")
    index: int
    effect: float = Field(description="Delta log-prob when it is zeroed (a selection: mean |delta|)")
    rank: int = Field(description="1 = the largest |effect| of all units")
    direct: float | None = Field(description="Its direct part of the centred logit (a selection: mean |part|); null: none")
    direct_rank: int | None = Field(description="1 = the largest |direct| of the units that have one")


class SweepResponse(_Strict):
    """Every unit zero-ablated in turn at the position (or its estimate), ranked by the change in
    the target's log-prob, beside the direct-attribution ranking."""

    model: str
    method: Literal["exact", "estimate"]
    note: str = Field(description="What the numbers are, in words (an estimate says so)")
    measure: Literal["delta_logprob", "mean_abs_delta_logprob"]
    positions: list[int] = Field(description="The text tokens whose predictions were read")
    targets: list[int] = Field(description="The token each of them predicts here")
    logprob: list[float] = Field(description="Each target's log-prob with nothing ablated")
    units: list[SweptUnit] = Field(description="The top units by |effect|")
    direct_units: list[SweptUnit] = Field(description="The top units by |direct part|")
    rank_correlation: float | None = Field(
        description="Spearman's rho of |effect| and |direct| over every unit with both (features that were off left out)"
    )
    neurons: NDArray = Field(description="float32 [n_layers, d_mlp]: every neuron's effect")
    heads: NDArray = Field(description="float32 [n_layers, n_heads]")
    direct_neurons: NDArray | None = Field(
        description="float32 [n_layers, d_mlp]; null without direct attribution (no LayerNorm)"
    )
    direct_heads: NDArray | None
    sae: str | None
    features: NDArray | None = Field(description="float32 [d_sae], 0 where a feature was off; null without an SAE")
    direct_features: NDArray | None = Field(description="float32 [d_sae]: an MLP SAE's re-split of its layer's direct part")
    strings: IdStrings
    timings_ms: dict[str, float]


class AttentionRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    text: TextOrIds = Field(description="The text; empty with token_ids")
    context: Context = ""
    token_ids: TokenIds = Field(None, max_length=MAX_TEXT_TOKENS, description=TOKEN_IDS_DOC)
    layers: list[Annotated[int, Field(ge=0, le=MAX_LAYERS - 1)]] | None = Field(
        None, min_length=1, max_length=MAX_LAYERS, description="Layers whose heads are returned; default: all"
    )
    k: int = Field(
        defaults.ATTENTION_K, ge=1, le=defaults.MAX_ATTENTION_K, description="Strongest sources kept per token and head"
    )


class AttentionResponse(_Strict):
    """Every text token's ``k`` strongest sources for every head of ``layers`` (largest first; with
    ``k`` at least the window's length, the whole pattern, and the last axis is that length)."""

    model: str
    tokens: TokensWire
    layers: list[int]
    n_heads: int
    sources: NDArray = Field(
        description="int32 [layers, heads, n_tokens, k]: the source's text token index; -1 the BOS, -2 a context token "
        "before the text, -3 none (fewer than k keys)"
    )
    weights: NDArray = Field(description="float16 [layers, heads, n_tokens, k]: attention weights, largest first")
    positional_share: NDArray = Field(
        description="float32 [layers, heads]: share of the spread of each head's scores over keys that comes from the keys' "
        "positional embedding rather than their content, on this text (NaN without a learned positional embedding)"
    )
    strings: IdStrings = Field(description="Decoded string of every text token id")
    timings_ms: dict[str, float] = Field(default_factory=dict)


class LogitLensRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    text: Text
    context: Context = ""
    positions: list[Annotated[int, Field(ge=0, le=MAX_TEXT_TOKENS - 1)]] | None = Field(
        None, min_length=1, max_length=MAX_TEXT_TOKENS, description="Text tokens to read the lens at; default: every token"
    )
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description=f"Tokens per row (1 .. min(d_vocab, {MAX_TOP_K}))")


class LogitLensResponse(_Strict):
    """The logit lens at each asked text token ``i`` (predicting token ``i + 1``): the residual stream
    after the embeddings (row ``embed``) and after each block (``L0`` ...) through the final LayerNorm
    and the unembedding. The last row is the model's own output (analyze's prediction row ``i + 1``)."""

    model: str
    tokens: TokensWire
    positions: list[int] = Field(description="The text tokens read, ascending")
    rows: list[str] = Field(description="'embed', then 'L0', 'L1', ...: the residual stream each row reads")
    top_ids: NDArray = Field(description="int32 [rows, positions, top_k]: the lens's top tokens, largest first")
    top_logprobs: NDArray = Field(description="float16 [rows, positions, top_k]")
    actual_ids: NDArray = Field(description="int32 [positions]: the next text token; -1 after the last token")
    actual_logprob: NDArray = Field(description="float32 [rows, positions]: the next token's log-prob; NaN after the last")
    actual_rank: NDArray = Field(
        description="int32 [rows, positions]: the next token's rank (1-based, whole vocabulary); 0 after the last"
    )
    strings: IdStrings = Field(description="Decoded string of every token id in the response")
    timings_ms: dict[str, float] = Field(default_factory=dict)


class TokenPair(_Strict):
    source: int = Field(description="Source (OV) or query (QK) token id")
    target: int = Field(description="Boosted output (OV) or key (QK) token id")
    value: float


class TokenValue(_Strict):
    id: int
    value: float


class SourceRow(_Strict):
    token: int = Field(description="The source token attended to")
    boosted: list[TokenValue] = Field(description="Output tokens its OV row raises most (logit effect)")
    suppressed: list[TokenValue] = Field(description="... and lowers most")


class QueryRow(_Strict):
    token: int = Field(description="The query token")
    keys: list[TokenValue] = Field(description="Key tokens with the highest attention score from it")


class PositionalSummary(_Strict):
    previous: float | None = Field(description="Mean score on the previous-position diagonal (key i - 1)")
    diagonal: float | None = Field(description="Mean score on the diagonal (key i)")
    other: float | None = Field(description="Mean score on the other keys j < i - 1")
    previous_weight: float | None = Field(description="With the positional scores alone as the pattern: mean weight on i - 1")
    previous_argmax_share: float | None = Field(description="Share of queries whose highest-scoring key is i - 1")


class PositionalQK(_Strict):
    positions: int = Field(description="Positions shown: all of n_ctx up to 256, else the first 128")
    n_ctx: int
    capped: bool
    scores: NDArray = Field(
        description="float32 [positions, positions], query x key: (p_i W_Q + b_Q).(p_j W_K + b_K)/sqrt(d_head), "
        "p_i = W_pos[i] read alone through LN1; NaN above the diagonal"
    )
    summary: PositionalSummary


class HeadCardResponse(_Strict):
    """A head read from its weights (1-layer reading: each token alone through the LayerNorms)."""

    model: str
    layer: int
    head: int
    vocab: Literal["frequent", "all"] = Field(description="The tokens the pairs and rows are read over")
    tokens_read: int = Field(description="How many tokens that is")
    frequent_tokens: int = Field(description="How many frequent tokens (of the model's index corpus) 'frequent' means")
    ov_top: list[TokenPair] = Field(description="Source token -> the output token it boosts most, through this head")
    ov_bottom: list[TokenPair] = Field(description="... and suppresses most")
    qk_top: list[TokenPair] = Field(description="(query, key) token pairs with the highest attention score")
    copying_score: float = Field(description="Whole vocabulary: Re(sum of the OV eigenvalues) / sum of their magnitudes")
    positive_share: float = Field(description="Share of the OV circuit's non-zero eigenvalues with a positive real part")
    copying_score_frequent: float = Field(description="The copying score of the OV circuit restricted to the frequent tokens")
    positive_share_frequent: float
    source_row: SourceRow | None = Field(description="The OV row of the asked source token (null: none asked)")
    query_row: QueryRow | None = Field(description="The QK row of the asked query token (null: none asked)")
    positional: PositionalQK | None = Field(description="Positional QK (null: no learned positional embedding)")
    strings: IdStrings


class HeadRole(_Strict):
    layer: int
    head: int
    score: float


class HeadScoresResponse(_Strict):
    """Every head's role scores on the repeated-random-token probe (:mod:`lenscope.headscores`)."""

    model: str
    on: Literal["probe", "text"] = Field(description="probe: BOS, n random frequent tokens, the same n again")
    roles: list[str] = Field(description="previous_token, duplicate_token, induction, bos")
    scores: dict[str, list[list[float | None]]] = Field(
        description="role -> [layer][head]: the mean attention on the role's keys over queries that have one (null: none)"
    )
    top: dict[str, list[HeadRole]] = Field(description="role -> the five highest-scoring heads")
    tokens: int = Field(description="tokens per probe sequence, BOS included")
    sequences: int
    length: int | None = Field(description="random tokens per copy of the probe")
    seed: int | None
    in_context_gain: float | None = Field(description="loss on the first copy minus on the second (nats); >= 1 means copying")
    loss_first: float | None
    loss_second: float | None
    sequence: list[int] | None = Field(
        None, description="probe: the first sequence's token ids (BOS first), to analyze with token_ids (without the BOS)"
    )


class HeadScoresTextRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    text: Text
    context: Context = ""


class NeuronInputsResponse(_Strict):
    """The tokens that most raise a neuron's pre-activation on their own (through the LayerNorm)."""

    model: str
    layer: int
    index: int
    vocab: Literal["frequent", "all"] = Field(description="The tokens read: the frequent ones of the index corpus, or all")
    tokens_read: int
    inputs: list[LogitEffect]


class NeuronExample(_Strict):
    file: str = Field(description="Path of the source file, relative to the indexed root")
    cell: int | None = Field(
        description="For a notebook: the cell the example is in; offsets and lines are then within that cell's source"
    )
    available: bool = Field(
        description="The file is in this workspace (else: read the stored text from GET indexes/{index}/document)"
    )
    value: float = Field(description="The example's maximum activation")
    tokens: list[str] = Field(description="Text of each token around the maximum (up to 50 before, 10 after)")
    activations: list[float] = Field(description="The neuron's activation at each of those tokens")
    max_token: int = Field(description="Position of the maximum in tokens")
    char_start: int = Field(description="Code-point offset of the first token in the file")
    char_end: int
    max_char_start: int = Field(description="Code-point offset of the maximum's token in the file")


class LogitEffect(_Strict):
    id: int
    token: str
    value: float


class NeuronStats(_Strict):
    count: int
    mean: float
    max: float | None


class Histogram(_Strict):
    edges: list[float] = Field(description="Bin edges; counts has one more bin below the first and one above the last")
    counts: list[int]


class NeuronDescription(_Strict):
    """A one-line description chosen on half the index's files and scored on the other half."""

    text: str = Field(
        description='The line shown: the input pattern and the output effect, e.g. fires on "\')" or "\'))"; boosts "\'),"'
        ' "\')"  (held-out precision 0.62, recall 0.41, F1 0.50); "no simple pattern (best: ...)" under the F1 floor'
    )
    pattern: list[str] = Field(description="The pattern's token texts (a token set), or [class name] for a token class")
    pattern_ids: list[int] = Field(description="A token set's ids (empty for a class)")
    kind: Literal["tokens", "class", "none"] = Field(
        "tokens", description="tokens: one of a set of tokens; class: a token class; none: no simple pattern (under the floor)"
    )
    token_class: str | None = Field(None, description="The token class (digit, closing bracket, identifier word ...)")
    context: str | None = Field(None, description="A token that must be among the last `within` tokens before")
    context_id: int | None = None
    within: int | None = Field(None, description="How far back the context token may be (1: just before)")
    boosts: list[str] = Field(default_factory=list, description="The tokens the unit's output boosts most (its logit effect)")
    categories: list[str] = Field(
        description="Kinds of the pattern's tokens, for search: closing bracket, digit, keyword def ..."
    )
    precision: float | None = Field(
        description="Held-out P(pattern | fires): of the tokens where the unit fires, the share where the pattern occurs"
    )
    recall: float | None = Field(
        description="Held-out P(fires | pattern): of the tokens where the pattern occurs, the share where it fires"
    )
    f1: float | None = Field(None, description="Held-out F1 of the pattern as a detector of where the unit fires")
    metrics: str = Field(
        "precision = P(pattern | fires), recall = P(fires | pattern), on held-out text",
        description="What precision and recall mean (the detector convention), said on the card",
    )
    occurs: int = Field(description="Held-out tokens where the pattern occurs")
    fires: int = Field(description="Held-out tokens where the activation is above the threshold")
    both: int
    threshold: float = Field(description="Fires means above this: half the unit's max over the files the pattern was chosen on")
    examples_matched: int = Field(description="Top examples (choose half, firing) the pattern matches")
    examples_chosen: int = Field(description="Top examples (choose half, firing) it was chosen from")
    score_tokens: int | None = Field(None, description="Held-out tokens it was scored on (None: not recorded)")
    too_few_tokens: bool = Field(
        False,
        description="Scored on fewer held-out tokens than lenscope.index.descriptions.MIN_SCORE_TOKENS (10,000): "
        "the text says so instead of the precision and recall",
    )


class SampleExample(_Strict):
    """A quantile or random example: the tokens around it and its own activation (only)."""

    file: str
    cell: int | None = None
    available: bool
    value: float = Field(description="The unit's activation at the example's token")
    tokens: list[str] = Field(description="Text of each token around it (up to 12 before, 4 after, within its window)")
    max_token: int = Field(description="Position of the example's token in tokens")
    char_start: int
    char_end: int
    max_char_start: int


class QuantileExamples(_Strict):
    low: float = Field(description="The interval (low, high] of activations")
    high: float
    examples: list[SampleExample] = Field(description="Up to 5 tokens of the interval, in a seeded random order of the corpus")


class Firing(_Strict):
    above_zero: float = Field(description="Share of the corpus's tokens where the activation is above 0")
    above_threshold: float = Field(description="Share where it fires: above the description's threshold")
    threshold: float | None
    tokens: int


class NeuronCardResponse(_Strict):
    model: str
    layer: int
    index: int
    examples: list[NeuronExample]
    logit_boosted: list[LogitEffect] = Field(description="Tokens W_out[n] @ W_U raises most")
    logit_suppressed: list[LogitEffect]
    stats: NeuronStats
    histogram: Histogram
    index_path: str = Field(description="Name of the index folder the card comes from")
    timings_ms: dict[str, float] = Field(default_factory=dict)
    sae: str | None = Field(None, description="For an SAE feature's card: the SAE (layer is then 0, index the feature)")
    description: NeuronDescription | None = Field(None, description="None for an index built before descriptions")
    quantiles: list[QuantileExamples] | None = Field(
        None, description="Examples from 10 activation intervals of (0, max], highest first; None for an index built before them"
    )
    random_examples: list[SampleExample] | None = Field(None, description="Random tokens where the unit fires")
    firing: Firing | None = Field(None, description="The share of tokens where the unit fires; None for an older index")


class NeuronHit(_Strict):
    layer: int
    index: int
    hits: int = Field(description="How many of the neuron's top examples peak on the token (by description: match the pattern)")
    score: float = Field(description="Sum of those examples' activations (by description: the description's held-out F1)")
    description: NeuronDescription | None = None


class NeuronSearchResponse(_Strict):
    model: str
    token: str
    by: Literal["token", "description"] = "token"
    index: str | None = Field(None, description="The index searched")
    neurons: list[NeuronHit]


Paths = Annotated[list[RelPath], Field(min_length=1, max_length=MAX_PATHS)]
IndexName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class IndexBuildRequest(_Strict):
    model: ModelName | None = Field(None, description="Model name; the server's default when omitted")
    paths: Paths = Field(description="Files or folders, relative to the server root")
    name: IndexName = Field(defaults.INDEX_NAME, description=f"Index folder name under {defaults.INDEXES_DIR}/")
    k: int = Field(defaults.INDEX_K, ge=1, le=MAX_INDEX_K, description="Top examples kept per neuron")
    sae: ModelName | None = Field(None, description="Index this SAE's features (GET models lists SAEs) instead of the neurons")


class CompareRequest(_Strict):
    model_a: ModelName | None = Field(None, description="Model A; the server's default when omitted")
    model_b: ModelName = Field(description="Model B (same tokenizer as A)")
    paths: Paths = Field(description="Files or folders, relative to the server root")
    clamp: float = Field(defaults.CLAMP, ge=MIN_CLAMP, le=0, description="B's log-prob floor in lp_A - max(lp_B, clamp)")
    min_count: int = Field(defaults.MIN_COUNT, ge=1, le=MAX_MIN_COUNT, description="Smallest group reported")


class SkippedFile(_Strict):
    path: str
    reason: str


class IndexJobResult(_Strict):
    kind: Literal["index"]
    name: str = Field(description="The index folder's name")
    files: int
    tokens: int
    skipped: list[SkippedFile]
    shards: int = Field(0, description="Shards the build was cut into")
    shards_reused: int = Field(0, description="Shards whose stored results were reused: unchanged files, or a resumed build")
    seconds: float = Field(0.0, description="Wall-clock time of the build, loading the model excluded")


class CompareRow(_Strict):
    path: str
    cell: int | None = Field(description="For a notebook: the cell; line, start and end are then within its source")
    token_index: int = Field(description="The token's position in its file (or cell)")
    line: int = Field(description="1-based")
    start: int = Field(description="Code-point offset of the token")
    end: int
    token: str
    previous: str = Field(description="The token before it ('' at the start)")
    before: str = Field(description="Up to 40 characters of text before the token")
    after: str = Field(description="Up to 20 characters of text after the token")
    lp_a: float
    lp_b: float
    diff: float = Field(description="lp_a - max(lp_b, clamp)")
    mlp_a: float | None = Field(
        None,
        description="Model A's MLP direct part of the actual token's centred logit at the position predicting it "
        "(final LayerNorm scale frozen); absent without an MLP, for the first token, and in exports",
    )
    neurons_a: list[AttributedNeuron] = Field(default_factory=list, description="A's 3 neurons with the largest |part| there")


class CompareGroup(_Strict):
    key: str
    count: int
    mean_diff: float
    mean_lp_a: float
    mean_lp_b: float
    examples: list[CompareRow]


class ExportLink(_Strict):
    format: Literal["csv", "jsonl"]
    name: str
    url: str = Field(description="Relative to {base_url}lenscope/api/: an authenticated download")


class NeuronCarrier(_Strict):
    layer: int
    index: int
    total: float = Field(description="Its direct part of the actual tokens' centred logits, summed over the rows")
    rows: int = Field(description="Rows where its part is positive")


class CompareJobResult(_Strict):
    kind: Literal["compare"]
    model_a: str
    model_b: str
    clamp: float
    files: int
    tokens: int
    skipped: list[SkippedFile]
    rows: list[CompareRow] = Field(description=f"The {defaults.COMPARE_ROWS} rows with the largest diff")
    groups_token: list[CompareGroup]
    groups_previous: list[CompareGroup]
    exports: list[ExportLink] = Field(description="Every row, as CSV and JSON lines")
    carriers: list[NeuronCarrier] = Field(
        default_factory=list,
        description=f"Neurons that carry A's advantage: direct parts summed over the top {defaults.CARRIER_ROWS} rows, "
        "largest first (empty when A has no MLP)",
    )


class JobProgress(_Strict):
    tokens_done: int
    tokens_total: int
    rate: float = Field(description="Tokens per second so far")
    eta_s: float | None


class JobResponse(_Strict):
    id: str
    kind: Literal["index", "compare"]
    model: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: JobProgress | None
    result: Annotated[IndexJobResult | CompareJobResult, Field(discriminator="kind")] | None
    error: ErrorDetail | None
    created: float
    trigger: Literal["request", "save"] = Field(
        "request", description="save: an index update started by saving a file the index covers"
    )


class JobsResponse(_Strict):
    jobs: list[JobResponse]


class IndexEntry(_Strict):
    name: str
    state: Literal["ok", "broken"] = Field(description="broken: listed with its problem, never served")
    problem: str | None = Field(description="What is wrong with a broken index")
    model: str | None
    files: int | None
    tokens: int | None
    created: str | None
    shipped: bool = Field(description="Ships with lenscope (read-only) rather than built in this workspace")
    sae: str | None = Field(None, description="A feature index: the SAE whose features it indexes")


class IndexDocumentResponse(_Strict):
    """The text of a file as an index stored it (for examples whose file is not in the workspace)."""

    index: str
    path: str
    cell: int | None
    text: str


class IndexesResponse(_Strict):
    indexes: list[IndexEntry]


class ModelShapeWire(_Strict):
    n_layers: int
    d_model: int
    d_mlp: int | None = Field(description="MLP neurons per layer; null for attention-only models")
    d_vocab: int
    n_ctx: int
    n_heads: int | None = Field(None, description="Attention heads per layer, when known without loading")


class KernelWire(_Strict):
    """Where a model attached with ``lenscope.attach`` lives."""

    id: str = Field(description="The kernel's id")
    notebook: str | None = Field(description="The path of the notebook (or console) using that kernel, when known")


class ModelEntry(_Strict):
    name: str
    source: Literal["embedded", "local", "hub", "kernel"]
    loadable: bool = Field(description="Whether it can be loaded here and now (hub models: only from the local cache)")
    reason: str = Field(description="Why it is not loadable, when it is not")
    state: Literal["loaded", "loading", "unloaded", "unavailable"]
    default: bool
    shape: ModelShapeWire | None = Field(description="Known without loading for embedded and native models")
    repo: str | None
    aliases: list[str]
    kernel: KernelWire | None = Field(
        default=None, description="Set for a model attached in a notebook's kernel: it runs there, and is gone when it restarts"
    )


class SaeEntry(_Strict):
    """A sparse autoencoder lenscope can read (shipped, or a folder under the server's model_dirs)."""

    name: str
    model: str | None = Field(description="The model it reads, when its folder says")
    hook_point: str | None = Field(description="TransformerLens hook name, e.g. blocks.0.mlp.hook_post")
    d_in: int | None
    d_sae: int | None = Field(description="Number of features")
    k: int | None = Field(description="Active features per token (TopK SAEs)")
    format: Literal["sparsify", "saelens"] | None
    loadable: bool
    reason: str = Field(description="Why it cannot be read, when it cannot")
    shipped: bool


class ModelsResponse(_Strict):
    default: str
    models: list[ModelEntry]
    saes: list[SaeEntry] = Field(default_factory=list, description="SAEs whose features analyze can add")


class WorkerHealth(_Strict):
    state: Literal["stopped", "starting", "ready", "unresponsive", "dead"]
    pid: int | None
    restarts: int
    last_exit: str | None = Field(description="How the last worker ended, e.g. 'signal 9'")


class ModelsHealth(_Strict):
    loaded: list[str]
    loading: list[str]


class QueueHealth(_Strict):
    depth: int = Field(description="Requests sent to the worker and not yet answered")
    limit: int


class CacheHealth(_Strict):
    size: int
    capacity: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    hit_rate: float


class HealthResponse(_Strict):
    worker: WorkerHealth
    job_worker: WorkerHealth
    models: ModelsHealth
    queue: QueueHealth
    cache: CacheHealth


_MOVED = {
    "to_wire": "lenscope.wire_convert",
    "activations_to_wire": "lenscope.wire_convert",
    "tokens_to_wire": "lenscope.wire_convert",
    "FLOAT_DTYPES": "lenscope.wire_convert",
    "encode_msgpack": "lenscope.wire_codec",
    "encode_json": "lenscope.wire_codec",
    "decode_msgpack": "lenscope.wire_codec",
    "decode_json": "lenscope.wire_codec",
    "wire_equal": "lenscope.wire_codec",
}
"""Names that lived here before the schema was split from its converters and codecs: still
importable from here (lazily, so importing the schema imports no numpy) for code not yet moved."""


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
