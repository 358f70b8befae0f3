/**
 * lenscope's frontend model, `LenscopeModel` (what `ILenscope` gives other plugins): the settings,
 * the API client, jobs (one shared poller), and one state per view, each in its own file:
 *
 * - `PickerModel` (pickermodel.ts): the model and SAE lists, the choices, the comparison model;
 * - `AnalysisModel` (analysismodel.ts): the status and the current run (`analyze`);
 * - `ColouringModel` (colouringmodel.ts): a neuron's colouring of the run, cards asked for;
 * - `InterventionsModel` (interventionsmodel.ts): the run's interventions and their re-run;
 * - `AttentionModel` (attentionmodel.ts): heads, mode, the run's attention;
 * - `LensModel` (lensmodel.ts): the logit lens' cache and the panel section;
 * - `WhyModel` (whymodel.ts): the tooltip's `POST attribute`.
 *
 * Every request goes through a `LatestRequest` (request.ts). This class holds no view's state:
 * it wires the parts (a new run resets the interventions, attention and the lens) and keeps the
 * one API the views and other plugins use. It knows nothing of views: they connect to its
 * signals. Editor decorations follow `runChanged` (see `editor/inline.ts`).
 */
import { ISignal, Signal } from '@lumino/signaling';

import { AnalysisModel, Run, Status } from './analysismodel';
import type { Attention } from './api/attention';
import type { Attribution } from './api/attribution';
import type { SaeEntry } from './api/features';
import type { LensColumn } from './api/logitlens';
import { CompareJobResult, HeadCard, HeadCardQuestions, IndexEntry, Job, LenscopeApiError, LenscopeClient, ModelEntry, NeuronCard, NeuronInputs } from './api/client';
import { AttentionModel, AttentionState } from './attentionmodel';
import { ColouringModel } from './colouringmodel';
import type { ComponentRef, Intervention } from './interventions';
import { InterventionsModel, InterventionsState } from './interventionsmodel';
import { JobPoller } from './jobs';
import { LensModel, LensState } from './lensmodel';
import { ModelChoice, PickerModel } from './pickermodel';
import type { SaeChoice } from './saes';
import type { Settings } from './settings';
import type { Target } from './target';
import { WhyModel } from './whymodel';

export { chooseModel } from './pickermodel';
export type { ModelChoice } from './pickermodel';
export { sameTokens } from './analysismodel';
export type { Intervened, Run, Status } from './analysismodel';
export type { AttentionState } from './attentionmodel';
export type { InterventionsState } from './interventionsmodel';
export type { LensState } from './lensmodel';

export class LenscopeModel {
  readonly jobs: JobPoller;
  private settingsValue: Settings;
  private readonly settingsChangedSignal = new Signal<this, Settings>(this);
  private readonly picker: PickerModel;
  private readonly analysis: AnalysisModel;
  private readonly colouring: ColouringModel;
  private readonly interventionsModel: InterventionsModel;
  private readonly attentionModel: AttentionModel;
  private readonly lensModel: LensModel;
  private readonly why: WhyModel;

  constructor(
    readonly client: LenscopeClient,
    settings: Settings
  ) {
    this.settingsValue = settings;
    this.jobs = new JobPoller(client);
    const current = () => this.settingsValue;
    this.picker = new PickerModel(client, current, message => this.setStatus({ kind: 'error', message, hint: 'Is the lenscope server extension enabled?' }));
    this.analysis = new AnalysisModel(client, current, this.picker, {
      starting: () => this.attentionModel.abort(),
      replacing: () => {
        this.colouring.abort();
        this.interventionsModel.reset();
      },
      replaced: () => {
        this.attentionModel.reset();
        this.lensModel.reset();
      }
    });
    this.colouring = new ColouringModel(client, this.analysis, this.picker);
    this.interventionsModel = new InterventionsModel(client, current, this.analysis);
    this.attentionModel = new AttentionModel(client, this.analysis, this.picker);
    this.lensModel = new LensModel(client, this.analysis);
    this.why = new WhyModel(client, this.analysis);
    // a finished index job (a build, an update after a save) may add an index to pick
    this.jobs.changed.connect((_, view) => {
      if (view.job.kind === 'index' && view.job.state === 'done') {
        void this.picker.refreshIndexes();
      }
    });
    void this.picker.refreshIndexes();
  }

  // settings

  get settings(): Settings {
    return this.settingsValue;
  }

  set settings(value: Settings) {
    const modelChanged = value.defaultModel !== this.settingsValue.defaultModel || value.sae !== this.settingsValue.sae;
    this.settingsValue = value;
    this.settingsChangedSignal.emit(value);
    if (modelChanged) {
      this.picker.emitChanged();
    }
    this.analysis.redraw(); // with the new colour scale and floor
  }

  get settingsChanged(): ISignal<this, Settings> {
    return this.settingsChangedSignal;
  }

  // the pickers (PickerModel)

  /** The model list, the choice or the comparison model changed. */
  get modelsChanged(): ISignal<PickerModel, void> {
    return this.picker.changed;
  }

