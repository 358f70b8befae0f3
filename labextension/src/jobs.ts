/**
 * Server jobs (index builds, corpus comparisons) and ONE poller for all of them: while any job
 * is queued or running, one timer asks the server about each such job in turn, then sleeps.
 * A job's last state ("done", "failed", "cancelled") stays until a new job of its kind starts.
 *
 * Saving a file makes the server update, in the background, the workspace indexes that cover it
 * (jobs with `trigger: "save"`). The poller hears of the save (`saved`) and asks for the job list a
 * few times shortly after, never otherwise; the updates it finds are followed like any other job.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { LenscopeApiError } from './api/client';
import type { IndexJobResult, Job, LenscopeClient } from './api/client';
import { describe } from './errors';

export type JobKind = Job['kind'];

/** A job as the views show it: the server's answer, and whether the user asked to cancel it. */
export interface JobView {
  job: Job;
  /** cancel was requested and the server has not yet said it stopped */
  cancelling: boolean;
  /** an update started by saving a file: the file this page saved (null when not known) */
  saved?: string | null;
}

export function isActive(job: Pick<Job, 'state'>): boolean {
  return job.state === 'queued' || job.state === 'running';
}

function plural(n: number, one: string): string {
  return `${n.toLocaleString()} ${one}${n === 1 ? '' : 's'}`;
}

