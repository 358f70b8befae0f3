/**
 * Colour scales for tokens. Log-probs of the actual token map onto a sequential scale (surprise:
 * low log-prob, strong colour); neuron activations onto their own scale; comparisons (a later
 * issue) onto a diverging one. Colours are rgba so the editor's theme shows through.
 */

export type ScaleName = 'surprise' | 'viridis' | 'grayscale';

const VIRIDIS: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37]
];

function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

function stops(points: [number, number, number][], t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (points.length - 1);
  const i = Math.min(points.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [points[i], points[i + 1]];
  return [Math.round(lerp(a[0], b[0], f)), Math.round(lerp(a[1], b[1], f)), Math.round(lerp(a[2], b[2], f))];
}

/** 0 at log-prob 0 (certain), 1 at `floor` or below (very surprising). NaN -> null (no colour). */
export function surprise(logprob: number, floor = -10): number | null {
  if (!Number.isFinite(logprob)) {
    return null;
  }
  return Math.min(1, Math.max(0, logprob / floor));
}

/** A CSS colour for intensity t in [0, 1] on the named scale; transparent at t = 0 for 'surprise'. */
export function colorFor(t: number | null, scale: ScaleName = 'surprise'): string {
  if (t === null) {
    return 'transparent';
  }
  const v = Math.min(1, Math.max(0, t));
  switch (scale) {
    case 'viridis': {
      const [r, g, b] = stops(VIRIDIS, v);
      return `rgba(${r}, ${g}, ${b}, 0.45)`;
    }
    case 'grayscale':
      return `rgba(128, 128, 128, ${(0.6 * v).toFixed(3)})`;
    default:
      // warm red-orange with alpha growing with surprise: readable on light and dark themes
      return `rgba(230, 70, 40, ${(0.55 * v).toFixed(3)})`;
  }
}

/** Neuron activation relative to the largest in view: blue, alpha by value (negative: none). */
export function activationColor(value: number, max: number): string {
  if (!(max > 0) || !(value > 0)) {
    return 'transparent';
  }
  return `rgba(40, 120, 230, ${(0.65 * Math.min(1, value / max)).toFixed(3)})`;
}

/** Diverging: green where model A beats B (diff > 0), purple where B is better; alpha by size. */
export function diffColor(diff: number, span = 4): string {
  if (!Number.isFinite(diff) || diff === 0) {
    return 'transparent';
  }
  const a = (0.6 * Math.min(1, Math.abs(diff) / span)).toFixed(3);
  return diff > 0 ? `rgba(30, 160, 80, ${a})` : `rgba(150, 60, 200, ${a})`;
}

/**
 * The comparison's diff for one token: max(lp_A, clamp) − max(lp_B, clamp). Both sides are
 * clamped alike (DESIGN: the weaker model's log-prob is clamped, whichever it is): where both are
 * below the clamp neither wins (0, no colour), and where A is below it B wins by at most
 * lp_B − clamp. Where A wins (the rows a corpus comparison ranks) it equals lp_A − max(lp_B, clamp).
 */
export function clampedDiff(lpA: number, lpB: number, clamp: number): number {
  return Math.max(lpA, clamp) - Math.max(lpB, clamp);
}

/** Five legend stops for the panel, as [label, colour]. */
export function legend(scale: ScaleName, floor = -10): [string, string][] {
  return [0, 0.25, 0.5, 0.75, 1].map(t => [`${(t * floor).toFixed(1)}`, colorFor(t, scale)]);
}

/** A head's attention weight on a source token: amber, alpha = the weight (0..1). */
export function attentionColor(weight: number): string {
  const a = Math.max(0, Math.min(1, Number.isFinite(weight) ? weight : 0));
  return `rgba(245, 150, 0, ${a.toFixed(3)})`;
}

/**
 * An intervention's Δ log-prob of a token (intervened − plain): red where it hurts (Δ < 0),
 * blue where it helps; alpha 0.7 · sqrt(|Δ| / span), full at the span (the square root keeps
 * the many small changes visible beside the few large ones).
 */
export function deltaColor(delta: number, span = 1): string {
  if (!Number.isFinite(delta) || delta === 0 || !(span > 0)) {
    return 'transparent';
  }
  const a = (0.7 * Math.sqrt(Math.min(1, Math.abs(delta) / span))).toFixed(3);
  return delta < 0 ? `rgba(220, 40, 40, ${a})` : `rgba(40, 110, 230, ${a})`;
}

/**
 * Activation patching's restored share (−1 .. 1, clamped): blue where patching the clean
 * activation restores the clean metric (share > 0), orange where it pushes the other way;
 * alpha 0.8 · |share|.
 */
export function restoredColor(share: number): string {
  if (!Number.isFinite(share) || share === 0) {
    return 'transparent';
  }
  const a = (0.8 * Math.min(1, Math.abs(share))).toFixed(3);
  return share > 0 ? `rgba(40, 110, 230, ${a})` : `rgba(230, 120, 20, ${a})`;
}
