/**
 * Interventions on the analyzed text, the pure part: a typed component (`L0.N123`, `L0.H3`,
 * `L0.MLP`, `L0.ATTN`, `L0.RESID` where the server has it), the ops each component allows, labels, the list as `POST analyze`'s
 * `interventions`, and the Δ log-prob (intervened − plain) of a token with its scale.
 */
import type { components } from './api/schema';

export type InterventionWire = components['schemas']['InterventionWire'];
export type AppliedIntervention = components['schemas']['AppliedIntervention'];
export type Component = InterventionWire['component'];
/** The ops (`patch` needs a source text: only the patching tab adds one; the list's op select does not offer it). */
export type Op = InterventionWire['op'];

/** What is changed: a neuron, a head, an SAE feature (layer null, its SAE), or a whole MLP / attention layer (index null). */
export interface ComponentRef {
  component: Component;
  layer: number | null;
  index: number | null;
  /** a feature's SAE (the analyze request's `sae`) */
  sae?: string | null;
}

/** One intervention of the list: what, how, where (text token indices; null: every position). */
export interface Intervention extends ComponentRef {
  id: number;
  op: Op;
  value: number;
  positions: number[] | null;
  enabled: boolean;
  /** the text token it was started from ("this token only"), if any */
  origin: number | null;
  /** patch: the text whose activation is patched in (the patching tab's clean text) */
  source?: string | null;
}

/** The ops the server allows per component. */
export const OPS: Readonly<Record<string, Op[]>> = {
  neuron: ['zero', 'mean', 'set', 'scale', 'steer'],
  feature: ['zero', 'mean', 'set', 'scale', 'steer'],
  head: ['zero', 'mean', 'scale', 'steer'],
  mlp: ['zero', 'mean', 'scale'],
  attn: ['zero', 'mean', 'scale'],
  resid: ['zero', 'mean', 'scale']
};

/** The ops component `c` allows. */
export function opsOf(c: Component): Op[] {
  return OPS[c] ?? [];
}

/** The ops that take a value, and what the value is. */
export const VALUE_OF: Partial<Record<Op, string>> = { set: 'value', scale: 'factor', steer: 'coefficient' };

/** A sensible value when switching to an op: scale keeps half, steer adds one unit. */
export const DEFAULT_VALUE: Record<Op, number> = { zero: 0, mean: 0, set: 0, scale: 0.5, steer: 1, patch: 0 };

/** Whether a component names one unit (a neuron, head or feature) rather than a whole layer. */
export function hasIndex(c: Component): boolean {
  return c === 'neuron' || c === 'head' || c === 'feature';
}

/**
 * `L0.N123`, `L0.H3`, `L0.MLP`, `L0.ATTN`, `L0.RESID`, `F12` (a feature of `sae`; case and spaces
 * ignored, the `L` optional); null when not one.
 */
export function parseComponent(spec: string, sae: string | null = null): ComponentRef | null {
  const s = spec.replace(/\s+/g, '').toUpperCase();
  const f = /^F(\d+)$/.exec(s);
  if (f) {
    return { component: 'feature', layer: null, index: Number(f[1]), sae };
  }
  let m = /^L?(\d+)\.(N|H)(\d+)$/.exec(s);
  if (m) {
    return { component: m[2] === 'N' ? 'neuron' : 'head', layer: Number(m[1]), index: Number(m[3]) };
  }
  m = /^L?(\d+)\.(MLP|ATTN|RESID)$/.exec(s);
  if (m) {
    const component = ({ MLP: 'mlp', ATTN: 'attn', RESID: 'resid' } as Record<string, string>)[m[2]] as Component;
    return { component, layer: Number(m[1]), index: null };
  }
  return null;
}

/** What the client knows of a model's shape (`GET models`): enough to check a component. */
export interface ShapeLike {
  n_layers: number;
  d_mlp: number | null;
  n_heads?: number | null;
}

/**
 * Why `c` is not a component of a model of this shape (a layer past the last, a neuron past
 * d_mlp, a head past n_heads, an MLP of an attention-only model), or null when it is (or the
 * shape is not known: the server decides). Checked before an intervention joins the list.
 */
