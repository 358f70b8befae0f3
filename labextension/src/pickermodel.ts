/**
 * The model pickers' state (views/picker.ts, views/saepicker.ts): the server's model and SAE
 * lists (`GET models`), the model chosen this session (over the `defaultModel` setting and the
 * server's default), the SAE chosen per model, and the comparison model. `modelsChanged` says
 * that any of them changed.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { SaeEntry } from './api/features';
import type { IndexEntry, LenscopeClient, ModelEntry } from './api/client';
import { describe } from './errors';
import { LatestRequest } from './request';
import { chooseSae, SaeChoice } from './saes';
import type { Settings } from './settings';

/**
 * The indexes that can answer for `model` (with `sae`: that SAE's feature indexes), most tokens
 * first: the shipped index over a small workspace index (not the newest first).
 */
export function indexesFor(listing: readonly IndexEntry[], model: string, sae: string | null = null): IndexEntry[] {
  return listing
    .filter(e => e.state === 'ok' && e.model === model && (e.sae ?? null) === sae)
    .sort((a, b) => (b.tokens ?? 0) - (a.tokens ?? 0));
}

/** The index cards and searches read: the one picked this session while it is listed, else the one with the most tokens. */
export function chooseIndex(listing: readonly IndexEntry[], model: string, sae: string | null, pick: string | undefined): string | null {
  const found = indexesFor(listing, model, sae);
  return (pick && found.some(e => e.name === pick) ? pick : found[0]?.name) ?? null;
}

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

function indexKey(model: string, sae: string | null): string {
  return `${model}\u0000${sae ?? ''}`;
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
  /** `GET indexes`, and the index picked per model (and SAE) this session */
  private indexListing: IndexEntry[] = [];
  private readonly indexPicks = new Map<string, string>();
  private readonly indexChangedSignal = new Signal<this, void>(this);
  private readonly indexRequest = new LatestRequest();
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

  /** The index list or an index choice changed: cards and searches read another index. */
  get indexChanged(): ISignal<this, void> {
    return this.indexChangedSignal;
  }

  /** The indexes of `model` (with `sae`: its feature indexes), most tokens first. */
  indexesOf(model: string, sae: string | null = null): IndexEntry[] {
    return indexesFor(this.indexListing, model, sae);
  }

  /** The index cards and searches of `model` read (null: none known; the server picks). */
  indexFor(model: string, sae: string | null = null): string | null {
    return chooseIndex(this.indexListing, model, sae, this.indexPicks.get(indexKey(model, sae)));
  }

  /** Read `name` for `model`'s cards and searches this session. */
  setIndex(model: string, sae: string | null, name: string): void {
    if (this.indexFor(model, sae) !== name) {
      this.indexPicks.set(indexKey(model, sae), name);
      this.indexChangedSignal.emit();
    }
  }

  /** `GET indexes` again (after an index job, or at start); says so when what cards read changes. */
  async refreshIndexes(): Promise<void> {
    const listing = await this.indexRequest.run(() => this.client.indexes()).catch(() => null);
    if (listing && JSON.stringify(listing.indexes) !== JSON.stringify(this.indexListing)) {
      this.indexListing = listing.indexes;
      this.indexChangedSignal.emit();
    }
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
