/** Messages between the extension and the panel's webview (plain data: they travel as JSON). */
import type { Analysis, ModelsResponse, NeuronCard } from './shared';
import { clampedDiff } from './shared';

export interface TokenView {
  text: string;
  logprob: number;
  rank: number;
}

export interface AnalysisView {
  model: string;
  tokens: TokenView[];
  neurons: { layer: number; index: number; max: number; at: number; count: number; token: string }[];
  timings: Record<string, number>;
}

export interface CompareView {
  modelA: string;
  modelB: string;
  clamp: number;
  rows: { i: number; text: string; a: number; b: number; diff: number }[];
}

export type ToWebview =
  | { type: 'server'; url: string | null; models: ModelsResponse | null; model: string | null; compareModel: string | null; error: string | null }
  | { type: 'analysis'; analysis: AnalysisView | null; compare: CompareView | null }
  | { type: 'card'; card: NeuronCard }
  | { type: 'error'; message: string };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'pickModel'; model: string }
  | { type: 'pickCompare'; model: string }
  | { type: 'openNeuron'; layer: number; index: number; model?: string }
  | { type: 'analyze' }
  | { type: 'compare' }
  | { type: 'refresh' };

export function analysisView(analysis: Analysis): AnalysisView {
  return {
    model: analysis.model,
    tokens: analysis.tokens.map((t, i) => ({ text: t.text, logprob: analysis.logprobOf(i), rank: analysis.rankOf(i) })),
    neurons: analysis.strongestNeurons(20).map(n => ({ ...n, token: analysis.tokens[n.at]?.text ?? '' })),
    timings: analysis.timings
  };
}

/** The comparison's rows, the tokens where model A beats B most first. */
export function compareView(a: Analysis, b: Analysis, clamp: number): CompareView {
  const rows = a.tokens.map((t, i) => ({ i, text: t.text, a: a.logprobOf(i), b: b.logprobOf(i), diff: clampedDiff(a.logprobOf(i), b.logprobOf(i), clamp) }));
  rows.sort((x, y) => (Number.isFinite(y.diff) ? y.diff : -Infinity) - (Number.isFinite(x.diff) ? x.diff : -Infinity));
  return { modelA: a.model, modelB: b.model, clamp, rows };
}
