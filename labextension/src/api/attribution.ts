/**
 * A decoded attribute response (direct logit attribution of one prediction) and the pure
 * reading of it the "why" view needs: its parts ranked by |part|, a head's strongest sources,
 * and the attention weights from the position mapped to the analysis' text tokens.
 */
import { decodeArray, NumericArray } from './ndarray';
import type { components } from './schema';

export type AttributionResponseWire = components['schemas']['AttributionResponse'];
export type AttributeRequest = components['schemas']['AttributeRequest'];

/** One part of the target's (centred) logit. */
export interface Part {
  kind: 'neuron' | 'head' | 'embed' | 'pos_embed' | 'attn_bias' | 'mlp_bias' | 'constant' | 'mlp_total';
  label: string;
  value: number;
  layer?: number;
  /** the neuron's index or the head's number */
  index?: number;
}

export interface Source {
  /** source position (0 is BOS) */
  source: number;
  /** text token index, -1 for BOS and context */
  textIndex: number;
  id: number;
  token: string;
  /** the head's part through this source */
  value: number;
  /** the head's attention weight on it */
  weight: number;
}

export class Attribution {
  readonly model: string;
  readonly position: number;
  readonly target: number;
  readonly baseline: number | null;
  readonly value: number;
  readonly total: number;
  readonly lnScale: number;
  readonly embed: number;
  readonly posEmbed: number;
  readonly constant: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nSources: number;
  readonly attnBias: NumericArray;
  readonly mlpBias: NumericArray;
  readonly mlpTotal: NumericArray;
  readonly heads: NumericArray;
  readonly headSources: NumericArray;
  readonly pattern: NumericArray;
  readonly sourceIds: NumericArray;
  readonly sourceTextIndex: NumericArray;
  readonly topNeurons: { layer: number; index: number; value: number }[];
  /** with `sae` in the request: that SAE's re-split of its layer's MLP part (features, bias, error) */
  readonly features: AttributionResponseWire['features'];
  private readonly strings = new Map<number, string>();

  constructor(wire: AttributionResponseWire) {
    this.model = wire.model;
    this.position = wire.position;
    this.target = wire.target;
    this.baseline = wire.baseline;
    this.value = wire.value;
    this.total = wire.total;
    this.lnScale = wire.ln_scale;
    this.embed = wire.embed;
    this.posEmbed = wire.pos_embed;
    this.constant = wire.constant;
    const heads = decodeArray(wire.heads);
    this.heads = heads.data;
    [this.nLayers, this.nHeads] = [heads.shape[0] ?? 0, heads.shape[1] ?? 0];
    this.attnBias = decodeArray(wire.attn_bias).data;
    this.mlpBias = decodeArray(wire.mlp_bias).data;
    this.mlpTotal = decodeArray(wire.mlp_total).data;
    const hs = decodeArray(wire.head_sources);
    this.headSources = hs.data;
    this.nSources = hs.shape[2] ?? 0;
    this.pattern = decodeArray(wire.pattern).data;
    this.sourceIds = decodeArray(wire.source_ids).data;
    this.sourceTextIndex = decodeArray(wire.source_text_index).data;
    this.topNeurons = wire.top_neurons.map(n => ({ layer: n.layer, index: n.index, value: n.value }));
    this.features = wire.features ?? null;
    wire.strings.ids.forEach((id, i) => this.strings.set(id, wire.strings.values[i]));
  }

  tokenString(id: number): string {
    return this.strings.get(id) ?? `#${id}`;
  }

  /** Every (id, string) the attribution decodes: target, baseline, sources. */
  knownStrings(): IterableIterator<[number, string]> {
    return this.strings.entries();
  }

  head(layer: number, head: number): number {
    return this.heads[layer * this.nHeads + head];
  }

  /** Head (layer, head)'s sources, strongest |part| first. */
  sources(layer: number, head: number): Source[] {
    const base = (layer * this.nHeads + head) * this.nSources;
    const out: Source[] = [];
    for (let s = 0; s < this.nSources; s++) {
      const id = this.sourceIds[s];
      out.push({
        source: s,
        textIndex: this.sourceTextIndex[s],
        id,
        token: this.tokenString(id),
        value: this.headSources[base + s],
        weight: this.pattern[base + s]
      });
    }
    return out.sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  }
}

const byMagnitude = (a: Part, b: Part): number => Math.abs(b.value) - Math.abs(a.value);

/** The listed neurons, largest |part| first. */
export function neuronParts(a: Attribution): Part[] {
  return a.topNeurons
    .map((n): Part => ({ kind: 'neuron', label: `L${n.layer}.N${n.index}`, value: n.value, layer: n.layer, index: n.index }))
    .sort(byMagnitude);
}

/** Every head, largest |part| first. */
export function headParts(a: Attribution): Part[] {
  const out: Part[] = [];
  for (let l = 0; l < a.nLayers; l++) {
    for (let h = 0; h < a.nHeads; h++) {
      out.push({ kind: 'head', label: `L${l}H${h}`, value: a.head(l, h), layer: l, index: h });
    }
  }
  return out.sort(byMagnitude);
}

/**
 * The rest of the sum, largest |part| first: embeddings, biases, the constant (LayerNorm and
 * unembedding bias), and each MLP layer's total over all its neurons (which the listed neurons
 * are part of). Heads + these, less the MLP totals' overlap with the neurons, sum to `total`.
 */
export function otherParts(a: Attribution): Part[] {
  const out: Part[] = [
    { kind: 'embed', label: 'token embedding', value: a.embed },
    { kind: 'pos_embed', label: 'positional embedding', value: a.posEmbed },
    { kind: 'constant', label: 'LayerNorm + unembedding bias', value: a.constant }
  ];
  for (let l = 0; l < a.nLayers; l++) {
    out.push({ kind: 'mlp_total', label: `MLP L${l}, all neurons`, value: a.mlpTotal[l], layer: l });
    out.push({ kind: 'attn_bias', label: `attention bias L${l}`, value: a.attnBias[l], layer: l });
    out.push({ kind: 'mlp_bias', label: `MLP bias L${l}`, value: a.mlpBias[l], layer: l });
  }
  return out.sort(byMagnitude);
}

/** The sum of all parts, from the pieces (every head and every MLP layer's total). */
export function sumOfParts(a: Attribution): number {
  let sum = a.embed + a.posEmbed + a.constant;
  for (let l = 0; l < a.nLayers; l++) {
    sum += a.attnBias[l] + a.mlpBias[l] + a.mlpTotal[l];
    for (let h = 0; h < a.nHeads; h++) {
      sum += a.head(l, h);
    }
  }
  return sum;
}

/**
 * The attention weight of head (layer, head) from the position on each text token: text token
 * index to weight. Sources in the context or the BOS (text index -1) are left out. A token with
 * an empty span (the leading bytes of a character split by byte-level BPE) has no place in the
 * editor: its weight goes to the next token with a span, which holds the character.
 */
export function attentionOnText(a: Attribution, layer: number, head: number, spans: { from: number; to: number }[]): Map<number, number> {
  const out = new Map<number, number>();
  const base = (layer * a.nHeads + head) * a.nSources;
  let carry = 0;
  for (let s = 0; s < a.nSources; s++) {
    const i = a.sourceTextIndex[s];
    if (i < 0 || i >= spans.length) {
      continue;
    }
    const w = a.pattern[base + s] + carry;
    if (spans[i].to > spans[i].from) {
      out.set(i, (out.get(i) ?? 0) + w);
      carry = 0;
    } else {
      carry = w;
    }
  }
  return out;
}
