import type { Job } from '../src/api/client';
import { JobPoller, jobStatus, JobView } from '../src/jobs';

function job(id: string, state: Job['state'], done = 0, kind: Job['kind'] = 'index'): Job {
  return {
    id,
    kind,
    model: 'm',
    created: Number(id.replace(/\D/g, '')),
    state,
    error: null,
    result: null,
    progress: { tokens_done: done, tokens_total: 100, rate: 10, eta_s: null }
  };
}

/** A server with jobs that advance 50 tokens per poll; it counts what it is asked. */
class FakeServer {
  jobs = new Map<string, Job>();
  polls: string[] = [];
  cancelGate: Promise<void> = Promise.resolve();

  async job(id: string): Promise<Job> {
    this.polls.push(id);
    const j = this.jobs.get(id)!;
    if (j.state === 'running' || j.state === 'queued') {
      const done = (j.progress?.tokens_done ?? 0) + 50;
      this.jobs.set(id, { ...j, state: done >= 100 ? 'done' : 'running', progress: { ...j.progress!, tokens_done: Math.min(done, 100) } });
    }
    return this.jobs.get(id)!;
  }

  async cancelJob(id: string): Promise<Job> {
    await this.cancelGate;
    this.jobs.set(id, { ...this.jobs.get(id)!, state: 'cancelled' });
    return this.jobs.get(id)!;
  }
}

describe('job poller', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('polls every running job from one timer, and stops when all have ended', async () => {
    const server = new FakeServer();
    const poller = new JobPoller(server, 300);
    const seen: string[] = [];
    poller.changed.connect((_, v) => seen.push(`${v.job.id}:${v.job.state}:${v.job.progress?.tokens_done}`));
    for (const id of ['j1', 'j2']) {
      server.jobs.set(id, job(id, 'running'));
      poller.track(job(id, 'running'));
    }
    expect(jest.getTimerCount()).toBe(1); // one timer for both
    await jest.advanceTimersByTimeAsync(299);
    expect(server.polls).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(server.polls).toEqual(['j1', 'j2']);
    expect(jest.getTimerCount()).toBe(1);
    await jest.advanceTimersByTimeAsync(300);
    expect(server.polls).toEqual(['j1', 'j2', 'j1', 'j2']);
    expect(poller.get('j1')!.job.state).toBe('done');
    expect(jest.getTimerCount()).toBe(0); // nothing left to poll
    await jest.advanceTimersByTimeAsync(3000);
    expect(server.polls.length).toBe(4);
    expect(seen).toEqual(['j1:running:0', 'j2:running:0', 'j1:running:50', 'j2:running:50', 'j1:done:100', 'j2:done:100']);
  });

  it('shows "cancelling" at once, before the server answers, then keeps "cancelled"', async () => {
    const server = new FakeServer();
    let open!: () => void;
    server.cancelGate = new Promise(resolve => (open = resolve));
    server.jobs.set('j3', job('j3', 'running'));
    const poller = new JobPoller(server, 300);
    const states: string[] = [];
    poller.changed.connect((_, v: JobView) => states.push(v.cancelling ? 'cancelling' : v.job.state));
    poller.track(job('j3', 'running'));
    const cancelled = poller.cancel('j3');
    expect(states).toEqual(['running', 'cancelling']); // synchronously
    open();
    await cancelled;
    expect(states).toEqual(['running', 'cancelling', 'cancelled']);
    expect(poller.get('j3')!.cancelling).toBe(false);
    await jest.advanceTimersByTimeAsync(1000);
    expect(poller.get('j3')!.job.state).toBe('cancelled'); // a later poll does not overwrite it
    expect(states.length).toBe(3);
  });

  it('ends a job it cannot poll as failed, with the reason', async () => {
    const server = new FakeServer();
    server.job = async () => {
      throw new Error('server went away');
    };
    const poller = new JobPoller(server, 300);
    poller.track(job('j4', 'queued'));
    await jest.advanceTimersByTimeAsync(300);
    const v = poller.get('j4')!;
    expect(v.job.state).toBe('failed');
    expect(v.job.error?.message).toBe('server went away');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('knows the newest job of each kind', () => {
    const poller = new JobPoller(new FakeServer(), 300);
    poller.track(job('j5', 'done', 100, 'compare'));
    poller.track(job('j7', 'done', 100, 'index'));
    poller.track(job('j6', 'running', 0, 'compare'));
    expect(poller.latest('compare')!.job.id).toBe('j6');
    expect(poller.latest('index')!.job.id).toBe('j7');
    poller.dispose();
  });
});

describe('a job’s status line', () => {
  it('says cancelling at once, then the end state and what it did', () => {
    const running = job('j1', 'running', 50);
    expect(jobStatus({ job: running, cancelling: false })).toBe('50 / 100 tokens · 10 tok/s');
    expect(jobStatus({ job: running, cancelling: true })).toBe('cancelling…');
    expect(jobStatus({ job: { ...running, state: 'cancelled', error: { code: 'cancelled', message: 'the build was cancelled' } }, cancelling: false })).toBe(
      'cancelled: the build was cancelled'
    );
    const done: Job = { ...running, state: 'done', result: { kind: 'index', name: 'workspace', files: 3, tokens: 1603, skipped: [{ path: 'x.bin', reason: 'binary' }] } };
    expect(jobStatus({ job: done, cancelling: false })).toBe('done: 1,603 tokens in 3 files (1 file skipped)');
    expect(jobStatus({ job: { ...running, state: 'queued', progress: null }, cancelling: false })).toBe('queued…');
  });
});
