/** Issue #24's pictures: their notebook payloads (real server JSON) and the waterfall's arithmetic. */
import { Attribution, AttributionResponseWire, sumOfParts } from '../src/api/attribution';
import { ATTENTION_MIME, ATTRIBUTION_MIME, LENS_MIME, MIME_VERSION, OutputDataError, parseOutput } from '../src/mime/payload';
import { extent, mlpChildren, place, waterfallParts } from '../src/waterfallparts';
import { fixture } from './fixture';

describe('picture outputs', () => {
  it('reads a logit lens, an attribution and an attention response with their text', () => {
    const lens = fixture('logit_lens');
    const out = parseOutput(LENS_MIME, { version: MIME_VERSION, text: lens.text, context: lens.context, lens: JSON.parse(lens.json) });
    if (out.kind !== 'lens') {
      throw new Error(out.kind);
    }
    expect(out.labels.join('')).toBe(lens.text);
    expect(out.lens.at(out.lens.positions[0])?.rows.map(r => r.name)).toEqual(['embed', 'L0']);
    const attn = fixture('attention');
    const a = parseOutput(ATTENTION_MIME, { version: 1, text: attn.text, context: null, attention: JSON.parse(attn.json) });
    expect(a.kind === 'attention' && a.labels.length === a.attention.nTokens).toBe(true);
    const why = fixture('attribute');
    const w = parseOutput(ATTRIBUTION_MIME, { version: 1, text: why.text, context: why.context, attribution: JSON.parse(why.json) });
    expect(w.kind).toBe('waterfall');
  });

  it('says what is wrong with a picture it cannot read', () => {
    const lens = fixture('logit_lens');
    expect(() => parseOutput(LENS_MIME, { version: 1, text: 'short', lens: JSON.parse(lens.json) })).toThrow(OutputDataError);
    expect(() => parseOutput(ATTRIBUTION_MIME, { version: 1, text: '', attribution: { value: 'x' } })).toThrow('not an attribute response');
    expect(() => parseOutput(LENS_MIME, { version: MIME_VERSION + 1, text: '' })).toThrow('newer lenscope');
  });
});

describe('the waterfall', () => {
  const a = new Attribution(JSON.parse(fixture('attribute').json) as AttributionResponseWire);

  it('lists every part, largest |part| first, and they sum to the total', () => {
    const parts = waterfallParts(a);
    expect(parts.filter(p => p.kind === 'head')).toHaveLength(a.nLayers * a.nHeads);
    const mags = parts.map(p => Math.abs(p.value));
    expect(mags).toEqual([...mags].sort((x, y) => y - x));
    expect(parts.reduce((s, p) => s + p.value, 0)).toBeCloseTo(sumOfParts(a), 4);
    expect(sumOfParts(a)).toBeCloseTo(a.total, 3);
  });

  it('places each bar from the running sum before it to after it, walking to the total', () => {
    const placed = place(waterfallParts(a));
    placed.forEach((p, i) => {
      expect(p.end - p.start).toBeCloseTo(p.value, 6);
      if (i) {
        expect(p.start).toBe(placed[i - 1].end);
      }
    });
    expect(placed[placed.length - 1].end).toBeCloseTo(a.total, 3);
    const [lo, hi] = extent(placed);
    expect(lo).toBeLessThanOrEqual(0);
    expect(hi).toBeGreaterThanOrEqual(Math.max(...placed.map(p => p.end)));
  });

  it('splits an MLP layer into its listed neurons and the rest of them', () => {
    const { neurons } = mlpChildren(a, 0);
    expect(neurons.filter(n => n.kind === 'neuron')).toHaveLength(a.topNeurons.filter(n => n.layer === 0).length);
    expect(neurons.reduce((s, n) => s + n.value, 0)).toBeCloseTo(a.mlpTotal[0], 4);
  });
});
