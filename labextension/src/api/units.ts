/**
 * A decoded `POST unit_activations`: named units (neurons `L0.N224`, SAE features `F1741`) at
 * every token of the text, one column per unit in the order asked. No JupyterLab imports.
 */
import { decodeArray } from './ndarray';
import type { components } from './schema';

export type UnitActivationsRequest = components['schemas']['UnitActivationsRequest'];
export type UnitActivationsResponseWire = components['schemas']['UnitActivationsResponse'];
export type UnitRef = components['schemas']['UnitRef'];

export class UnitActivations {
  readonly model: string;
  readonly units: UnitRef[];
  readonly sae: string | null;
  readonly values: Float32Array;
  readonly length: number;
  /** the text tokens' ids */
  readonly ids: ArrayLike<number>;
  /** the text tokens' spans in the text (UTF-16 offsets) */
  readonly from: ArrayLike<number>;
  readonly to: ArrayLike<number>;
  /** the text tokens' strings (empty when the text was not given) */
  readonly texts: string[];

  constructor(wire: UnitActivationsResponseWire, text = '') {
    this.model = wire.model;
    this.ids = decodeArray(wire.tokens.ids).data;
    const from = (this.from = decodeArray(wire.tokens.start_utf16).data);
    const to = (this.to = decodeArray(wire.tokens.end_utf16).data);
    this.texts = Array.from(from, (f, i) => text.slice(f, to[i]));
    this.units = wire.units;
    this.sae = wire.sae?.name ?? null;
    this.values = Float32Array.from(decodeArray(wire.activations).data);
    this.length = this.units.length ? this.values.length / this.units.length : 0;
  }

  /** Activation of the `n`-th asked unit at token i. */
  at(i: number, n = 0): number {
    return this.values[i * this.units.length + n];
  }

  /** Unit `n`'s activations at every token. */
  column(n = 0): Float32Array {
    return Float32Array.from({ length: this.length }, (_, i) => this.at(i, n));
  }
}
