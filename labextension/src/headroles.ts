/**
 * Heads by their role (lenscope.headscores): every head's previous-token, duplicate-token,
 * induction and BOS scores, on the repeated-random-token probe (`GET heads/{model}/scores`,
 * fetched once per model and kept) or on the analyzed text (`POST head_scores_text`). A head
 * "has" a role at `ROLE_THRESHOLD` or more, as `HeadScores.role_of` says; else it is diffuse.
 */
import type { HeadScores, LenscopeClient } from './api/client';

export const ROLES = ['previous_token', 'duplicate_token', 'induction', 'bos'] as const;
export type Role = (typeof ROLES)[number];
export type RoleOrDiffuse = Role | 'diffuse';
export const ROLE_THRESHOLD = 0.3;
export const ROLE_LABELS: Record<RoleOrDiffuse, string> = {
  previous_token: 'previous-token',
  duplicate_token: 'duplicate',
  induction: 'induction',
  bos: 'BOS',
  diffuse: 'diffuse'
};

export interface HeadRow {
  layer: number;
  head: number;
  /** null: no query had a target for that role (a text without repeats has no induction targets) */
  scores: Record<Role, number | null>;
  role: RoleOrDiffuse;
  /** the role's score (diffuse: the strongest of all) */
  roleScore: number;
}

/** The head's role: its strongest token role at or above the threshold, then the BOS sink, else diffuse (headscores.role_of). */
export function roleOf(scores: Record<Role, number | null>): { role: RoleOrDiffuse; score: number } {
  const v = (r: Role): number => scores[r] ?? 0;
  const token: Role[] = ['previous_token', 'duplicate_token', 'induction'];
  // the first of the strongest, as Python's max over ROLES
  const best = token.reduce((a, b) => (v(b) > v(a) ? b : a));
  if (v(best) >= ROLE_THRESHOLD) {
    return { role: best, score: v(best) };
  }
  if (v('bos') >= ROLE_THRESHOLD) {
    return { role: 'bos', score: v('bos') };
  }
  return { role: 'diffuse', score: Math.max(...ROLES.map(v)) };
}

/** One row per head, layer by layer. */
export function headRows(data: HeadScores): HeadRow[] {
  const rows: HeadRow[] = [];
  const first = data.scores[ROLES[0]] ?? [];
  first.forEach((heads, layer) =>
    heads.forEach((_, head) => {
      const scores = Object.fromEntries(ROLES.map(r => [r, data.scores[r]?.[layer]?.[head] ?? null])) as Record<Role, number | null>;
      const { role, score } = roleOf(scores);
      rows.push({ layer, head, scores, role, roleScore: score });
    })
  );
  return rows;
}

export type SortKey = Role | 'head';

/** Rows with `role` (all: every row), sorted by `key` (a score: strongest first, no target last; 'head': layer, head). */
export function sortAndFilter(rows: HeadRow[], key: SortKey, role: RoleOrDiffuse | 'all' = 'all'): HeadRow[] {
  const kept = role === 'all' ? rows.slice() : rows.filter(r => r.role === role);
  if (key === 'head') {
    return kept.sort((a, b) => a.layer - b.layer || a.head - b.head);
  }
  return kept.sort((a, b) => (b.scores[key] ?? -1) - (a.scores[key] ?? -1) || a.layer - b.layer || a.head - b.head);
}

/** The probe's scores, fetched once per model and client (a failed fetch is forgotten, so it can be retried). */
const cache = new WeakMap<LenscopeClient, Map<string, Promise<HeadScores>>>();

export function probeScores(client: LenscopeClient, model: string): Promise<HeadScores> {
  let byModel = cache.get(client);
  if (!byModel) {
    byModel = new Map();
    cache.set(client, byModel);
  }
  let found = byModel.get(model);
  if (!found) {
    found = client.headScores(model);
    byModel.set(model, found);
    found.catch(() => byModel?.delete(model));
  }
  return found;
}
