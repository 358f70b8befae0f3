/** Pure: how a direct logit part is written (signed, 2 decimals) and a neuron chip's label. */
import type { components } from './api/schema';
import { fmt } from './format';

type AttributedNeuron = components['schemas']['AttributedNeuron'];

/** A signed part, 2 decimals: `+0.84`, `−1.20`. */
export function signedPart(x: number): string {
  return (x >= 0 ? '+' : '\u2212') + fmt(Math.abs(x));
}

/** A neuron chip's text: `L0.N5 +0.84`. */
export function neuronPartLabel(n: Pick<AttributedNeuron, 'layer' | 'index' | 'value'>): string {
  return `L${n.layer}.N${n.index} ${signedPart(n.value)}`;
}
