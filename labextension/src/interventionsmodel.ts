/**
 * The Interventions section's state (views/interventions.ts, the tooltip's ablate buttons, the
 * patching tab's applied cell): the current run's intervention list and its re-run. Each change
 * re-runs `POST analyze` on the run's text and context with the enabled ones, through one
 * `LatestRequest` (a newer list aborts the re-run in flight; its busy state is `loading`, its
 * error `error`); the answer becomes the run's `intervened`, the plain analysis stays.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { AnalysisModel, sameTokens } from './analysismodel';
import type { LenscopeClient } from './api/client';
import { describe } from './errors';
import { AppliedIntervention, ComponentRef, componentLabel, componentProblem, deltas, deltaSpan, hasIndex, Intervention, InterventionWire, opsOf, saeOf, sameWire, toWire } from './interventions';
import { LatestRequest } from './request';
import type { Settings } from './settings';

/** The intervention list of the current run and the state of its re-run. */
export interface InterventionsState {
  items: readonly Intervention[];
  loading: boolean;
  error: string | null;
  /** what the server applied in the shown intervened analysis (labels, where means came from) */
  applied: AppliedIntervention[];
}

export class InterventionsModel {
  private value: InterventionsState = { items: [], loading: false, error: null, applied: [] };
  private readonly changedSignal = new Signal<this, InterventionsState>(this);
  private seq = 0;
  /** the wire list of the shown intervened analysis */
  private wireShown: InterventionWire[] = [];
  private readonly request = new LatestRequest({
    busy: loading => this.set({ loading }),
    failed: err => this.failed(err)
  });

  constructor(
    private readonly client: LenscopeClient,
    private readonly settings: () => Settings,
    private readonly analysis: AnalysisModel
  ) {}

  /** The list (of the current run) changed, or its re-run started, came back or failed. */
  get changed(): ISignal<this, InterventionsState> {
    return this.changedSignal;
  }

  get state(): InterventionsState {
    return this.value;
  }

  private set(patch: Partial<InterventionsState>): void {
    this.value = { ...this.value, ...patch };
    this.changedSignal.emit(this.value);
  }

  /**
   * Add an intervention on the current run's text (default: zero at every position) and re-run.
   * Returns its id, or null with the reason in the list's error (no run; an op the component
   * does not allow).
   */
  add(what: ComponentRef & Partial<Pick<Intervention, 'op' | 'value' | 'positions' | 'origin' | 'source'>>): number | null {
    const op = what.op ?? 'zero';
    const run = this.analysis.run;
    const listSae = saeOf(this.value.items);
    const problem = !run
      ? 'Analyze some text first: interventions change the current analysis.'
      : op === 'patch'
        ? (typeof what.source === 'string' ? null : 'patch needs a source text')
      : !opsOf(what.component).includes(op)
        ? `${op} is not an op for a ${what.component} (${opsOf(what.component).join(', ')})`
        : what.component === 'feature' && listSae && what.sae && what.sae !== listSae
          ? `${componentLabel(what)} is of ${what.sae}; the list's features are of ${listSae} (one SAE per analysis).`
          : // the model's shape (GET models): a component it does not have never joins the list
          componentProblem(what, this.analysis.entryOf(run.analysis.model)?.shape, run.analysis.model);
    if (problem) {
      this.set({ error: problem });
      return null;
    }
    const id = ++this.seq;
    const item: Intervention = {
      id,
      component: what.component,
      layer: what.component === 'feature' ? null : what.layer,
      index: hasIndex(what.component) ? what.index : null,
      sae: what.component === 'feature' ? (what.sae ?? null) : null,
      op,
      value: what.value ?? 0,
      positions: what.positions ?? null,
      enabled: true,
      origin: what.origin ?? null,
      source: op === 'patch' ? what.source : null
    };
    this.set({ items: [...this.value.items, item], error: null });
    this.rerun();
    return id;
  }

  /** Change one intervention (op, value, positions, enabled) and re-run if what is asked changed. */
  update(id: number, patch: Partial<Pick<Intervention, 'op' | 'value' | 'positions' | 'enabled'>>): void {
    this.set({ items: this.value.items.map(i => (i.id === id ? { ...i, ...patch } : i)) });
    this.rerun();
  }

  toggle(id: number, enabled?: boolean): void {
    const item = this.value.items.find(i => i.id === id);
    if (item) {
      this.update(id, { enabled: enabled ?? !item.enabled });
    }
  }

  remove(id: number): void {
    this.set({ items: this.value.items.filter(i => i.id !== id) });
    this.rerun();
  }

  clear(): void {
    this.set({ items: [], error: null });
    this.rerun();
  }

  /** Say why an intervention was not added (shown in the panel's Interventions section). */
  setError(message: string): void {
    this.set({ error: message });
  }

  /**
   * A re-run failed: nothing of the list is applied, so the editor goes back to the plain
   * colours (not the Δs of an earlier list the panel no longer shows) and the status says why.
   */
  private failed(err: unknown): void {
    this.wireShown = [];
    this.set({ error: `Not applied: ${describe(err)} The text shows the plain log-probs; fix or remove the intervention.`, applied: [] });
    const run = this.analysis.run;
    if (run?.intervened) {
      this.analysis.update({ ...run, intervened: null });
    }
  }

  /** A new run (or none): its interventions start empty; a re-run in flight is aborted. */
  reset(): void {
    this.request.abort();
    this.wireShown = [];
    this.set({ items: [], loading: false, error: null, applied: [] });
  }

  /**
   * Re-run the current run's text and context with the enabled interventions (aborting the one
   * in flight); none enabled: back to the plain analysis. The plain analysis stays as it was.
   */
  private rerun(): void {
    const run = this.analysis.run;
    const wire = toWire(this.value.items);
    if (!run || (sameWire(wire, this.wireShown) && !this.request.busy)) {
      return;
    }
    if (!wire.length) {
      this.request.abort();
      this.wireShown = [];
      this.set({ loading: false, error: null, applied: [] });
      if (run.intervened) {
        this.analysis.update({ ...run, intervened: null });
      }
      return;
    }
    const s = this.settings();
    const request = {
      model: run.analysis.model,
      text: run.target.text,
      context: run.target.context,
      top_k: s.topK,
      top_neurons: s.topNeurons,
      interventions: wire,
      // feature interventions are of one SAE, which analyze then needs
      ...(saeOf(this.value.items) ? { sae: saeOf(this.value.items) } : {})
    };
    this.value = { ...this.value, error: null }; // shown with `loading` as the request starts
    void this.request.run(signal => this.client.analyze(request, signal)).then(analysis => {
      const now = this.analysis.run;
      if (!analysis || now?.analysis !== run.analysis) {
        return;
      }
      if (!sameTokens(analysis, run.analysis)) {
        this.set({ error: 'The intervened analysis came back with other tokens.' });
        return;
      }
      const d = deltas(run.analysis, analysis);
      const applied = analysis.interventions;
      this.wireShown = wire;
      // the Δ colours replace a neuron's: the intervention is the newer question
      const shown = { ...now, neuron: null, intervened: { analysis, applied, deltas: d, span: deltaSpan(d) } };
      this.value = { ...this.value, error: null, applied };
      this.analysis.update(shown);
      this.changedSignal.emit(this.value);
    });
  }

  dispose(): void {
    this.request.abort();
    Signal.clearData(this);
  }
}
