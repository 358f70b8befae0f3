/**
 * Inline annotations in CodeMirror 6: a state field of token decorations, coloured by the
 * log-prob of each token (or by a neuron's activation), and a hover tooltip with the model's
 * predictions at that token. Decorations are mapped through edits; a token whose text is
 * edited loses its decoration (its analysis no longer describes it).
 */
import { EditorState, Extension, Prec, RangeSetBuilder, StateEffect, StateField, Transaction } from '@codemirror/state';
import { Decoration, DecorationSet, EditorView, hoverTooltip, keymap, showTooltip, Tooltip, ViewPlugin, ViewUpdate } from '@codemirror/view';

import { Attribution, attentionOnText } from '../api/attribution';
import { activationColor, attentionColor, clampedDiff, colorFor, deltaColor, diffColor, surprise } from '../colors';
import { tokenRanges } from '../spans';
import type { Annotation } from './annotation';
import { buildTooltip, refreshTooltip, TooltipActions } from './tooltip';

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
  if (a.intervened) {
    return deltaColor(a.intervened.deltas[i], a.intervened.span);
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
    const attributes: Record<string, string> = { style: `background-color: ${tokenColor(a, r.index, max)}`, 'data-ls-token': String(r.index) };
    if (a.neuron) {
      attributes['data-ls-activation'] = String(a.neuron.values[r.index]);
    }
    if (a.intervened && !a.neuron) {
      attributes['data-ls-delta'] = String(a.intervened.deltas[r.index]);
    }
    const mark = Decoration.mark({
      class: a.neuron ? 'ls-token ls-token-neuron' : a.intervened ? 'ls-token ls-token-delta' : 'ls-token',
      attributes,
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
    // unchanged: the same value, so what depends on it (the pinned tooltip) is not rebuilt
    if (!(tr.docChanged && value.annotation) && !tr.effects.some(e => e.is(setAnnotation))) {
      return value;
    }
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

/**
 * Bound a tooltip by the room the window has below its top (CodeMirror placed it): it scrolls
 * inside, so the why view's sum line and inputs, which stick to its bottom, stay in the window.
 */
function fitToWindow(dom: HTMLElement): void {
  const tip = (dom.closest('.cm-tooltip') as HTMLElement | null) ?? dom;
  const room = window.innerHeight - Math.max(tip.getBoundingClientRect().top, 0) - 8;
  dom.style.maxHeight = `${Math.max(160, Math.floor(room))}px`;
}

/** What had the focus inside the pinned tooltip (its class and unit), so a rebuilt one can take it back. */
let pinnedFocus: string | null = null;

function focusKey(e: Element): string {
  const d = (e as HTMLElement).dataset ?? {};
  return `${e.tagName}.${e.className}|${d.component ?? ''}|${d.layer ?? ''}|${d.index ?? ''}`;
}

/**
 * The pinned tooltip is rebuilt when its annotation changes (an intervention re-ran the text):
 * the element that had the focus is gone, and a key (Esc) would reach nothing. Give the focus to
 * the same element of the new tooltip, else to the editor.
 */
function keepFocus(dom: HTMLElement, view: EditorView): void {
  dom.addEventListener('focusin', event => {
    pinnedFocus = focusKey(event.target as Element);
  });
  const wanted = pinnedFocus;
  if (wanted === null) {
    return;
  }
  requestAnimationFrame(() => {
    const doc = view.dom.ownerDocument;
    if (!dom.isConnected || (doc.activeElement && doc.activeElement !== doc.body)) {
      return;
    }
    const same = Array.from(dom.querySelectorAll<HTMLElement>('button, a, input, [tabindex]')).find(e => focusKey(e) === wanted);
    if (same) {
      same.focus();
    } else {
      view.focus();
    }
  });
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

/** A head's attention from one position, shown on the text: text token index to weight. */
export interface AttentionShown {
  position: number;
  target: number;
  layer: number;
  head: number;
  weights: Map<number, number>;
  /** alpha = weight / max (attention mode scales by the row's largest weight); default 1 */
  max?: number;
}

/** Show (or, with null, clear) where a head attends from a position: a second layer of decorations. */
export const setAttention = StateEffect.define<AttentionShown | null>();

/**
 * The attention layer: over the token decorations (whose mapped positions it reuses, so edits
 * since the analysis are respected), each attended text token gets a background whose alpha is
 * the head's attention weight; the query token gets an outline. Cleared with the annotation.
 */
export const attentionField = StateField.define<{ shown: AttentionShown | null; decorations: DecorationSet }>({
  create: () => ({ shown: null, decorations: Decoration.none }),
  update(value, tr) {
    let { shown, decorations } = value;
    if (tr.docChanged) {
      decorations = decorations.map(tr.changes);
    }
    for (const effect of tr.effects) {
      if (effect.is(setAnnotation)) {
        shown = null;
        decorations = Decoration.none;
      } else if (effect.is(setAttention)) {
        shown = effect.value;
        decorations = shown ? buildAttention(tr.state, shown) : Decoration.none;
      }
    }
    return { shown, decorations };
  },
  provide: field => EditorView.decorations.from(field, v => v.decorations)
});

function buildAttention(state: EditorState, shown: AttentionShown): DecorationSet {
  const builder = new RangeSetBuilder<Decoration>();
  state.field(annotationField).decorations.between(0, state.doc.length, (from, to, deco) => {
    const index = (deco.spec as { lsToken: number }).lsToken;
    const w = shown.weights.get(index);
    if (w === undefined && index !== shown.position) {
      return;
    }
    const attributes: Record<string, string> = { 'data-ls-token': String(index), 'data-weight': String(w ?? 0) };
    if (w !== undefined) {
      attributes.style = `background-color: ${attentionColor(w / (shown.max || 1))}`;
    }
    const cls = index === shown.position ? 'ls-attn ls-attn-query' : 'ls-attn';
    builder.add(from, to, Decoration.mark({ class: cls, attributes }));
  });
  return builder.finish();
}

export function shownAttention(view: EditorView): AttentionShown | null {
  return view.state.field(attentionField, false)?.shown ?? null;
}

/** Show head (layer, head)'s attention from the attribution's position; the same head again clears it. True when shown. */
export function toggleHead(view: EditorView, attr: Attribution, layer: number, head: number): boolean {
  const { annotation } = view.state.field(annotationField);
  const now = shownAttention(view);
  if (!annotation || (now && now.position === attr.position && now.target === attr.target && now.layer === layer && now.head === head)) {
    view.dispatch({ effects: setAttention.of(null) });
    return false;
  }
  const weights = attentionOnText(attr, layer, head, annotation.analysis.tokens);
  view.dispatch({ effects: setAttention.of({ position: attr.position, target: attr.target, layer, head, weights }) });
  return true;
}

/** Keep a tooltip's head buttons in step with what the editor shows (Esc may have cleared it). */
function syncHeads(dom: HTMLElement, shown: AttentionShown | null): void {
  dom.querySelectorAll<HTMLElement>('.ls-why-head').forEach(b => {
    const body = b.closest<HTMLElement>('.ls-why-body');
    const on =
      !!shown &&
      Number(b.dataset.layer) === shown.layer &&
      Number(b.dataset.head) === shown.head &&
      Number(body?.dataset.target) === shown.target &&
      Number(dom.dataset.lsToken) === shown.position;
    b.setAttribute('aria-pressed', String(on));
  });
}

/** Pin (true) or unpin the tooltip of the token at the caret. */
export const pinTooltip = StateEffect.define<boolean>();

/** Whether the caret's token shows its tooltip (opened from the keyboard). */
const pinnedField = StateField.define<boolean>({
  create: () => false,
  update(pinned, tr) {
    // a new selection (a range, or a click) closes it; the keys that step tokens move it along
    if (pinned && tr.selection && (!tr.selection.main.empty || tr.isUserEvent('select.pointer'))) {
      pinned = false;
    }
    const before = tr.startState.field(annotationField, false)?.annotation ?? null;
    for (const effect of tr.effects) {
      if (effect.is(pinTooltip)) {
        pinned = effect.value;
      } else if (effect.is(setAnnotation) && (!effect.value || effect.value.analysis !== before?.analysis)) {
        pinned = false; // cleared, or a new analysis (an intervention or a recolouring keeps it, refreshed)
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
  const tip = view.dom.ownerDocument.querySelector<HTMLElement>('.ls-tooltip-pinned');
  const chip = tip?.querySelector<HTMLElement>('.ls-neuron-chip') ?? tip?.querySelector<HTMLElement>('.ls-why-toggle');
  chip?.focus();
  return !!chip;
}

/** Pin the caret token's tooltip and open its why view, the focus on its toggle (Alt+Shift+W). */
export function openWhy(view: EditorView): boolean {
  if (!isPinned(view) && !togglePinned(view, true)) {
    return false;
  }
  const toggle = view.dom.ownerDocument.querySelector<HTMLElement>('.ls-tooltip-pinned .ls-why-toggle');
  if (!toggle) {
    return false;
  }
  if (toggle.getAttribute('aria-expanded') !== 'true') {
    toggle.dispatchEvent(new MouseEvent('mousedown', { bubbles: true, cancelable: true }));
  }
  toggle.focus();
  return true;
}

/** Attention mode, as the editor sees it: whether it is on, and where to report the token attended from. */
export interface AttentionModeHooks {
  active(): boolean;
  /** the token hovered, or at the caret (keyboard), in this annotated editor */
  hover(view: EditorView, token: number): void;
}

/** In attention mode: report the hovered token, and the caret's when it moves (keyboard users). */
function attentionHover(hooks: AttentionModeHooks): Extension {
  return ViewPlugin.fromClass(
    class {
      last = -1;
      constructor(readonly view: EditorView) {}
      report(index: number): void {
        if (index !== this.last) {
          this.last = index;
          // never inside CodeMirror's update: the answer dispatches to this editor
          queueMicrotask(() => hooks.hover(this.view, index));
        }
      }
      update(update: ViewUpdate): void {
        if (update.selectionSet && update.view.hasFocus && hooks.active() && currentAnnotation(update.view)) {
          const hit = caretToken(update.state);
          if (hit) {
            this.report(hit.index);
          }
        }
      }
    },
    {
      eventHandlers: {
        mousemove(event: MouseEvent, view: EditorView) {
          if (!hooks.active() || !currentAnnotation(view)) {
            this.last = -1;
            return;
          }
          const pos = view.posAtCoords({ x: event.clientX, y: event.clientY });
          const hit = pos === null ? null : tokenUnder(view, pos);
          if (hit) {
            this.report(hit.index);
          }
        }
      }
    }
  );
}

/**
 * The editor extension. `actions` is what a tooltip can do beyond the editor (open a neuron,
 * ask for an attribution): injected here, so the tooltip reaches the plugin through functions
 * it was given, not a page-wide event. Showing a head's attention is the editor's own.
 */
export function annotationExtension(actions: Omit<TooltipActions, 'toggleHead'>, attention?: AttentionModeHooks): Extension {
  // opening a card (or a picture) from the pinned tooltip closes it: it would float over the new tab
  const closing =
    <A extends unknown[]>(view: EditorView, act: ((...args: A) => void) | undefined) =>
    (...args: A): void => {
      act?.(...args);
      if (isPinned(view)) {
        togglePinned(view, false);
      }
    };
  const withEditor = (view: EditorView): TooltipActions => ({
    ...actions,
    openNeuron: closing(view, actions.openNeuron),
    openFeature: actions.openFeature && closing(view, actions.openFeature),
    openHead: actions.openHead && closing(view, actions.openHead),
    openWaterfall: actions.openWaterfall && closing(view, actions.openWaterfall),
    openLensHeatmap: actions.openLensHeatmap && closing(view, actions.openLensHeatmap),
    toggleHead: (a, l, h) => toggleHead(view, a, l, h)
  });
  const hover = hoverTooltip(
    (view, pos, side): Tooltip | null => {
      const { annotation } = view.state.field(annotationField);
      const hit = annotation ? tokenUnder(view, pos, side) : null;
      // attention mode: hovering shows where the heads attend, not the tooltip
      if (!annotation || !hit || view.state.field(pinnedField) || attention?.active()) {
        return null;
      }
      const create = (v: EditorView) => {
        const dom = buildTooltip(annotation, hit.index, withEditor(v));
        // Esc inside it (focus on a head): clear the attention shown
        dom.addEventListener('keydown', event => {
          if (event.key === 'Escape' && shownAttention(v)) {
            event.preventDefault();
            v.dispatch({ effects: setAttention.of(null) });
          }
        });
        return {
          dom,
          positioned: () => fitToWindow(dom),
          update: (u: ViewUpdate) => {
            // an intervention re-ran the text (or it was recoloured) while it is open: show the new numbers
            const next = u.state.field(annotationField).annotation;
            if (next && next !== u.startState.field(annotationField).annotation && next.analysis === annotation.analysis) {
              refreshTooltip(dom, next, hit.index, withEditor(v));
            }
            syncHeads(dom, shownAttention(v));
          }
        };
      };
      return { pos: hit.from, end: hit.to, above: true, create };
    },
    { hoverTime: 250 }
  );
  // a press anywhere outside the pinned tooltip closes it (the text under it, the panel, a tab)
  const closeOutside = ViewPlugin.fromClass(
    class {
      private readonly onDown = (event: MouseEvent): void => {
        const target = event.target as Element | null;
        if (isPinned(this.view) && !target?.closest?.('.ls-tooltip-pinned')) {
          togglePinned(this.view, false);
        }
      };
      constructor(readonly view: EditorView) {
        view.dom.ownerDocument.addEventListener('mousedown', this.onDown, true);
      }
      destroy(): void {
        this.view.dom.ownerDocument.removeEventListener('mousedown', this.onDown, true);
      }
    }
  );
  const pinned = showTooltip.computeN([pinnedField, annotationField, 'selection'], state => {
    const { annotation } = state.field(annotationField);
    const hit = state.field(pinnedField) && annotation ? caretToken(state) : null;
    if (!annotation || !hit) {
      return [];
    }
    const create = (view: EditorView) => {
      const dom = buildTooltip(annotation, hit.index, withEditor(view), true);
      keepFocus(dom, view);
      // Esc with the focus inside (on a neuron): clear a head's attention if one is shown, else
      // close it and give the editor its focus back
      dom.addEventListener('keydown', event => {
        if (event.key === 'Escape') {
          event.preventDefault();
          if (shownAttention(view)) {
            view.dispatch({ effects: setAttention.of(null) });
            return;
          }
          togglePinned(view, false);
          view.focus();
        }
      });
      return { dom, positioned: () => fitToWindow(dom), update: () => syncHeads(dom, shownAttention(view)) };
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
      { key: 'Alt-Shift-w', run: view => (currentAnnotation(view) ? openWhy(view) : false) },
      {
        key: 'Escape',
        run: view => {
          if (shownAttention(view)) {
            view.dispatch({ effects: setAttention.of(null) });
            return true;
          }
          return isPinned(view) ? togglePinned(view, false) : false;
        }
      }
    ])
  );
  // the editor says it is annotated: CSS keeps a selection from washing out the token colours
  // ls-attending: a head's attention is shown, the token colours step back (CSS)
  const marker = EditorView.editorAttributes.compute([annotationField, attentionField], (state): Record<string, string> =>
    state.field(annotationField).annotation ? { class: state.field(attentionField).shown ? 'ls-annotated ls-attending' : 'ls-annotated' } : {}
  );
  // the attention layer comes after the token layer: lower precedence, so its marks sit inside
  return [annotationField, attentionField, pinnedField, hover, pinned, keys, marker, closeOutside, attention ? attentionHover(attention) : []];
}

export function currentAnnotation(view: EditorView): Annotation | null {
  return view.state.field(annotationField, false)?.annotation ?? null;
}
