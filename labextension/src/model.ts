/**
 * lenscope's frontend model: settings, the chosen models, the last analysis and the neuron it is
 * coloured by, jobs (through one shared poller) and the API client. It knows nothing of views:
 * they connect to its signals. Editor decorations follow `runChanged` (see `editor/inline.ts`).
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { Activations, Analysis } from './api/analysis';
import type { Attention } from './api/attention';
import type { Attribution } from './api/attribution';
import type { SaeEntry } from './api/features';
import type { LensColumn } from './api/logitlens';
import { CompareJobResult, Job, LenscopeApiError, HeadCard, LenscopeClient, ModelEntry, NeuronCard, NeuronInputs } from './api/client';
import { describe, hintFor, isAbort } from './errors';
import { AppliedIntervention, ComponentRef, deltas, deltaSpan, Intervention, InterventionWire, opsOf, sameWire, toWire } from './interventions';
import { JobPoller } from './jobs';
import { chooseSae, SaeChoice } from './saes';
import type { Settings } from './settings';
import type { Target } from './target';

export type Status =
  | { kind: 'empty' }
  | { kind: 'loading'; message: string }
  | { kind: 'error'; message: string; hint: string }
  | { kind: 'ready' };

/** One analysis: what was analyzed, by which model(s), and how long it took in the browser. */
export interface Run {
  target: Target;
  analysis: Analysis;
  /** model B of a comparison (same tokens), with B's log-prob floor */
  compare: { analysis: Analysis; clamp: number } | null;
  /** the neuron the text is coloured by, if any */
  neuron: { layer: number; index: number; activations: Activations } | null;
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

/** The intervention list of the current run and the state of its re-run. */
export interface InterventionsState {
  items: readonly Intervention[];
  loading: boolean;
  error: string | null;
  /** what the server applied in the shown intervened analysis (labels, where means came from) */
  applied: AppliedIntervention[];
}

/** Attention in the panel and the editor: the chosen heads, the mode, the current run's data. */
export interface AttentionState {
  layer: number;
  heads: number[];
  /** attention mode: hovering (or the caret on) a token in the annotated editor colours where the heads attend */
  mode: boolean;
  /** the panel's attention section is open (it, or the mode, has the data fetched) */
  open: boolean;
  /** the token attended from: hovered or at the caret (attention mode), or picked in the panel */
  token: number | null;
  /** of the current run's text (`POST attention`); null until asked for */
  data: Attention | null;
  loading: boolean;
  error: string | null;
}

/** The panel's logit lens section: the current token (the last tooltip's, or stepped in the panel) and its lens. */
export interface LensState {
  open: boolean;
  token: number | null;
  column: LensColumn | null;
  loading: boolean;
  error: string | null;
}

/** Lens columns kept (each a few hundred bytes): enough for every token a session hovers. */
const LENS_CACHE_SIZE = 2000;

/** Models with more layers than this get one layer's attention at a time. */
const ALL_LAYERS_UP_TO = 4;

/** Which model the picker shows and requests go to, and what is wrong with it, if anything. */
export interface ModelChoice {
  name: string;
  /** why requests with this model will fail (unknown here, unavailable); null when fine */
  problem: string | null;
}

/**
 * The model to use: the user's pick in this session, else the `defaultModel` setting, else the
 * server's default. A name the server does not list is kept (so the picker shows the truth)
 * with a problem; clearing the setting falls back to the server's default again.
 */
export function chooseModel(pick: string, setting: string, listing: ModelEntry[], serverDefault: string): ModelChoice {
  const name = pick || setting || serverDefault;
  if (!listing.length) {
    return { name, problem: null }; // not listed yet
  }
  const entry = listing.find(m => m.name === name || m.aliases.includes(name));
  if (!entry) {
    const where = pick ? 'picked' : 'set as defaultModel in the settings';
    return { name, problem: `“${name}” (${where}) is not a model this server knows.` };
  }
  return { name: entry.name, problem: entry.loadable ? null : `${entry.name} is unavailable: ${entry.reason}` };
}

export function sameTokens(a: Analysis, b: Analysis): boolean {
  return a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i]);
}

