import { decode } from '@msgpack/msgpack';
import { readFileSync } from 'fs';
import { join } from 'path';

import type { AnalyzeResponseWire } from '../../labextension/src/api/analysis';
import type { UnitActivationsResponseWire } from '../../labextension/src/api/units';
import { activationBucket, activationBucketColor, BUCKETS } from '../src/decorate';
import { hoverMarkdown } from '../src/hover';
import { activationColor, SaeEntry, UnitActivations } from '../src/shared';
import { colourCommandUri, COLOUR_BY_UNIT, maxActivation, parseUnit, saeChoices, unitInputProblem, unitRanges, unitStatus } from '../src/units';
import { analysis } from './fixture';

const FIXTURES = join(__dirname, '..', '..', 'labextension', 'test', 'fixtures');

/** A unit_activations answer over the real tokens of an analyze fixture (the same TokensWire), one column of `values`. */
function unitsOver(name: string, values: (i: number) => number, unit = 'L0.N7'): { acts: UnitActivations; text: string } {
  const text = JSON.parse(readFileSync(join(FIXTURES, `${name}.request.json`), 'utf-8')).text as string;
  const wire = decode(new Uint8Array(readFileSync(join(FIXTURES, `${name}.msgpack`)))) as AnalyzeResponseWire;
  const n = analysis(name).length;
  const data = Array.from({ length: n }, (_, i) => values(i));
  const acts: UnitActivationsResponseWire = {
    model: wire.model,
    tokens: wire.tokens,
    units: [parseUnit(unit)!.kind === 'feature' ? { name: unit, kind: 'feature', layer: null, index: 1 } : { name: unit, kind: 'neuron', layer: 0, index: 7 }],
    sae: null,
    activations: { dtype: 'float32', shape: [n, 1], data } as UnitActivationsResponseWire['activations'],
    timings_ms: {}
  };
  return { acts: new UnitActivations(acts, text), text };
}

describe('unit names', () => {
  it('reads neurons and features as the server does (case-insensitive, trimmed) and writes them canonically', () => {
    expect(parseUnit('L0.N224')).toEqual({ kind: 'neuron', layer: 0, index: 224, name: 'L0.N224' });
    expect(parseUnit(' l12.n3 ')).toEqual({ kind: 'neuron', layer: 12, index: 3, name: 'L12.N3' });
    expect(parseUnit('f1741')).toEqual({ kind: 'feature', index: 1741, name: 'F1741' });
    expect(parseUnit('F007')!.name).toBe('F7');
  });

  it('refuses what is not a neuron or a feature, and the input box says what to write', () => {
    for (const bad of ['', 'L0', 'L0.H3', 'L0.MLP', 'F', 'N224', '0.224', 'L0.N-1', 'F1.5', 'L0.N224x']) {
      expect(parseUnit(bad)).toBeNull();
      expect(unitInputProblem(bad)).toContain('L0.N224');
    }
    expect(unitInputProblem('F12')).toBeNull();
  });
});

describe('activation buckets (scale 0..max)', () => {
  it('none at or below zero, or with no positive max; the max in the top bucket; monotone', () => {
    expect(activationBucket(0, 2)).toBeNull();
    expect(activationBucket(-0.1, 2)).toBeNull();
    expect(activationBucket(1, 0)).toBeNull();
    expect(activationBucket(1, -1)).toBeNull();
    expect(activationBucket(NaN, 2)).toBeNull();
    expect(activationBucket(2, 2)).toBe(BUCKETS - 1);
    expect(activationBucket(5, 2)).toBe(BUCKETS - 1);
    expect(activationBucket((0.4 / BUCKETS) * 2, 2)).toBeNull(); // under half a bucket: blank
    expect(activationBucket((0.6 / BUCKETS) * 2, 2)).toBe(0);
    let last = -1;
    for (let v = 0.2; v <= 2; v += 0.01) {
      const b = activationBucket(v, 2)!;
      expect(b).toBeGreaterThanOrEqual(last);
      expect(b).toBe(Math.min(BUCKETS - 1, Math.floor((v / 2) * BUCKETS)));
      last = b;
    }
  });

  it('a bucket is coloured like its middle on the shared activation scale, stronger upwards', () => {
    for (let b = 0; b < BUCKETS; b++) {
      expect(activationBucketColor(b)).toBe(activationColor(b + 0.5, BUCKETS));
    }
    const alpha = (c: string) => Number(/, ([\d.]+)\)$/.exec(c)![1]);
    expect(alpha(activationBucketColor(BUCKETS - 1))).toBeGreaterThan(alpha(activationBucketColor(0)));
  });
});

