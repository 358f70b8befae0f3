/**
 * Notebook outputs of `lenscope.notebook.show(result)`: the MIME types, and their data read into
 * the same `Analysis` objects the editor's decorations use. No JupyterLab and no DOM here.
 *
 * The data is the server's JSON wire schema (`AnalyzeResponse`, as `POST analyze` answers with
 * `Accept: application/json`), wrapped with the text its spans index into (the response does not
 * echo it) and the context it was conditioned on (null when the kernel did not say).
 */
import { Analysis, AnalyzeResponseWire } from '../api/analysis';
import { Attention, AttentionResponseWire, weightsOnSpans } from '../api/attention';
import { Attribution, AttributionResponseWire } from '../api/attribution';
import type { NeuronCard } from '../api/client';
import { decodeArray } from '../api/ndarray';
import { LogitLens, LogitLensResponseWire } from '../api/logitlens';
import type { ScaleName } from '../colors';
import type { Annotation } from '../editor/annotation';
import { fmt } from '../format';

export const ANALYSIS_MIME = 'application/vnd.lenscope.analysis+json';
export const COMPARISON_MIME = 'application/vnd.lenscope.comparison+json';
export const CARD_MIME = 'application/vnd.lenscope.neuron-card+json';
/** The pictures (`lenscope.notebook.lens_heatmap`, `waterfall`, `attention_heads`): the server's responses, with their text. */
export const LENS_MIME = 'application/vnd.lenscope.logit-lens+json';
export const ATTRIBUTION_MIME = 'application/vnd.lenscope.attribution+json';
export const ATTENTION_MIME = 'application/vnd.lenscope.attention+json';
export const OUTPUT_MIMES = [ANALYSIS_MIME, COMPARISON_MIME, CARD_MIME, LENS_MIME, ATTRIBUTION_MIME, ATTENTION_MIME];
/** The data's format version this frontend reads (python/lenscope/notebook.py's MIME_VERSION). */
export const MIME_VERSION = 1;

interface Common {
  text: string;
  /** the text before `text` that conditioned it; null when not known (then no server-side "Why?") */
  context: string | null;
  analysis: Analysis;
}

export interface AnalysisOutput extends Common {
  kind: 'analysis';
  /** `POST attention` of the same tokens: the output then has the editor's attention mode */
  attention: Attention | null;
}

export interface ComparisonOutput extends Common {
  kind: 'comparison';
  compare: { analysis: Analysis; clamp: number };
}

/** An output over a text: the editor's decorations and tooltip. */
export type TextOutput = AnalysisOutput | ComparisonOutput;

/** A neuron's card (`GET neurons/{model}/{layer}/{index}`), as the card tab shows it. */
export interface CardOutput {
  kind: 'card';
  card: NeuronCard;
}

/** A picture over a text: what it was of (to copy it as code) and the text tokens' strings (its labels). */
interface PictureCommon {
  text: string;
  context: string | null;
  labels: string[];
}

/** The logit lens at every token (`POST logit_lens`): the heatmap. */
export interface LensOutput extends PictureCommon {
  kind: 'lens';
  lens: LogitLens;
}

/** One prediction's direct parts (`POST attribute`): the waterfall. */
export interface WaterfallOutput {
  kind: 'waterfall';
  text: string;
  context: string | null;
  attribution: Attribution;
}

/** The attention of a text (`POST attention`, the whole pattern): every head side by side. */
export interface AttentionOutput extends PictureCommon {
  kind: 'attention';
  attention: Attention;
}

export type PictureOutput = LensOutput | WaterfallOutput | AttentionOutput;

export type OutputPayload = TextOutput | CardOutput | PictureOutput;

/** The text tokens' strings of a response's `tokens` (UTF-16 spans into `text`), checked. */
function labelsOf(tokens: unknown, text: string, field: string): string[] {
  if (!isObject(tokens) || !isObject(tokens.start_utf16) || !isObject(tokens.end_utf16)) {
    throw new OutputDataError(`“${field}” has no tokens`);
  }
  const from = decodeArray(tokens.start_utf16 as never).data;
  const to = decodeArray(tokens.end_utf16 as never).data;
  const out: string[] = [];
  for (let i = 0; i < from.length; i++) {
    if (!(from[i] >= 0 && to[i] >= from[i] && to[i] <= text.length)) {
      throw new OutputDataError(`“${field}”: its token spans do not fit the text (${text.length} UTF-16 units)`);
    }
    out.push(text.slice(from[i], to[i]));
  }
  return out;
}