export class LenscopeModel {
  readonly jobs: JobPoller;
  private settingsValue: Settings;
  private listing: ModelEntry[] = [];
  private serverDefault = '';
  private pick = '';
  private saeListing: SaeEntry[] = [];
  /** the SAE picker's choice this session, per model ('none' or a name) */
  private readonly saePicks = new Map<string, string>();
  private readonly featureRequestedSignal = new Signal<this, { model: string; sae: string; index: number }>(this);
  private compareName = '';
  private statusValue: Status = { kind: 'empty' };
  private runValue: Run | null = null;
  private inflight: AbortController | null = null;
  private attributing: AbortController | null = null;
  private attending: AbortController | null = null;
  private attendingLayer = -1;
  private attentionValue: AttentionState = { layer: 0, heads: [0], mode: false, open: false, token: null, data: null, loading: false, error: null };
  private readonly attentionChangedSignal = new Signal<this, AttentionState>(this);
  private lensValue: LensState = { open: false, token: null, column: null, loading: false, error: null };
  private readonly lensChangedSignal = new Signal<this, LensState>(this);
  private readonly lensCache = new Map<string, Promise<LensColumn>>();
  private lensSeq = 0;
  private readonly settingsChangedSignal = new Signal<this, Settings>(this);
  private readonly modelsChangedSignal = new Signal<this, void>(this);
  private readonly statusChangedSignal = new Signal<this, Status>(this);
  private readonly runChangedSignal = new Signal<this, Run | null>(this);
  private readonly neuronRequestedSignal = new Signal<this, { model: string; layer: number; index: number }>(this);
  private interventionsValue: InterventionsState = { items: [], loading: false, error: null, applied: [] };
  private readonly interventionsChangedSignal = new Signal<this, InterventionsState>(this);
  private intervening: AbortController | null = null;
  private interventionSeq = 0;
  private wireShown: InterventionWire[] = [];

  constructor(
    readonly client: LenscopeClient,
    settings: Settings
  ) {
    this.settingsValue = settings;
    this.jobs = new JobPoller(client);
  }

  get settings(): Settings {
    return this.settingsValue;
  }

  set settings(value: Settings) {
    const modelChanged = value.defaultModel !== this.settingsValue.defaultModel || value.sae !== this.settingsValue.sae;
    this.settingsValue = value;
    this.settingsChangedSignal.emit(value);
    if (modelChanged) {
      this.modelsChangedSignal.emit();
    }
    if (this.runValue) {
      this.runChangedSignal.emit(this.runValue); // redrawn with the new colour scale and floor
    }
  }

  get settingsChanged(): ISignal<this, Settings> {
    return this.settingsChangedSignal;
  }

  /** The model list, the choice or the comparison model changed. */
  get modelsChanged(): ISignal<this, void> {
    return this.modelsChangedSignal;
  }

  get statusChanged(): ISignal<this, Status> {
    return this.statusChangedSignal;
  }

  /** A new analysis, a new colouring of it (neuron), or none (cleared). */
  get runChanged(): ISignal<this, Run | null> {
    return this.runChangedSignal;
  }

  /** Someone asked to open a neuron's card (the plugin opens a main-area tab). */
  get neuronRequested(): ISignal<this, { model: string; layer: number; index: number }> {
    return this.neuronRequestedSignal;
  }

  /** Someone asked to open an SAE feature's card (the plugin opens a main-area tab). */
  get featureRequested(): ISignal<this, { model: string; sae: string; index: number }> {
    return this.featureRequestedSignal;
  }

  /** The head choice, the mode, the hovered token or the attention data changed. */
  get attentionChanged(): ISignal<this, AttentionState> {
    return this.attentionChangedSignal;
  }

  get attention(): AttentionState {
    return this.attentionValue;
  }

  /**
   * Change the head choice, the mode, the section's state or the token attended from. The data
   * is fetched (for the current run) when the mode is on or the section open, lazily.
   */
  updateAttention(patch: Partial<Pick<AttentionState, 'layer' | 'heads' | 'mode' | 'open' | 'token'>>): void {
    this.attentionValue = { ...this.attentionValue, ...patch };
    this.attentionChangedSignal.emit(this.attentionValue);
    const a = this.attentionValue;
    if ((a.mode || a.open) && this.runValue && !a.data?.hasLayer(a.layer) && !(this.attending && this.attendingLayer === a.layer)) {
      void this.loadAttention();
    }
  }

