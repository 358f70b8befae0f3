/**
 * The inline view: keeps the analyzed editor's decorations in step with the model's run (new
 * analysis, neuron colouring, cleared) and remembers which editors it annotated.
 */
import type { EditorView } from '@codemirror/view';

import type { LenscopeModel, Run } from '../model';
import { currentAnnotation, setAnnotation } from './annotations';

export class InlineView {
  private readonly annotated = new Set<EditorView>();
  private shown: Run | null = null;

  constructor(private readonly model: LenscopeModel) {
    model.runChanged.connect(this.onRun, this);
  }

  private onRun(_: unknown, run: Run | null): void {
    if (!run) {
      for (const view of this.annotated) {
        view.dispatch({ effects: setAnnotation.of(null) });
      }
      this.annotated.clear();
      this.shown = null;
      return;
    }
    const view = run.target.view;
    const current = currentAnnotation(view);
    // the same analysis, recoloured: only if the editor still shows it (edits may have cleared it)
    if (this.shown && this.shown.analysis === run.analysis && current?.analysis !== run.analysis) {
      return;
    }
    const s = this.model.settings;
    const values = run.neuron ? Float32Array.from(run.analysis.tokens, (_, i) => run.neuron!.activations.at(i)) : null;
    view.dispatch({
      effects: setAnnotation.of({
        analysis: run.analysis,
        offset: run.target.from,
        scale: s.colorScale,
        floor: s.logprobFloor,
        neuron: run.neuron && values ? { layer: run.neuron.layer, index: run.neuron.index, values } : null,
        compare: run.compare,
        intervened: run.intervened
          ? { analysis: run.intervened.analysis, deltas: run.intervened.deltas, span: run.intervened.span, labels: run.intervened.applied.map(x => x.label) }
          : null
      })
    });
    this.annotated.add(view);
    this.shown = run;
  }
}
