import { BUCKETS, diffBucket, mapRange, surpriseBucket, surpriseColor, tokenAt, tokenRanges } from '../src/decorate';
import { escapeMarkdown, hoverMarkdown, neuronCommandUri } from '../src/hover';
import { compareView } from '../src/protocol';
import { analysis } from './fixture';

const a = analysis('code');

describe('hover', () => {
  it('lists the top-10 after the token, the actual next token with rank and log-prob, and neuron chips', () => {
    const i = 3;
    const md = hoverMarkdown(a, i);
    const pred = a.after(i);
    expect(pred.top).toHaveLength(10);
    const rows = md.split('\n').filter(l => /^\| \d+ \|/.test(l));
    expect(rows).toHaveLength(5);
    const ranks = [...md.matchAll(/\| (\d+) \| (\*\*)?`/g)].map(m => Number(m[1]));
    expect(ranks.sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    pred.top.forEach(c => expect(md).toContain(c.logprob.toFixed(2)));
    expect(md).toContain(`rank **${pred.actual!.rank}** · log-prob **${pred.actual!.logprob.toFixed(2)}**`);
    expect(md).toContain(`this token: log-prob **${a.logprobOf(i).toFixed(2)}** · rank **${a.rankOf(i)}**`);
    const n = a.neurons(i)[0];
    expect(md).toContain(`[L${n.layer}.N${n.index} ${n.activation.toFixed(2)}](${neuronCommandUri(a.model, n.layer, n.index)}`);
  });

  it('the last token: what follows the selection is unknown', () => {
    expect(hoverMarkdown(a, a.length - 1)).toContain('after the selection · entropy');
  });

  it('the neuron chip links to the open-card command with JSON arguments', () => {
    const uri = neuronCommandUri('m', 0, 12);
    expect(uri.startsWith('command:lenscope.openNeuron?')).toBe(true);
    expect(JSON.parse(decodeURIComponent(uri.split('?')[1]))).toEqual([{ model: 'm', layer: 0, index: 12 }]);
  });

  it('escapes Markdown and HTML in token text, whitespace made visible', () => {
    expect(escapeMarkdown('*a* <b>')).toBe('\\*a\\*·&lt;b&gt;');
    expect(escapeMarkdown('[x](command:evil)')).toBe('\\[x\\]\\(command:evil\\)');
  });

  it('with a comparison, shows model B and the clamped diff', () => {
    const b = analysis('code', 'other-model');
    const md = hoverMarkdown(a, 2, { compare: { analysis: b, clamp: -6 } });
    expect(md).toContain('vs other\\-model: ');
    expect(md).toContain('diff **0.00**');
  });
});

describe('colours', () => {
  it('buckets surprise: certain tokens get none, very surprising the last bucket', () => {
    expect(surpriseBucket(0, -10)).toBeNull();
    expect(surpriseBucket(-0.01, -10)).toBeNull();
    expect(surpriseBucket(-10, -10)).toBe(BUCKETS - 1);
    expect(surpriseBucket(-50, -10)).toBe(BUCKETS - 1);
    expect(surpriseBucket(-5, -10)).toBe(BUCKETS / 2);
    expect(surpriseBucket(NaN, -10)).toBeNull();
    expect(surpriseColor(BUCKETS - 1)).toMatch(/^rgba\(230, 70, 40, 0\.5\d+\)$/);
  });

  it('buckets a diff by sign and size', () => {
    expect(diffBucket(0)).toBeNull();
    expect(diffBucket(4)).toBe(BUCKETS);
    expect(diffBucket(-100)).toBe(-BUCKETS);
    expect(diffBucket(0.1)).toBe(1);
  });

  it('places token ranges at the selection offset and finds the token under the cursor', () => {
    const ranges = tokenRanges(a, 100, -10);
    for (const r of ranges) {
      expect(r.start).toBe(100 + a.tokens[r.token].from);
      expect(r.end).toBe(100 + a.tokens[r.token].to);
    }
    expect(ranges.length).toBeGreaterThan(a.length / 2);
    const t = a.tokens[5];
    expect(tokenAt(a, 100, 100 + t.from)).toBe(5);
    expect(tokenAt(a, 100, 100 + t.to - 1)).toBe(5);
    expect(tokenAt(a, 100, 99)).toBe(-1);
    expect(tokenAt(a, 100, 100 + a.text.length)).toBe(-1);
  });
});

describe('mapRange (decorations follow edits)', () => {
  it('shifts after an edit before, keeps after an edit after, drops when the edit touches it', () => {
    expect(mapRange(10, 20, { rangeOffset: 0, rangeLength: 2, textLength: 5 })).toEqual({ start: 13, end: 23 });
    expect(mapRange(10, 20, { rangeOffset: 10, rangeLength: 0, textLength: 1 })).toEqual({ start: 11, end: 21 });
    expect(mapRange(10, 20, { rangeOffset: 20, rangeLength: 0, textLength: 3 })).toEqual({ start: 10, end: 20 });
    expect(mapRange(10, 20, { rangeOffset: 15, rangeLength: 1, textLength: 0 })).toBeNull();
    expect(mapRange(10, 20, { rangeOffset: 5, rangeLength: 6, textLength: 0 })).toBeNull();
  });
});

describe('compareView', () => {
  it('rows sorted by diff, A better first', () => {
    const v = compareView(a, analysis('code', 'b'), -6);
    expect(v.rows).toHaveLength(a.length);
    for (let j = 1; j < v.rows.length; j++) {
      if (Number.isFinite(v.rows[j].diff)) {
        expect(v.rows[j - 1].diff).toBeGreaterThanOrEqual(v.rows[j].diff);
      }
    }
  });
});
