import { decode } from '@msgpack/msgpack';

import { Analysis, AnalyzeResponseWire } from '../src/api/analysis';
import { tokenAt, tokenRanges } from '../src/spans';
import { fixture } from './fixture';

describe('UTF-16 spans from the server', () => {
  for (const name of ['unicode', 'code']) {
    const f = fixture(name);
    const analysis = new Analysis(decode(f.msgpack) as AnalyzeResponseWire, f.text);

    it(`${name}: tile the JavaScript string exactly`, () => {
      expect(analysis.tokens.map(t => t.text).join('')).toBe(f.text);
      let pos = 0;
      for (const t of analysis.tokens) {
        expect(t.from).toBe(pos);
        pos = t.to;
      }
      expect(pos).toBe(f.text.length); // UTF-16 length, as CodeMirror counts
    });

    it(`${name}: map to document positions at an offset and back`, () => {
      const offset = 1000;
      const ranges = tokenRanges(analysis, offset);
      for (const r of ranges) {
        expect(f.text.slice(r.from - offset, r.to - offset)).toBe(analysis.tokens[r.index].text);
        expect(tokenAt(ranges, r.from)).toBe(r.index);
        expect(tokenAt(ranges, r.to - 1)).toBe(r.index);
      }
      expect(tokenAt(ranges, offset - 1)).toBe(-1);
      expect(tokenAt(ranges, offset + f.text.length)).toBe(-1);
    });
  }

  it('an emoji is two UTF-16 units and belongs to the token holding its last byte', () => {
    const f = fixture('unicode');
    const analysis = new Analysis(decode(f.msgpack) as AnalyzeResponseWire, f.text);
    const at = f.text.indexOf('🫠');
    const owner = analysis.tokens.find(t => t.from <= at && at < t.to)!;
    expect(owner.to - owner.from).toBeGreaterThanOrEqual(2);
    expect(owner.text).toContain('🫠');
    const empties = analysis.tokens.filter(t => t.from === t.to);
    expect(empties.length).toBeGreaterThan(0); // leading bytes of split characters
    expect(tokenRanges(analysis, 0).length).toBe(analysis.length - empties.length);
  });

  it('CJK characters keep one UTF-16 unit each', () => {
    const f = fixture('unicode');
    const analysis = new Analysis(decode(f.msgpack) as AnalyzeResponseWire, f.text);
    const at = f.text.indexOf('日本語');
    const covering = analysis.tokens.filter(t => t.to > at && t.from < at + 3);
    expect(covering.map(t => t.text).join('')).toContain('日本語');
  });
});
