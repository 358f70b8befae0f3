/**
 * Attention mode in the editor: while it is on, the token hovered (or at the caret) in the
 * analyzed editor is the query, and the editor's attention layer (`attentionField`) colours the
 * text tokens the chosen heads attend to from it, alpha = weight / the row's largest weight.
 * It follows the model's `attentionChanged`; the editor reports hovers through `hooks`.
 */
import type { EditorView } from '@codemirror/view';

import { weightsOnSpans } from '../api/attention';
import type { AttentionState, LenscopeModel } from '../model';
import { AttentionModeHooks, currentAnnotation, setAttention, shownAttention } from './annotations';

/** `head` of the attention layer when attention mode drew it (the why view's heads are >= 0). */
export const MODE_HEAD = -1;

/** What the editor shows for a state: text token index to weight, and the largest (the scale). */
export function modeWeights(state: AttentionState, spans: { from: number; to: number }[]): { weights: Map<number, number>; max: number } | null {
  const { data, token } = state;
  if (!data || token === null || !data.hasLayer(state.layer) || !state.heads.length) {
    return null;
  }
  const weights = weightsOnSpans(data.onText(state.layer, state.heads, token).weights, spans);
  let max = 0;
  weights.forEach(w => (max = Math.max(max, w)));
  return { weights, max };
}

export class AttentionMode {
  private drawn: EditorView | null = null;

  constructor(private readonly model: LenscopeModel) {
    model.attentionChanged.connect(this.draw, this);
  }

  /** What the editor extension is given. */
  get hooks(): AttentionModeHooks {
    return {
      active: () => this.model.attention.mode,
      hover: (view, token) => {
        const run = this.model.run;
        if (run && run.target.view === view && currentAnnotation(view)?.analysis === run.analysis) {
          this.model.updateAttention({ token });
        }
      }
    };
  }

  private clear(): void {
    const view = this.drawn;
    this.drawn = null;
    if (view && view.dom.isConnected && shownAttention(view)?.head === MODE_HEAD) {
      view.dispatch({ effects: setAttention.of(null) });
    }
  }

  private draw(_: unknown, state: AttentionState): void {
    const run = this.model.run;
    const view = run?.target.view ?? null;
    const shown = run && view && state.mode && currentAnnotation(view)?.analysis === run.analysis ? modeWeights(state, run.analysis.tokens) : null;
    if (!run || !view || !shown || state.token === null) {
      this.clear();
      return;
    }
    if (this.drawn && this.drawn !== view) {
      this.clear();
    }
    this.drawn = view;
    view.dispatch({ effects: setAttention.of({ position: state.token, target: -1, layer: state.layer, head: MODE_HEAD, weights: shown.weights, max: shown.max }) });
  }
}