describe('colouring by a unit', () => {
  it('colours each token with a positive activation over its span, shifted by the base (UTF-16, surrogate pairs)', () => {
    const values = (i: number) => ((i * 7) % 11) - 3; // some negative, some zero, a max of 7
    const { acts, text } = unitsOver('unicode', values);
    expect(maxActivation(acts)).toBe(7);
    const base = 100;
    const ranges = unitRanges(acts, base);
    const a = analysis('unicode');
    const want = a.tokens
      .map((t, i) => ({ t, i, v: values(i) }))
      .filter(({ t, v }) => v > 0 && v / 7 >= 0.5 / BUCKETS && t.to > t.from)
      .map(({ t, i, v }) => ({ start: base + t.from, end: base + t.to, bucket: Math.min(BUCKETS - 1, Math.floor((v / 7) * BUCKETS)), token: i }));
    expect(ranges).toEqual(want);
    expect(ranges.length).toBeGreaterThan(3);
    // the ranges cut the text at the tokens' own strings
    ranges.forEach(r => expect(text.slice(r.start - base, r.end - base)).toBe(acts.texts[r.token]));
    expect(ranges.some(r => /[\uD800-\uDBFF]/.test(text.slice(r.start - base, r.end - base)))).toBe(true);
  });

  it('a unit that never fires colours nothing', () => {
    const { acts } = unitsOver('code', () => -0.1);
    expect(unitRanges(acts, 0)).toEqual([]);
    expect(unitStatus('L0.N7', null, maxActivation(acts))).toBe('lenscope: L0.N7 · never positive (max -0.10)');
  });

  it('the status says the unit, its SAE and the max', () => {
    expect(unitStatus('L0.N224', null, 2.3456)).toBe('lenscope: L0.N224 · max 2.35');
    expect(unitStatus('F1741', 'gelu-1l-sae', 11)).toBe('lenscope: F1741 of gelu-1l-sae · max 11.00');
  });
});

describe('SAEs a feature can come from', () => {
  const sae = (name: string, model: string | null, loadable = true): SaeEntry => ({
    name,
    model,
    loadable,
    reason: loadable ? '' : 'missing',
    shipped: false,
    d_in: 512,
    d_sae: 2048,
    format: 'sparsify',
    hook_point: 'blocks.0.mlp.hook_post',
    k: 32
  });

  it('the model’s own SAEs first, then those that do not say their model; never another model’s or an unloadable one', () => {
    const saes = [sae('any', null), sae('other', 'm2'), sae('mine', 'm1'), sae('broken', 'm1', false)];
    expect(saeChoices('m1', saes).map(s => s.name)).toEqual(['mine', 'any']);
    expect(saeChoices('m3', saes).map(s => s.name)).toEqual(['any']);
    expect(saeChoices('m1', [])).toEqual([]);
  });
});

describe('hover: colour by a neuron', () => {
  it('each neuron chip has a ◐ link that colours the text by that neuron of the analysis’ model', () => {
    const a = analysis('code');
    const i = 3;
    const md = hoverMarkdown(a, i);
    const neurons = a.neurons(i).filter(n => Number.isFinite(n.activation)).slice(0, 5);
    expect(neurons.length).toBeGreaterThan(0);
    for (const n of neurons) {
      expect(md).toContain(`[◐](${colourCommandUri(`L${n.layer}.N${n.index}`, a.model)} "colour the text by L${n.layer}.N${n.index}")`);
    }
    const uri = colourCommandUri('L0.N12', 'm');
    expect(uri.startsWith(`command:${COLOUR_BY_UNIT}?`)).toBe(true);
    expect(JSON.parse(decodeURIComponent(uri.split('?')[1]))).toEqual([{ unit: 'L0.N12', model: 'm' }]);
    expect(JSON.parse(decodeURIComponent(colourCommandUri('F3', 'm', 's').split('?')[1]))).toEqual([{ unit: 'F3', model: 'm', sae: 's' }]);
  });
});
