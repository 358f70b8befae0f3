import type { PatchResponse } from '../src/api/client';
import { restoredColor } from '../src/colors';
import { toWire } from '../src/interventions';
import { cellIntervention, cellLabel, defaultPair, LAYER_GRIDS, PatchCell, PatchGrid, sameCell, shareText } from '../src/patching';

const arr = (shape: number[], data: (number | null)[], dtype = 'float32') => ({ dtype, shape, data }) as unknown as PatchResponse['resid_pre'];
const tokens = (starts: number[], ends: number[]) => ({
  ids: arr([starts.length], starts.map((_, i) => 100 + i), 'int32'),
  start: arr([starts.length], starts, 'int32'),
  end: arr([starts.length], ends, 'int32'),
  start_utf16: arr([starts.length], starts, 'int32'),
  end_utf16: arr([starts.length], ends, 'int32'),
  partial: arr([starts.length], starts.map(() => 0), 'uint8')
});

// 2 layers, 2 heads, 3 positions: "y = 1"
const wire: PatchResponse = {
  model: 'm',
  target: 87,
  baseline: 88,
  position: 2,
  clean_value: 2.5,
  corrupted_value: -1.25,
  clean: tokens([0, 1, 3], [1, 3, 5]),
  corrupted: tokens([0, 1, 3], [1, 3, 5]),
  resid_pre: arr([2, 3], [0, 0.1, 1, 0.5, 0.25, -0.5]),
  attn_out: arr([2, 3], [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]),
  mlp_out: arr([2, 3], [null, 0, 0, 0.7, 0, 0]),
  heads: arr([2, 2, 3], [0, 0, 0.1, 0, 0, -0.2, 0, 0.3, 0, 0, 0, -0.9]),
  strings: { ids: [87, 88], values: ['x', 'y'] }
};

describe('PatchGrid', () => {
  const g = new PatchGrid(wire, 'y = 1');

  it('reads shapes, values and the corrupted text’s tokens', () => {
    expect([g.nLayers, g.nHeads, g.nPositions]).toEqual([2, 2, 3]);
    expect(g.tokens).toEqual(['y', ' =', ' 1']);
    expect(g.value({ component: 'resid', layer: 1, head: null, position: 2 })).toBeCloseTo(-0.5);
    expect(g.value({ component: 'attn', layer: 0, head: null, position: 1 })).toBeCloseTo(0.02);
    expect(g.value({ component: 'mlp', layer: 0, head: null, position: 0 })).toBeNaN();
    expect(g.value({ component: 'head', layer: 1, head: 0, position: 1 })).toBeCloseTo(0.3);
    expect(g.value({ component: 'head', layer: 1, head: 1, position: 2 })).toBeCloseTo(-0.9);
    expect(g.tokenString(87)).toBe('x');
    expect(g.tokenString(5)).toBe('#5');
  });

  it('finds the head cell with the largest |share|', () => {
    expect(g.strongestHead()).toEqual({ component: 'head', layer: 1, head: 1, position: 2 });
  });

  it('has a grid per layer component', () => {
    expect(LAYER_GRIDS.map(x => x.component)).toEqual(['resid', 'attn', 'mlp']);
  });
});

describe('a cell as an intervention', () => {
  it('patches that component at that token from the clean text', () => {
    const head: PatchCell = { component: 'head', layer: 1, head: 3, position: 4 };
    expect(cellIntervention(head, "x = 'cat'")).toEqual({ component: 'head', layer: 1, index: 3, op: 'patch', value: 0, positions: [4], source: "x = 'cat'" });
    const resid: PatchCell = { component: 'resid', layer: 0, head: null, position: 0 };
    expect(cellIntervention(resid, 'c')).toEqual({ component: 'resid', layer: 0, index: null, op: 'patch', value: 0, positions: [0], source: 'c' });
    expect(cellLabel(head)).toBe('L1.H3 @ 4');
    expect(cellLabel(resid)).toBe('L0.RESID @ 0');
    expect(sameCell(head, { ...head })).toBe(true);
    expect(sameCell(head, { ...head, position: 3 })).toBe(false);
    expect(sameCell(null, head)).toBe(false);
  });

  it('goes to the server as the list’s item does (toWire keeps the source of a patch only)', () => {
    const base = { id: 1, component: 'head' as const, layer: 1, index: 3, value: 0, positions: [4], enabled: true, origin: 4 };
    expect(toWire([{ ...base, op: 'patch', source: 'clean' }])).toEqual([cellIntervention({ component: 'head', layer: 1, head: 3, position: 4 }, 'clean')]);
    expect(toWire([{ ...base, op: 'zero', source: 'clean' }])[0].source).toBeNull();
  });
});

describe('the share and its colour', () => {
  it('is shown with 2 decimals, no negative zero, — for NaN', () => {
    expect(shareText(0.8349)).toBe('0.83');
    expect(shareText(-0.001)).toBe('0.00');
    expect(shareText(-1.234)).toBe('-1.23');
    expect(shareText(NaN)).toBe('—');
  });

  it('diverges: blue for restored, orange for pushed away, alpha by |share| up to 1', () => {
    expect(restoredColor(0)).toBe('transparent');
    expect(restoredColor(NaN)).toBe('transparent');
    expect(restoredColor(1)).toBe('rgba(40, 110, 230, 0.800)');
    expect(restoredColor(-0.5)).toBe('rgba(230, 120, 20, 0.400)');
    expect(restoredColor(3)).toBe(restoredColor(1));
    expect(restoredColor(-3)).toBe(restoredColor(-1));
  });
});

describe('default target and baseline', () => {
  const analysis = (id: number, token: string) =>
    ({ length: 2, after: () => ({ top: [{ id, token, logprob: -0.1, prob: 0.9 }, { id: 5, token: 'z', logprob: -3, prob: 0.05 }], actual: null, entropy: 0 }) }) as never;

  it('are the clean and the corrupted text’s top-1 next tokens', () => {
    expect(defaultPair(analysis(87, 'x'), analysis(88, 'y'))).toEqual({ target: { id: 87, token: 'x' }, baseline: { id: 88, token: 'y' } });
    expect(defaultPair(null, analysis(88, 'y'))).toEqual({ target: null, baseline: { id: 88, token: 'y' } });
  });

  it('take the corrupted text’s best other token when both predict the same', () => {
    expect(defaultPair(analysis(87, 'x'), analysis(87, 'x'))).toEqual({ target: { id: 87, token: 'x' }, baseline: { id: 5, token: 'z' } });
  });
});
