import { deltaColor } from '../src/colors';
import { componentLabel, deltas, deltaSpan, Intervention, OPS, parseComponent, sameWire, signedDelta, toWire } from '../src/interventions';

const item = (patch: Partial<Intervention>): Intervention => ({
  id: 1,
  component: 'neuron',
  layer: 0,
  index: 5,
  op: 'zero',
  value: 0,
  positions: null,
  enabled: true,
  origin: null,
  ...patch
});

describe('component specs', () => {
  it('parses neurons, heads and whole layers, case and spaces ignored', () => {
    expect(parseComponent('L0.N123')).toEqual({ component: 'neuron', layer: 0, index: 123 });
    expect(parseComponent(' l2.h3 ')).toEqual({ component: 'head', layer: 2, index: 3 });
    expect(parseComponent('L0.MLP')).toEqual({ component: 'mlp', layer: 0, index: null });
    expect(parseComponent('1.attn')).toEqual({ component: 'attn', layer: 1, index: null });
  });

  it('rejects anything else', () => {
    for (const bad of ['', 'L0', 'N5', 'L0.N', 'L0.X5', 'L0.MLP3', 'L-1.N2', 'L0.N5.N6']) {
      expect(parseComponent(bad)).toBeNull();
    }
  });

  it('labels round-trip', () => {
    for (const spec of ['L0.N123', 'L3.H7', 'L1.MLP', 'L0.ATTN']) {
      expect(componentLabel(parseComponent(spec)!)).toBe(spec);
    }
  });

  it('allows the ops the server allows', () => {
    expect(OPS.neuron).toEqual(['zero', 'mean', 'set', 'scale', 'steer']);
    expect(OPS.head).not.toContain('set');
    expect(OPS.mlp).toEqual(['zero', 'mean', 'scale']);
    expect(OPS.attn).toEqual(OPS.mlp);
    expect(parseComponent('L1.resid')).toEqual({ component: 'resid', layer: 1, index: null });
    expect(componentLabel(parseComponent('L1.resid')!)).toBe('L1.RESID');
  });
});

describe('the wire list', () => {
  it('keeps the enabled ones in order, a value only where the op takes one', () => {
    const list = [
      item({ id: 1, op: 'zero', value: 3 }),
      item({ id: 2, enabled: false }),
      item({ id: 3, component: 'head', index: 2, op: 'steer', value: 1.5, positions: [4] }),
      item({ id: 4, component: 'mlp', index: 9, op: 'scale', value: 0.5 })
    ];
    expect(toWire(list)).toEqual([
      { component: 'neuron', layer: 0, index: 5, op: 'zero', value: 0, positions: null, source: null },
      { component: 'head', layer: 0, index: 2, op: 'steer', value: 1.5, positions: [4], source: null },
      { component: 'mlp', layer: 0, index: null, op: 'scale', value: 0.5, positions: null, source: null }
    ]);
    expect(toWire([item({ enabled: false })])).toEqual([]);
  });

  it('compares lists by what they ask', () => {
    expect(sameWire(toWire([item({})]), toWire([item({ id: 7, origin: 3 })]))).toBe(true);
    expect(sameWire(toWire([item({})]), toWire([item({ op: 'mean' })]))).toBe(false);
  });
});

describe('Δ log-prob', () => {
  const plain = { length: 3, logprobOf: (i: number) => [NaN, -1, -2][i] };
  const after = { logprobOf: (i: number) => [NaN, -1.5, -1.75][i] };

  it('is intervened − plain per token', () => {
    const d = deltas(plain, after);
    expect(Number.isNaN(d[0])).toBe(true);
    expect(Array.from(d.slice(1))).toEqual([-0.5, 0.25]);
    expect(deltaSpan(d)).toBe(0.5);
  });

  it('spans the largest |Δ| with a round number', () => {
    expect(deltaSpan([0.01, -0.03])).toBe(0.05);
    expect(deltaSpan([0.3])).toBe(0.5);
    expect(deltaSpan([-1.2])).toBe(2);
    expect(deltaSpan([0, NaN])).toBe(0.05);
    expect(deltaSpan([500])).toBe(20);
  });

  it('colours red where the intervention hurts, blue where it helps, alpha by sqrt(|Δ| / span)', () => {
    expect(deltaColor(0)).toBe('transparent');
    expect(deltaColor(NaN)).toBe('transparent');
    expect(deltaColor(-1, 1)).toBe('rgba(220, 40, 40, 0.700)');
    expect(deltaColor(0.125, 0.5)).toBe('rgba(40, 110, 230, 0.350)');
    expect(deltaColor(-3, 0.5)).toBe(deltaColor(-0.5, 0.5));
  });

  it('is written signed', () => {
    expect(signedDelta(0.84)).toBe('+0.84');
    expect(signedDelta(-1.2)).toBe('\u22121.20');
    expect(signedDelta(-0.012)).toBe('\u22120.012');
    expect(signedDelta(NaN)).toBe('—');
    expect(signedDelta(1e-5)).toBe('0.000');
  });
});
