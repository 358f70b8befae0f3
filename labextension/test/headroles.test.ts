/** Heads by their role (issue #25): roles as headscores.role_of gives them, sorting and filtering, and the probe fetched once per model. */
import type { HeadScores, LenscopeClient } from '../src/api/client';
import { headRows, probeScores, roleOf, ROLE_THRESHOLD, sortAndFilter } from '../src/headroles';

function scores(s: Record<string, (number | null)[][]>): HeadScores {
  return {
    model: 'm',
    on: 'probe',
    roles: ['previous_token', 'duplicate_token', 'induction', 'bos'],
    scores: s,
    top: {},
    tokens: 11,
    sequences: 1,
    length: 5,
    seed: 0,
    in_context_gain: 3,
    loss_first: 8,
    loss_second: 5,
    sequence: null
  };
}

const data = scores({
  previous_token: [[0.9, 0.1], [0.05, 0.2]],
  duplicate_token: [[0.0, 0.1], [0.3, 0.1]],
  induction: [[0.0, 0.29], [0.3, null]],
  bos: [[0.05, 0.6], [0.1, 0.2]]
});

describe('head roles', () => {
  it('gives the strongest token role at the threshold, then BOS, else diffuse', () => {
    expect(ROLE_THRESHOLD).toBe(0.3);
    const rows = headRows(data);
    expect(rows.map(r => `L${r.layer}.H${r.head}:${r.role}`)).toEqual(['L0.H0:previous_token', 'L0.H1:bos', 'L1.H0:duplicate_token', 'L1.H1:diffuse']);
    // a tie goes to the first role in ROLES' order, as Python's max does
    expect(roleOf({ previous_token: 0.1, duplicate_token: 0.4, induction: 0.4, bos: 0.9 }).role).toBe('duplicate_token');
    expect(roleOf({ previous_token: null, duplicate_token: null, induction: null, bos: 0.1 })).toEqual({ role: 'diffuse', score: 0.1 });
  });

  it('sorts by a score (no target last) and filters by role', () => {
    const rows = headRows(data);
    expect(sortAndFilter(rows, 'induction').map(r => [r.layer, r.head])).toEqual([[1, 0], [0, 1], [0, 0], [1, 1]]);
    expect(sortAndFilter(rows, 'head', 'bos').map(r => [r.layer, r.head])).toEqual([[0, 1]]);
    expect(sortAndFilter(rows, 'bos', 'induction')).toEqual([]);
  });

  it('fetches the probe once per model, and again after a failure', async () => {
    const calls: string[] = [];
    let fail = true;
    const client = {
      headScores: (model: string) => {
        calls.push(model);
        return fail ? Promise.reject(new Error('down')) : Promise.resolve(data);
      }
    } as unknown as LenscopeClient;
    await expect(probeScores(client, 'a')).rejects.toThrow('down');
    fail = false;
    expect(await probeScores(client, 'a')).toBe(data);
    await probeScores(client, 'a');
    await probeScores(client, 'b');
    expect(calls).toEqual(['a', 'a', 'b']);
  });
});
