/** Rank by causal effect: which rows the compact view lists (the causal top, and where the direct top disagrees). */
import type { SweepResponse, SweptUnit } from '../src/api/client';
import { sweepRows } from '../src/views/sweep';

function unit(name: string, rank: number, directRank: number): SweptUnit {
  const [layer, index] = name.slice(1).split(/\.[NH]/).map(Number);
  return { unit: name, kind: name.includes('.H') ? 'head' : 'neuron', layer, index, effect: -1 / rank, rank, direct: 1 / directRank, direct_rank: directRank };
}

const units = [unit('L0.H1', 1, 40), unit('L0.N7', 2, 1), unit('L0.N3', 3, 5), unit('L0.H2', 4, 60)];
const direct = [unit('L0.N7', 2, 1), unit('L0.N9', 70, 2), unit('L0.N4', 33, 3), unit('L0.N3', 3, 5)];
const response = { units, direct_units: direct } as unknown as SweepResponse;

describe('the causal ranking beside the direct one', () => {
  it('lists the causal top units in rank order', () => {
    expect(sweepRows(response, 3).causal.map(u => u.unit)).toEqual(['L0.H1', 'L0.N7', 'L0.N3']);
  });

  it('adds the direct top units the causal top leaves out, in their direct order', () => {
    expect(sweepRows(response, 3).directOnly.map(u => [u.unit, u.direct_rank, u.rank])).toEqual([
      ['L0.N9', 2, 70],
      ['L0.N4', 3, 33]
    ]);
    expect(sweepRows(response, 4).directOnly.map(u => u.unit)).toEqual(['L0.N9', 'L0.N4']);
  });
});
