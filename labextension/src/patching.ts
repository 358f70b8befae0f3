/**
 * Activation patching, the pure part: a decoded `POST patch` (`PatchGrid`: the restored share
 * (patched − corrupted) / (clean − corrupted) per layer, component, position and head), a grid
 * cell as the `patch` intervention that applies it inline on the corrupted text, its label, the
 * share as shown, and the default target / baseline (each text's top-1 next token).
 */
import type { Analysis } from './api/analysis';
import type { PatchResponse } from './api/client';
import { decodeArray, NumericArray } from './api/ndarray';
import type { InterventionWire } from './interventions';

/** What one grid cell patches: the residual stream before a layer, an attention layer's or an MLP's output, or one head. */
export type PatchComponent = 'resid' | 'attn' | 'mlp' | 'head';

export interface PatchCell {
  component: PatchComponent;
  layer: number;
  /** the head (component 'head'), else null */
  head: number | null;
  /** the corrupted text's token (text token index) */
  position: number;
}

/** The layer grids in the order shown: wire key, component, title. */
export const LAYER_GRIDS: readonly { key: 'resid_pre' | 'attn_out' | 'mlp_out'; component: PatchComponent; title: string }[] = [
  { key: 'resid_pre', component: 'resid', title: 'Residual stream before each layer (resid_pre)' },
  { key: 'attn_out', component: 'attn', title: 'Attention output (attn_out)' },
  { key: 'mlp_out', component: 'mlp', title: 'MLP output (mlp_out)' }
];

/** A decoded `POST patch`: values by cell, the corrupted text's tokens. */
export class PatchGrid {
  readonly model: string;
  readonly target: number;
  readonly baseline: number;
  readonly position: number;
  readonly cleanValue: number;
  readonly corruptedValue: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nPositions: number;
  /** the corrupted text's tokens (their text) */
  readonly tokens: string[];
  private readonly layers: Record<'resid' | 'attn' | 'mlp', NumericArray>;
  private readonly heads: NumericArray;
  private readonly strings = new Map<number, string>();

  constructor(wire: PatchResponse, corruptedText: string) {
    this.model = wire.model;
    this.target = wire.target;
    this.baseline = wire.baseline;
    this.position = wire.position;
    this.cleanValue = wire.clean_value;
    this.corruptedValue = wire.corrupted_value;
    const resid = decodeArray(wire.resid_pre);
    const heads = decodeArray(wire.heads);
    this.nLayers = resid.shape[0] ?? 0;
    this.nPositions = resid.shape[1] ?? 0;
    this.nHeads = heads.shape[1] ?? 0;
    this.layers = { resid: resid.data, attn: decodeArray(wire.attn_out).data, mlp: decodeArray(wire.mlp_out).data };
    this.heads = heads.data;
    const from = decodeArray(wire.corrupted.start_utf16).data;
    const to = decodeArray(wire.corrupted.end_utf16).data;
    this.tokens = Array.from(from, (f, i) => corruptedText.slice(f, to[i]));
    const ids: ArrayLike<number> = Array.isArray(wire.strings.ids) ? wire.strings.ids : decodeArray(wire.strings.ids as never).data;
    wire.strings.values.forEach((value, i) => this.strings.set(ids[i], value));
  }

  /** The restored share of one cell (NaN where there is none, e.g. a model without an MLP). */
  value(cell: PatchCell): number {
    if (cell.component === 'head') {
      return this.heads[(cell.layer * this.nHeads + (cell.head ?? 0)) * this.nPositions + cell.position];
    }
    return this.layers[cell.component][cell.layer * this.nPositions + cell.position];
  }

  /** The head cell with the largest |share| (first of equals), or null without heads. */
  strongestHead(): PatchCell | null {
    let best: PatchCell | null = null;
    let max = -1;
    for (let layer = 0; layer < this.nLayers; layer++) {
      for (let head = 0; head < this.nHeads; head++) {
        for (let position = 0; position < this.nPositions; position++) {
          const cell: PatchCell = { component: 'head', layer, head, position };
          const v = Math.abs(this.value(cell));
          if (Number.isFinite(v) && v > max) {
            max = v;
            best = cell;
          }
        }
      }
    }
    return best;
  }

  tokenString(id: number): string {
    return this.strings.get(id) ?? `#${id}`;
  }

  knownStrings(): IterableIterator<[number, string]> {
    return this.strings.entries();
  }
}

/** A cell as `POST analyze`'s intervention on the corrupted text: patch that component at that token from `clean`. */
export function cellIntervention(cell: PatchCell, clean: string): InterventionWire & { layer: number } {
  return {
    component: cell.component,
    layer: cell.layer,
    index: cell.component === 'head' ? cell.head : null,
    op: 'patch',
    value: 0,
    positions: [cell.position],
    source: clean
  };
}

/** `L0.RESID`, `L1.ATTN`, `L0.MLP`, `L0.H3`, with the token: `L0.H3 @ 5`. */
export function cellLabel(cell: PatchCell): string {
  const what = cell.component === 'head' ? `H${cell.head}` : cell.component.toUpperCase();
  return `L${cell.layer}.${what} @ ${cell.position}`;
}

/** Whether two cells are the same. */
export function sameCell(a: PatchCell | null, b: PatchCell | null): boolean {
  return !!a && !!b && a.component === b.component && a.layer === b.layer && a.head === b.head && a.position === b.position;
}

/** The share as a cell shows it: 2 decimals, `—` where there is none. */
export function shareText(v: number): string {
  if (!Number.isFinite(v)) {
    return '—';
  }
  const s = v.toFixed(2);
  return s === '-0.00' ? '0.00' : s;
}

/** The top-1 prediction after the last token of an analysis (what the text "says next"). */
export function nextTop(a: Analysis | null): { id: number; token: string } | null {
  if (!a || a.length === 0) {
    return null;
  }
  const top = a.after(a.length - 1).top[0];
  return top ? { id: top.id, token: top.token } : null;
}

/**
 * Default target / baseline: the clean text's top-1 next token vs the corrupted's top-1, or,
 * when both predict the same, the corrupted's best other token (null where unknown).
 */
export function defaultPair(clean: Analysis | null, corrupted: Analysis | null): { target: { id: number; token: string } | null; baseline: { id: number; token: string } | null } {
  const target = nextTop(clean);
  if (!corrupted || corrupted.length === 0) {
    return { target, baseline: null };
  }
  const other = corrupted.after(corrupted.length - 1).top.find(c => c.id !== target?.id);
  return { target, baseline: other ? { id: other.id, token: other.token } : null };
}
