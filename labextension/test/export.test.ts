import { decode } from '@msgpack/msgpack';

import { Analysis, AnalyzeResponseWire } from '../src/api/analysis';
import { analysisTsv } from '../src/export';
import { fixture } from './fixture';

describe('copying an analysis as TSV', () => {
  const f = fixture('code');
  const a = new Analysis(decode(f.msgpack) as AnalyzeResponseWire, f.text);
  const rows = analysisTsv(a).trimEnd().split('\n').map(l => l.split('\t'));

  it('has a header and one row per token, all of the same width', () => {
    const k = a.prediction(0).top.length;
    expect(rows[0].slice(0, 5)).toEqual(['index', 'token', 'logprob', 'rank', 'entropy']);
    expect(rows[0].length).toBe(5 + k);
    expect(rows.length).toBe(a.length + 1);
    expect(new Set(rows.map(r => r.length)).size).toBe(1);
  });

  it('writes each token’s own log-prob and rank, and the top-k after it', () => {
    const i = 3;
    const row = rows[i + 1];
    expect(row[0]).toBe(String(i));
    expect(Number(row[2])).toBeCloseTo(a.logprobOf(i), 3);
    expect(row[3]).toBe(String(a.prediction(i).actual!.rank));
    const first = a.after(i).top[0];
    expect(row[5].startsWith(first.token.replace(/\n/g, '\\n'))).toBe(true);
  });

  it('keeps newlines and tabs inside a cell (escaped)', () => {
    const nl = a.tokens.findIndex(t => t.text.includes('\n'));
    expect(nl).toBeGreaterThanOrEqual(0);
    expect(rows[nl + 1][1]).toContain('\\n');
  });

  it('adds model B’s log-prob in a comparison', () => {
    const header = analysisTsv(a, a).split('\n')[0].split('\t');
    expect(header[5]).toBe(`logprob_${a.model}`);
  });
});
