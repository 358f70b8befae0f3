/**
 * An analysis' SAE features (`features` of `POST analyze` with `sae`): row i is at token i, like
 * the neurons; each row holds the `f` strongest features there, strongest first, -1 where fewer
 * fire. No JupyterLab imports.
 */
import { decodeArray, NumericArray } from './ndarray';
import type { components } from './schema';

export type FeaturesWire = components['schemas']['FeaturesWire'];
export type SaeEntry = components['schemas']['SaeEntry'];

export interface FeatureHit {
  index: number;
  activation: number;
}

export interface StrongFeature {
  index: number;
  /** the largest activation over the tokens whose top-f list it is in */
  max: number;
  /** the token where that is */
  at: number;
  /** how many tokens list it */
  count: number;
}

/** A feature's label: `F123`. */
export function featureLabel(index: number): string {
  return `F${index}`;
}

export class Features {
  readonly sae: string;
  readonly hookPoint: string;
  readonly dSae: number;
  /** features per token (f): the width of each row */
  readonly perToken: number;
  readonly rows: number;
  private readonly index: NumericArray;
  private readonly activation: NumericArray;

  constructor(wire: FeaturesWire) {
    this.sae = wire.sae;
    this.hookPoint = wire.hook_point;
    this.dSae = wire.d_sae;
    const index = decodeArray(wire.index);
    this.index = index.data;
    this.rows = index.shape[0] ?? 0;
    this.perToken = index.shape[1] ?? 0;
    this.activation = decodeArray(wire.activation).data;
  }

  /** The features at token i that fire (index ≥ 0), strongest first. */
  at(i: number): FeatureHit[] {
    const out: FeatureHit[] = [];
    const f = this.perToken;
    for (let j = 0; j < f; j++) {
      const index = this.index[i * f + j];
      if (index >= 0) {
        out.push({ index, activation: this.activation[i * f + j] });
      }
    }
    return out;
  }

  /** Feature `feature`'s activation at token i, or null when it is not among that token's top-f. */
  activationOf(i: number, feature: number): number | null {
    return this.at(i).find(h => h.index === feature)?.activation ?? null;
  }

  /** Feature `feature` at every token: its activation where it is among the token's top-f, else null. */
  column(feature: number): (number | null)[] {
    return Array.from({ length: this.rows }, (_, i) => this.activationOf(i, feature));
  }

  /** The selection's strongest features: for each in any token's list, its maximum, where, and how often; largest first. */
  strongest(limit = 20): StrongFeature[] {
    const byIndex = new Map<number, StrongFeature>();
    for (let i = 0; i < this.rows; i++) {
      for (const h of this.at(i)) {
        const entry = byIndex.get(h.index);
        if (!entry) {
          byIndex.set(h.index, { index: h.index, max: h.activation, at: i, count: 1 });
        } else {
          entry.count += 1;
          if (h.activation > entry.max) {
            entry.max = h.activation;
            entry.at = i;
          }
        }
      }
    }
    return [...byIndex.values()].sort((a, b) => b.max - a.max || a.index - b.index).slice(0, limit);
  }
}
