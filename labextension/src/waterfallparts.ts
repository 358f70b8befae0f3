/**
 * The waterfall's arithmetic, pure (no DOM, no JupyterLab): an attribution's direct parts,
 * largest |part| first (`waterfallParts`), an MLP layer one level deeper (`mlpChildren`), bars
 * placed from running sums (`place`) and their range (`extent`). `views/waterfall.ts` draws them.
 */
import type { Attribution } from './api/attribution';
import { fmt } from './format';

export type WfKind = 'total' | 'embed' | 'pos_embed' | 'head' | 'mlp' | 'attn_bias' | 'mlp_bias' | 'constant' | 'rest' | 'neuron' | 'feature' | 'other';

/** One bar of the waterfall. */
export interface WfPart {
  kind: WfKind;
  label: string;
  value: number;
  layer?: number;
  /** a neuron's index, a head's number, a feature's index */
  index?: number;
}

/** A part placed: its bar runs from `start` to `end` (the running sums before and after it). */
export interface WfPlaced extends WfPart {
  start: number;
  end: number;
}

export const signed = (x: number, digits = 2): string => (x >= 0 ? '+' : '\u2212') + fmt(Math.abs(x), digits);

const byMagnitude = (a: WfPart, b: WfPart): number => Math.abs(b.value) - Math.abs(a.value);

/** Whether the model has MLPs at all (an attention-only model's MLP parts are all zero and listed nowhere). */
function hasMlp(a: Attribution): boolean {
  return a.topNeurons.length > 0 || Array.from(a.mlpTotal).some(x => x !== 0) || Array.from(a.mlpBias).some(x => x !== 0);
}

/**
 * Every direct part of the attribution, largest |part| first: the embeddings, each head, each
 * layer's MLP (all its neurons together), the attention and MLP biases, the constant (LayerNorm
 * and unembedding bias). They sum to `a.total`.
 */
export function waterfallParts(a: Attribution): WfPart[] {
  const out: WfPart[] = [
    { kind: 'embed', label: 'token embedding', value: a.embed },
    { kind: 'pos_embed', label: 'positional embedding', value: a.posEmbed },
    { kind: 'constant', label: 'LayerNorm + unembedding bias', value: a.constant }
  ];
  const mlp = hasMlp(a);
  for (let l = 0; l < a.nLayers; l++) {
    for (let h = 0; h < a.nHeads; h++) {
      out.push({ kind: 'head', label: `L${l}H${h}`, value: a.head(l, h), layer: l, index: h });
    }
    if (mlp) {
      out.push({ kind: 'mlp', label: `MLP L${l}`, value: a.mlpTotal[l], layer: l });
      out.push({ kind: 'mlp_bias', label: `MLP bias L${l}`, value: a.mlpBias[l], layer: l });
    }
    out.push({ kind: 'attn_bias', label: `attention bias L${l}`, value: a.attnBias[l], layer: l });
  }
  return out.filter(p => p.kind === 'head' || p.kind === 'mlp' || p.value !== 0).sort(byMagnitude);
}

/**
 * One MLP layer's part, one level deeper: its listed neurons (largest |part| first) and the rest
 * of its neurons; with the SAE's features of that layer, the features, its decoder bias and error.
 */
export function mlpChildren(a: Attribution, layer: number): { neurons: WfPart[]; features: WfPart[] } {
  const listed = a.topNeurons.filter(n => n.layer === layer).sort((x, y) => Math.abs(y.value) - Math.abs(x.value));
  const neurons: WfPart[] = listed.map(n => ({ kind: 'neuron', label: `L${n.layer}.N${n.index}`, value: n.value, layer, index: n.index }));
  const rest = a.mlpTotal[layer] - listed.reduce((s, n) => s + n.value, 0);
  neurons.push({ kind: 'other', label: `the other neurons of L${layer}`, value: rest, layer });
  const features: WfPart[] = [];
  const f = a.features;
  if (f && f.layer === layer) {
    for (const x of f.top) {
      features.push({ kind: 'feature', label: `F${x.index}`, value: x.part, layer, index: x.index });
    }
    const shown = f.top.reduce((s, x) => s + x.part, 0);
    features.push({ kind: 'other', label: 'the other features', value: f.total - shown, layer });
    features.push({ kind: 'other', label: `${f.sae} decoder bias`, value: f.bias, layer });
    features.push({ kind: 'other', label: `${f.sae} error`, value: f.error, layer });
  }
  return { neurons, features };
}

/** Parts placed one after the other from `from`: each bar from the running sum before it to after it. */
export function place(parts: WfPart[], from = 0): WfPlaced[] {
  let sum = from;
  return parts.map(p => {
    const start = sum;
    sum += p.value;
    return { ...p, start, end: sum };
  });
}

/** The [lo, hi] range a set of placed bars (and 0) needs. */
export function extent(placed: WfPlaced[]): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const p of placed) {
    lo = Math.min(lo, p.start, p.end);
    hi = Math.max(hi, p.start, p.end);
  }
  return hi > lo ? [lo, hi] : [lo - 1, hi + 1];
}

