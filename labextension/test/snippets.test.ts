import {
  analysisSnippet,
  attentionSnippet,
  attributionSnippet,
  comparisonSnippet,
  corpusCompareSnippet,
  featureCardSnippet,
  headCardSnippet,
  interventionSnippet,
  neuronCardSnippet,
  patchSnippet,
  pyString,
  pyValue
} from '../src/snippets';

/** Python's reading of the literals pyString writes: adjacent '…' strings, the escapes it uses. */
function readPython(literal: string): string {
  const body = literal.startsWith('(\n') ? literal.slice(2, -2) : literal;
  const parts = body.split('\n').map(l => l.trim());
  let out = '';
  for (const part of parts) {
    expect(part.startsWith("'") && part.endsWith("'")).toBe(true);
    const s = part.slice(1, -1);
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      expect(c).not.toBe("'"); // an unescaped quote would end the literal
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = s[++i];
      const width = { x: 2, u: 4, U: 8 }[e as 'x' | 'u' | 'U'];
      if (width) {
        out += String.fromCodePoint(parseInt(s.slice(i + 1, i + 1 + width), 16));
        i += width;
      } else {
        out += { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'" }[e as 'n'];
      }
    }
  }
  return out;
}

const TRICKY = [
  '',
  'plain',
  "it's \"quoted\" '''triple''' \"\"\"",
  'back\\slash \\n not a newline \\',
  'line\nbreaks\r\nand\rreturns\n\n',
  'tab\there \x0b\x0c\x1b\x7f\x85 \u2028\u2029',
  'emoji 😀 👩‍👩‍👧 e\u0301 שלום 中文 \ufeff',
  '{braces} and %s and f"{x}"'
];

describe('pyString: a Python literal for any request text', () => {
  it.each(TRICKY)('reads back exactly, in ASCII: %j', text => {
    const literal = pyString(text);
    expect(/^[\x20-\x7e\n]*$/.test(literal)).toBe(true);
    expect(readPython(literal)).toBe(text);
  });

  it('writes one literal per line, in parentheses', () => {
    expect(pyString('a\nb')).toBe("(\n    'a\\n'\n    'b'\n)");
    expect(pyString('a\n')).toBe("'a\\n'");
    expect(pyString('')).toBe("''");
  });

  it('writes an astral character as one \\U escape, not two surrogates', () => {
    expect(pyString('😀')).toBe("'\\U0001f600'");
    expect(pyString('é\u2028')).toBe("'\\xe9\\u2028'");
  });

  it('pyValue: None, booleans, numbers, lists', () => {
    expect(pyValue(null)).toBe('None');
    expect(pyValue(undefined)).toBe('None');
    expect(pyValue([1, -6, 0.5, true])).toBe('[1, -6, 0.5, True]');
    expect(pyValue(NaN)).toBe("float('nan')");
    expect(pyValue(['a'])).toBe("['a']");
  });
});

describe('each view’s snippet', () => {
  const text = "x = 'cat' \\ 😀\n";
  const cases: [string, string][] = [
    ['analysis', analysisSnippet({ model: 'm', text, context: 'ctx\n', top_k: 10, top_neurons: 10 })],
    ['comparison', comparisonSnippet({ model: 'm', model_b: 'b', clamp: -6, text, context: '' })],
    ['attribution', attributionSnippet({ model: 'm', text, context: '', position: 2, target: 5, baseline: null, top: 10 })],
    ['attention', attentionSnippet({ model: 'm', text, context: '', k: 16, layers: null, token: 1 })],
    ['intervention', interventionSnippet({ model: 'm', text, context: '', interventions: [{ component: 'neuron', layer: 0, index: 3, op: 'zero', value: 0, positions: [2] }] })],
    ['patch', patchSnippet({ model: 'm', clean: text, corrupted: text, target: 1, baseline: 2, position: null })],
    ['corpus', corpusCompareSnippet({ model_a: 'm', model_b: 'b', paths: ['.'], clamp: -6, min_count: 5, root: "/home/o'k" })],
    ['neuron', neuronCardSnippet({ model: 'm', layer: 0, index: 5 })],
    ['feature', featureCardSnippet({ model: 'm', sae: 's', index: 5 })],
    ['head', headCardSnippet({ model: 'm', layer: 0, head: 1 })]
  ];

  it.each(cases)('%s: loads the model by name, ends with the result line, ASCII only', (_, code) => {
    expect(code).toContain("MODEL = 'm'\nmodel = load_model(MODEL)");
    expect(code.trimEnd().split('\n').pop()).toBe('print("LENSCOPE_RESULT " + json.dumps(_clean(result), allow_nan=False))');
    expect(/^[\x20-\x7e\n]*$/.test(code)).toBe(true);
  });

  it('passes the request on as it was made', () => {
    const [, analysis] = cases[0];
    expect(analysis).toContain("TEXT = '" + "x = \\'cat\\' \\\\ \\U0001f600\\n'");
    expect(analysis).toContain("CONTEXT = 'ctx\\n'");
    const [, attribution] = cases[2];
    expect(attribution).toContain('POSITION = 2\nTARGET = 5');
    expect(attribution).toContain('BASELINE = None');
    const [, intervention] = cases[4];
    expect(intervention).toContain("    Intervention('neuron', 0, 3, 'zero', 0, positions=(2,)),");
    expect(cases[6][1]).toContain("ROOT = Path('/home/o\\'k')");
    expect(cases[1][1]).toContain("MODEL_B = 'b'\nmodel_b = load_model(MODEL_B)");
  });

  it('takes a mean-ablated neuron\'s mean from the model\'s index, as the server does', () => {
    const code = interventionSnippet({ model: 'm', text, root: '/r', interventions: [{ component: 'neuron', layer: 0, index: 3, op: 'mean' }] });
    expect(code).toContain("ROOT = Path('/r')");
    expect(code).toContain('MEANS = index_means(INTERVENTIONS)');
    expect(code).toContain("Intervention('neuron', 0, 3, 'mean', 0)");
    expect(cases[4][1]).toContain('MEANS = None');
  });

  it('needs the model name', () => {
    expect(() => analysisSnippet({ text: 'x' } as never)).toThrow(/model/);
  });
});