  /** Fetch the current run's attention (all layers of a small model, else the chosen layer); a newer call aborts this one. */
  async loadAttention(k = 16): Promise<Attention | null> {
    const run = this.runValue;
    if (!run) {
      return null;
    }
    this.attending?.abort();
    const controller = new AbortController();
    this.attending = controller;
    const nLayers = this.listing.find(m => m.name === run.analysis.model)?.shape?.n_layers ?? 1;
    const layer = Math.min(this.attentionValue.layer, nLayers - 1);
    this.attendingLayer = layer;
    this.attentionValue = { ...this.attentionValue, layer, loading: true, error: null };
    this.attentionChangedSignal.emit(this.attentionValue);
    try {
      const data = await this.client.attention(
        { model: run.analysis.model, text: run.target.text, context: run.target.context, k, layers: nLayers > ALL_LAYERS_UP_TO ? [layer] : null },
        controller.signal
      );
      if (controller.signal.aborted || this.runValue?.analysis !== run.analysis) {
        return null;
      }
      const heads = this.attentionValue.heads.filter(h => h < data.nHeads);
      this.attentionValue = { ...this.attentionValue, data, heads: heads.length ? heads : [0], loading: false };
      this.attentionChangedSignal.emit(this.attentionValue);
      return data;
    } catch (err) {
      if (isAbort(err) || controller.signal.aborted) {
        return null;
      }
      this.attentionValue = { ...this.attentionValue, loading: false, error: describe(err) };
      this.attentionChangedSignal.emit(this.attentionValue);
      return null;
    } finally {
      if (this.attending === controller) {
        this.attending = null;
        if (this.attentionValue.loading) {
          // aborted by a new analysis that has not come back (or failed): nothing is loading now
          this.attentionValue = { ...this.attentionValue, loading: false };
          this.attentionChangedSignal.emit(this.attentionValue);
        }
      }
    }
  }

  /** The lens section's state (open, current token) or its column changed. */
  get lensChanged(): ISignal<this, LensState> {
    return this.lensChangedSignal;
  }

  get lens(): LensState {
    return this.lensValue;
  }

  /**
   * The logit lens at text token `position` of the current run (`POST logit_lens`, one position:
   * one window's forward), fetched lazily and cached by (model, text, context, position), so the
   * tooltip and the panel share one request. A failed fetch is not cached. Null without a run.
   */
  logitLens(position: number): Promise<LensColumn | null> {
    const run = this.runValue;
    if (!run) {
      return Promise.resolve(null);
    }
    const { model } = run.analysis;
    const { text, context } = run.target;
    const key = JSON.stringify([model, text, context, position]);
    let pending = this.lensCache.get(key);
    if (!pending) {
      pending = this.client.logitLens({ model, text, context, positions: [position], top_k: 5 }).then(lens => {
        const column = lens.at(position);
        if (!column) {
          throw new Error(`the server's lens has no token ${position}`);
        }
        return column;
      });
      pending.catch(() => this.lensCache.delete(key));
      this.lensCache.set(key, pending);
      if (this.lensCache.size > LENS_CACHE_SIZE) {
        this.lensCache.delete(this.lensCache.keys().next().value as string);
      }
    }
    return pending;
  }

  /** Open or close the lens section, or make `token` the current one; the open section fetches its lens. */
  updateLens(patch: Partial<Pick<LensState, 'open' | 'token'>>): void {
    const changed = patch.token !== undefined && patch.token !== this.lensValue.token;
    this.lensValue = { ...this.lensValue, ...patch, ...(changed ? { column: null, error: null } : {}) };
    const l = this.lensValue;
    const run = this.runValue;
    const n = run?.analysis.tokens.length ?? 0;
    if (l.open && run && n && (l.token === null || l.token >= n)) {
      this.lensValue = { ...l, token: l.token === null ? 0 : n - 1, column: null, error: null };
    }
    const want = this.lensValue;
    if (!want.open || want.token === null || want.column?.position === want.token || !run) {
      this.lensChangedSignal.emit(this.lensValue);
      return;
    }
    const seq = ++this.lensSeq;
    const token = want.token;
    this.lensValue = { ...want, loading: true, error: null };
    this.lensChangedSignal.emit(this.lensValue);
    this.logitLens(token).then(
      column => {
        if (seq === this.lensSeq && this.runValue === run) {
          this.lensValue = { ...this.lensValue, column, loading: false };
          this.lensChangedSignal.emit(this.lensValue);
        }
      },
      (err: unknown) => {
        if (seq === this.lensSeq && this.runValue === run) {
          this.lensValue = { ...this.lensValue, loading: false, error: describe(err) };
          this.lensChangedSignal.emit(this.lensValue);
        }
      }
    );
  }

