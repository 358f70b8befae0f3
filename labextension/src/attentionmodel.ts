/**
 * Attention's state (views/attention.ts, editor/attentionmode.ts): the chosen layer and heads,
 * attention mode, whether the panel's section is open, the token attended from, and the current
 * run's `POST attention` (fetched lazily, through one `LatestRequest`: its busy state is
 * `loading`, its error `error`).
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { AnalysisModel } from './analysismodel';
import type { Attention } from './api/attention';
import type { LenscopeClient } from './api/client';
import { describe } from './errors';
import type { PickerModel } from './pickermodel';
import { LatestRequest } from './request';

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

/** Models with more layers than this get one layer's attention at a time. */
const ALL_LAYERS_UP_TO = 4;

export class AttentionModel {
  private value: AttentionState = { layer: 0, heads: [0], mode: false, open: false, token: null, data: null, loading: false, error: null };
  private readonly changedSignal = new Signal<this, AttentionState>(this);
  /** the layer the request in flight asks for */
  private requestLayer = -1;
  private readonly request = new LatestRequest({
    busy: loading => this.set({ loading }),
    failed: err => this.set({ error: describe(err) })
  });

  constructor(
    private readonly client: LenscopeClient,
    private readonly analysis: AnalysisModel,
    private readonly picker: PickerModel
  ) {}

  /** The head choice, the mode, the hovered token or the attention data changed. */
  get changed(): ISignal<this, AttentionState> {
    return this.changedSignal;
  }

  get state(): AttentionState {
    return this.value;
  }

  private set(patch: Partial<AttentionState>): void {
    this.value = { ...this.value, ...patch };
    this.changedSignal.emit(this.value);
  }

  /**
   * Change the head choice, the mode, the section's state or the token attended from. The data
   * is fetched (for the current run) when the mode is on or the section open, lazily.
   */
  update(patch: Partial<Pick<AttentionState, 'layer' | 'heads' | 'mode' | 'open' | 'token'>>): void {
    this.set(patch);
    const a = this.value;
    if ((a.mode || a.open) && this.analysis.run && !a.data?.hasLayer(a.layer) && !(this.request.busy && this.requestLayer === a.layer)) {
      void this.load();
    }
  }

  /** Fetch the current run's attention (all layers of a small model, else the chosen layer); a newer call aborts this one. */
  async load(k = 16): Promise<Attention | null> {
    const run = this.analysis.run;
    if (!run) {
      return null;
    }
    const nLayers = this.picker.models.find(m => m.name === run.analysis.model)?.shape?.n_layers ?? 1;
    const layer = Math.min(this.value.layer, nLayers - 1);
    this.requestLayer = layer;
    this.value = { ...this.value, layer, error: null }; // shown with `loading` as the request starts
    const data = await this.request.run(signal =>
      this.client.attention({ model: run.analysis.model, text: run.target.text, context: run.target.context, k, layers: nLayers > ALL_LAYERS_UP_TO ? [layer] : null }, signal)
    );
    if (!data || this.analysis.run?.analysis !== run.analysis) {
      return null;
    }
    const heads = this.value.heads.filter(h => h < data.nHeads);
    this.set({ data, heads: heads.length ? heads : [0] });
    return data;
  }

  /** A new analysis starts: the old run's attention request is of no use. */
  abort(): void {
    this.request.abort();
  }

  /** A new run (or none): the attention of the old one is dropped (and its request aborted); the mode or open section fetches the new one's. */
  reset(): void {
    this.request.abort();
    this.set({ token: null, data: null, loading: false, error: null });
    if (this.analysis.run && (this.value.mode || this.value.open)) {
      void this.load();
    }
  }

  dispose(): void {
    this.request.abort();
    Signal.clearData(this);
  }
}
