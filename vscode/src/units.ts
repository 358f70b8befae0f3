/**
 * Colouring the text by one unit (a neuron `L0.N224` or an SAE feature `F1741`) instead of by
 * log-prob: reading the unit's name as the server does (python/lenscope/units.py), the SAEs a
 * feature can come from, the ranges to colour on the 0..max activation scale, and the status
 * text. Pure.
 */
import { activationBucket, TokenRange } from './decorate';
import { fmt, SaeEntry, saesFor, UnitActivations } from './shared';

export const COLOUR_BY_UNIT = 'lenscope.colourByUnit';

export type UnitName = { kind: 'neuron'; layer: number; index: number; name: string } | { kind: 'feature'; index: number; name: string };

/** A neuron or feature from its name, case-insensitive (`l0.n224`, ` f12 `), written canonically; null: not one. */
export function parseUnit(input: string): UnitName | null {
  const m = /^(?:L(\d+)\.N(\d+)|F(\d+))$/i.exec(input.trim());
  if (!m) {
    return null;
  }
  if (m[3] !== undefined) {
    const index = Number(m[3]);
    return { kind: 'feature', index, name: `F${index}` };
  }
  const layer = Number(m[1]);
  const index = Number(m[2]);
  return { kind: 'neuron', layer, index, name: `L${layer}.N${index}` };
}

/** What the input box says about a name that is not a unit (null: fine). */
export function unitInputProblem(input: string): string | null {
  return parseUnit(input) ? null : 'a neuron L0.N224 (layer.neuron) or a feature F1741 (of an SAE, picked next)';
}

/** The SAEs a feature of `model` can come from: loadable, made for that model first. */
export function saeChoices(model: string, saes: readonly SaeEntry[]): SaeEntry[] {
  return saesFor(model, saes).filter(s => s.loadable);
}

/** The largest activation of unit column 0 (−Infinity when there are no tokens). */
export function maxActivation(acts: UnitActivations): number {
  let max = -Infinity;
  for (let i = 0; i < acts.length; i++) {
    const v = acts.at(i);
    if (v > max) {
      max = v;
    }
  }
  return max;
}

/** The document ranges to colour by unit column 0, shifted by where the text starts (`token` is the token's index). */
export function unitRanges(acts: UnitActivations, base: number, max = maxActivation(acts)): TokenRange[] {
  const out: TokenRange[] = [];
  for (let i = 0; i < acts.length; i++) {
    const bucket = activationBucket(acts.at(i), max);
    if (bucket !== null && acts.to[i] > acts.from[i]) {
      out.push({ start: base + acts.from[i], end: base + acts.to[i], bucket, token: i });
    }
  }
  return out;
}

/** The status bar's text: which unit colours the text, of which SAE, and its max. */
export function unitStatus(unit: string, sae: string | null, max: number): string {
  const of = sae ? ` of ${sae}` : '';
  return max > 0 ? `lenscope: ${unit}${of} · max ${fmt(max)}` : `lenscope: ${unit}${of} · never positive (max ${fmt(max)})`;
}

/** The command URI that colours the text by `unit` (arguments are JSON, URI-encoded). */
export function colourCommandUri(unit: string, model?: string, sae?: string | null): string {
  return `command:${COLOUR_BY_UNIT}?${encodeURIComponent(JSON.stringify([{ unit, model, sae: sae ?? undefined }]))}`;
}
