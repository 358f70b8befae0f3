/**
 * A decoded attention response (`POST attention`: every text token's strongest sources for
 * every head of some layers) and its pure reading: a head's row at a token, the chosen heads'
 * mean weights on the text's tokens, a head's positional share.
 */
import { decodeArray, NumericArray } from './ndarray';
import type { components } from './schema';

export type AttentionResponseWire = components['schemas']['AttentionResponse'];
export type AttentionRequest = components['schemas']['AttentionRequest'];

/** Source codes beside text token indices. */
export const BOS = -1;
export const CONTEXT = -2;
export const NONE = -3;

export interface AttentionSource {
  /** text token index, or BOS (-1), CONTEXT (-2: a context token before the text) */
  source: number;
  weight: number;
}

/** The chosen heads' mean weights from one token. */
export interface OnText {
  /** per text token (length n_tokens); 0 where no kept source */
  weights: Float32Array;
  bos: number;
  /** on the context before the text, all its tokens together */
  context: number;
}

export class Attention {
  readonly model: string;
  readonly layers: number[];
  readonly nHeads: number;
  readonly nTokens: number;
  /** sources kept per row (k, or fewer for a short text) */
  readonly k: number;
  readonly sources: NumericArray;
  readonly weights: NumericArray;
  readonly share: NumericArray;
  /** the token spans (UTF-16 offsets into the text), as the analysis has them */
  readonly spans: { from: number; to: number }[];
  readonly ids: NumericArray;
  private readonly strings = new Map<number, string>();

  constructor(wire: AttentionResponseWire) {
    this.model = wire.model;
    this.layers = wire.layers;
    this.nHeads = wire.n_heads;
    const s = decodeArray(wire.sources);
    this.sources = s.data;
    this.nTokens = s.shape[2] ?? 0;
    this.k = s.shape[3] ?? 0;
    this.weights = decodeArray(wire.weights).data;
    this.share = decodeArray(wire.positional_share).data;
    const t = wire.tokens;
    this.ids = decodeArray(t.ids).data;
    const from = decodeArray(t.start_utf16).data;
    const to = decodeArray(t.end_utf16).data;
    this.spans = Array.from(from, (f, i) => ({ from: f, to: to[i] }));
    wire.strings.ids.forEach((id, i) => this.strings.set(id, wire.strings.values[i]));
  }

  hasLayer(layer: number): boolean {
    return this.layers.includes(layer);
  }

  tokenString(i: number): string {
    const id = this.ids[i];
    return this.strings.get(id) ?? `#${id}`;
  }

  private base(layer: number, head: number, token: number): number {
    const l = this.layers.indexOf(layer);
    if (l < 0 || head < 0 || head >= this.nHeads || token < 0 || token >= this.nTokens) {
      return -1;
    }
    return ((l * this.nHeads + head) * this.nTokens + token) * this.k;
  }

  /** Head (layer, head)'s kept sources from `token`, largest weight first (none past the row's keys). */
  row(layer: number, head: number, token: number): AttentionSource[] {
    const base = this.base(layer, head, token);
    const out: AttentionSource[] = [];
    if (base < 0) {
      return out;
    }
    for (let j = 0; j < this.k; j++) {
      const source = this.sources[base + j];
      if (source !== NONE) {
        out.push({ source, weight: this.weights[base + j] });
      }
    }
    return out;
  }

  /** The mean over `heads` of their weights from `token` on each text token, the BOS and the context. */
  onText(layer: number, heads: number[], token: number): OnText {
    const weights = new Float32Array(this.nTokens);
    let bos = 0;
    let context = 0;
    for (const head of heads) {
      for (const { source, weight } of this.row(layer, head, token)) {
        if (source >= 0) {
          weights[source] += weight;
        } else if (source === BOS) {
          bos += weight;
        } else if (source === CONTEXT) {
          context += weight;
        }
      }
    }
    const n = heads.length || 1;
    for (let i = 0; i < weights.length; i++) {
      weights[i] /= n;
    }
    return { weights, bos: bos / n, context: context / n };
  }

  /** Share of the spread of head (layer, head)'s scores that comes from the keys' position (NaN: none). */
  positionalShare(layer: number, head: number): number {
    const l = this.layers.indexOf(layer);
    return l < 0 ? NaN : this.share[l * this.nHeads + head];
  }
}

/**
 * Weights per text token as the editor can show them: text token index to weight, zeros left
 * out. A token with an empty span (the leading bytes of a character split by byte-level BPE)
 * has no place in the editor: its weight goes to the next token with a span.
 */
export function weightsOnSpans(weights: ArrayLike<number>, spans: { from: number; to: number }[]): Map<number, number> {
  const out = new Map<number, number>();
  let carry = 0;
  for (let i = 0; i < weights.length && i < spans.length; i++) {
    const w = weights[i] + carry;
    if (spans[i].to > spans[i].from) {
      carry = 0;
      if (w > 0) {
        out.set(i, w);
      }
    } else {
      carry = w;
    }
  }
  return out;
}
