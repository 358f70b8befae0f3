import { authFetch } from '../src/discovery';
import { explain, NoServerError } from '../src/messages';
import { LenscopeApiError, LenscopeClient } from '../src/shared';

const URL = 'http://127.0.0.1:8888/';

describe('explain', () => {
  it('no server: says how to start one or what to set', () => {
    const e = explain(new NoServerError('`jupyter` is not on the PATH'), null);
    expect(e.message).toMatch(/no running Jupyter server was found/);
    expect(e.message).toMatch(/jupyter` is not on the PATH/);
    expect(e.message).toMatch(/lenscope: Start a Jupyter server/);
    expect(e.message).toMatch(/lenscope\.serverUrl/);
    expect(e.actions).toEqual(['Start Jupyter server', 'Open settings']);
  });

  it('connection refused: names the URL and says to start the server', () => {
    const err = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8888'), { code: 'ECONNREFUSED' }) });
    const e = explain(err, URL);
    expect(e.message).toContain(`cannot reach the Jupyter server at ${URL} (ECONNREFUSED)`);
    expect(e.message).toMatch(/Is it running\?/);
    expect(e.actions).toContain('Start Jupyter server');
  });

  it('wrong token: says which setting to fix and where the token is', () => {
    const e = explain(new LenscopeApiError(403, 'http_error', 'lenscope server answered 403 Forbidden'), URL);
    expect(e.message).toContain(`the Jupyter server at ${URL} refused the token (403)`);
    expect(e.message).toMatch(/Set lenscope\.token/);
    expect(e.message).toMatch(/jupyter server list/);
    expect(e.actions).toContain('Open settings');
  });

  it('a server without lenscope: 404', () => {
    expect(explain(new LenscopeApiError(404, 'http_error', 'x'), URL).message).toMatch(/has no lenscope API \(404\).*pip install lenscope/);
  });

  it('a timeout: says the model may be loading and which setting raises it', () => {
    const err = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    const e = explain(err, URL, 30);
    expect(e.message).toMatch(/did not answer within 30 s/);
    expect(e.message).toMatch(/lenscope\.requestTimeoutSeconds/);
  });

  it('a server error keeps its message and adds the shared hint', () => {
    const e = explain(new LenscopeApiError(413, 'input_too_large', 'text is 9000 tokens; at most 4096'), URL);
    expect(e.message).toBe('lenscope: text is 9000 tokens; at most 4096 (413 input_too_large). Select a shorter stretch of text.');
  });
});

describe('the shared client with the token fetch', () => {
  it('a 403 from Jupyter (an HTML page, no lenscope error body) becomes the token message', async () => {
    const calls: string[] = [];
    const fake = async (url: string, init: RequestInit): Promise<Response> => {
      calls.push(`${url} ${new Headers(init.headers).get('Authorization')}`);
      return new Response('<html>403: Forbidden</html>', { status: 403, statusText: 'Forbidden', headers: { 'Content-Type': 'text/html' } });
    };
    const client = new LenscopeClient(URL, authFetch('wrong', 1000, fake));
    const err = await client.models().catch(e => e);
    expect(calls).toEqual([`${URL}lenscope/api/models token wrong`]);
    expect(err).toBeInstanceOf(LenscopeApiError);
    expect(explain(err, URL).message).toMatch(/refused the token \(403\)/);
  });
});
