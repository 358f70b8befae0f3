/**
 * A decoded analyze response with accessors by token. Prediction row j is the distribution
 * over token j; "after token i" is row i + 1. Neuron row i is at token i.
 */
import type { ServerTiming } from './timing';
import { Features } from './features';
import { decodeArray, NumericArray } from './ndarray';
import type { components } from './schema';

export type AnalyzeResponseWire = components['schemas']['AnalyzeResponse'];
export type ActivationsResponseWire = components['schemas']['ActivationsResponse'];

export interface Candidate {
  id: number;
  token: string;
  logprob: number;
  prob: number;
}

export interface NeuronHit {
  layer: number;
  index: number;
  activation: number;
}

export interface TokenSpan {
  /** UTF-16 offsets into the analyzed text (CodeMirror counts the same units). */
  from: number;
  to: number;
  text: string;
}

export interface Prediction {
  top: Candidate[];
  /** log-prob and 1-based rank of the token that really came next; null after the last token */
  actual: { id: number; token: string; logprob: number; rank: number } | null;
  entropy: number;
}

export class Analysis {
  readonly model: string;
  readonly tokens: TokenSpan[];
  readonly ids: NumericArray;
  readonly timings: Record<string, number>;
  readonly windowed: boolean;
  readonly contextTokens: number;
  /** worker, coalesced or cache (from the Server-Timing header); null when not over HTTP */
  readonly servedFrom: string | null;
  /** the server's own timings (total, worker round trip) from the Server-Timing header */
  readonly serverTimings: Record<string, number>;
  private readonly strings = new Map<number, string>();
  private readonly topIds: NumericArray;
  private readonly topLogprobs: NumericArray;
  private readonly k: number;
  private readonly actualLogprob: NumericArray;
  private readonly actualRank: NumericArray;
  private readonly entropy: NumericArray;
  private readonly neuronLayer: NumericArray;
  private readonly neuronIndex: NumericArray;
  private readonly neuronActivation: NumericArray;
  readonly neuronsPerToken: number;
  /** the interventions applied (an intervened analysis); empty for a plain one */
  readonly interventions: NonNullable<AnalyzeResponseWire['interventions']>;
  /** the named SAE's strongest features per token (`POST analyze` with `sae`); null without one */
  readonly features: Features | null;

  /**
   * @param text the analyzed text, which the spans index into (the server does not echo it)
   * @param served what the response's Server-Timing header said
   */
  constructor(wire: AnalyzeResponseWire, readonly text: string, served?: ServerTiming) {
    this.model = wire.model;
    this.timings = wire.timings_ms;
    this.windowed = wire.windowed;
    this.contextTokens = wire.context_tokens;
    this.interventions = wire.interventions ?? [];
    this.servedFrom = served?.source ?? null;
    this.serverTimings = served?.durations ?? {};
    const t = wire.tokens;
    this.ids = decodeArray(t.ids).data;
    const from = decodeArray(t.start_utf16).data;
    const to = decodeArray(t.end_utf16).data;
    this.tokens = Array.from(from, (f, i) => ({ from: f, to: to[i], text: text.slice(f, to[i]) }));
    const sids = decodeArray(wire.strings.ids).data;
    wire.strings.values.forEach((value, i) => this.strings.set(sids[i], value));
    const p = wire.predictions;
    const top = decodeArray(p.top_ids);
    this.topIds = top.data;
    this.k = top.shape[1] ?? 0;
    this.topLogprobs = decodeArray(p.top_logprobs).data;
    this.actualLogprob = decodeArray(p.actual_logprob).data;
    this.actualRank = decodeArray(p.actual_rank).data;
    this.entropy = decodeArray(p.entropy).data;
    const layers = decodeArray(p.neuron_layer);
    this.neuronLayer = layers.data;
    this.neuronsPerToken = layers.shape[1] ?? 0;
    this.neuronIndex = decodeArray(p.neuron_index).data;
    this.neuronActivation = decodeArray(p.neuron_activation).data;
    this.features = wire.features ? new Features(wire.features) : null;
  }

  get length(): number {
    return this.tokens.length;
  }

  tokenString(id: number): string {
    return this.strings.get(id) ?? `#${id}`;
  }

  /** Every (id, string) the analysis decodes: its text tokens and top-k predictions. */
  knownStrings(): IterableIterator<[number, string]> {
    return this.strings.entries();
  }

  /** Prediction row `row` (0 .. length): row 0 predicts token 0, row i + 1 follows token i. */
  prediction(row: number): Prediction {
    const top: Candidate[] = [];
    for (let j = 0; j < this.k; j++) {
      const id = this.topIds[row * this.k + j];
      const logprob = this.topLogprobs[row * this.k + j];
      top.push({ id, token: this.tokenString(id), logprob, prob: Math.exp(logprob) });
    }
    const rank = this.actualRank[row];
    const actual =
      row < this.length && rank > 0
        ? { id: this.ids[row], token: this.tokenString(this.ids[row]), logprob: this.actualLogprob[row], rank }
        : null;
    return { top, actual, entropy: this.entropy[row] };
  }

  /** What the model predicted after token i (its next-token distribution). */
  after(i: number): Prediction {
    return this.prediction(i + 1);
  }

  /** How the model scored token i itself: the log-prob it gave token i before seeing it. */
  logprobOf(i: number): number {
    return this.actualLogprob[i];
  }

  /** 1-based rank the model gave token i before seeing it (0 when unknown, e.g. the first token). */
  rankOf(i: number): number {
    return i < this.length ? this.actualRank[i] : 0;
  }

  neurons(i: number): NeuronHit[] {
    const out: NeuronHit[] = [];
    const m = this.neuronsPerToken;
    for (let j = 0; j < m; j++) {
      out.push({
        layer: this.neuronLayer[i * m + j],
        index: this.neuronIndex[i * m + j],
        activation: this.neuronActivation[i * m + j]
      });
    }
    return out;
  }

  /**
   * The selection's strongest neurons: for every neuron in any token's top list, its maximum
   * activation, the token where it peaks and how many tokens list it; sorted by the maximum.
   */
  strongestNeurons(limit = 20): { layer: number; index: number; max: number; at: number; count: number }[] {
    const byKey = new Map<string, { layer: number; index: number; max: number; at: number; count: number }>();
    for (let i = 0; i < this.length; i++) {
      for (const n of this.neurons(i)) {
        const key = `${n.layer}.${n.index}`;
        const entry = byKey.get(key);
        if (!entry) {
          byKey.set(key, { layer: n.layer, index: n.index, max: n.activation, at: i, count: 1 });
        } else {
          entry.count += 1;
          if (n.activation > entry.max) {
            entry.max = n.activation;
            entry.at = i;
          }
        }
      }
    }
    return [...byKey.values()].sort((a, b) => b.max - a.max).slice(0, limit);
  }
}

export class Activations {
  readonly model: string;
  readonly values: Float32Array;
  readonly neurons: { layer: number; index: number }[];

  constructor(wire: ActivationsResponseWire) {
    this.model = wire.model;
    this.neurons = wire.neurons;
    this.values = Float32Array.from(decodeArray(wire.activations).data);
  }

  /** Activation of the `n`-th requested neuron at token i. */
  at(i: number, n = 0): number {
    return this.values[i * this.neurons.length + n];
  }
}
