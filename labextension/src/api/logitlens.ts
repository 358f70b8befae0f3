/**
 * A decoded logit lens response (`POST logit_lens`: at some text tokens, the residual stream
 * after the embeddings and after each block, read through the final LayerNorm and the
 * unembedding) and its pure reading: one token's rows. No JupyterLab imports.
 */
import { decodeArray, NumericArray } from './ndarray';
import type { components } from './schema';

export type LogitLensResponseWire = components['schemas']['LogitLensResponse'];
export type LogitLensRequest = components['schemas']['LogitLensRequest'];

export interface LensToken {
  id: number;
  token: string;
  logprob: number;
}

/** One row of the lens at one token: what the residual stream read there predicts next. */
export interface LensRow {
  /** 'embed', 'L0', 'L1', ... */
  name: string;
  top: LensToken[];
  /** the actual next token's rank (1-based, whole vocabulary) and log-prob; null after the last token */
  actual: { rank: number; logprob: number } | null;
}

/** The lens at one text token: its rows, first the embedding, last the model's own output. */
export interface LensColumn {
  model: string;
  position: number;
  /** the actual next token; null after the last token of the text */
  next: { id: number; token: string } | null;
  rows: LensRow[];
}

export class LogitLens {
  readonly model: string;
  readonly positions: number[];
  readonly rows: string[];
  readonly k: number;
  private readonly topIds: NumericArray;
  private readonly topLogprobs: NumericArray;
  private readonly actualIds: NumericArray;
  private readonly actualLogprob: NumericArray;
  private readonly actualRank: NumericArray;
  private readonly strings = new Map<number, string>();

  constructor(wire: LogitLensResponseWire) {
    this.model = wire.model;
    this.positions = wire.positions;
    this.rows = wire.rows;
    const top = decodeArray(wire.top_ids);
    this.topIds = top.data;
    this.k = top.shape[2] ?? 0;
    this.topLogprobs = decodeArray(wire.top_logprobs).data;
    this.actualIds = decodeArray(wire.actual_ids).data;
    this.actualLogprob = decodeArray(wire.actual_logprob).data;
    this.actualRank = decodeArray(wire.actual_rank).data;
    wire.strings.ids.forEach((id, i) => this.strings.set(id, wire.strings.values[i]));
  }

  tokenString(id: number): string {
    return this.strings.get(id) ?? `<${id}>`;
  }

  /** The lens at text token `position`; null when the response does not have it. */
  at(position: number): LensColumn | null {
    const col = this.positions.indexOf(position);
    if (col < 0) {
      return null;
    }
    const nPos = this.positions.length;
    const nextId = this.actualIds[col];
    const rows = this.rows.map((name, r) => {
      const top: LensToken[] = [];
      for (let j = 0; j < this.k; j++) {
        const at = (r * nPos + col) * this.k + j;
        const id = this.topIds[at];
        top.push({ id, token: this.tokenString(id), logprob: this.topLogprobs[at] });
      }
      const rank = this.actualRank[r * nPos + col];
      return { name, top, actual: nextId >= 0 && rank > 0 ? { rank, logprob: this.actualLogprob[r * nPos + col] } : null };
    });
    return { model: this.model, position, next: nextId >= 0 ? { id: nextId, token: this.tokenString(nextId) } : null, rows };
  }
}

/** "lens: embed r812 · L0 r3 · L1 r1": the actual next token's rank after each row (the tooltip's line). */
export function rankLine(column: LensColumn): string {
  return 'lens: ' + column.rows.map(r => `${r.name} ${r.actual ? `r${r.actual.rank}` : '—'}`).join(' · ');
}

/** 1 at rank 1, fading with log10(rank) to 0 at rank 10,000 (the shading of a row by rank). */
export function rankStrength(rank: number): number {
  return rank > 0 ? Math.max(0, 1 - Math.log10(rank) / 4) : 0;
}
