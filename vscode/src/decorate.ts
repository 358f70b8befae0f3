/**
 * Token colouring as VS Code decorations. A decoration type has one fixed style, so colours
 * are quantized into buckets, each one decoration type; the colours come from the shared scale
 * (labextension/src/colors.ts). Also: mapping the analyzed range through edits. Pure.
 */
import { activationColor, Analysis, clampedDiff, colorFor, diffColor, surprise } from './shared';

export const BUCKETS = 8;

/** The bucket (0 .. BUCKETS-1) of a token's log-prob; null: no colour (unknown, or near-certain). */
export function surpriseBucket(logprob: number, floor: number, buckets = BUCKETS): number | null {
  const t = surprise(logprob, floor);
  if (t === null) {
    return null;
  }
  const b = Math.min(buckets - 1, Math.floor(t * buckets));
  return b === 0 && t < 0.5 / buckets ? null : b;
}

/** The background colour of surprise bucket b (its middle intensity on the shared scale). */
export function surpriseColor(b: number, buckets = BUCKETS): string {
  return colorFor((b + 0.5) / buckets);
}

/** Diverging buckets of a comparison: -BUCKETS..-1 (B better), 1..BUCKETS (A better); null: ~equal. */
export function diffBucket(diff: number, span = 4, buckets = BUCKETS): number | null {
  if (!Number.isFinite(diff)) {
    return null;
  }
  const m = Math.min(buckets, Math.ceil((Math.min(Math.abs(diff), span) / span) * buckets));
  return m === 0 ? null : diff > 0 ? m : -m;
}

export function diffBucketColor(b: number, span = 4, buckets = BUCKETS): string {
  return diffColor((Math.sign(b) * Math.abs(b) * span) / buckets, span);
}

export interface TokenRange {
  /** UTF-16 offsets in the document */
  start: number;
  end: number;
  bucket: number;
  token: number;
}

/** The document ranges to colour: token spans shifted by where the analyzed text starts. */
export function tokenRanges(analysis: Analysis, base: number, floor: number, compare?: { analysis: Analysis; clamp: number } | null): TokenRange[] {
  const out: TokenRange[] = [];
  analysis.tokens.forEach((t, i) => {
    if (t.to <= t.from) {
      return;
    }
    const bucket = compare
      ? diffBucket(clampedDiff(analysis.logprobOf(i), compare.analysis.logprobOf(i), compare.clamp))
      : surpriseBucket(analysis.logprobOf(i), floor);
    if (bucket !== null) {
      out.push({ start: base + t.from, end: base + t.to, bucket, token: i });
    }
  });
  return out;
}

/** The token at document offset `offset` (binary search over the spans), or -1. */
export function tokenAt(analysis: Analysis, base: number, offset: number): number {
  const rel = offset - base;
  let lo = 0;
  let hi = analysis.tokens.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const t = analysis.tokens[mid];
    if (rel < t.from) {
      hi = mid - 1;
    } else if (rel >= t.to) {
      lo = mid + 1;
    } else {
      return mid;
    }
  }
  return -1;
}

export interface Change {
  /** UTF-16 offset and length of the replaced text, and the length of what replaced it */
  rangeOffset: number;
  rangeLength: number;
  textLength: number;
}

/**
 * Where the analyzed range [start, end) is after an edit: shifted when the edit is wholly
 * before it, unchanged when wholly after, null (stale: clear it) when the edit touches it.
 */
export function mapRange(start: number, end: number, change: Change): { start: number; end: number } | null {
  const cEnd = change.rangeOffset + change.rangeLength;
  if (change.rangeOffset >= end) {
    return { start, end };
  }
  if (cEnd <= start) {
    const delta = change.textLength - change.rangeLength;
    return { start: start + delta, end: end + delta };
  }
  return null;
}

/** The bucket (0 .. BUCKETS-1) of an activation on the scale 0..max; null: no colour (≤ 0, unknown, or near 0). */
export function activationBucket(value: number, max: number, buckets = BUCKETS): number | null {
  if (!(max > 0) || !(value > 0)) {
    return null;
  }
  const t = Math.min(1, value / max);
  const b = Math.min(buckets - 1, Math.floor(t * buckets));
  return b === 0 && t < 0.5 / buckets ? null : b;
}

/** The background colour of activation bucket b (its middle intensity on the shared activation scale). */
export function activationBucketColor(b: number, buckets = BUCKETS): string {
  return activationColor((b + 0.5) / buckets, 1);
}
