/**
 * Pure reading of a head card (`GET heads/{model}/{layer}/{head}`): its token pairs with their
 * strings, the label of a head, and a head typed as `L0.H3` (the palette's prompt).
 */
import type { HeadCard, TokenPair } from './api/client';

export interface HeadArgs {
  model: string;
  layer: number;
  head: number;
}

/** A pair of the card, its ids decoded (raw strings: `visible` them for display). */
export interface PairRow {
  source: string;
  target: string;
  sourceId: number;
  targetId: number;
  value: number;
}

export function headLabel(a: HeadArgs): string {
  return `L${a.layer}.H${a.head} · ${a.model}`;
}

/** The card's strings table as a lookup (an id it does not decode reads `#id`). */
export function stringsOf(card: Pick<HeadCard, 'strings'>): (id: number) => string {
  const map = new Map<number, string>();
  card.strings.ids.forEach((id, i) => map.set(id, card.strings.values[i]));
  return id => map.get(id) ?? `#${id}`;
}

export function pairRows(pairs: TokenPair[], card: Pick<HeadCard, 'strings'>): PairRow[] {
  const str = stringsOf(card);
  return pairs.map(p => ({ source: str(p.source), target: str(p.target), sourceId: p.source, targetId: p.target, value: p.value }));
}

/** `L0.H3`, `l0h3`, `0.3`, `0 3` -> {layer, head}; null when it is none of these. */
export function parseHeadRef(text: string): { layer: number; head: number } | null {
  const m = /^\s*L?(\d+)\s*(?:[.,:]\s*H?|\s+H?|H)\s*(\d+)\s*$/i.exec(text);
  return m ? { layer: Number(m[1]), head: Number(m[2]) } : null;
}

/** One-line explanations of the two scores. */
export const COPYING_NOTE =
  'Re(sum of the OV eigenvalues) / sum of their |eigenvalues|, in [−1, 1]: 1 = pure copying (a token attended to raises itself), −1 = anti-copying.';
export const POSITIVE_NOTE = 'Share of the OV eigenvalues with a positive real part: near 1, most directions are copied rather than suppressed.';