  get models(): readonly ModelEntry[] {
    return this.picker.models;
  }

  get choice(): ModelChoice {
    return this.picker.choice;
  }

  get model(): string {
    return this.picker.model;
  }

  /** Choose the model for this session (the picker); '' goes back to the setting / server default. */
  set model(name: string) {
    const before = this.picker.model;
    this.picker.model = name;
    if (this.picker.model !== before) {
      this.analysis.rerun(); // the current analysis answers with the model now picked
    }
  }

  get entry(): ModelEntry | null {
    return this.picker.entry;
  }

  /** Every SAE the server lists (`GET models`), for every model. */
  get saes(): readonly SaeEntry[] {
    return this.picker.saes;
  }

  /** The SAE analyze asks for with the current model (the picker's choice for it, else the `sae` setting). */
  get saeChoice(): SaeChoice {
    return this.picker.saeChoice;
  }

  /** Choose the SAE for the current model this session: 'none', a name, or 'auto'. */
  set sae(name: string) {
    this.picker.sae = name;
    this.analysis.rerun();
  }

  get compareModel(): string {
    return this.picker.compareModel;
  }

  set compareModel(name: string) {
    if (name !== this.picker.compareModel) {
      this.picker.compareModel = name;
      this.analysis.rerun();
    }
  }

  refreshModels(): Promise<void> {
    return this.picker.refresh();
  }

  // the analysis (AnalysisModel)

  get statusChanged(): ISignal<AnalysisModel, Status> {
    return this.analysis.statusChanged;
  }

  /** A new analysis, a new colouring of it (neuron, interventions), or none (cleared). */
  get runChanged(): ISignal<AnalysisModel, Run | null> {
    return this.analysis.runChanged;
  }

  get status(): Status {
    return this.analysis.status;
  }

  get run(): Run | null {
    return this.analysis.run;
  }

  setStatus(status: Status): void {
    this.analysis.setStatus(status);
  }

  /** Analyze a target; a newer call aborts this one's requests. Resolves with the run, or null. */
  analyze(target: Target, started = performance.now()): Promise<Run | null> {
    return this.analysis.analyze(target, started);
  }

  /** Forget the analysis (and abort one in flight) if it is of this editor's text, e.g. when its file closes. */
  forget(isGone: (target: Target) => boolean): void {
    if (this.analysis.run && isGone(this.analysis.run.target)) {
      this.clear();
    }
  }

  clear(): void {
    this.why.abort();
    this.analysis.clear();
  }

  // neurons and features (ColouringModel)

  /** Someone asked to open a neuron's card (the plugin opens a main-area tab). */
  get neuronRequested(): ISignal<ColouringModel, { model: string; layer: number; index: number }> {
    return this.colouring.neuronRequested;
  }

  /** Someone asked to open an SAE feature's card (the plugin opens a main-area tab). */
  get featureRequested(): ISignal<ColouringModel, { model: string; sae: string; index: number }> {
    return this.colouring.featureRequested;
  }

  /** Colour the last analysis by a neuron's activations (null: back to log-probs). */
  colourByNeuron(neuron: { layer: number; index: number } | null): Promise<void> {
    return this.colouring.colourByNeuron(neuron);
  }

  /** Open a neuron: its card (a tab) and, when there is analyzed text, its activations on it. */
  openNeuron(layer: number, index: number, model?: string): void {
    this.colouring.openNeuron(layer, index, model);
  }

  /** Colour the last analysis by an SAE feature's activations (`POST unit_activations`; null: back to log-probs). */
  colourByFeature(feature: { sae: string; index: number } | null): Promise<void> {
    return this.colouring.colourByFeature(feature);
  }

  /** Open an SAE feature: its card (a tab) and, when there is analyzed text of its model, the text coloured by it. */
  openFeature(index: number, sae?: string, model?: string): void {
    this.colouring.openFeature(index, sae, model);
  }

  /** A neuron's card from the index picked for its model (`indexFor`). */
  neuronCard(model: string, layer: number, index: number): Promise<NeuronCard> {
    return this.client.neuronCard(model, layer, index, this.picker.indexFor(model));
  }

  // the index picker (PickerModel): which index cards and searches read

  /** The index list or an index choice changed (open cards fetch themselves again). */
  get indexChanged(): ISignal<PickerModel, void> {
    return this.picker.indexChanged;
  }

  /** The indexes of `model` (with `sae`: its feature indexes), most tokens first. */
  indexesOf(model: string, sae: string | null = null): IndexEntry[] {
    return this.picker.indexesOf(model, sae);
  }

  /** The index `model`'s cards and searches read: the one picked, else the one with the most tokens. */
  indexFor(model: string, sae: string | null = null): string | null {
    return this.picker.indexFor(model, sae);
  }

  setIndex(model: string, sae: string | null, name: string): void {
    this.picker.setIndex(model, sae, name);
  }

  refreshIndexes(): Promise<void> {
    return this.picker.refreshIndexes();
  }

  neuronInputs(model: string, layer: number, index: number): Promise<NeuronInputs> {
    return this.client.neuronInputs(model, layer, index);
  }

