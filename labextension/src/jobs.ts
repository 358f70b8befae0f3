/**
 * Server jobs (index builds, corpus comparisons) and ONE poller for all of them: while any job
 * is queued or running, one timer asks the server about each such job in turn, then sleeps.
 * A job's last state ("done", "failed", "cancelled") stays until a new job of its kind starts.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { Job, LenscopeClient } from './api/client';
import { describe } from './errors';

export type JobKind = Job['kind'];

/** A job as the views show it: the server's answer, and whether the user asked to cancel it. */
export interface JobView {
  job: Job;
  /** cancel was requested and the server has not yet said it stopped */
  cancelling: boolean;
}

export function isActive(job: Pick<Job, 'state'>): boolean {
  return job.state === 'queued' || job.state === 'running';
}

/** What a job's status line says. */
export function jobStatus(view: JobView): string {
  const { job } = view;
  const p = job.progress;
  if (isActive(job)) {
    if (view.cancelling) {
      return 'cancelling…';
    }
    if (job.state === 'queued' || !p) {
      return job.state === 'queued' ? 'queued…' : 'starting…';
    }
    return `${p.tokens_done.toLocaleString()} / ${p.tokens_total.toLocaleString()} tokens · ${Math.round(p.rate).toLocaleString()} tok/s${p.eta_s ? ` · ${Math.ceil(p.eta_s)} s left` : ''}`;
  }
  if (job.state === 'done') {
    const r = job.result;
    const skipped = r && r.skipped.length ? ` (${r.skipped.length} file${r.skipped.length === 1 ? '' : 's'} skipped)` : '';
    return r ? `done: ${r.tokens.toLocaleString()} tokens in ${r.files} files${skipped}` : 'done';
  }
  return `${job.state}${job.error ? `: ${job.error.message}` : ''}`;
}

type JobSource = Pick<LenscopeClient, 'job' | 'cancelJob'>;

export class JobPoller {
  private readonly views = new Map<string, JobView>();
  private readonly changedSignal = new Signal<this, JobView>(this);
  private timer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;

  constructor(
    private readonly client: JobSource,
    private readonly intervalMs = 300
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

  /** Follow a job the server just accepted. */
  track(job: Job): JobView {
    const view = { job, cancelling: false };
    this.views.set(job.id, view);
    this.changedSignal.emit(view);
    this.schedule();
    return view;
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

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
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
    }
    this.changedSignal.emit(view);
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
