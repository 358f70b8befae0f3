import { decode } from '@msgpack/msgpack';
import { readFileSync } from 'fs';
import { join } from 'path';

import { Analysis, AnalyzeResponseWire } from '../src/api/analysis';
import { attentionOnText, Attribution, AttributionResponseWire, headParts, neuronParts, otherParts, sumOfParts } from '../src/api/attribution';
import { LenscopeClient } from '../src/api/client';
import { fixture, FIXTURES } from './fixture';

// a real payload: the default model's attribution at text token 5 of the `code` fixture's text
const request = JSON.parse(readFileSync(join(FIXTURES, 'attribute.request.json'), 'utf-8'));
const msgpack = new Uint8Array(readFileSync(join(FIXTURES, 'attribute.msgpack')));
const json = readFileSync(join(FIXTURES, 'attribute.json'), 'utf-8');
const attr = new Attribution(decode(msgpack) as AttributionResponseWire);
const code = fixture('code');
const analysis = new Analysis(decode(code.msgpack) as AnalyzeResponseWire, code.text);

const decreasing = (xs: number[]) => xs.every((x, i) => i === 0 || Math.abs(xs[i - 1]) >= Math.abs(x));

describe('an attribution payload', () => {
  it('decodes the same from msgpack and JSON', () => {
    const fromJson = new Attribution(JSON.parse(json) as AttributionResponseWire);
    expect(fromJson.value).toBe(attr.value);
    expect(Array.from(fromJson.heads)).toEqual(Array.from(attr.heads));
    expect(Array.from(fromJson.pattern)).toEqual(Array.from(attr.pattern));
    expect(Array.from(fromJson.sourceTextIndex)).toEqual(Array.from(attr.sourceTextIndex));
    expect(fromJson.topNeurons).toEqual(attr.topNeurons);
  });

  it('is of the position asked, for the actual next token, with the analysis tokens as sources', () => {
    expect(attr.position).toBe(request.position);
    expect(attr.target).toBe(analysis.ids[request.position + 1]);
    expect(attr.nSources).toBe(attr.sourceIds.length);
    // text sources are the text's tokens, in order, ending at the position
    const text = Array.from(attr.sourceTextIndex).filter(i => i >= 0);
    expect(text).toEqual(Array.from({ length: request.position + 1 }, (_, i) => i));
    Array.from(attr.sourceTextIndex).forEach((i, s) => i >= 0 && expect(attr.sourceIds[s]).toBe(analysis.ids[i]));
  });

  it('sums, from its pieces, to the server total and the centred logit', () => {
    expect(sumOfParts(attr)).toBeCloseTo(attr.total, 3);
    expect(sumOfParts(attr)).toBeCloseTo(attr.value, 3);
  });
});

describe('ordering the parts', () => {
  it('lists neurons, heads and the rest largest |part| first, signed', () => {
    const neurons = neuronParts(attr);
    expect(neurons.length).toBe(attr.topNeurons.length);
    expect(decreasing(neurons.map(p => p.value))).toBe(true);
    expect(neurons[0].label).toBe(`L${neurons[0].layer}.N${neurons[0].index}`);
    const heads = headParts(attr);
    expect(heads.length).toBe(attr.nLayers * attr.nHeads);
    expect(decreasing(heads.map(p => p.value))).toBe(true);
    expect(heads.some(h => h.value < 0)).toBe(true); // signs are kept
    expect(heads[0].value).toBe(attr.head(heads[0].layer!, heads[0].index!));
    const other = otherParts(attr);
    expect(decreasing(other.map(p => p.value))).toBe(true);
    expect(other.find(p => p.kind === 'embed')!.value).toBe(attr.embed);
    expect(new Set(other.map(p => p.kind))).toEqual(new Set(['embed', 'pos_embed', 'constant', 'mlp_total', 'attn_bias', 'mlp_bias']));
  });

  it("orders a head's sources by |part|; their parts sum to the head's", () => {
    const [top] = headParts(attr);
    const sources = attr.sources(top.layer!, top.index!);
    expect(decreasing(sources.map(s => s.value))).toBe(true);
    expect(sources.reduce((x, s) => x + s.value, 0)).toBeCloseTo(top.value, 3);
    expect(sources.reduce((x, s) => x + s.weight, 0)).toBeCloseTo(1, 2); // float16 pattern row
    expect(sources.find(s => s.source === 0)!.textIndex).toBe(-1); // the BOS
  });
});

describe('mapping sources to the text', () => {
  it('gives each text token its weight and leaves the BOS and context out', () => {
    const weights = attentionOnText(attr, 0, 0, analysis.tokens);
    const base = 0;
    let onText = 0;
    Array.from(attr.sourceTextIndex).forEach((i, s) => {
      if (i >= 0) {
        onText += attr.pattern[base + s];
        expect(weights.get(i)).toBe(attr.pattern[base + s]);
      }
    });
    expect([...weights.keys()].every(i => i >= 0 && i <= request.position)).toBe(true);
    expect([...weights.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(onText, 6);
    expect(onText).toBeLessThan(1); // some attention went to the BOS / context
  });

  it("moves an empty span's weight to the token holding its character", () => {
    const spans = analysis.tokens.map(t => ({ from: t.from, to: t.to }));
    spans[2] = { from: spans[3].from, to: spans[3].from }; // as byte-level BPE splits a character
    const weights = attentionOnText(attr, 0, 1, spans);
    const full = attentionOnText(attr, 0, 1, analysis.tokens);
    expect(weights.has(2)).toBe(false);
    expect(weights.get(3)).toBeCloseTo(full.get(2)! + full.get(3)!, 6);
  });
});

describe('the client', () => {
  it('posts the request as msgpack and decodes the answer', async () => {
    let sent: Record<string, unknown> = {};
    const client = new LenscopeClient('http://x/', async (url, init) => {
      expect(url).toBe('http://x/lenscope/api/attribute');
      sent = decode(init.body as Uint8Array) as Record<string, unknown>;
      return new Response(Buffer.from(msgpack), { headers: { 'Content-Type': 'application/msgpack' } });
    });
    const got = await client.attribute({ text: request.text, context: request.context, position: 5, target: null });
    expect(sent).toEqual({ text: request.text, context: request.context, position: 5, target: null });
    expect(got.value).toBe(attr.value);
  });
});