export function componentProblem(c: ComponentRef, shape: ShapeLike | null | undefined, model = 'the model'): string | null {
  if (!shape) {
    return null;
  }
  const label = componentLabel(c);
  if (c.component === 'feature') {
    return c.sae ? null : `${label}: pick an SAE in the panel first (a feature is of an SAE).`;
  }
  if (c.layer === null) {
    return `${label}: which layer?`;
  }
  if (c.layer >= shape.n_layers) {
    return `${label}: ${model} has ${shape.n_layers} layer${shape.n_layers === 1 ? '' : 's'} (L0${shape.n_layers > 1 ? `–L${shape.n_layers - 1}` : ''}).`;
  }
  if ((c.component === 'neuron' || c.component === 'mlp') && shape.d_mlp === null) {
    return `${label}: ${model} is attention-only (no MLP neurons).`;
  }
  if (c.component === 'neuron' && shape.d_mlp !== null && (c.index ?? 0) >= shape.d_mlp) {
    return `${label}: ${model} has ${shape.d_mlp} neurons per layer (N0–N${shape.d_mlp - 1}).`;
  }
  if (c.component === 'head' && shape.n_heads && (c.index ?? 0) >= shape.n_heads) {
    return `${label}: ${model} has ${shape.n_heads} heads per layer (H0–H${shape.n_heads - 1}).`;
  }
  return null;
}

/** `L0.N5`, `L0.H3`, `L0.MLP`, `L0.ATTN`, `F12`. */
export function componentLabel(c: ComponentRef): string {
  switch (c.component) {
    case 'feature':
      return `F${c.index}`;
    case 'neuron':
      return `L${c.layer}.N${c.index}`;
    case 'head':
      return `L${c.layer}.H${c.index}`;
    case 'mlp':
      return `L${c.layer}.MLP`;
    case 'attn':
      return `L${c.layer}.ATTN`;
    default:
      return `L${c.layer}.${String(c.component).toUpperCase()}`;
  }
}

/** The enabled interventions, in order, as `POST analyze` takes them. */
export function toWire(list: readonly Intervention[]): InterventionWire[] {
  return list
    .filter(i => i.enabled)
    .map(i => ({
      component: i.component,
      layer: i.component === 'feature' ? null : i.layer,
      index: hasIndex(i.component) ? i.index : null,
      op: i.op,
      value: VALUE_OF[i.op] ? i.value : 0,
      positions: i.positions,
      source: i.op === 'patch' ? (i.source ?? null) : null
    }));
}

/** The SAE the list's enabled feature interventions are of (the analyze request's `sae`), or null without any. */
export function saeOf(list: readonly Intervention[]): string | null {
  return list.find(i => i.enabled && i.component === 'feature' && i.sae)?.sae ?? null;
}

/** Whether two wire lists ask for the same thing (a re-run is not needed). */
export function sameWire(a: readonly InterventionWire[], b: readonly InterventionWire[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Δ log-prob of each text token: intervened − plain (NaN where there is none, e.g. the first token). */
export function deltas(plain: { length: number; logprobOf(i: number): number }, intervened: { logprobOf(i: number): number }): Float64Array {
  const out = new Float64Array(plain.length);
  for (let i = 0; i < plain.length; i++) {
    out[i] = intervened.logprobOf(i) - plain.logprobOf(i);
  }
  return out;
}

const SPANS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20];

/** The colour scale's span for these Δs: the smallest of 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20 at or above the largest |Δ|. */
export function deltaSpan(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) {
      max = Math.max(max, Math.abs(values[i]));
    }
  }
  return SPANS.find(s => s >= max - 1e-12) ?? SPANS[SPANS.length - 1];
}

/** Signed with 2 decimals (3 below 0.1): `+0.84`, `−0.012`; `0.000` below 0.0005. */
export function signedDelta(x: number): string {
  if (!Number.isFinite(x)) {
    return '—';
  }
  if (Math.abs(x) < 0.0005) {
    return '0.000'; // not '+0.000' for a change that rounds away
  }
  const digits = Math.abs(x) < 0.1 ? 3 : 2;
  return (x >= 0 ? '+' : '\u2212') + Math.abs(x).toFixed(digits);
}
