/**
 * Inline annotations in CodeMirror 6: a state field of token decorations, coloured by the
 * log-prob of each token (or by a neuron's activation), and a hover tooltip with the model's
 * predictions at that token. Decorations are mapped through edits; a token whose text is
 * edited loses its decoration (its analysis no longer describes it).
 */
import { Extension, RangeSetBuilder, StateEffect, StateField, Transaction } from '@codemirror/state';
import { Decoration, DecorationSet, EditorView, hoverTooltip, Tooltip } from '@codemirror/view';

import type { Analysis } from '../api/analysis';
import { activationColor, clampedDiff, colorFor, diffColor, ScaleName, surprise } from '../colors';
import { tokenRanges } from '../spans';
import { buildTooltip } from './tooltip';

export interface NeuronColouring {
  layer: number;
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
}

interface FieldValue {
  annotation: Annotation | null;
  decorations: DecorationSet;
}

/** Set (or, with null, clear) the annotation of an editor. */
export const setAnnotation = StateEffect.define<Annotation | null>();

function tokenColor(a: Annotation, i: number, max: number): string {
  if (a.neuron) {
    return activationColor(a.neuron.values[i], max);
  }
  if (a.compare) {
    return diffColor(clampedDiff(a.analysis.logprobOf(i), a.compare.analysis.logprobOf(i), a.compare.clamp));
  }
  // the colour of token i is how surprising it was: the log-prob the model gave it
  return colorFor(surprise(a.analysis.logprobOf(i), a.floor), a.scale);
}

function build(a: Annotation): DecorationSet {
  const builder = new RangeSetBuilder<Decoration>();
  const max = a.neuron ? Math.max(0, ...a.neuron.values) : 0;
  for (const r of tokenRanges(a.analysis, a.offset)) {
    const mark = Decoration.mark({
      class: a.neuron ? 'ls-token ls-token-neuron' : 'ls-token',
      attributes: { style: `background-color: ${tokenColor(a, r.index, max)}`, 'data-ls-token': String(r.index) },
      lsToken: r.index
    });
    builder.add(r.from, r.to, mark);
  }
  return builder.finish();
}

/** Drop the decorations of tokens an edit touched: inserted into, or partly or wholly replaced. */
function dropEdited(tr: Transaction, decorations: DecorationSet): DecorationSet {
  let out = decorations;
  tr.changes.iterChangedRanges((fromA, toA) => {
    out = out.update({
      filter: (from, to) => (fromA === toA ? !(from < fromA && fromA < to) : !(from < toA && to > fromA)),
      filterFrom: fromA,
      filterTo: toA
    });
  });
  return out;
}

export const annotationField = StateField.define<FieldValue>({
  create: () => ({ annotation: null, decorations: Decoration.none }),
  update(value, tr) {
    let { annotation, decorations } = value;
    if (tr.docChanged && annotation) {
      decorations = dropEdited(tr, decorations).map(tr.changes);
      if (decorations.size === 0) {
        annotation = null;
      }
    }
    for (const effect of tr.effects) {
      if (effect.is(setAnnotation)) {
        annotation = effect.value;
        decorations = annotation ? build(annotation) : Decoration.none;
      }
    }
    return { annotation, decorations };
  },
  provide: field => EditorView.decorations.from(field, v => v.decorations)
});

export interface TokenHit {
  index: number;
  from: number;
  to: number;
}

/** The annotated token under `pos` (by the mapped decorations), `side` as hoverTooltip gives it. */
export function tokenUnder(view: EditorView, pos: number, side: -1 | 1 = 1): TokenHit | null {
  const { decorations } = view.state.field(annotationField);
  let hit: TokenHit | null = null;
  decorations.between(pos, pos, (from, to, deco) => {
    if (side > 0 ? from <= pos && pos < to : from < pos && pos <= to) {
      hit = { index: (deco.spec as { lsToken: number }).lsToken, from, to };
      return false;
    }
    return undefined;
  });
  return hit;
}

const tooltip = hoverTooltip(
  (view, pos, side): Tooltip | null => {
    const { annotation } = view.state.field(annotationField);
    const hit = annotation ? tokenUnder(view, pos, side) : null;
    if (!annotation || !hit) {
      return null;
    }
    return { pos: hit.from, end: hit.to, above: true, create: () => ({ dom: buildTooltip(annotation, hit.index) }) };
  },
  { hoverTime: 250 }
);

export function annotationExtension(): Extension {
  return [annotationField, tooltip];
}

export function currentAnnotation(view: EditorView): Annotation | null {
  return view.state.field(annotationField, false)?.annotation ?? null;
}