function pictureOf(mime: string, data: Record<string, unknown>): PictureOutput | null {
  if (mime !== LENS_MIME && mime !== ATTRIBUTION_MIME && mime !== ATTENTION_MIME) {
    return null;
  }
  if (typeof data.text !== 'string') {
    throw new OutputDataError('the output has no text');
  }
  const text = data.text;
  const context = typeof data.context === 'string' ? data.context : null;
  try {
    if (mime === LENS_MIME) {
      const wire = data.lens;
      if (!isObject(wire) || !Array.isArray(wire.rows) || !Array.isArray(wire.positions)) {
        throw new OutputDataError('“lens” is not a logit lens response');
      }
      return { kind: 'lens', text, context, labels: labelsOf(wire.tokens, text, 'lens'), lens: new LogitLens(wire as unknown as LogitLensResponseWire) };
    }
    if (mime === ATTRIBUTION_MIME) {
      const wire = data.attribution;
      if (!isObject(wire) || typeof wire.value !== 'number' || !isObject(wire.heads)) {
        throw new OutputDataError('“attribution” is not an attribute response');
      }
      return { kind: 'waterfall', text, context, attribution: new Attribution(wire as unknown as AttributionResponseWire) };
    }
    const wire = data.attention;
    if (!isObject(wire) || !Array.isArray(wire.layers) || !isObject(wire.sources)) {
      throw new OutputDataError('“attention” is not an attention response');
    }
    return { kind: 'attention', text, context, labels: labelsOf(wire.tokens, text, 'attention'), attention: new Attention(wire as unknown as AttentionResponseWire) };
  } catch (err) {
    throw err instanceof OutputDataError ? err : new OutputDataError(`the output cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Data that is not a lenscope output this frontend can show: the message says why. */
export class OutputDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputDataError';
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function analysisOf(wire: unknown, text: string, field: string): Analysis {
  if (!isObject(wire) || typeof wire.model !== 'string' || !isObject(wire.tokens) || !isObject(wire.predictions) || !isObject(wire.strings)) {
    throw new OutputDataError(`“${field}” is not an analyze response`);
  }
  let analysis: Analysis;
  try {
    analysis = new Analysis(wire as unknown as AnalyzeResponseWire, text);
  } catch (err) {
    throw new OutputDataError(`“${field}” cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  let last = 0;
  for (const t of analysis.tokens) {
    if (!(t.from >= last && t.to >= t.from && t.to <= text.length)) {
      throw new OutputDataError(`“${field}”: its token spans do not tile the text (${text.length} UTF-16 units)`);
    }
    last = t.to;
  }
  return analysis;
}

function attentionOf(wire: unknown, analysis: Analysis): Attention {
  if (!isObject(wire) || !Array.isArray(wire.layers) || !isObject(wire.sources) || !isObject(wire.tokens)) {
    throw new OutputDataError('“attention” is not an attention response');
  }
  const attention = new Attention(wire as unknown as AttentionResponseWire);
  if (attention.spans.length !== analysis.length || attention.spans.some((s, i) => s.from !== analysis.tokens[i].from || s.to !== analysis.tokens[i].to)) {
    throw new OutputDataError('“attention” is not of the same tokens as the analysis');
  }
  return attention;
}

/** The MIME data of `mime` read and checked; throws `OutputDataError` with what is wrong. */
export function parseOutput(mime: string, data: unknown): OutputPayload {
  if (!isObject(data)) {
    throw new OutputDataError('the output holds no lenscope data');
  }
  const version = data.version;
  if (typeof version !== 'number' || version > MIME_VERSION) {
    throw new OutputDataError(`format version ${String(version)}: made by a newer lenscope than this extension (reads ${MIME_VERSION})`);
  }
  const picture = pictureOf(mime, data);
  if (picture) {
    return picture;
  }
  if (mime === CARD_MIME) {
    const card = data.card;
    if (!isObject(card) || typeof card.model !== 'string' || !Array.isArray(card.examples) || !isObject(card.histogram) || !isObject(card.stats)) {
      throw new OutputDataError('“card” is not a neuron card');
    }
    return { kind: 'card', card: card as unknown as NeuronCard };
  }
  if (typeof data.text !== 'string') {
    throw new OutputDataError('the output has no text');
  }
  const text = data.text;
  const context = typeof data.context === 'string' ? data.context : null;
  if (mime === ANALYSIS_MIME) {
    const analysis = analysisOf(data.analysis, text, 'analysis');
    return { kind: 'analysis', text, context, analysis, attention: data.attention ? attentionOf(data.attention, analysis) : null };
  }
  if (mime === COMPARISON_MIME) {
    const a = analysisOf(data.a, text, 'a');
    const b = analysisOf(data.b, text, 'b');
    if (a.length !== b.length || a.tokens.some((t, i) => t.from !== b.tokens[i].from || t.to !== b.tokens[i].to)) {
      throw new OutputDataError(`the two analyses (${a.model}, ${b.model}) do not have the same tokens`);
    }
    const clamp = typeof data.clamp === 'number' ? data.clamp : -6;
    return { kind: 'comparison', text, context, analysis: a, compare: { analysis: b, clamp } };
  }
  throw new OutputDataError(`not a lenscope MIME type: ${mime}`);
}

/** The editor's annotation of a payload: the same colours and tooltips as decorations over `text`. */
export function annotationOf(payload: TextOutput, scale: ScaleName, floor: number): Annotation {
  return {
    analysis: payload.analysis,
    offset: 0,
    scale,
    floor,
    neuron: null,
    compare: payload.kind === 'comparison' ? payload.compare : null,
    intervened: null
  };
}

/** One line over the output: the model(s), the token count, whether it was windowed. */
export function describeOutput(payload: OutputPayload): string {
  if (payload.kind === 'card') {
    const c = payload.card;
    const unit = c.sae ? `feature F${c.index} of ${c.sae}` : `neuron L${c.layer}.N${c.index}`;
    return `lenscope · ${unit} of ${c.model} · ${c.examples.length} examples from the index “${c.index_path}”`;
  }
  if (payload.kind === 'lens') {
    return `lenscope · logit lens of ${payload.lens.model} · ${payload.lens.positions.length} tokens × ${payload.lens.rows.length} rows (${payload.lens.rows.join(', ')})`;
  }
  if (payload.kind === 'waterfall') {
    const a = payload.attribution;
    return `lenscope · the parts of ${a.model}'s prediction after token ${a.position} · ${a.baseline === null ? 'centred logit' : 'logit difference'} ${fmt(a.value, 3)}`;
  }
  if (payload.kind === 'attention') {
    const a = payload.attention;
    return `lenscope · attention of ${a.model} · layer${a.layers.length > 1 ? 's' : ''} ${a.layers.join(', ')} · ${a.nHeads} heads · ${a.nTokens} tokens`;
  }
  const a = payload.analysis;
  const models = payload.kind === 'comparison' ? `${a.model} vs ${payload.compare.analysis.model}` : a.model;
  const extras = [payload.kind === 'analysis' && payload.attention ? `attention of layer${payload.attention.layers.length > 1 ? 's' : ''} ${payload.attention.layers.join(', ')}` : '', a.windowed ? 'windowed' : '', a.contextTokens ? `${a.contextTokens} context tokens before it` : ''].filter(Boolean);
  return `lenscope · ${models} · ${a.length} tokens${extras.length ? ` (${extras.join(', ')})` : ''}`;
}

/**
 * Why server-side extras (the tooltip's "Why?", the logit lens) cannot run for this output, or
 * null when they can: they ask the server's model of the same name for the same text and context.
 */
export function serverExtrasBlocked(payload: TextOutput, serverModels: readonly string[] | null): string | null {
  const model = payload.analysis.model;
  if (payload.context === null) {
    return `the output does not carry the context its analysis was conditioned on (pass show(result, context=...))`;
  }
  if (serverModels !== null && !serverModels.includes(model)) {
    return `${model} is not a model of this Jupyter server (the output was made in a kernel)`;
  }
  return null;
}

/**
 * Attention mode's colours for a query token: the chosen heads' mean weight on each text token
 * (`weightsOnSpans`: a token with an empty span passes its weight on), and the largest (the scale).
 */
export function attentionWeights(attention: Attention, layer: number, heads: number[], token: number): { weights: Map<number, number>; max: number } {
  const weights = weightsOnSpans(attention.onText(layer, heads, token).weights, attention.spans);
  let max = 0;
  weights.forEach(w => (max = Math.max(max, w)));
  return { weights, max };
}
