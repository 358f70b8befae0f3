/**
 * The model pickers' state (views/picker.ts, views/saepicker.ts): the server's model and SAE
 * lists (`GET models`), the model chosen this session (over the `defaultModel` setting and the
 * server's default), the SAE chosen per model, and the comparison model. `modelsChanged` says
 * that any of them changed.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { SaeEntry } from './api/features';
import type { LenscopeClient, ModelEntry } from './api/client';
import { describe } from './errors';
import { LatestRequest } from './request';
import { chooseSae, SaeChoice } from './saes';
import type { Settings } from './settings';

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

export class PickerModel {
  private listing: ModelEntry[] = [];
  private serverDefault = '';
  private pick = '';
  private saeListing: SaeEntry[] = [];
  /** the SAE picker's choice this session, per model ('none' or a name) */
  private readonly saePicks = new Map<string, string>();
  private compareName = '';
  private readonly changedSignal = new Signal<this, void>(this);
  /** `GET models`; its error is the analysis status (`failed`) */
  private readonly listingRequest: LatestRequest;
  /** the refresh in flight: a second caller waits for it (a superseded refresh would leave `analyze` without a list) */
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly client: LenscopeClient,
    private readonly settings: () => Settings,
    failed: (message: string) => void
  ) {
    this.listingRequest = new LatestRequest({ failed: err => failed(describe(err)) });
  }

  /** The model list, the choice or the comparison model changed. */
  get changed(): ISignal<this, void> {
    return this.changedSignal;
  }

  /** Say that the choice changed (the `defaultModel` or `sae` setting did). */
  emitChanged(): void {
    this.changedSignal.emit();
  }

  get models(): readonly ModelEntry[] {
    return this.listing;
  }

  get choice(): ModelChoice {
    return chooseModel(this.pick, this.settings().defaultModel, this.listing, this.serverDefault);
  }

  get model(): string {
    return this.choice.name;
  }

  /** Choose the model for this session (the picker); '' goes back to the setting / server default. */
  set model(name: string) {
    this.pick = name;
    this.changedSignal.emit();
  }

  get entry(): ModelEntry | null {
    return this.listing.find(m => m.name === this.model) ?? null;
  }

  /** `model` answered an analysis: it is loaded in the worker now. */
  markLoaded(model: string): void {
    const entry = this.listing.find(m => m.name === model);
    if (entry && entry.state !== 'loaded') {
      this.listing = this.listing.map(m => (m.name === model ? { ...m, state: 'loaded' } : m));
      this.changedSignal.emit();
    }
  }

  /** Every SAE the server lists (`GET models`), for every model. */
  get saes(): readonly SaeEntry[] {
    return this.saeListing;
  }

  /** The SAE analyze asks for with the current model (the picker's choice for it, else the `sae` setting). */
  get saeChoice(): SaeChoice {
    return chooseSae(this.saePicks.get(this.model), this.settings().sae, this.saeListing, this.model);
  }

  /** Choose the SAE for the current model this session: 'none', a name, or 'auto'. */
  set sae(name: string) {
    this.saePicks.set(this.model, name);
    this.changedSignal.emit();
  }

  get compareModel(): string {
    return this.compareName;
  }

  set compareModel(name: string) {
    this.compareName = name;
    this.changedSignal.emit();
  }

  /** Ask the server for its models and SAEs again (a call while one is in flight shares it). */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      const done = (this.refreshing = this.listingRequest.run(() => this.client.models()).then(listing => {
        if (listing) {
          this.listing = listing.models;
          this.serverDefault = listing.default;
          this.saeListing = listing.saes ?? [];
          if (this.pick && !this.listing.some(m => m.name === this.pick)) {
            this.pick = ''; // a pick from an earlier listing that is gone
          }
          this.changedSignal.emit();
        }
      }).finally(() => {
        if (this.refreshing === done) {
          this.refreshing = null;
        }
      }));
    }
    return this.refreshing;
  }

  dispose(): void {
    Signal.clearData(this);
  }
}
