import type { Job } from '../src/api/client';
import { buildNote, JobPoller, jobStatus, JobView, seconds, updateLabel } from '../src/jobs';

function job(id: string, state: Job['state'], done = 0, kind: Job['kind'] = 'index', trigger: Job['trigger'] = 'request'): Job {
  return {
    id,
    kind,
    model: 'm',
    created: Number(id.replace(/\D/g, '')),
    state,
    trigger,
    error: null,
    result: null,
    progress: { tokens_done: done, tokens_total: 100, rate: 10, eta_s: null }
  };
}

/** A server with jobs that advance 50 tokens per poll; it counts what it is asked. */
class FakeServer {
  store = new Map<string, Job>();
  polls: string[] = [];
  cancelGate: Promise<void> = Promise.resolve();

  async job(id: string): Promise<Job> {
    this.polls.push(id);
    const j = this.store.get(id)!;
    if (j.state === 'running' || j.state === 'queued') {
      const done = (j.progress?.tokens_done ?? 0) + 50;
      this.store.set(id, { ...j, state: done >= 100 ? 'done' : 'running', progress: { ...j.progress!, tokens_done: Math.min(done, 100) } });
    }
    return this.store.get(id)!;
  }

  listed = 0;

  async jobs(): Promise<{ jobs: Job[] }> {
    this.listed++;
    return { jobs: [...this.store.values()] };
  }

  async cancelJob(id: string): Promise<Job> {
    await this.cancelGate;
    this.store.set(id, { ...this.store.get(id)!, state: 'cancelled' });
    return this.store.get(id)!;
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
      server.store.set(id, job(id, 'running'));
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
    server.store.set('j3', job('j3', 'running'));
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
    const done: Job = { ...running, state: 'done', result: { kind: 'index', name: 'workspace', files: 3, tokens: 1603, skipped: [{ path: 'x.bin', reason: 'binary' }], shards: 0, shards_reused: 0, seconds: 0 } };
    expect(jobStatus({ job: done, cancelling: false })).toBe('done: 1,603 tokens in 3 files (1 file skipped)');
    expect(jobStatus({ job: { ...running, state: 'queued', progress: null }, cancelling: false })).toBe('queued…');
  });
});

describe('index updates after a save', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const SAVED_AT = '1970-01-01T00:01:40.000Z'; // 100 s, the server's time of the save

  it('asks for the job list a few times after a save, never otherwise, and follows the update it finds', async () => {
    const server = new FakeServer();
    server.store.set('j50', job('j50', 'done', 100, 'index', 'save')); // an older update (before the save)
    const poller = new JobPoller(server, 300, [100, 400, 1000]);
    await jest.advanceTimersByTimeAsync(5000);
    expect(server.listed).toBe(0); // nothing saved: nothing asked
    poller.saved('src/m05.py', SAVED_AT);
    await jest.advanceTimersByTimeAsync(100);
    expect(server.listed).toBe(1);
    expect(poller.latest('index')).toBeNull(); // j50 started before the save
    server.store.set('j120', job('j120', 'running', 0, 'index', 'save'));
    await jest.advanceTimersByTimeAsync(400);
    expect(server.listed).toBe(2);
    const view = poller.latest('index')!;
    expect(view.job.id).toBe('j120');
    expect(view.saved).toBe('src/m05.py');
    expect(jobStatus(view)).toBe('updating the index after saving src/m05.py: 0 / 100 tokens · 10 tok/s');
    await jest.advanceTimersByTimeAsync(600); // polled to its end (two polls)
    expect(poller.get('j120')!.job.state).toBe('done');
    expect(server.listed).toBe(2); // found: the third look was not made
    await jest.advanceTimersByTimeAsync(100); // its end: one look for an update a save made meanwhile
    expect(server.listed).toBe(3);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(server.listed).toBe(3);
    expect(jest.getTimerCount()).toBe(0);
    poller.dispose();
  });

  it('gives up after the last look when the save started nothing; a new save starts over', async () => {
    const server = new FakeServer();
    const poller = new JobPoller(server, 300, [100, 400, 1000]);
    poller.saved('notes.txt', SAVED_AT);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(server.listed).toBe(3);
    expect(jest.getTimerCount()).toBe(0);
    poller.saved('notes.txt', SAVED_AT);
    poller.saved('notes.txt', SAVED_AT); // saves in a row: one look at a time
    await jest.advanceTimersByTimeAsync(100);
    expect(server.listed).toBe(4);
    poller.dispose();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(server.listed).toBe(4);
  });

  it('labels an update by the file saved, and says what a build reused and how long it took', () => {
    const result = { kind: 'index' as const, name: 'ws', files: 24, tokens: 63_345, skipped: [], shards: 4, shards_reused: 3, seconds: 2.34 };
    const running: JobView = { job: job('j1', 'running', 50, 'index', 'save'), cancelling: false, saved: 'src/m05.py' };
    expect(updateLabel(running)).toBe('updating the index after saving src/m05.py');
    const done: JobView = { ...running, job: { ...running.job, state: 'done', result } };
    expect(updateLabel(done)).toBe('index ws updated after saving src/m05.py');
    expect(jobStatus(done)).toBe('index ws updated after saving src/m05.py: 3 of 4 shards reused · 2.3 s · 63,345 tokens in 24 files');
    expect(jobStatus({ ...done, saved: null })).toBe('index ws updated after saving a file: 3 of 4 shards reused · 2.3 s · 63,345 tokens in 24 files');
    expect(jobStatus({ ...running, job: { ...running.job, state: 'queued', progress: null } })).toBe('updating the index after saving src/m05.py: queued…');
    expect(jobStatus({ ...running, job: { ...running.job, state: 'failed', error: { code: 'x', message: 'disk full' } } })).toBe(
      'update after saving src/m05.py failed: disk full'
    );
    // a build asked for: the same note after its size
    const built: JobView = { job: { ...job('j2', 'done'), result: { ...result, shards_reused: 0, seconds: 41.6 } }, cancelling: false };
    expect(jobStatus(built)).toBe('done: 63,345 tokens in 24 files · 0 of 4 shards reused · 42 s');
    expect(buildNote({ shards: 1, shards_reused: 1, seconds: 0 })).toBe('1 of 1 shard reused');
    expect(buildNote({ shards: 0, shards_reused: 0, seconds: 0 })).toBe(''); // an older server: nothing said
    expect(seconds(0.04)).toBe('< 0.1 s');
    expect(seconds(0.44)).toBe('0.4 s');
  });
});