/** Seconds as a person reads them: "0.4 s", "12 s". */
export function seconds(s: number): string {
  if (s < 0.05) {
    return '< 0.1 s';
  }
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s).toLocaleString()} s`;
}

/** What a finished build did besides its tokens: "3 of 4 shards reused · 1.2 s" (what the server said). */
export function buildNote(r: Pick<IndexJobResult, 'shards' | 'shards_reused' | 'seconds'>): string {
  const parts: string[] = [];
  if (r.shards > 0) {
    parts.push(`${r.shards_reused.toLocaleString()} of ${plural(r.shards, 'shard')} reused`);
  }
  if (r.seconds > 0) {
    parts.push(seconds(r.seconds));
  }
  return parts.join(' · ');
}

/** "updating the index after saving src/m05.py", or a finished one's "index ws updated after saving …". */
export function updateLabel(view: JobView): string {
  const file = view.saved ?? 'a file';
  const r = view.job.result;
  return view.job.state === 'done' && r?.kind === 'index' ? `index ${r.name} updated after saving ${file}` : `updating the index after saving ${file}`;
}

/** What a job's status line says. */
export function jobStatus(view: JobView): string {
  const { job } = view;
  const p = job.progress;
  const update = job.trigger === 'save';
  if (isActive(job)) {
    const prefix = update ? `${updateLabel(view)}: ` : '';
    if (view.cancelling) {
      return `${prefix}cancelling…`;
    }
    if (job.state === 'queued' || !p) {
      return prefix + (job.state === 'queued' ? 'queued…' : 'starting…');
    }
    return `${prefix}${p.tokens_done.toLocaleString()} / ${p.tokens_total.toLocaleString()} tokens · ${Math.round(p.rate).toLocaleString()} tok/s${p.eta_s ? ` · ${Math.ceil(p.eta_s)} s left` : ''}`;
  }
  if (job.state === 'done') {
    const r = job.result;
    if (!r) {
      return update ? updateLabel(view) : 'done';
    }
    const skipped = r.skipped.length ? ` (${plural(r.skipped.length, 'file')} skipped)` : '';
    const size = `${r.tokens.toLocaleString()} tokens in ${r.files} files${skipped}`;
    const note = r.kind === 'index' ? buildNote(r) : '';
    if (update) {
      return `${updateLabel(view)}: ${note ? `${note} · ` : ''}${size}`;
    }
    return `done: ${size}${note ? ` · ${note}` : ''}`;
  }
  const end = `${job.state}${job.error ? `: ${job.error.message}` : ''}`;
  return update ? `update after saving ${view.saved ?? 'a file'} ${end}` : end;
}

type JobSource = Pick<LenscopeClient, 'job' | 'cancelJob' | 'jobs'>;

/** When the job list is asked for after a save (ms after it): stops at the first update found. */
export const AFTER_SAVE_MS = [150, 800, 2500];

export class JobPoller {
  private readonly views = new Map<string, JobView>();
  private readonly changedSignal = new Signal<this, JobView>(this);
  private timer: ReturnType<typeof setTimeout> | null = null;
  private listTimer: ReturnType<typeof setTimeout> | null = null;
  /** the last save this page made: its file, and the server's time of it (updates start after) */
  private lastSave: { path: string; since: number } | null = null;
  private disposed = false;

  constructor(
    private readonly client: JobSource,
    private readonly intervalMs = 300,
    private readonly afterSaveMs: number[] = AFTER_SAVE_MS
  ) {}

  /** Every change of a job's state or progress. */
  get changed(): ISignal<this, JobView> {
    return this.changedSignal;
  }

  /** The newest job of a kind (the one its view shows). */
  latest(kind: JobKind): JobView | null {
    let best: JobView | null = null;
    for (const v of this.views.values()) {
      if (v.job.kind === kind && (!best || v.job.created >= best.job.created)) {
        best = v;
      }
    }
    return best;
  }

  get(id: string): JobView | null {
    return this.views.get(id) ?? null;
  }

  /** Follow a job the server just accepted (`saved`: the file whose saving started it). */
  track(job: Job, saved: string | null = null): JobView {
    const view: JobView = { job, cancelling: false, saved };
    this.views.set(job.id, view);
    this.changedSignal.emit(view);
    this.schedule();
    return view;
  }

  /**
   * Follow the job `start` asks the server for; when it fails to start, follow a failed job of
   * `kind` instead (shown where the job would be: a job that never started).
   */
  async start(start: () => Promise<Job>, kind: JobKind, model: string): Promise<void> {
    try {
      this.track(await start());
    } catch (err) {
      const failed: Job = {
        id: `failed-${kind}-${Date.now()}`,
        kind,
        model,
        created: Date.now() / 1000,
        state: 'failed',
        trigger: 'request',
        progress: null,
        result: null,
        error: { code: err instanceof LenscopeApiError ? err.code : 'error', message: describe(err) }
      };
      this.track(failed);
    }
  }

  /** Ask the server to cancel; the views show "cancelling…" at once, not when it has stopped. */
  async cancel(id: string): Promise<void> {
    const view = this.views.get(id);
    if (!view || !isActive(view.job)) {
      return;
    }
    view.cancelling = true;
    this.changedSignal.emit(view);
    try {
      this.update(await this.client.cancelJob(id));
    } catch (err) {
      view.cancelling = false;
      this.update({ ...view.job, state: 'failed', error: { code: 'cancel_failed', message: describe(err) } });
    }
  }

  /**
   * This page saved a file (`lastModified`: the server's ISO time of the save): the server may
   * have started updates of the indexes that cover it. The job list is asked for a few times
   * shortly after; the updates found are followed like any other job.
   */
  saved(path: string, lastModified?: string | null): void {
    const at = lastModified ? Date.parse(lastModified) / 1000 : NaN;
    // the server stamps both times: a second's slack for rounding; without one, the page's clock
    this.lastSave = { path, since: Number.isFinite(at) ? at - 1 : Date.now() / 1000 - 5 };
    this.lookForUpdates(this.afterSaveMs);
  }

  dispose(): void {
    this.disposed = true;
    for (const t of [this.timer, this.listTimer]) {
      if (t !== null) {
        clearTimeout(t);
      }
    }
    this.timer = this.listTimer = null;
    Signal.clearData(this);
  }

  private update(job: Job): void {
    const view = this.views.get(job.id);
    if (!view || !isActive(view.job)) {
      return; // a final state stays: a late answer does not overwrite it
    }
    if (view.job.state === job.state && JSON.stringify(view.job.progress) === JSON.stringify(job.progress)) {
      return; // nothing new to show
    }
    view.job = job;
    if (!isActive(job)) {
      view.cancelling = false;
      if (job.trigger === 'save' && this.listTimer === null) {
        // a save made while it ran starts the next update as it ends: look once more
        this.lookForUpdates(this.afterSaveMs.slice(0, 1));
      }
    }
    this.changedSignal.emit(view);
  }

  /** Ask for the job list after each delay in turn, until an update started by the last save turns up. */
  private lookForUpdates(delays: number[]): void {
    if (this.listTimer !== null) {
      clearTimeout(this.listTimer);
    }
    this.listTimer = null;
    if (!delays.length || this.disposed) {
      return;
    }
    this.listTimer = setTimeout(() => void this.listUpdates(delays.slice(1)), delays[0]);
  }

  private async listUpdates(rest: number[]): Promise<void> {
    this.listTimer = null;
    const save = this.lastSave;
    let found = false;
    try {
      const { jobs } = await this.client.jobs();
      for (const job of jobs) {
        if (save && job.trigger === 'save' && job.created >= save.since && !this.views.has(job.id) && !this.disposed) {
          this.track(job, save.path);
          found = true;
        }
      }
    } catch {
      // the list is a hint: an update not seen here still runs, and the next save looks again
    }
    if (!found && this.listTimer === null) {
      // (a save meanwhile has started its own look)
      this.lookForUpdates(rest);
    }
  }

  private schedule(): void {
    if (this.timer === null && !this.disposed && [...this.views.values()].some(v => isActive(v.job))) {
      this.timer = setTimeout(() => void this.tick(), this.intervalMs);
    }
  }

  private async tick(): Promise<void> {
    for (const view of [...this.views.values()].filter(v => isActive(v.job))) {
      try {
        this.update(await this.client.job(view.job.id));
      } catch (err) {
        this.update({ ...view.job, state: 'failed', error: { code: 'poll_failed', message: describe(err) } });
      }
    }
    this.timer = null;
    this.schedule();
  }
}
