/**
 * The patching tab's state: the clean text (set by `lenscope:patch-set-clean`), the corrupted
 * one (`lenscope:patch-run`, which also makes it the current analysis, so a cell's patch shows
 * inline as an intervention's Δ), the typed target / baseline, the `POST patch` result and the
 * cell applied. Both texts go without context: `POST patch` takes none.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { Analysis } from './api/analysis';
import type { PatchRequest } from './api/client';
import { describe } from './errors';
import type { LenscopeModel } from './model';
import { cellIntervention, defaultPair, PatchCell, PatchGrid } from './patching';
import { LatestRequest } from './request';
import { resolveToken } from './resolve';
import type { Target } from './target';

export interface PatchSide {
  target: Target;
  /** its analysis (no context), for the default target / baseline and the typed tokens' strings */
  analysis: Analysis | null;
}

export interface PatchingState {
  clean: PatchSide | null;
  corrupted: PatchSide | null;
  /** what is typed in the target / baseline inputs */
  targetText: string;
  baselineText: string;
  /** the request of the shown grid */
  request: PatchRequest | null;
  grid: PatchGrid | null;
  loading: boolean;
  /** the server's refusal, or why nothing was asked (no clean text, an unknown token) */
  error: string | null;
  /** the cell applied inline (outlined) */
  applied: PatchCell | null;
}

const EMPTY: PatchingState = { clean: null, corrupted: null, targetText: '', baselineText: '', request: null, grid: null, loading: false, error: null, applied: null };

export class PatchingModel {
  private value: PatchingState = EMPTY;
  private readonly changedSignal = new Signal<this, PatchingState>(this);
  /** `POST patch`: a newer ask aborts the one in flight; its busy state is `loading`, its error `error` */
  private readonly request = new LatestRequest({
    busy: loading => this.set({ loading }),
    failed: err => this.set({ request: null, grid: null, applied: null, error: describe(err) })
  });

  constructor(private readonly lenscope: LenscopeModel) {}

  get state(): PatchingState {
    return this.value;
  }

  get changed(): ISignal<this, PatchingState> {
    return this.changedSignal;
  }

  private set(patch: Partial<PatchingState>): void {
    this.value = { ...this.value, ...patch };
    this.changedSignal.emit(this.value);
  }

  private async analyzeText(text: string): Promise<Analysis | null> {
    const s = this.lenscope.settings;
    try {
      return await this.lenscope.client.analyze({ model: this.lenscope.model, text, context: '', top_k: s.topK, top_neurons: 0 });
    } catch {
      return null; // only for the defaults: the patch request says what is wrong
    }
  }

  /** The selection (cell, file) becomes the clean text; it is analyzed for its next-token prediction. */
  async setClean(target: Target): Promise<void> {
    const side: PatchSide = { target: { ...target, context: '' }, analysis: null };
    this.set({ clean: side, grid: null, request: null, applied: null, error: null });
    const analysis = await this.analyzeText(side.target.text);
    if (this.value.clean === side) {
      this.set({ clean: { ...side, analysis } });
    }
  }

  /**
   * Patch the clean text into `target` (the corrupted text): it is analyzed as the current run
   * (without context), the target / baseline default to the two texts' top-1 next tokens, and
   * `POST patch` is asked.
   */
  async run(target: Target): Promise<void> {
    const corrupted: Target = { ...target, context: '' };
    const clean = this.value.clean;
    if (!clean) {
      this.set({ corrupted: { target: corrupted, analysis: null }, grid: null, request: null, applied: null, error: 'No clean text yet: select it and run “lenscope: Use the selection as the clean text (patching)” first.' });
      return;
    }
    this.set({ corrupted: { target: corrupted, analysis: null }, grid: null, request: null, applied: null, error: null, loading: true });
    const [run, cleanAnalysis] = await Promise.all([
      this.lenscope.analyze(corrupted),
      clean.analysis && clean.analysis.model === this.lenscope.model ? Promise.resolve(clean.analysis) : this.analyzeText(clean.target.text)
    ]);
    if (this.value.clean?.target !== clean.target || this.value.corrupted?.target !== corrupted) {
      return; // superseded
    }
    const corruptedSide = { target: corrupted, analysis: run?.analysis ?? null };
    const { target: t, baseline: b } = defaultPair(cleanAnalysis, corruptedSide.analysis);
    this.set({
      clean: { ...clean, analysis: cleanAnalysis },
      corrupted: corruptedSide,
      targetText: this.value.targetText || t?.token || '',
      baselineText: this.value.baselineText || b?.token || ''
    });
    await this.fetch();
  }

  /** Every (id, string) the two analyses and the grid know: where typed tokens are resolved. */
  private known(): [number, string][] {
    const v = this.value;
    return [...(v.clean?.analysis?.knownStrings() ?? []), ...(v.corrupted?.analysis?.knownStrings() ?? []), ...(v.grid?.knownStrings() ?? [])];
  }

  /** Typed target and baseline: resolved and asked again. */
  async setTokens(targetText: string, baselineText: string): Promise<void> {
    this.set({ targetText, baselineText });
    await this.fetch();
  }

  /** Ask `POST patch` for the two texts with the typed target / baseline; a newer call aborts this one. */
  async fetch(): Promise<void> {
    const { clean, corrupted, targetText, baselineText } = this.value;
    if (!clean || !corrupted) {
      return;
    }
    const known = this.known();
    const t = resolveToken(targetText, known);
    const b = resolveToken(baselineText, known);
    if (t.id === null || b.id === null) {
      const which = t.id === null ? `target “${targetText}”` : `baseline “${baselineText}”`;
      this.request.abort(); // this ask replaces the one in flight
      this.set({ loading: false, grid: null, request: null, applied: null, error: `${which}: ${t.id === null ? (t as { message: string }).message : (b as { message: string }).message}` });
      return;
    }
    const request: PatchRequest = { model: this.lenscope.model, clean: clean.target.text, corrupted: corrupted.target.text, target: t.id, baseline: b.id, position: null };
    this.value = { ...this.value, error: null }; // shown with `loading` as the request starts
    const wire = await this.request.run(signal => this.lenscope.client.patch(request, signal));
    if (wire) {
      this.set({ request, grid: new PatchGrid(wire, request.corrupted), applied: null, error: null });
    }
  }

  /**
   * Apply one cell's patch inline: the corrupted text is (again) the current analysis and the
   * cell's `patch` replaces the patches added here before (other interventions stay).
   */
  async apply(cell: PatchCell): Promise<void> {
    const { clean, corrupted, request } = this.value;
    if (!clean || !corrupted || !request) {
      return;
    }
    const run = this.lenscope.run;
    const current = run && run.target.view === corrupted.target.view && run.target.text === corrupted.target.text && run.target.context === '' && run.analysis.model === request.model;
    if (!current) {
      if (!corrupted.target.view.dom.isConnected) {
        this.set({ error: `${corrupted.target.path} is closed: open it and run “patch into the selection” again.` });
        return;
      }
      if (!(await this.lenscope.analyze(corrupted.target))) {
        return;
      }
    }
    for (const item of this.lenscope.interventions.items) {
      if (item.op === 'patch') {
        this.lenscope.removeIntervention(item.id);
      }
    }
    const added = this.lenscope.addIntervention({ ...cellIntervention(cell, request.clean), origin: cell.position });
    this.set({ applied: added === null ? null : cell, error: added === null ? this.lenscope.interventions.error : null });
  }

  dispose(): void {
    this.request.abort();
    Signal.clearData(this);
  }
}