  /** A new run (or none): the lens section starts again at its first token (cached columns stay: they are keyed by text). */
  private resetLens(): void {
    ++this.lensSeq;
    this.lensValue = { ...this.lensValue, token: null, column: null, loading: false, error: null };
    this.updateLens({});
  }

  /** A new run (or none): the attention of the old one is dropped (and its request aborted). */
  private resetAttention(): void {
    this.attending?.abort();
    this.attending = null;
    this.attentionValue = { ...this.attentionValue, token: null, data: null, loading: false, error: null };
    this.attentionChangedSignal.emit(this.attentionValue);
  }

  get models(): readonly ModelEntry[] {
    return this.listing;
  }

  get choice(): ModelChoice {
    return chooseModel(this.pick, this.settingsValue.defaultModel, this.listing, this.serverDefault);
  }

  get model(): string {
    return this.choice.name;
  }

  get entry(): ModelEntry | null {
    return this.listing.find(m => m.name === this.model) ?? null;
  }

  /** Choose the model for this session (the picker); '' goes back to the setting / server default. */
  set model(name: string) {
    this.pick = name;
    this.modelsChangedSignal.emit();
  }

  /** Every SAE the server lists (`GET models`), for every model. */
  get saes(): readonly SaeEntry[] {
    return this.saeListing;
  }

  /** The SAE analyze asks for with the current model (the picker's choice for it, else the `sae` setting). */
  get saeChoice(): SaeChoice {
    return chooseSae(this.saePicks.get(this.model), this.settingsValue.sae, this.saeListing, this.model);
  }

  /** Choose the SAE for the current model this session: 'none', a name, or 'auto'. */
  set sae(name: string) {
    this.saePicks.set(this.model, name);
    this.modelsChangedSignal.emit();
  }

  get compareModel(): string {
    return this.compareName;
  }

  set compareModel(name: string) {
    this.compareName = name;
    this.modelsChangedSignal.emit();
  }

  get status(): Status {
    return this.statusValue;
  }

  get run(): Run | null {
    return this.runValue;
  }

  setStatus(status: Status): void {
    this.statusValue = status;
    this.statusChangedSignal.emit(status);
  }

  async refreshModels(): Promise<void> {
    try {
      const listing = await this.client.models();
      this.listing = listing.models;
      this.serverDefault = listing.default;
      this.saeListing = listing.saes ?? [];
      if (this.pick && !this.listing.some(m => m.name === this.pick)) {
        this.pick = ''; // a pick from an earlier listing that is gone
      }
      this.modelsChangedSignal.emit();
    } catch (err) {
      this.setStatus({ kind: 'error', message: describe(err), hint: 'Is the lenscope server extension enabled?' });
    }
  }

