import { LatestRequest } from '../src/request';

/** A request the test answers: `resolve` / `reject` it, see whether its signal was aborted. */
interface Pending<T> {
  signal: AbortSignal;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

/** A task like the client's: it rejects with an AbortError when its signal aborts. */
function controlled<T>(log: Pending<T>[]) {
  return (signal: AbortSignal) =>
    new Promise<T>((resolve, reject) => {
      log.push({ signal, resolve, reject });
      signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    });
}

/** A task that ignores its signal (like a shared, cached request). */
function deaf<T>(log: Pending<T>[]) {
  return (signal: AbortSignal) => new Promise<T>((resolve, reject) => log.push({ signal, resolve, reject }));
}

const tick = () => new Promise(r => setTimeout(r, 0));

describe('LatestRequest: a superseded request', () => {
  it('is aborted when a newer one starts, and resolves with null; the newer one resolves with its value', async () => {
    const request = new LatestRequest();
    const sent: Pending<string>[] = [];
    const first = request.run(controlled(sent));
    const second = request.run(controlled(sent));
    expect(sent.map(p => p.signal.aborted)).toEqual([true, false]);
    sent[1].resolve('second');
    expect(await first).toBeNull();
    expect(await second).toBe('second');
  });

  it('is dropped even when its task ignores the signal and answers after the newer one', async () => {
    const request = new LatestRequest();
    const sent: Pending<string>[] = [];
    const first = request.run(deaf(sent));
    const second = request.run(deaf(sent));
    sent[1].resolve('second');
    sent[0].resolve('first, late');
    expect(await second).toBe('second');
    expect(await first).toBeNull();
  });

  it('has its error dropped: only the current request surfaces an error', async () => {
    const failed: unknown[] = [];
    const request = new LatestRequest({ failed: err => failed.push(err) });
    const sent: Pending<string>[] = [];
    const first = request.run(deaf(sent));
    const second = request.run(deaf(sent));
    sent[0].reject(new Error('old news'));
    sent[1].resolve('fine');
    expect(await first).toBeNull();
    expect(await second).toBe('fine');
    expect(failed).toEqual([]);
  });

  it('is aborted by abort(), which resolves it with null and surfaces nothing', async () => {
    const failed: unknown[] = [];
    const request = new LatestRequest({ failed: err => failed.push(err) });
    const sent: Pending<string>[] = [];
    const pending = request.run(controlled(sent));
    request.abort();
    expect(sent[0].signal.aborted).toBe(true);
    expect(await pending).toBeNull();
    expect(failed).toEqual([]);
  });
});

describe('LatestRequest: errors', () => {
  it('hands a failure to the failed hook (once) and resolves with null', async () => {
    const failed: unknown[] = [];
    const request = new LatestRequest({ failed: err => failed.push(err) });
    const boom = new Error('server said no');
    const sent: Pending<string>[] = [];
    const pending = request.run(controlled(sent));
    sent[0].reject(boom);
    expect(await pending).toBeNull();
    expect(failed).toEqual([boom]);
  });

  it('throws a failure to the caller when there is no failed hook', async () => {
    const request = new LatestRequest();
    await expect(request.run(() => Promise.reject(new Error('thrown to the caller')))).rejects.toThrow('thrown to the caller');
    expect(request.busy).toBe(false);
  });

  it('does not take an AbortError that ends the current request for a failure', async () => {
    const failed: unknown[] = [];
    const request = new LatestRequest({ failed: err => failed.push(err) });
    expect(await request.run(() => Promise.reject(new DOMException('gone', 'AbortError')))).toBeNull();
    expect(failed).toEqual([]);
    expect(request.busy).toBe(false);
  });

  it('lets a failed request be followed by one that succeeds', async () => {
    const failed: unknown[] = [];
    const request = new LatestRequest({ failed: err => failed.push(err) });
    expect(await request.run(() => Promise.reject(new Error('once')))).toBeNull();
    expect(await request.run(() => Promise.resolve(42))).toBe(42);
    expect(failed).toHaveLength(1);
  });
});

describe('LatestRequest: one busy state', () => {
  it('is busy from the start to the end of the current request, and says so through the hook', async () => {
    const busy: boolean[] = [];
    const request = new LatestRequest({ busy: b => busy.push(b) });
    expect(request.busy).toBe(false);
    const sent: Pending<number>[] = [];
    const pending = request.run(controlled(sent));
    expect(request.busy).toBe(true);
    expect(busy).toEqual([true]);
    sent[0].resolve(1);
    expect(await pending).toBe(1);
    expect(request.busy).toBe(false);
    expect(busy).toEqual([true, false]);
  });

  it('stays busy while a newer request replaces an older one, and ends once, with the newer', async () => {
    const busy: boolean[] = [];
    const request = new LatestRequest({ busy: b => busy.push(b) });
    const sent: Pending<number>[] = [];
    const first = request.run(deaf(sent));
    const second = request.run(deaf(sent));
    sent[0].resolve(1); // the superseded one answering does not end the busy state
    expect(await first).toBeNull();
    expect(request.busy).toBe(true);
    expect(busy).toEqual([true, true]);
    sent[1].resolve(2);
    expect(await second).toBe(2);
    expect(request.busy).toBe(false);
    expect(busy).toEqual([true, true, false]);
  });

  it('ends when the request fails (before the error surfaces) or is aborted', async () => {
    const events: string[] = [];
    const request = new LatestRequest({ busy: b => events.push(`busy ${b}`), failed: () => events.push('failed') });
    await request.run(() => Promise.reject(new Error('x')));
    expect(events).toEqual(['busy true', 'busy false', 'failed']);
    events.length = 0;
    const sent: Pending<number>[] = [];
    const pending = request.run(controlled(sent));
    request.abort();
    expect(request.busy).toBe(false);
    expect(events).toEqual(['busy true', 'busy false']);
    await pending;
    await tick();
    expect(events).toEqual(['busy true', 'busy false']); // the aborted one's end says nothing more
    request.abort(); // nothing in flight: nothing happens
    expect(events).toEqual(['busy true', 'busy false']);
  });
});
