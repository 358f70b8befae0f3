/**
 * Finding the Jupyter server: from the settings (URL and token), or from what
 * `jupyter server list --json` prints (one JSON object per running server). Pure functions.
 */
import type { FetchLike } from './shared';

export interface ServerInfo {
  /** base URL, always ending with '/' */
  url: string;
  token: string;
  rootDir: string | null;
  pid: number | null;
}

export interface Settings {
  serverUrl: string;
  token: string;
}

/** `http://host:port/base` -> `http://host:port/base/`; '' stays ''; a bare host gets http://. */
export function normalizeUrl(url: string): string {
  let u = url.trim();
  if (!u) {
    return '';
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(u)) {
    u = `http://${u}`;
  }
  const q = u.search(/[?#]/);
  if (q >= 0) {
    u = u.slice(0, q);
  }
  return u.endsWith('/') ? u : `${u}/`;
}

/** The servers in `jupyter server list --json` output (JSON lines, or one JSON array); bad lines are skipped. */
export function parseServerList(stdout: string): ServerInfo[] {
  const out: ServerInfo[] = [];
  const add = (o: unknown): void => {
    if (!o || typeof o !== 'object') {
      return;
    }
    const r = o as Record<string, unknown>;
    if (typeof r.url !== 'string') {
      return;
    }
    out.push({
      url: normalizeUrl(r.url),
      token: typeof r.token === 'string' ? r.token : '',
      rootDir: typeof r.root_dir === 'string' ? r.root_dir : typeof r.notebook_dir === 'string' ? r.notebook_dir : null,
      pid: typeof r.pid === 'number' ? r.pid : null
    });
  };
  const text = stdout.trim();
  if (text.startsWith('[')) {
    try {
      const arr = JSON.parse(text);
      if (Array.isArray(arr)) {
        arr.forEach(add);
        return out;
      }
    } catch {
      // fall through to JSON lines
    }
  }
  for (const line of text.split(/\r?\n/)) {
    const l = line.trim();
    if (!l.startsWith('{')) {
      continue;
    }
    try {
      add(JSON.parse(l));
    } catch {
      // not JSON: jupyter's own chatter
    }
  }
  return out;
}

function sameServer(a: string, b: string): boolean {
  const norm = (u: string): string => normalizeUrl(u).replace('://localhost:', '://127.0.0.1:').replace('://0.0.0.0:', '://127.0.0.1:');
  return norm(a) === norm(b);
}

function within(dir: string, root: string): boolean {
  const d = dir.replace(/[\\/]+$/, '');
  const r = root.replace(/[\\/]+$/, '');
  return d === r || d.startsWith(`${r}/`) || d.startsWith(`${r}\\`);
}

/**
 * The server to talk to. Settings win: a URL with a token is used as is; a URL without a token
 * takes the token of the listed server at that URL. With no URL, the listed server whose root
 * contains the workspace (the deepest such root), else the first one listed. Null: none.
 */
export function pickServer(settings: Settings, listed: ServerInfo[], workspaceDir: string | null): ServerInfo | null {
  const url = normalizeUrl(settings.serverUrl);
  if (url) {
    const match = listed.find(s => sameServer(s.url, url));
    return { url, token: settings.token || match?.token || '', rootDir: match?.rootDir ?? null, pid: match?.pid ?? null };
  }
  if (listed.length === 0) {
    return null;
  }
  if (workspaceDir) {
    const containing = listed.filter(s => s.rootDir && within(workspaceDir, s.rootDir));
    containing.sort((a, b) => (b.rootDir?.length ?? 0) - (a.rootDir?.length ?? 0));
    if (containing.length > 0) {
      return { ...containing[0], token: settings.token || containing[0].token };
    }
  }
  return { ...listed[0], token: settings.token || listed[0].token };
}

/**
 * A fetch that authenticates to Jupyter with the token (`Authorization: token …`) and gives up
 * after `timeoutMs` (an abort from the caller's signal still wins).
 */
export function authFetch(token: string, timeoutMs: number, base: FetchLike = (u, i) => fetch(u, i)): FetchLike {
  return (url, init) => {
    const headers = new Headers(init.headers ?? {});
    if (token) {
      headers.set('Authorization', `token ${token}`);
    }
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (init.signal) {
      signals.push(init.signal);
    }
    return base(url, { ...init, headers, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] });
  };
}