  /** Analyze a target; a newer call aborts this one's requests. Resolves with the run, or null. */
  async analyze(target: Target, started = performance.now()): Promise<Run | null> {
    this.inflight?.abort();
    this.attending?.abort();
    const controller = new AbortController();
    this.inflight = controller;
    if (!this.listing.length) {
      await this.refreshModels();
      if (controller.signal.aborted) {
        return null; // a newer call took over meanwhile
      }
    }
    const choice = this.choice;
    if (choice.problem) {
      // the picker above says what is wrong with the model; this says what it meant
      this.setStatus({ kind: 'error', message: `Not analyzed: ${choice.name} cannot be used here.`, hint: 'Pick a model in the list above, or fix defaultModel in Settings → lenscope.' });
      return null;
    }
    const model = choice.name;
    const entry = this.entry;
    this.setStatus({ kind: 'loading', message: entry && entry.state !== 'loaded' ? `Loading ${model} and analyzing…` : `Analyzing with ${model}…` });
    const s = this.settingsValue;
    const request = { text: target.text, context: target.context, top_k: s.topK, top_neurons: s.topNeurons };
    const sae = this.saeChoice.name;
    try {
      const [analysis, other] = await Promise.all([
        this.client.analyze({ ...request, model, ...(sae ? { sae } : {}) }, controller.signal),
        this.compareName ? this.client.analyze({ ...request, model: this.compareName, top_neurons: 0 }, controller.signal) : Promise.resolve(null)
      ]);
      if (controller.signal.aborted) {
        return null;
      }
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
        compare: other ? { analysis: other, clamp: s.compareClamp } : null,
        neuron: null,
        started,
        intervened: null
      };
      this.runValue = run;
      this.resetInterventions();
      this.statusValue = { kind: 'ready' };
      this.runChangedSignal.emit(run);
      this.statusChangedSignal.emit(this.statusValue);
      this.resetAttention();
      this.resetLens();
      if (this.attentionValue.mode || this.attentionValue.open) {
        void this.loadAttention();
      }
      if (entry && entry.state !== 'loaded') {
        this.listing = this.listing.map(m => (m.name === model ? { ...m, state: 'loaded' } : m));
        this.modelsChangedSignal.emit();
      }
      return run;
    } catch (err) {
      if (isAbort(err) || controller.signal.aborted) {
        return null; // superseded by a newer request
      }
      this.setStatus({ kind: 'error', message: describe(err), hint: hintFor(err) });
      return null;
    } finally {
      if (this.inflight === controller) {
        this.inflight = null;
      }
    }
  }

  /**
   * Why the last analysis predicted what it did after text token `position`: the direct logit
   * attribution of `target` (a token id; default the actual next token), from the same model,
   * text and context; with `baseline`, of logit(target) − logit(baseline). A newer call aborts this one; resolves with null when aborted or when the
   * analysis was replaced meanwhile. Errors are thrown (the caller shows them where asked).
   */
  async attribute(position: number, target: number | null = null, top = 10, baseline: number | null = null): Promise<Attribution | null> {
    const run = this.runValue;
    if (!run) {
      return null;
    }
    this.attributing?.abort();
    const controller = new AbortController();
    this.attributing = controller;
    try {
      const result = await this.client.attribute(
        { model: run.analysis.model, text: run.target.text, context: run.target.context, position, target, top, baseline },
        controller.signal
      );
      return controller.signal.aborted || this.runValue?.analysis !== run.analysis ? null : result;
    } catch (err) {
      if (isAbort(err) || controller.signal.aborted) {
        return null;
      }
      throw err;
    } finally {
      if (this.attributing === controller) {
        this.attributing = null;
      }
    }
  }

  /** Colour the last analysis by a neuron's activations (null: back to log-probs). */
  async colourByNeuron(neuron: { layer: number; index: number } | null): Promise<void> {
    const run = this.runValue;
    if (!run) {
      return;
    }
    if (!neuron) {
      this.runValue = { ...run, neuron: null };
      this.runChangedSignal.emit(this.runValue);
      return;
    }
    try {
      const activations = await this.client.activations({
        model: run.analysis.model,
        text: run.target.text,
        context: run.target.context,
        neurons: [neuron]
      });
      if (this.runValue?.analysis === run.analysis) {
        this.runValue = { ...this.runValue, neuron: { ...neuron, activations } };
        this.runChangedSignal.emit(this.runValue);
      }
    } catch (err) {
      this.setStatus({ kind: 'error', message: describe(err), hint: hintFor(err) });
    }
  }

  /** Open a neuron: its card (a tab) and, when there is analyzed text, its activations on it. */
  openNeuron(layer: number, index: number, model = this.runValue?.analysis.model ?? this.model): void {
    this.neuronRequestedSignal.emit({ model, layer, index });
    if (this.runValue && this.runValue.analysis.model === model) {
      void this.colourByNeuron({ layer, index });
    }
  }

  /** Open an SAE feature's card (a tab); its activations on the analyzed text come from the analysis. */
  openFeature(index: number, sae = this.run?.analysis.features?.sae ?? this.saeChoice.name ?? '', model = this.runValue?.analysis.model ?? this.model): void {
    if (sae) {
      this.featureRequestedSignal.emit({ model, sae, index });
    }
  }

  neuronCard(model: string, layer: number, index: number): Promise<NeuronCard> {
    return this.client.neuronCard(model, layer, index);
  }

  neuronInputs(model: string, layer: number, index: number): Promise<NeuronInputs> {
    return this.client.neuronInputs(model, layer, index);
  }

  headCard(model: string, layer: number, head: number): Promise<HeadCard> {
    return this.client.headCard(model, layer, head);
  }

  /** Forget the analysis (and abort one in flight) if it is of this editor's text, e.g. when its file closes. */
  forget(isGone: (target: Target) => boolean): void {
    if (this.runValue && isGone(this.runValue.target)) {
      this.clear();
    }
  }

  clear(): void {
    this.inflight?.abort();
    this.inflight = null;
    this.attributing?.abort();
    this.attributing = null;
    this.runValue = null;
    this.resetInterventions();
    this.runChangedSignal.emit(null);
    this.resetAttention();
    this.resetLens();
    this.setStatus({ kind: 'empty' });
  }

  /** The list of interventions (of the current run) changed, or its re-run started, came back or failed. */
  get interventionsChanged(): ISignal<this, InterventionsState> {
    return this.interventionsChangedSignal;
  }

  get interventions(): InterventionsState {
    return this.interventionsValue;
  }

  /**
   * Add an intervention on the current run's text (default: zero at every position) and re-run.
   * Returns its id, or null with the reason in the list's error (no run; an op the component
   * does not allow).
   */
  addIntervention(what: ComponentRef & Partial<Pick<Intervention, 'op' | 'value' | 'positions' | 'origin' | 'source'>>): number | null {
    const op = what.op ?? 'zero';
    const problem = !this.runValue
      ? 'Analyze some text first: interventions change the current analysis.'
      : op === 'patch'
        ? (typeof what.source === 'string' ? null : 'patch needs a source text')
      : !opsOf(what.component).includes(op)
        ? `${op} is not an op for a ${what.component} (${opsOf(what.component).join(', ')})`
        : null;
    if (problem) {
      this.setInterventions({ error: problem });
      return null;
    }
    const id = ++this.interventionSeq;
    const item: Intervention = {
      id,
      component: what.component,
      layer: what.layer,
      index: what.component === 'neuron' || what.component === 'head' ? what.index : null,
      op,
      value: what.value ?? 0,
      positions: what.positions ?? null,
      enabled: true,
      origin: what.origin ?? null,
      source: op === 'patch' ? what.source : null
    };
    this.setInterventions({ items: [...this.interventionsValue.items, item], error: null });
    this.rerun();
    return id;
  }

  /** Change one intervention (op, value, positions, enabled) and re-run if what is asked changed. */
  updateIntervention(id: number, patch: Partial<Pick<Intervention, 'op' | 'value' | 'positions' | 'enabled'>>): void {
    this.setInterventions({ items: this.interventionsValue.items.map(i => (i.id === id ? { ...i, ...patch } : i)) });
    this.rerun();
  }

  toggleIntervention(id: number, enabled?: boolean): void {
    const item = this.interventionsValue.items.find(i => i.id === id);
    if (item) {
      this.updateIntervention(id, { enabled: enabled ?? !item.enabled });
    }
  }

  removeIntervention(id: number): void {
    this.setInterventions({ items: this.interventionsValue.items.filter(i => i.id !== id) });
    this.rerun();
  }

  clearInterventions(): void {
    this.setInterventions({ items: [], error: null });
    this.rerun();
  }

  /** Say why an intervention was not added (shown in the panel's Interventions section). */
  setInterventionError(message: string): void {
    this.setInterventions({ error: message });
  }

  private setInterventions(patch: Partial<InterventionsState>): void {
    this.interventionsValue = { ...this.interventionsValue, ...patch };
    this.interventionsChangedSignal.emit(this.interventionsValue);
  }

  /** A new run (or none): its interventions start empty; a re-run in flight is aborted. */
  private resetInterventions(): void {
    this.intervening?.abort();
    this.intervening = null;
    this.wireShown = [];
    this.setInterventions({ items: [], loading: false, error: null, applied: [] });
  }

  /**
   * Re-run the current run's text and context with the enabled interventions (aborting the one
   * in flight); none enabled: back to the plain analysis. The plain analysis stays as it was.
   */
  private rerun(): void {
    const run = this.runValue;
    const wire = toWire(this.interventionsValue.items);
    if (!run || sameWire(wire, this.wireShown) && !this.intervening) {
      return;
    }
    this.intervening?.abort();
    this.intervening = null;
    if (!wire.length) {
      this.wireShown = [];
      this.setInterventions({ loading: false, error: null, applied: [] });
      if (run.intervened) {
        this.runValue = { ...run, intervened: null };
        this.runChangedSignal.emit(this.runValue);
      }
      return;
    }
    const controller = new AbortController();
    this.intervening = controller;
    this.setInterventions({ loading: true, error: null });
    const s = this.settingsValue;
    const request = {
      model: run.analysis.model,
      text: run.target.text,
      context: run.target.context,
      top_k: s.topK,
      top_neurons: s.topNeurons,
      interventions: wire
    };
    this.client.analyze(request, controller.signal).then(
      analysis => {
        if (controller.signal.aborted || this.runValue?.analysis !== run.analysis) {
          return;
        }
        this.intervening = null;
        if (!sameTokens(analysis, run.analysis)) {
          this.setInterventions({ loading: false, error: 'The intervened analysis came back with other tokens.' });
          return;
        }
        const d = deltas(run.analysis, analysis);
        const applied = analysis.interventions;
        this.wireShown = wire;
        // the Δ colours replace a neuron's: the intervention is the newer question
        this.runValue = { ...this.runValue, neuron: null, intervened: { analysis, applied, deltas: d, span: deltaSpan(d) } };
        this.setInterventions({ loading: false, error: null, applied });
        this.runChangedSignal.emit(this.runValue);
      },
      (err: unknown) => {
        if (isAbort(err) || controller.signal.aborted) {
          return;
        }
        this.intervening = null;
        this.setInterventions({ loading: false, error: describe(err) });
      }
    );
  }

  /** Build the workspace's neuron index with the chosen model (with `sae`: its feature index, `workspace-<sae>`). */
  async buildIndex(sae: string | null = null, model = this.model): Promise<void> {
    await this.startJob(() =>
      this.client.buildIndex({ model: model || null, paths: ['.'], name: sae ? `workspace-${sae}`.slice(0, 64) : 'workspace', k: this.settingsValue.indexExamples, sae })
    , 'index');
  }

  /** Compare the chosen model with the comparison model over the workspace. */
  async compareCorpus(): Promise<void> {
    await this.startJob(() => {
      if (!this.compareName) {
        throw new Error('pick model B in “Compare with” first');
      }
      return this.client.compareCorpus({
        model_a: this.model || null,
        model_b: this.compareName,
        paths: ['.'],
        clamp: this.settingsValue.compareClamp,
        min_count: this.settingsValue.compareMinCount
      });
    }, 'compare');
  }

  /** A finished comparison's result (also after a reload: the server keeps its jobs). */
  async comparison(jobId: string): Promise<{ job: Job; result: CompareJobResult }> {
    const job = await this.client.job(jobId);
    if (job.state !== 'done' || job.result?.kind !== 'compare') {
      throw new LenscopeApiError(404, 'no_result', `Comparison ${jobId} has no result (${job.state}).`);
    }
    return { job, result: job.result };
  }

  private async startJob(start: () => Promise<Job>, kind: Job['kind']): Promise<void> {
    try {
      this.jobs.track(await start());
    } catch (err) {
      // shown where the job would be: a job that never started
      const failed: Job = {
        id: `failed-${kind}-${Date.now()}`,
        kind,
        model: this.model,
        created: Date.now() / 1000,
        state: 'failed',
        trigger: 'request',
        progress: null,
        result: null,
        error: { code: err instanceof LenscopeApiError ? err.code : 'error', message: describe(err) }
      };
      this.jobs.track(failed);
    }
  }

  dispose(): void {
    this.jobs.dispose();
    Signal.clearData(this);
  }
}
