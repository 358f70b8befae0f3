/**
 * The analysis' state (views/analysis.ts, the editor's annotations through editor/inline.ts):
 * the status line and the current run: what was analyzed, by which model(s), and what it is
 * coloured by. `analyze` sends `POST analyze` (and model B's, for a comparison) through one
 * `LatestRequest`: a newer analysis aborts the one in flight. The states that belong to a run
 * (interventions, attention, the lens) are reset through `AnalysisHooks` when the run is replaced.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { Analysis } from './api/analysis';
import type { LenscopeClient, ModelEntry } from './api/client';
import { describe, hintFor } from './errors';
import type { AppliedIntervention } from './interventions';
import type { PickerModel } from './pickermodel';
import { LatestRequest } from './request';
import type { Settings } from './settings';
import type { Target } from './target';

export type Status =
  | { kind: 'empty' }
  | { kind: 'loading'; message: string }
  | { kind: 'error'; message: string; hint: string }
  | { kind: 'ready' };

/** The unit the text is coloured by: a neuron (`POST activations`) or an SAE feature (`POST unit_activations`; layer null). */
export interface UnitColouring {
  kind: 'neuron' | 'feature';
  layer: number | null;
  index: number;
  /** the feature's SAE (null for a neuron) */
  sae: string | null;
  /** `L0.N5`, `F12` */
  name: string;
  activations: { at(i: number): number };
}

/** One analysis: what was analyzed, by which model(s), and how long it took in the browser. */
export interface Run {
  target: Target;
  analysis: Analysis;
  /** model B of a comparison (same tokens), with B's log-prob floor */
  compare: { analysis: Analysis; clamp: number } | null;
  /** the unit (a neuron or an SAE feature) the text is coloured by, if any */
  neuron: UnitColouring | null;
  /** performance.now() when the command started (views report command-to-pixels from it) */
  started: number;
  /** the same text re-run with the enabled interventions (same tokens); the plain `analysis` is untouched */
  intervened?: Intervened | null;
}

/** The analysis with the interventions applied, and its Δ log-prob (intervened − plain) per token. */
export interface Intervened {
  analysis: Analysis;
  applied: AppliedIntervention[];
  deltas: Float64Array;
  /** the colour scale's span (see `deltaSpan`) */
  span: number;
}

export function sameTokens(a: Analysis, b: Analysis): boolean {
  return a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i]);
}

/** What the states that belong to a run do when the run changes (wired by `LenscopeModel`). */
export interface AnalysisHooks {
  /** a new analysis starts (the old run's requests that it makes useless are aborted) */
  starting(): void;
  /** the run is replaced (by a new one, or none), before `runChanged`: what the run carries starts empty */
  replacing(): void;
  /** after `runChanged` (and, for a new run, `statusChanged`): the run's other states start again */
  replaced(): void;
}

export class AnalysisModel {
  private statusValue: Status = { kind: 'empty' };
  private runValue: Run | null = null;
  private readonly statusChangedSignal = new Signal<this, Status>(this);
  private readonly runChangedSignal = new Signal<this, Run | null>(this);
  /** `POST analyze`; its error is the status */
  private readonly request = new LatestRequest({ failed: err => this.setStatus({ kind: 'error', message: describe(err), hint: hintFor(err) }) });

  constructor(
    private readonly client: LenscopeClient,
    private readonly settings: () => Settings,
    private readonly picker: PickerModel,
    private readonly hooks: AnalysisHooks
  ) {}

  get statusChanged(): ISignal<this, Status> {
    return this.statusChangedSignal;
  }

  /** A new analysis, a new colouring of it (neuron, interventions), or none (cleared). */
  get runChanged(): ISignal<this, Run | null> {
    return this.runChangedSignal;
  }

  get status(): Status {
    return this.statusValue;
  }

  get run(): Run | null {
    return this.runValue;
  }

  /** What `GET models` says of `model` (its shape among it), or null when not listed. */
  entryOf(model: string): ModelEntry | null {
    return this.picker.models.find(m => m.name === model) ?? null;
  }

