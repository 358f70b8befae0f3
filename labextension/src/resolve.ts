/**
 * A token typed by the user (the why view's target) resolved to a token id, among the strings
 * the client already knows: the analysis' strings (its text tokens and top-k predictions) and
 * the attribution's. The server has no text -> id route, so a token seen nowhere in the
 * analysis cannot be resolved here.
 */

/** Typed text back to a token's raw string: the display marks `·` `→` `↵` `␍` read as whitespace. */
export function unvisible(typed: string): string {
  return typed.replace(/\u00b7/g, ' ').replace(/\u2192/g, '\t').replace(/\u21b5/g, '\n').replace(/\u240d/g, '\r');
}

export type Resolved = { id: number; token: string } | { id: null; message: string };

export const NOT_SEEN = 'not a token seen in this analysis; pick from the top-10';

/**
 * The id of the token `typed` stands for: a known token whose string is exactly it (after
 * `unvisible`; also `\n`, `\t` escapes), else the one with a leading space (BPE's word tokens),
 * else the one equal ignoring case. `#123` is the id 123 itself. Among equals, the lowest id.
 */
export function resolveToken(typed: string, known: Iterable<[number, string]>): Resolved {
  if (typed === '') {
    return { id: null, message: 'type a token' };
  }
  const byId = /^#(\d+)$/.exec(typed.trim());
  const entries = Array.from(known).sort((a, b) => a[0] - b[0]);
  if (byId) {
    const id = Number(byId[1]);
    const hit = entries.find(([i]) => i === id);
    return { id, token: hit ? hit[1] : `#${id}` };
  }
  const raw = unvisible(typed.replace(/\\n/g, '\n').replace(/\\t/g, '\t'));
  const tries: ((s: string) => boolean)[] = [s => s === raw, s => s === ' ' + raw, s => s.toLowerCase() === raw.toLowerCase()];
  for (const ok of tries) {
    const hit = entries.find(([, s]) => ok(s));
    if (hit) {
      return { id: hit[0], token: hit[1] };
    }
  }
  return { id: null, message: NOT_SEEN };
}
