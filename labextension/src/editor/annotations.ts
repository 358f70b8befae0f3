/**
 * Inline annotations in CodeMirror 6: a state field of token decorations, coloured by the
 * log-prob of each token (or by a neuron's activation), and a hover tooltip with the model's
 * predictions at that token. Decorations are mapped through edits; a token whose text is
 * edited loses its decoration (its analysis no longer describes it).
 */
import { EditorState, Extension, Prec, RangeSetBuilder, StateEffect, StateField, Transaction } from '@codemirror/state';
import { Decoration, DecorationSet, EditorView, hoverTooltip, keymap, showTooltip, Tooltip } from '@codemirror/view';

import { activationColor, clampedDiff, colorFor, diffColor, surprise } from '../colors';
import { tokenRanges } from '../spans';
import type { Annotation } from './annotation';
import { buildTooltip, OpenNeuron } from './tooltip';

export type { Annotation, NeuronColouring } from './annotation';

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

/** Pin (true) or unpin the tooltip of the token at the caret. */
export const pinTooltip = StateEffect.define<boolean>();

/** Whether the caret's token shows its tooltip (opened from the keyboard). */
const pinnedField = StateField.define<boolean>({
  create: () => false,
  update(pinned, tr) {
    for (const effect of tr.effects) {
      if (effect.is(pinTooltip)) {
        pinned = effect.value;
      } else if (effect.is(setAnnotation) && !effect.value) {
        pinned = false;
      }
    }
    return pinned;
  }
});

/** The annotated token at the caret (or just before it, at a token's end). */
function caretToken(state: EditorState): TokenHit | null {
  const head = state.selection.main.head;
  const { decorations } = state.field(annotationField);
  let hit: TokenHit | null = null;
  decorations.between(Math.max(0, head - 1), head + 1, (from, to, deco) => {
    if (from <= head && head <= to && (!hit || from === head)) {
      hit = { index: (deco.spec as { lsToken: number }).lsToken, from, to };
    }
    return undefined;
  });
  return hit;
}

/**
 * Move the caret to the next (dir 1) or previous (-1) annotated token; false when there is none
 * that way (or no annotation), so the key does nothing else.
 */
export function moveToToken(view: EditorView, dir: 1 | -1): boolean {
  const { decorations, annotation } = view.state.field(annotationField);
  if (!annotation) {
    return false;
  }
  const head = view.state.selection.main.head;
  const here = caretToken(view.state);
  const found: { at: number | null } = { at: null };
  decorations.between(0, view.state.doc.length, from => {
    if (dir > 0 && from > head && (!here || from >= here.to)) {
      found.at = from;
      return false;
    }
    if (dir < 0 && from < (here ? here.from : head)) {
      found.at = from; // the last one before the caret's token wins
    }
    return undefined;
  });
  if (found.at === null) {
    return false;
  }
  view.dispatch({ selection: { anchor: found.at }, scrollIntoView: true });
  return true;
}

/** Show (or hide) the caret token's tooltip; true if there is an annotated token there. */
export function togglePinned(view: EditorView, show?: boolean): boolean {
  const pinned = view.state.field(pinnedField, false) ?? false;
  const next = show ?? !pinned;
  if (next && !caretToken(view.state)) {
    return false;
  }
  view.dispatch({ effects: pinTooltip.of(next) });
  return true;
}

export function isPinned(view: EditorView): boolean {
  return view.state.field(pinnedField, false) ?? false;
}

/**
 * The keyboard's way to a token's tooltip: the first press shows the caret token's tooltip, the
 * next moves the focus into it (Tab among its neurons, Enter opens one, Esc comes back).
 */
export function pinOrEnterTooltip(view: EditorView): boolean {
  if (!isPinned(view)) {
    return togglePinned(view, true);
  }
  const chip = view.dom.ownerDocument.querySelector<HTMLElement>('.ls-tooltip-pinned .ls-neuron-chip');
  chip?.focus();
  return !!chip;
}

/**
 * The editor extension. `openNeuron` is what a tooltip's neuron chip does: injected here, so
 * the tooltip reaches the plugin through a function it was given, not a page-wide event.
 */
export function annotationExtension(openNeuron: OpenNeuron): Extension {
  const hover = hoverTooltip(
    (view, pos, side): Tooltip | null => {
      const { annotation } = view.state.field(annotationField);
      const hit = annotation ? tokenUnder(view, pos, side) : null;
      if (!annotation || !hit || view.state.field(pinnedField)) {
        return null;
      }
      return { pos: hit.from, end: hit.to, above: true, create: () => ({ dom: buildTooltip(annotation, hit.index, openNeuron) }) };
    },
    { hoverTime: 250 }
  );
  const pinned = showTooltip.computeN([pinnedField, annotationField, 'selection'], state => {
    const { annotation } = state.field(annotationField);
    const hit = state.field(pinnedField) && annotation ? caretToken(state) : null;
    if (!annotation || !hit) {
      return [];
    }
    const create = (view: EditorView) => {
      const dom = buildTooltip(annotation, hit.index, openNeuron, true);
      // Esc with the focus inside (on a neuron): close it and give the editor its focus back
      dom.addEventListener('keydown', event => {
        if (event.key === 'Escape') {
          event.preventDefault();
          togglePinned(view, false);
          view.focus();
        }
      });
      return { dom };
    };
    return [{ pos: hit.from, end: hit.to, above: true, create }];
  });
  // in the editor's own keymap, ahead of CodeMirror's (Alt-Shift-Arrow is its syntax selection):
  // these only act on annotated text and otherwise let the key through
  const keys = Prec.highest(
    keymap.of([
      { key: 'Alt-Shift-ArrowRight', run: view => moveToToken(view, 1) },
      { key: 'Alt-Shift-ArrowLeft', run: view => moveToToken(view, -1) },
      { key: 'Alt-Shift-k', run: view => (currentAnnotation(view) ? pinOrEnterTooltip(view) : false) },
      { key: 'Escape', run: view => (isPinned(view) ? togglePinned(view, false) : false) }
    ])
  );
  // the editor says it is annotated: CSS keeps a selection from washing out the token colours
  const marker = EditorView.editorAttributes.compute([annotationField], (state): Record<string, string> =>
    state.field(annotationField).annotation ? { class: 'ls-annotated' } : {}
  );
  return [annotationField, pinnedField, hover, pinned, keys, marker];
}

export function currentAnnotation(view: EditorView): Annotation | null {
  return view.state.field(annotationField, false)?.annotation ?? null;
}
