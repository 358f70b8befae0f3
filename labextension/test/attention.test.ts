import { decode } from '@msgpack/msgpack';
import { readFileSync } from 'fs';
import { join } from 'path';

import { Analysis, AnalyzeResponseWire } from '../src/api/analysis';
import { Attention, AttentionResponseWire, BOS, weightsOnSpans } from '../src/api/attention';
import { LenscopeClient } from '../src/api/client';
import { fixture, FIXTURES } from './fixture';

// a real payload: the default model's POST attention over the `code` fixture's text and context
const request = JSON.parse(readFileSync(join(FIXTURES, 'attention.request.json'), 'utf-8'));
const msgpack = new Uint8Array(readFileSync(join(FIXTURES, 'attention.msgpack')));
const json = readFileSync(join(FIXTURES, 'attention.json'), 'utf-8');
const att = new Attention(decode(msgpack) as AttentionResponseWire);
const code = fixture('code');
const analysis = new Analysis(decode(code.msgpack) as AnalyzeResponseWire, code.text);

describe('an attention payload', () => {
  it('decodes the same from msgpack and JSON', () => {
    const fromJson = new Attention(JSON.parse(json) as AttentionResponseWire);
    expect(Array.from(fromJson.weights)).toEqual(Array.from(att.weights));
    expect(Array.from(fromJson.sources)).toEqual(Array.from(att.sources));
    expect(Array.from(fromJson.share)).toEqual(Array.from(att.share));
    expect(fromJson.spans).toEqual(att.spans);
  });

  it('has the analysis tokens (same text and context), every layer, k sources', () => {
    expect(request.text).toBe(code.text);
    expect(att.spans).toEqual(analysis.tokens.map(t => ({ from: t.from, to: t.to })));
    expect(Array.from(att.ids)).toEqual(Array.from(analysis.ids));
    expect(att.layers).toEqual([0]);
    expect(att.nHeads).toBeGreaterThan(1);
    expect(att.k).toBe(request.k);
    expect(att.tokenString(0)).toBe(analysis.tokenString(analysis.ids[0]));
  });
});

describe('a row', () => {
  it('is the token’s sources, largest first, causal, summing to at most 1', () => {
    for (let h = 0; h < att.nHeads; h++) {
      for (let t = 0; t < att.nTokens; t++) {
        const row = att.row(0, h, t);
        expect(row.length).toBeGreaterThan(0);
        row.forEach((s, i) => {
          expect(s.source).toBeLessThanOrEqual(t); // never a later token
          expect(s.source).toBeGreaterThanOrEqual(-2);
          if (i > 0) {
            expect(s.weight).toBeLessThanOrEqual(row[i - 1].weight);
          }
        });
        expect(row.reduce((a, s) => a + s.weight, 0)).toBeLessThan(1.01);
      }
    }
  });

  it('keeps every key of an early token (fewer keys than k): its weights sum to 1', () => {
    const row = att.row(0, 0, 1);
    // BOS, the context's tokens, token 0 and token 1
    expect(row.some(s => s.source === BOS)).toBe(true);
    expect(row.reduce((a, s) => a + s.weight, 0)).toBeCloseTo(1, 2);
  });

  it('is empty for a layer, head or token that is not there', () => {
    expect(att.row(1, 0, 0)).toEqual([]);
    expect(att.row(0, att.nHeads, 0)).toEqual([]);
    expect(att.row(0, 0, att.nTokens)).toEqual([]);
  });
});

describe('on the text', () => {
  it('is one head’s row per text token, the BOS apart', () => {
    const t = 10;
    const row = att.row(0, 2, t);
    const on = att.onText(0, [2], t);
    expect(on.weights.length).toBe(att.nTokens);
    for (const s of row) {
      if (s.source >= 0) {
        expect(on.weights[s.source]).toBeCloseTo(s.weight, 5);
      }
    }
    expect(on.bos).toBeCloseTo(row.find(s => s.source === BOS)?.weight ?? 0, 5);
  });

  it('is the mean over the chosen heads', () => {
    const t = 12;
    const a = att.onText(0, [0], t);
    const b = att.onText(0, [3], t);
    const both = att.onText(0, [0, 3], t);
    both.weights.forEach((w, i) => expect(w).toBeCloseTo((a.weights[i] + b.weights[i]) / 2, 5));
    expect(both.bos).toBeCloseTo((a.bos + b.bos) / 2, 5);
  });

  it('moves an empty span’s weight to the next token with a span', () => {
    const spans = [
      { from: 0, to: 1 },
      { from: 1, to: 1 },
      { from: 1, to: 2 }
    ];
    expect(weightsOnSpans(Float32Array.from([0.5, 0.25, 0.125]), spans)).toEqual(
      new Map([
        [0, 0.5],
        [2, 0.375]
      ])
    );
  });
});

describe('positional share', () => {
  it('is a share in [0, 1] per head; NaN for a layer not asked', () => {
    for (let h = 0; h < att.nHeads; h++) {
      const s = att.positionalShare(0, h);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(1);
    }
    expect(att.positionalShare(3, 0)).toBeNaN();
  });
});

describe('the client', () => {
  it('posts to attention and decodes the msgpack answer', async () => {
    const calls: string[] = [];
    const client = new LenscopeClient('/base/', async url => {
      calls.push(url);
      return new Response(msgpack, { headers: { 'Content-Type': 'application/msgpack' } });
    });
    const got = await client.attention({ text: code.text, context: code.context, k: 16 });
    expect(calls).toEqual(['/base/lenscope/api/attention']);
    expect(got.row(0, 1, 5)).toEqual(att.row(0, 1, 5));
  });
});
