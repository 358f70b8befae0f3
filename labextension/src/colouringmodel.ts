/**
 * Neurons and SAE features asked for (views/neurons.ts, the tooltip's chips, the cards): opening
 * a neuron's or a feature's card (`neuronRequested`, `featureRequested`: the plugin opens a
 * main-area tab) and colouring the analyzed text by a neuron's activations (`POST activations`)
 * or an SAE feature's (`POST unit_activations`), through one `LatestRequest`: a newer colouring
 * aborts the one in flight; its error is the analysis status. The colouring itself is the run's
 * `neuron` (a `UnitColouring`).
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { AnalysisModel } from './analysismodel';
import type { LenscopeClient } from './api/client';
import { featureLabel } from './api/features';
import { describe, hintFor } from './errors';
import type { PickerModel } from './pickermodel';
import { LatestRequest } from './request';

export class ColouringModel {
  private readonly neuronRequestedSignal = new Signal<this, { model: string; layer: number; index: number }>(this);
  private readonly featureRequestedSignal = new Signal<this, { model: string; sae: string; index: number }>(this);
  private readonly request: LatestRequest;

  constructor(
    private readonly client: LenscopeClient,
    private readonly analysis: AnalysisModel,
    private readonly picker: PickerModel
  ) {
    this.request = new LatestRequest({ failed: err => analysis.setStatus({ kind: 'error', message: describe(err), hint: hintFor(err) }) });
  }

  /** Someone asked to open a neuron's card (the plugin opens a main-area tab). */
  get neuronRequested(): ISignal<this, { model: string; layer: number; index: number }> {
    return this.neuronRequestedSignal;
  }

  /** Someone asked to open an SAE feature's card (the plugin opens a main-area tab). */
  get featureRequested(): ISignal<this, { model: string; sae: string; index: number }> {
    return this.featureRequestedSignal;
  }

  /** Colour the last analysis by a neuron's activations (null: back to log-probs). */
  async colourByNeuron(neuron: { layer: number; index: number } | null): Promise<void> {
    const run = this.analysis.run;
    if (!run) {
      return;
    }
    if (!neuron) {
      this.request.abort();
      this.analysis.update({ ...run, neuron: null });
      return;
    }
    const activations = await this.request.run(signal =>
      this.client.activations({ model: run.analysis.model, text: run.target.text, context: run.target.context, neurons: [neuron] }, signal)
    );
    const now = this.analysis.run;
    if (activations && now?.analysis === run.analysis) {
      this.analysis.update({ ...now, neuron: { kind: 'neuron', ...neuron, sae: null, name: `L${neuron.layer}.N${neuron.index}`, activations } });
    }
  }

  /**
   * Colour the last analysis by SAE feature `index` (`POST unit_activations`, its activation at
   * every token, not only where it is among a token's top features); null: back to log-probs.
   */
  async colourByFeature(feature: { sae: string; index: number } | null): Promise<void> {
    const run = this.analysis.run;
    if (!run) {
      return;
    }
    if (!feature) {
      this.request.abort();
      this.analysis.update({ ...run, neuron: null });
      return;
    }
    const name = featureLabel(feature.index);
    const activations = await this.request.run(signal =>
      this.client.unitActivations({ model: run.analysis.model, text: run.target.text, context: run.target.context, units: [name], sae: feature.sae }, signal)
    );
    const now = this.analysis.run;
    if (activations && now?.analysis === run.analysis) {
      this.analysis.update({ ...now, neuron: { kind: 'feature', layer: null, index: feature.index, sae: feature.sae, name, activations } });
    }
  }

  /** Open a neuron: its card (a tab) and, when there is analyzed text, its activations on it. */
  openNeuron(layer: number, index: number, model = this.analysis.run?.analysis.model ?? this.picker.model): void {
    this.neuronRequestedSignal.emit({ model, layer, index });
    if (this.analysis.run && this.analysis.run.analysis.model === model) {
      void this.colourByNeuron({ layer, index });
    }
  }

  /** Open an SAE feature: its card (a tab) and, when there is analyzed text of that model, the text coloured by it. */
  openFeature(index: number, sae = this.analysis.run?.analysis.features?.sae ?? this.picker.saeChoice.name ?? '', model = this.analysis.run?.analysis.model ?? this.picker.model): void {
    if (sae) {
      this.featureRequestedSignal.emit({ model, sae, index });
      if (this.analysis.run && this.analysis.run.analysis.model === model) {
        void this.colourByFeature({ sae, index });
      }
    }
  }

  /** The run went (or a new one came): a colouring in flight is of the old one. */
  abort(): void {
    this.request.abort();
  }

  dispose(): void {
    this.request.abort();
    Signal.clearData(this);
  }
}
