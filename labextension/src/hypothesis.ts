/**
 * "Test on text", the pure part: a unit's description as a predicate over a text's tokens, and
 * how well it predicts where the unit fires there. The description's pattern is what the wire
 * gives: without `kind`, `pattern_ids` is [token] or [previous token, token]; with `kind:
 * 'tokens'`, any of `pattern_ids`, with `context_id` among the `within` tokens before it when
 * set. A token class (`kind: 'class'`) or no pattern (`'none'`) is not predicted here (its
 * membership lives on the server). Firing is an activation above the description's threshold.
 * No JupyterLab imports.
 */
import type { components } from './api/schema';

/** Two decimals (the panel's `fmt`, without importing the DOM helpers). */
function fixed(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : '—';
}

export type Description = components['schemas']['NeuronDescription'];

/** A description's pattern as the wire gives it (the kinds' fields are read where present). */
export type PatternWire = Pick<Description, 'pattern_ids'> & { kind?: string | null; context_id?: number | null; within?: number | null };

/** Where the pattern occurs (token i is its last token), or null for a pattern kind not known here. */
export function predicted(description: PatternWire, ids: ArrayLike<number>): boolean[] | null {
  const p = description.pattern_ids;
  const out = Array.from({ length: ids.length }, () => false);
  if (description.kind !== undefined && description.kind !== null) {
    if (description.kind !== 'tokens') {
      return null;
    }
    const set = new Set(p);
    const context = description.context_id ?? null;
    const within = Math.max(1, description.within ?? 1);
    for (let i = 0; i < ids.length; i++) {
      // tokens before the text (its context, the BOS) are not known here: only the text's count
      out[i] = set.has(ids[i]) && (context === null || Array.from({ length: Math.min(within, i) }, (_, k) => ids[i - 1 - k]).includes(context));
    }
    return out;
  }
  if (p.length === 1) {
    for (let i = 0; i < ids.length; i++) {
      out[i] = ids[i] === p[0];
    }
    return out;
  }
  if (p.length === 2) {
    // the first text token's previous token is in the context (or the BOS): not known here
    for (let i = 1; i < ids.length; i++) {
      out[i] = ids[i - 1] === p[0] && ids[i] === p[1];
    }
    return out;
  }
  return null;
}

/** The description scored on one text: counts, and the two conditional shares. */
export interface TextScore {
  tokens: number;
  /** tokens where the activation is above the threshold */
  fires: number;
  /** tokens where the pattern occurs */
  occurs: number;
  both: number;
  /** P(pattern | fires): of the tokens where it fires, the share the pattern predicts (null: it never fires) */
  precision: number | null;
  /** P(fires | pattern): of the tokens where the pattern occurs, the share where it fires (null: no occurrence) */
  recall: number | null;
}

/** Score the prediction against the activations: the unit as a detector of its pattern. */
export function scoreOnText(values: ArrayLike<number>, threshold: number, prediction: readonly boolean[]): TextScore {
  let fires = 0;
  let occurs = 0;
  let both = 0;
  for (let i = 0; i < values.length; i++) {
    const f = values[i] > threshold;
    fires += f ? 1 : 0;
    occurs += prediction[i] ? 1 : 0;
    both += f && prediction[i] ? 1 : 0;
  }
  return { tokens: values.length, fires, occurs, both, precision: fires ? both / fires : null, recall: occurs ? both / occurs : null };
}

/** A share as shown: `0.67 (2/3)`, or `—` with the reason. */
function share(num: number, den: number, none: string): string {
  return den ? `${fixed(num / den)} (${num}/${den})` : `— (${none})`;
}

/** The summary line of a scored text. */
export function scoreLine(s: TextScore, threshold: number, unit: string): string {
  return (
    `${unit} fires (above ${fixed(threshold)}) at ${s.fires} of ${s.tokens} tokens; the pattern occurs at ${s.occurs}; both ${s.both}. ` +
    `Precision P(pattern | fires) ${share(s.both, s.fires, 'it never fires')}, recall P(fires | pattern) ${share(s.both, s.occurs, 'the pattern does not occur')}.`
  );
}
