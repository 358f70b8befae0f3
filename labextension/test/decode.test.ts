import { decode } from '@msgpack/msgpack';

import { Analysis, AnalyzeResponseWire } from '../src/api/analysis';
import { decodeArray, halfToFloat } from '../src/api/ndarray';
import { fixture } from './fixture';

describe('float16', () => {
  it('decodes normal, subnormal and special values', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBeCloseTo(5.96e-8, 10);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
  });

  it('decodes little-endian bytes at an odd offset (copies to an aligned buffer)', () => {
    const backing = new Uint8Array([0xff, 0x00, 0x3c, 0x00, 0xc0]);
    const out = decodeArray({ dtype: 'float16', shape: [2], data: backing.subarray(1) as unknown as string });
    expect(Array.from(out.data)).toEqual([1, -2]);
  });
});

describe('msgpack and JSON payloads of the same analysis', () => {
  const f = fixture('unicode');
  const fromMsgpack = new Analysis(decode(f.msgpack) as AnalyzeResponseWire, f.text);
  const fromJson = new Analysis(JSON.parse(f.json) as AnalyzeResponseWire, f.text);

  it('decode to the same tokens, predictions and neurons', () => {
    expect(fromMsgpack.length).toBe(fromJson.length);
    expect(Array.from(fromMsgpack.ids)).toEqual(Array.from(fromJson.ids));
    for (let row = 0; row <= fromJson.length; row++) {
      const a = fromMsgpack.prediction(row);
      const b = fromJson.prediction(row);
      expect(a.top.map(c => c.id)).toEqual(b.top.map(c => c.id));
      expect(a.top.map(c => c.logprob)).toEqual(b.top.map(c => c.logprob));
      expect(a.actual).toEqual(b.actual);
    }
    for (let i = 0; i < fromJson.length; i++) {
      expect(fromMsgpack.neurons(i)).toEqual(fromJson.neurons(i));
    }
  });

  it('keeps NaN for the row after the last token and ranks from 1', () => {
    expect(fromMsgpack.prediction(fromMsgpack.length).actual).toBeNull();
    expect(Number.isNaN(fromMsgpack.logprobOf(fromMsgpack.length))).toBe(true);
    for (let i = 0; i < fromMsgpack.length; i++) {
      expect(fromMsgpack.prediction(i).actual!.rank).toBeGreaterThanOrEqual(1);
    }
  });

  it('top-k is sorted and its probabilities sum to at most 1', () => {
    const p = fromMsgpack.after(0);
    const lps = p.top.map(c => c.logprob);
    expect([...lps].sort((x, y) => y - x)).toEqual(lps);
    expect(p.top.reduce((s, c) => s + c.prob, 0)).toBeLessThanOrEqual(1.001);
  });
});
