import { Analysis, AnalyzeResponseWire } from '../src/api/analysis';
import { AttentionResponseWire } from '../src/api/attention';
import {
  ANALYSIS_MIME,
  annotationOf,
  attentionWeights,
  CARD_MIME,
  COMPARISON_MIME,
  describeOutput,
  MIME_VERSION,
  OutputDataError,
  parseOutput,
  serverExtrasBlocked,
  TextOutput
} from '../src/mime/payload';
import { fixture } from './fixture';

const f = fixture('code');
const wire = (): AnalyzeResponseWire => JSON.parse(f.json) as AnalyzeResponseWire;
/** An output over a text (not a card), or the test fails. */
function parseText(mime: string, d: unknown): TextOutput {
  const out = parseOutput(mime, d);
  if (out.kind !== 'analysis' && out.kind !== 'comparison') {
    throw new Error(`a ${out.kind}`);
  }
  return out;
}
const data = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ version: MIME_VERSION, text: f.text, context: f.context, analysis: wire(), ...extra });

describe('notebook output data (lenscope.notebook.show)', () => {
  it('reads the analysis exactly as the client reads the server’s JSON', () => {
    const out = parseText(ANALYSIS_MIME, data());
    const direct = new Analysis(wire(), f.text);
    expect(out.kind).toBe('analysis');
    expect(out.context).toBe(f.context);
    expect(out.analysis.tokens).toEqual(direct.tokens);
    for (let i = 0; i < direct.length; i++) {
      expect(out.analysis.after(i)).toEqual(direct.after(i));
      expect(out.analysis.neurons(i)).toEqual(direct.neurons(i));
      expect(out.analysis.logprobOf(i)).toBe(direct.logprobOf(i));
    }
    expect(out.analysis.tokens.map(t => t.text).join('')).toBe(f.text);
  });

  it('is annotated like the editor: offset 0, the settings’ colours, no neuron or interventions', () => {
    const out = parseText(ANALYSIS_MIME, data());
    const a = annotationOf(out, 'viridis', -8);
    expect(a).toMatchObject({ offset: 0, scale: 'viridis', floor: -8, neuron: null, compare: null, intervened: null });
    expect(a.analysis).toBe(out.analysis);
    expect(describeOutput(out)).toBe(`lenscope · lenscope-gelu-1l · ${out.analysis.length} tokens (${out.analysis.contextTokens} context tokens before it)`);
  });

  it('reads a comparison as the editor’s comparison of two models', () => {
    const b = wire();
    b.model = 'other';
    const out = parseText(COMPARISON_MIME, { version: 1, text: f.text, context: '', a: wire(), b, clamp: -4 });
    expect(out.kind).toBe('comparison');
    const a = annotationOf(out, 'surprise', -10);
    expect(a.compare?.clamp).toBe(-4);
    expect(a.compare?.analysis.model).toBe('other');
    expect(describeOutput(out)).toContain('lenscope-gelu-1l vs other');
  });

  it('says what is wrong with data it cannot show', () => {
    expect(() => parseOutput(ANALYSIS_MIME, null)).toThrow(OutputDataError);
    expect(() => parseOutput(ANALYSIS_MIME, data({ version: MIME_VERSION + 1 }))).toThrow(/newer lenscope/);
    expect(() => parseOutput(ANALYSIS_MIME, data({ text: 3 }))).toThrow(/no text/);
    expect(() => parseOutput(ANALYSIS_MIME, data({ analysis: { model: 'x' } }))).toThrow(/not an analyze response/);
    // spans past the end of the text: not this text's analysis
    expect(() => parseOutput(ANALYSIS_MIME, data({ text: f.text.slice(0, 5) }))).toThrow(/do not tile the text/);
    const short = wire();
    short.tokens.start_utf16 = { dtype: 'uint8', shape: [1], data: [0] };
    short.tokens.end_utf16 = { dtype: 'uint8', shape: [1], data: [3] };
    expect(() => parseOutput(COMPARISON_MIME, { version: 1, text: f.text, a: wire(), b: short })).toThrow(/same tokens/);
    expect(() => parseOutput('application/json', data())).toThrow(/not a lenscope MIME type/);
  });

  it('asks the server for "Why?" only with the context and a model the server has', () => {
    const out = parseText(ANALYSIS_MIME, data());
    expect(serverExtrasBlocked(out, ['lenscope-gelu-1l'])).toBeNull();
    expect(serverExtrasBlocked(out, null)).toBeNull(); // the list not loaded yet: let the server say
    expect(serverExtrasBlocked(out, ['gpt2'])).toMatch(/not a model of this Jupyter server/);
    const noContext = parseText(ANALYSIS_MIME, data({ context: null }));
    expect(noContext.context).toBeNull();
    expect(serverExtrasBlocked(noContext, ['lenscope-gelu-1l'])).toMatch(/context=/);
  });

  it('reads a neuron card as the card tab shows it', () => {
    const card = {
      model: 'lenscope-gelu-1l', layer: 0, index: 5, examples: [], logit_boosted: [], logit_suppressed: [],
      stats: { count: 3, mean: 0.1, max: 1 }, histogram: { edges: [0, 1], counts: [1, 2, 0] }, index_path: 'lenscope-gelu-1l'
    };
    const out = parseOutput(CARD_MIME, { version: 1, card });
    expect(out).toEqual({ kind: 'card', card });
    expect(describeOutput(out)).toBe('lenscope · neuron L0.N5 of lenscope-gelu-1l · 0 examples from the index “lenscope-gelu-1l”');
    expect(() => parseOutput(CARD_MIME, { version: 1, card: { model: 'x' } })).toThrow(/not a neuron card/);
  });

  it('reads attention of the same tokens, and colours a query token as attention mode does', () => {
    const attention = (): AttentionResponseWire => JSON.parse(fixture('attention').json) as AttentionResponseWire;
    const out = parseText(ANALYSIS_MIME, data({ attention: attention() }));
    if (out.kind !== 'analysis' || !out.attention) {
      throw new Error('no attention');
    }
    expect(describeOutput(out)).toContain('attention of layer 0');
    const a = out.attention;
    const heads = [0, 2];
    const query = 5;
    const { weights, max } = attentionWeights(a, 0, heads, query);
    const mean = a.onText(0, heads, query).weights;
    for (let i = 0; i < a.nTokens; i++) {
      expect(weights.get(i) ?? 0).toBeCloseTo(mean[i], 6);
    }
    expect(max).toBe(Math.max(...weights.values()));
    expect(Math.max(...weights.keys())).toBeLessThanOrEqual(query); // causal: no later token
    const other = attention();
    other.tokens.end_utf16 = { ...other.tokens.end_utf16, data: (other.tokens.end_utf16.data as number[]).map((x, i) => (i === 0 ? x + 1 : x)) };
    expect(() => parseOutput(ANALYSIS_MIME, data({ attention: other }))).toThrow(/same tokens/);
    expect(() => parseOutput(ANALYSIS_MIME, data({ attention: { layers: 3 } }))).toThrow(/not an attention response/);
  });
});
