/**
 * The logit lens' state (views/logitlens.ts, the tooltip's `lens:` line): a cache of
 * `POST logit_lens` columns by (model, text, context, position), shared by the tooltip and the
 * panel, and the panel section's state (open, the current token, its column). The section's
 * request goes through one `LatestRequest`: a newer token supersedes it; its busy state is
 * `loading`, its error `error`.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { AnalysisModel } from './analysismodel';
import type { LenscopeClient } from './api/client';
import type { LensColumn } from './api/logitlens';
import { describe } from './errors';
import { LatestRequest } from './request';

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

export class LensModel {
  private value: LensState = { open: false, token: null, column: null, loading: false, error: null };
  private readonly changedSignal = new Signal<this, LensState>(this);
  private readonly cache = new Map<string, Promise<LensColumn>>();
  private readonly request = new LatestRequest({
    busy: loading => this.set({ loading }),
    failed: err => this.set({ error: describe(err) })
  });

  constructor(
    private readonly client: LenscopeClient,
    private readonly analysis: AnalysisModel
  ) {}

  /** The lens section's state (open, current token) or its column changed. */
  get changed(): ISignal<this, LensState> {
    return this.changedSignal;
  }

  get state(): LensState {
    return this.value;
  }

  private set(patch: Partial<LensState>): void {
    this.value = { ...this.value, ...patch };
    this.changedSignal.emit(this.value);
  }

  /**
   * The logit lens at text token `position` of the current run (`POST logit_lens`, one position:
   * one window's forward), fetched lazily and cached by (model, text, context, position), so the
   * tooltip and the panel share one request. A failed fetch is not cached. Null without a run.
   */
  column(position: number): Promise<LensColumn | null> {
    const run = this.analysis.run;
    if (!run) {
      return Promise.resolve(null);
    }
    const { model } = run.analysis;
    const { text, context } = run.target;
    const key = JSON.stringify([model, text, context, position]);
    let pending = this.cache.get(key);
    if (!pending) {
      pending = this.client.logitLens({ model, text, context, positions: [position], top_k: 5 }).then(lens => {
        const column = lens.at(position);
        if (!column) {
          throw new Error(`the server's lens has no token ${position}`);
        }
        return column;
      });
      pending.catch(() => this.cache.delete(key));
      this.cache.set(key, pending);
      if (this.cache.size > LENS_CACHE_SIZE) {
        this.cache.delete(this.cache.keys().next().value as string);
      }
    }
    return pending;
  }

  /** Open or close the lens section, or make `token` the current one; the open section fetches its lens. */
  update(patch: Partial<Pick<LensState, 'open' | 'token'>>): void {
    const changed = patch.token !== undefined && patch.token !== this.value.token;
    this.value = { ...this.value, ...patch, ...(changed ? { column: null, error: null } : {}) };
    const l = this.value;
    const run = this.analysis.run;
    const n = run?.analysis.tokens.length ?? 0;
    if (l.open && run && n && (l.token === null || l.token >= n)) {
      this.value = { ...l, token: l.token === null ? 0 : n - 1, column: null, error: null };
    }
    const want = this.value;
    if (!want.open || want.token === null || want.column?.position === want.token || !run) {
      this.changedSignal.emit(this.value);
      return;
    }
    const token = want.token;
    this.value = { ...want, error: null }; // shown with `loading` as the request starts
    // the cached promise is shared with the tooltip: a superseded one is dropped here, not aborted
    void this.request.run(() => this.column(token)).then(column => {
      if (column && this.analysis.run?.analysis === run.analysis) {
        this.set({ column });
      }
    });
  }

  /** A new run (or none): the section starts again at its first token (cached columns stay: they are keyed by text). */
  reset(): void {
    this.request.abort();
    this.value = { ...this.value, token: null, column: null, loading: false, error: null };
    this.update({});
  }

  dispose(): void {
    this.request.abort();
    Signal.clearData(this);
  }
}
