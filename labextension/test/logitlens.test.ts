import { decode } from '@msgpack/msgpack';
import { readFileSync } from 'fs';
import { join } from 'path';

import { Analysis, AnalyzeResponseWire } from '../src/api/analysis';
import { LogitLens, LogitLensResponseWire, rankLine, rankStrength } from '../src/api/logitlens';
import { fixture, FIXTURES } from './fixture';

// a real payload: the default model's POST logit_lens at three tokens of the `code` fixture's text
const request = JSON.parse(readFileSync(join(FIXTURES, 'logit_lens.request.json'), 'utf-8'));
const lens = new LogitLens(decode(new Uint8Array(readFileSync(join(FIXTURES, 'logit_lens.msgpack')))) as LogitLensResponseWire);
const code = fixture('code');
const analysis = new Analysis(decode(code.msgpack) as AnalyzeResponseWire, code.text);

describe('a logit lens payload', () => {
  it('decodes the same from msgpack and JSON', () => {
    const fromJson = new LogitLens(JSON.parse(readFileSync(join(FIXTURES, 'logit_lens.json'), 'utf-8')) as LogitLensResponseWire);
    for (const p of request.positions) {
      expect(fromJson.at(p)).toEqual(lens.at(p));
    }
  });

  it('has a column per asked token, a row per residual stream, k tokens a row', () => {
    expect(request.text).toBe(code.text);
    expect(lens.positions).toEqual(request.positions);
    expect(lens.rows).toEqual(['embed', 'L0']);
    expect(lens.k).toBe(request.top_k);
    expect(lens.at(1)).toBeNull();
  });

  it('ends at the model’s output: the last row is the analysis’ prediction after the token', () => {
    for (const p of request.positions) {
      const column = lens.at(p)!;
      const last = column.rows[column.rows.length - 1];
      const after = analysis.after(p);
      expect(last.top.map(t => t.id)).toEqual(after.top.slice(0, lens.k).map(t => t.id));
      expect(last.top.map(t => t.token)).toEqual(after.top.slice(0, lens.k).map(t => t.token));
      if (after.actual) {
        expect(column.next).toEqual({ id: after.actual.id, token: after.actual.token });
        expect(last.actual!.rank).toBe(after.actual.rank);
        expect(last.actual!.logprob).toBeCloseTo(after.actual.logprob, 4);
      } else {
        expect(column.next).toBeNull();
        expect(last.actual).toBeNull();
      }
    }
  });

  it('has no next token after the last token of the text', () => {
    const column = lens.at(request.positions[request.positions.length - 1])!;
    expect(column.next).toBeNull();
    expect(column.rows.every(r => r.actual === null)).toBe(true);
    expect(rankLine(column)).toBe('lens: embed — · L0 —');
  });

  it('writes the tooltip line and shades by rank', () => {
    const column = lens.at(request.positions[1])!;
    expect(rankLine(column)).toBe(`lens: embed r${column.rows[0].actual!.rank} · L0 r${column.rows[1].actual!.rank}`);
    expect(rankStrength(1)).toBe(1);
    expect(rankStrength(10)).toBeCloseTo(0.75);
    expect(rankStrength(10_000)).toBe(0);
    expect(rankStrength(50_000)).toBe(0);
    expect(rankStrength(0)).toBe(0);
  });
});
