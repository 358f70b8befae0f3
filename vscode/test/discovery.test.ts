import { authFetch, normalizeUrl, parseServerList, pickServer } from '../src/discovery';

const LIST = [
  'some chatter from jupyter',
  JSON.stringify({ base_url: '/', hostname: 'localhost', pid: 11, port: 8888, root_dir: '/home/me', token: 'aaa', url: 'http://localhost:8888/' }),
  '{not json',
  JSON.stringify({ pid: 12, root_dir: '/home/me/proj', token: 'bbb', url: 'http://127.0.0.1:9999/lab-base' }),
  JSON.stringify({ pid: 13, notebook_dir: '/srv', token: '', url: 'http://127.0.0.1:7777/' })
].join('\n');

describe('normalizeUrl', () => {
  it('adds the scheme and the trailing slash, drops the query', () => {
    expect(normalizeUrl('127.0.0.1:8888')).toBe('http://127.0.0.1:8888/');
    expect(normalizeUrl(' http://h:1/base?token=x ')).toBe('http://h:1/base/');
    expect(normalizeUrl('https://h/')).toBe('https://h/');
    expect(normalizeUrl('')).toBe('');
  });
});

describe('parseServerList', () => {
  it('reads JSON lines and skips what is not a server', () => {
    const s = parseServerList(LIST);
    expect(s.map(x => x.url)).toEqual(['http://localhost:8888/', 'http://127.0.0.1:9999/lab-base/', 'http://127.0.0.1:7777/']);
    expect(s[0]).toEqual({ url: 'http://localhost:8888/', token: 'aaa', rootDir: '/home/me', pid: 11 });
    expect(s[2].rootDir).toBe('/srv');
  });

  it('reads a JSON array too, and nothing from empty output', () => {
    expect(parseServerList('[{"url": "http://h:1/", "token": "t"}]')).toHaveLength(1);
    expect(parseServerList('')).toEqual([]);
    expect(parseServerList('Currently running servers:\n')).toEqual([]);
  });
});

describe('pickServer', () => {
  const listed = parseServerList(LIST);

  it('uses the settings when they have a URL and a token', () => {
    expect(pickServer({ serverUrl: 'http://x:1', token: 't' }, [], null)).toMatchObject({ url: 'http://x:1/', token: 't' });
  });

  it('takes the token of the listed server at the configured URL (localhost = 127.0.0.1)', () => {
    expect(pickServer({ serverUrl: 'http://127.0.0.1:8888/', token: '' }, listed, null)?.token).toBe('aaa');
  });

  it('without a URL, picks the deepest root containing the workspace', () => {
    expect(pickServer({ serverUrl: '', token: '' }, listed, '/home/me/proj/src')?.token).toBe('bbb');
    expect(pickServer({ serverUrl: '', token: '' }, listed, '/home/me/other')?.token).toBe('aaa');
    expect(pickServer({ serverUrl: '', token: '' }, listed, '/elsewhere')?.url).toBe('http://localhost:8888/');
  });

  it('is null with no URL and no server', () => {
    expect(pickServer({ serverUrl: '', token: 'x' }, [], '/w')).toBeNull();
  });
});

describe('authFetch', () => {
  it('sends the token and a signal', async () => {
    const seen: RequestInit[] = [];
    const f = authFetch('sekrit', 5000, async (_url, init) => {
      seen.push(init);
      return new Response('{}');
    });
    await f('http://h/lenscope/api/models', { method: 'GET', headers: { Accept: 'application/msgpack' } });
    const h = new Headers(seen[0].headers);
    expect(h.get('Authorization')).toBe('token sekrit');
    expect(h.get('Accept')).toBe('application/msgpack');
    expect(seen[0].signal).toBeInstanceOf(AbortSignal);
  });

  it('times out with a TimeoutError', async () => {
    const f = authFetch('', 20, (_url, init) => new Promise((_, reject) => init.signal!.addEventListener('abort', () => reject(init.signal!.reason))));
    await expect(f('http://h/', { method: 'GET' })).rejects.toMatchObject({ name: 'TimeoutError' });
  });
});
