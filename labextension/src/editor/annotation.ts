/** What an editor's annotation holds: the analysis, where it is, and how to colour it. */
import type { Analysis } from '../api/analysis';
import type { ScaleName } from '../colors';

export interface NeuronColouring {
  /** null for an SAE feature */
  layer: number | null;
  index: number;
  values: Float32Array; // activation at each token
}

export interface Annotation {
  analysis: Analysis;
  offset: number; // document position of the analyzed text's start
  scale: ScaleName;
  floor: number; // log-prob that gets the full colour
  neuron: NeuronColouring | null;
  /** model B of a comparison (same tokens): colour by lp_A - max(lp_B, clamp) */
  compare?: { analysis: Analysis; clamp: number } | null;
  /** the same text with interventions (same tokens): colour by Δ = its log-prob − the plain one */
  intervened?: { analysis: Analysis; deltas: Float64Array; span: number; labels: string[] } | null;
}
