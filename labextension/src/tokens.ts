/**
 * What other plugins can use: the `ILenscope` token (the frontend model) and the command IDs.
 * Views reach the app through these commands rather than through callbacks.
 */
import { Token } from '@lumino/coreutils';

import type { LenscopeModel } from './model';

export type ILenscope = LenscopeModel;

/** The lenscope model: settings, models, the last analysis, jobs, the API client; with signals. */
export const ILenscope = new Token<ILenscope>('lenscope:ILenscope', 'The lenscope model: analyses, neurons, jobs and its API client.');

export namespace CommandIDs {
  export const analyze = 'lenscope:analyze-selection';
  export const clear = 'lenscope:clear-annotations';
  export const chooseModel = 'lenscope:choose-model';
  export const showPanel = 'lenscope:show-panel';
  export const buildIndex = 'lenscope:build-index';
  export const compareCorpus = 'lenscope:compare-workspace';
  export const nextToken = 'lenscope:next-token';
  export const previousToken = 'lenscope:previous-token';
  export const toggleTooltip = 'lenscope:toggle-tooltip';
  export const copyAnalysis = 'lenscope:copy-analysis';
  export const copyCard = 'lenscope:copy-card';
  /** args: {model, layer, index} */
  export const openNeuron = 'lenscope:open-neuron';
  /** args: {model, sae, index}: an SAE feature's card */
  export const openFeature = 'lenscope:open-feature';
  /** args: {model, layer, head}; without layer / head (the palette) it asks for `L0.H3` */
  export const openHead = 'lenscope:open-head';
  /** args: {job} */
  export const openComparison = 'lenscope:open-comparison';
  /** args: {index, path, start, end}: the stored text of a file an index read */
  export const openStored = 'lenscope:open-stored';
  /** args: {path, cell, start, end} (code points) */
  export const openAt = 'lenscope:open-at';
  /** args: {path, cell, line}: open, select the lines around, analyze */
  export const openRow = 'lenscope:open-row';
  /** attention mode on / off: hovering a token in the analyzed editor colours where the chosen heads attend */
  export const toggleAttentionMode = 'lenscope:toggle-attention-mode';
  /** args: {model, component (neuron|head|mlp|attn), layer, index, position?}: zero it at every position of the current analysis and re-run */
  export const ablate = 'lenscope:ablate';
  /** patching: the selection (or cell, file) becomes the clean text */
  export const patchSetClean = 'lenscope:patch-set-clean';
  /** patching: patch the clean text into the selection (the corrupted text); opens the patching tab */
  export const patchRun = 'lenscope:patch-run';
  /** args: {index}: the caret to token `index` of the analysis */
  export const revealToken = 'lenscope:reveal-token';
}