  /**
   * Analyze the current run's text again (the model, its SAE or the comparison model changed),
   * when its editor is open and the text is still there unchanged; else leave it as it is.
   */
  rerun(): void {
    const run = this.runValue;
    if (!run || !run.target.view.dom.isConnected) {
      return;
    }
    const { view, from, text } = run.target;
    if (view.state?.sliceDoc(from, from + text.length) !== text) {
      return; // edited since: the next Alt+Shift+L analyzes what is there now
    }
    void this.analyze(run.target);
  }

  setStatus(status: Status): void {
    this.statusValue = status;
    this.statusChangedSignal.emit(status);
  }

  /** The same analysis, coloured otherwise (a neuron, interventions): shown at once. */
  update(run: Run): void {
    this.runValue = run;
    this.runChangedSignal.emit(run);
  }

  /** Draw the run again (the settings' colour scale or floor changed). */
  redraw(): void {
    if (this.runValue) {
      this.runChangedSignal.emit(this.runValue);
    }
  }

  /** Analyze a target; a newer call aborts this one's requests. Resolves with the run, or null. */
  async analyze(target: Target, started = performance.now()): Promise<Run | null> {
    this.hooks.starting();
    const picker = this.picker;
    let entry = null as ModelEntry | null; // set by the task (the model's entry once the list is known)
    const answered = await this.request.run(async signal => {
      if (!picker.models.length) {
        await picker.refresh();
        if (signal.aborted) {
          return null; // a newer call took over meanwhile
        }
      }
      const choice = picker.choice;
      if (choice.problem) {
        // the picker above says what is wrong with the model; this says what it meant
        this.setStatus({ kind: 'error', message: `Not analyzed: ${choice.name} cannot be used here.`, hint: 'Pick a model in the list above, or fix defaultModel in Settings → lenscope.' });
        return null;
      }
      const model = choice.name;
      entry = picker.entry;
      this.setStatus({ kind: 'loading', message: entry && entry.state !== 'loaded' ? `Loading ${model} and analyzing…` : `Analyzing with ${model}…` });
      const s = this.settings();
      const request = { text: target.text, context: target.context, top_k: s.topK, top_neurons: s.topNeurons };
      const sae = picker.saeChoice.name;
      const compareName = picker.compareModel;
      return Promise.all([
        this.client.analyze({ ...request, model, ...(sae ? { sae } : {}) }, signal),
        compareName ? this.client.analyze({ ...request, model: compareName, top_neurons: 0 }, signal) : Promise.resolve(null)
      ]);
    });
    if (!answered) {
      return null; // superseded, refused, or failed (the status says why)
    }
    const [analysis, other] = answered;
    if (!target.view.dom.isConnected) {
      this.setStatus({ kind: 'error', message: `${target.path} was closed before its analysis came back.`, hint: 'Open it and analyze again.' });
      return null;
    }
    if (other && !sameTokens(analysis, other)) {
      this.setStatus({
        kind: 'error',
        message: `${analysis.model} and ${other.model} tokenize this text differently: a token-by-token comparison needs one tokenizer.`,
        hint: 'Pick models that share a tokenizer (the two default models do).'
      });
      return null;
    }
    const run: Run = {
      target,
      analysis,
      compare: other ? { analysis: other, clamp: this.settings().compareClamp } : null,
      neuron: null,
      started,
      intervened: null
    };
    this.runValue = run;
    this.hooks.replacing();
    this.statusValue = { kind: 'ready' };
    this.runChangedSignal.emit(run);
    this.statusChangedSignal.emit(this.statusValue);
    this.hooks.replaced();
    if (entry && entry.state !== 'loaded') {
      picker.markLoaded(entry.name);
    }
    return run;
  }

  /** Forget the run (and abort an analysis in flight). */
  clear(): void {
    this.request.abort();
    this.runValue = null;
    this.hooks.replacing();
    this.runChangedSignal.emit(null);
    this.hooks.replaced();
    this.setStatus({ kind: 'empty' });
  }

  dispose(): void {
    this.request.abort();
    Signal.clearData(this);
  }
}
