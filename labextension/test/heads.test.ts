import { decode } from '@msgpack/msgpack';

import { Analysis, AnalyzeResponseWire } from '../src/api/analysis';
import type { HeadCard } from '../src/api/client';
import { headLabel, pairRows, parseHeadRef, stringsOf } from '../src/heads';
import { NOT_SEEN, resolveToken, unvisible } from '../src/resolve';
import { fixture } from './fixture';

const card: HeadCard = {
  model: 'attn-only-1l',
  layer: 0,
  head: 3,
  copying_score: 0.82,
  positive_share: 0.9,
  copying_score_frequent: 0.8,
  positive_share_frequent: 0.9,
  vocab: 'frequent',
  tokens_read: 1000,
  frequent_tokens: 1000,
  source_row: null,
  query_row: null,
  positional: null,
  ov_top: [{ source: 10, target: 10, value: 4.5 }],
  ov_bottom: [{ source: 10, target: 11, value: -2 }],
  qk_top: [{ source: 12, target: 99, value: 7 }],
  strings: { ids: [10, 11, 12], values: [' x', '\n', '\t('] }
};

describe('the head card', () => {
  it('is labelled L0.H3 · model', () => {
    expect(headLabel({ model: 'm', layer: 0, head: 3 })).toBe('L0.H3 · m');
  });

  it('decodes its pairs through the strings table; an unknown id reads #id', () => {
    expect(pairRows(card.ov_top, card)).toEqual([{ source: ' x', target: ' x', sourceId: 10, targetId: 10, value: 4.5 }]);
    expect(pairRows(card.ov_bottom, card)[0].target).toBe('\n');
    expect(pairRows(card.qk_top, card)[0]).toMatchObject({ source: '\t(', target: '#99' });
    expect(stringsOf(card)(11)).toBe('\n');
  });

  it('reads a typed head', () => {
    for (const text of ['L0.H3', 'l0h3', '0.3', '0 3', ' L2 . H11 ', 'L0:3']) {
      expect(parseHeadRef(text)).not.toBeNull();
    }
    expect(parseHeadRef('L2.H11')).toEqual({ layer: 2, head: 11 });
    for (const text of ['', 'H3', '03', 'L0.N3', 'L-1.H2', 'x']) {
      expect(parseHeadRef(text)).toBeNull();
    }
  });
});

describe('a typed target', () => {
  const known: [number, string][] = [
    [5, ' the'],
    [7, 'the'],
    [9, '\n'],
    [12, ' The'],
    [20, '\t'],
    [30, 'Foo']
  ];

  it('is the token with exactly that string', () => {
    expect(resolveToken('the', known)).toEqual({ id: 7, token: 'the' });
    expect(resolveToken(' the', known)).toEqual({ id: 5, token: ' the' });
  });

  it('reads the display marks and escapes as whitespace', () => {
    expect(unvisible('·a→↵')).toBe(' a\t\n');
    expect(resolveToken('·the', known).id).toBe(5);
    expect(resolveToken('↵', known).id).toBe(9);
    expect(resolveToken('\\n', known).id).toBe(9);
    expect(resolveToken('→', known).id).toBe(20);
  });

  it('falls back to a leading space, then to case', () => {
    expect(resolveToken('The', known).id).toBe(12);
    expect(resolveToken('foo', known).id).toBe(30);
  });

  it('takes #id as an id', () => {
    expect(resolveToken('#12', known)).toEqual({ id: 12, token: ' The' });
    expect(resolveToken('#4242', known)).toEqual({ id: 4242, token: '#4242' });
  });

  it('says so when the analysis has not seen it', () => {
    expect(resolveToken('zebra', known)).toEqual({ id: null, message: NOT_SEEN });
    expect(NOT_SEEN).toBe('not a token seen in this analysis; pick from the top-10');
    expect(resolveToken('', known).id).toBeNull();
  });

  it('resolves every text token and top-k prediction of a real analysis to an id with that string', () => {
    const f = fixture('code');
    const a = new Analysis(decode(f.msgpack) as AnalyzeResponseWire, f.text);
    const top = a.after(3).top[1];
    const got = resolveToken(top.token, a.knownStrings());
    expect(got.id).not.toBeNull();
    expect(a.tokenString(got.id!)).toBe(top.token);
    const id = a.ids[5];
    expect(a.tokenString(resolveToken(a.tokenString(id), a.knownStrings()).id!)).toBe(a.tokenString(id));
  });
});
