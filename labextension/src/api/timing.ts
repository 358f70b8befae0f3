/** The server's timings of a response, sent in its `Server-Timing` header (not in the body, so cached bytes go out as they are). */

/** How the server answered an analyze request, from its `Server-Timing` header. */
export interface ServerTiming {
  /** worker: computed for this request; coalesced: shared with an identical one; cache */
  source: string | null;
  /** milliseconds by metric name (total, worker, ...) */
  durations: Record<string, number>;
}

/** Parse `total;dur=12.3, worker;dur=10.1, source;desc="cache"` (RFC 8941-ish, as servers write it). */
export function parseServerTiming(header: string | null): ServerTiming {
  const out: ServerTiming = { source: null, durations: {} };
  for (const metric of (header ?? '').split(',')) {
    const [name, ...params] = metric.split(';').map(p => p.trim());
    if (!name) {
      continue;
    }
    for (const param of params) {
      const eq = param.indexOf('=');
      const key = param.slice(0, eq).trim().toLowerCase();
      const value = param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (eq > 0 && key === 'dur' && Number.isFinite(Number(value))) {
        out.durations[name] = Number(value);
      } else if (eq > 0 && key === 'desc' && name === 'source') {
        out.source = value;
      }
    }
  }
  return out;
}
