/**
 * What VS Code says when something fails: what went wrong and what to do about it, with the
 * buttons that do it. Pure: the extension shows the result with showErrorMessage.
 */
import { hintFor, LenscopeApiError } from './shared';

/** No server in the settings and none listed by `jupyter server list --json`. */
export class NoServerError extends Error {
  constructor(readonly detail: string) {
    super('no Jupyter server found');
    this.name = 'NoServerError';
  }
}

export type Action = 'Start Jupyter server' | 'Open settings' | 'Retry';

export interface Explained {
  message: string;
  actions: Action[];
}

function causeCode(err: unknown): string | null {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+/.test(code)) {
      return code;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

function isTimeout(err: unknown): boolean {
  const name = err instanceof Error || (typeof DOMException !== 'undefined' && err instanceof DOMException) ? (err as Error).name : '';
  return name === 'TimeoutError';
}

/**
 * @param err what was thrown
 * @param url the server's base URL (null when none was found)
 * @param timeoutSeconds the request timeout in force
 */
export function explain(err: unknown, url: string | null, timeoutSeconds = 60): Explained {
  const where = url ? `the Jupyter server at ${url}` : 'the Jupyter server';
  if (err instanceof NoServerError) {
    return {
      message:
        `lenscope: no running Jupyter server was found (${err.detail}). ` +
        'Start one with "lenscope: Start a Jupyter server" (or `jupyter lab` in a terminal), ' +
        'or set lenscope.serverUrl and lenscope.token to a running server.',
      actions: ['Start Jupyter server', 'Open settings']
    };
  }
  if (err instanceof LenscopeApiError) {
    if (err.status === 401 || err.status === 403) {
      return {
        message:
          `lenscope: ${where} refused the token (${err.status}). ` +
          'Set lenscope.token to that server\'s token (`jupyter server list` prints it in the URL after "?token="), ' +
          'or leave it empty to take it from `jupyter server list`.',
        actions: ['Open settings', 'Retry']
      };
    }
    if (err.status === 404 && err.code === 'http_error') {
      return {
        message:
          `lenscope: ${where} has no lenscope API (404). Install lenscope into that server's Python environment ` +
          '(`pip install lenscope`) and restart the server, or point lenscope.serverUrl at one that has it.',
        actions: ['Open settings', 'Start Jupyter server']
      };
    }
    return { message: `lenscope: ${err.message} (${err.status} ${err.code}). ${hintFor(err)}`, actions: ['Retry'] };
  }
  if (isTimeout(err)) {
    return {
      message:
        `lenscope: ${where} did not answer within ${timeoutSeconds} s. The model may still be loading or busy: ` +
        'try again, or raise lenscope.requestTimeoutSeconds.',
      actions: ['Retry', 'Open settings']
    };
  }
  const code = causeCode(err);
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' ||
      (err instanceof TypeError && /fetch failed/i.test(err.message))) {
    return {
      message:
        `lenscope: cannot reach ${where}${code ? ` (${code})` : ''}. Is it running? ` +
        'Start one with "lenscope: Start a Jupyter server" (or `jupyter lab` in a terminal), or fix lenscope.serverUrl.',
      actions: ['Start Jupyter server', 'Open settings']
    };
  }
  if (err instanceof Error && /Invalid URL|Failed to parse URL/i.test(err.message)) {
    return { message: `lenscope: lenscope.serverUrl is not a valid URL (${url ?? ''}). Set it like http://127.0.0.1:8888/.`, actions: ['Open settings'] };
  }
  return { message: `lenscope: ${err instanceof Error ? err.message : String(err)}`, actions: ['Retry'] };
}
