/**
 * Token spans of an analysis mapped into editor positions. Spans are UTF-16 offsets into the
 * analyzed text, which is what CodeMirror counts, so a document position is `offset + span`.
 * Tokens with empty spans (the leading bytes of a character split by byte-level BPE) have no
 * range of their own: the character belongs to the token holding its last byte.
 */
import type { Analysis } from './api/analysis';

export interface TokenRange {
  index: number;
  from: number;
  to: number;
}

export function tokenRanges(analysis: Analysis, offset: number): TokenRange[] {
  const out: TokenRange[] = [];
  analysis.tokens.forEach((t, index) => {
    if (t.to > t.from) {
      out.push({ index, from: offset + t.from, to: offset + t.to });
    }
  });
  return out;
}

/** The token index at a document position, or -1 (binary search over sorted ranges). */
export function tokenAt(ranges: TokenRange[], pos: number): number {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid];
    if (pos < r.from) {
      hi = mid - 1;
    } else if (pos >= r.to) {
      lo = mid + 1;
    } else {
      return r.index;
    }
  }
  return -1;
}