  headCard(model: string, layer: number, head: number, ask: HeadCardQuestions = {}): Promise<HeadCard> {
    return this.client.headCard(model, layer, head, ask);
  }

  // the why view (WhyModel)

  /** `POST attribute` for the current run (see `WhyModel.attribute`); errors are thrown. */
  attribute(position: number, target: number | null = null, top = 10, baseline: number | null = null): Promise<Attribution | null> {
    return this.why.attribute(position, target, top, baseline);
  }

  // attention (AttentionModel)

  /** The head choice, the mode, the hovered token or the attention data changed. */
  get attentionChanged(): ISignal<AttentionModel, AttentionState> {
    return this.attentionModel.changed;
  }

  get attention(): AttentionState {
    return this.attentionModel.state;
  }

  /** Change the head choice, the mode, the section's state or the token attended from (fetches lazily). */
  updateAttention(patch: Partial<Pick<AttentionState, 'layer' | 'heads' | 'mode' | 'open' | 'token'>>): void {
    this.attentionModel.update(patch);
  }

  /** Fetch the current run's attention; a newer call aborts this one. */
  loadAttention(k = 16): Promise<Attention | null> {
    return this.attentionModel.load(k);
  }

  // the logit lens (LensModel)

  /** The lens section's state (open, current token) or its column changed. */
  get lensChanged(): ISignal<LensModel, LensState> {
    return this.lensModel.changed;
  }

  get lens(): LensState {
    return this.lensModel.state;
  }

  /** The logit lens at text token `position` of the current run, cached (shared by the tooltip and the panel). */
  logitLens(position: number): Promise<LensColumn | null> {
    return this.lensModel.column(position);
  }

  /** Open or close the lens section, or make `token` the current one; the open section fetches its lens. */
  updateLens(patch: Partial<Pick<LensState, 'open' | 'token'>>): void {
    this.lensModel.update(patch);
  }

  // interventions (InterventionsModel)

  /** The list of interventions (of the current run) changed, or its re-run started, came back or failed. */
  get interventionsChanged(): ISignal<InterventionsModel, InterventionsState> {
    return this.interventionsModel.changed;
  }

  get interventions(): InterventionsState {
    return this.interventionsModel.state;
  }

  /** Add an intervention on the current run's text and re-run; its id, or null with the reason in the list's error. */
  addIntervention(what: ComponentRef & Partial<Pick<Intervention, 'op' | 'value' | 'positions' | 'origin' | 'source'>>): number | null {
    return this.interventionsModel.add(what);
  }

  /** Change one intervention (op, value, positions, enabled) and re-run if what is asked changed. */
  updateIntervention(id: number, patch: Partial<Pick<Intervention, 'op' | 'value' | 'positions' | 'enabled'>>): void {
    this.interventionsModel.update(id, patch);
  }

  toggleIntervention(id: number, enabled?: boolean): void {
    this.interventionsModel.toggle(id, enabled);
  }

  removeIntervention(id: number): void {
    this.interventionsModel.remove(id);
  }

  clearInterventions(): void {
    this.interventionsModel.clear();
  }

  /** Say why an intervention was not added (shown in the panel's Interventions section). */
  setInterventionError(message: string): void {
    this.interventionsModel.setError(message);
  }

  // jobs (JobPoller)

  /** Build the workspace's neuron index with the chosen model (with `sae`: its feature index, `workspace-<sae>`). */
  async buildIndex(sae: string | null = null, model = this.model): Promise<void> {
    await this.jobs.start(
      () => this.client.buildIndex({ model: model || null, paths: ['.'], name: sae ? `workspace-${sae}`.slice(0, 64) : 'workspace', k: this.settingsValue.indexExamples, sae }),
      'index',
      this.model
    );
  }

  /** Compare the chosen model with the comparison model over the workspace. */
  async compareCorpus(): Promise<void> {
    await this.jobs.start(
      () => {
        if (!this.compareModel) {
          throw new Error('pick model B in “Compare with” first');
        }
        return this.client.compareCorpus({
          model_a: this.model || null,
          model_b: this.compareModel,
          paths: ['.'],
          clamp: this.settingsValue.compareClamp,
          min_count: this.settingsValue.compareMinCount
        });
      },
      'compare',
      this.model
    );
  }

  /** A finished comparison's result (also after a reload: the server keeps its jobs). */
  async comparison(jobId: string): Promise<{ job: Job; result: CompareJobResult }> {
    const job = await this.client.job(jobId);
    if (job.state !== 'done' || job.result?.kind !== 'compare') {
      throw new LenscopeApiError(404, 'no_result', `Comparison ${jobId} has no result (${job.state}).`);
    }
    return { job, result: job.result };
  }

  dispose(): void {
    this.jobs.dispose();
    this.why.abort();
    this.lensModel.dispose();
    this.attentionModel.dispose();
    this.interventionsModel.dispose();
    this.colouring.dispose();
    this.analysis.dispose();
    this.picker.dispose();
    Signal.clearData(this);
  }
}
