import { analyzedRange, contextLimit, contextText, describeTarget, linesAround, linesOf, precedingCells, utf16Offset } from '../src/target';

describe('what to analyze', () => {
  it('is the selection, in order, whichever way it was made', () => {
    expect(analyzedRange({ from: 5, to: 12 }, 100, 50)).toEqual({ from: 5, to: 12 });
    expect(analyzedRange({ from: 12, to: 5 }, 100, 50)).toEqual({ from: 5, to: 12 });
  });

  it('is the whole cell with nothing selected, and a file only up to its limit', () => {
    expect(analyzedRange({ from: 7, to: 7 }, 100, null)).toEqual({ from: 0, to: 100 });
    expect(analyzedRange({ from: 7, to: 7 }, 100, 40)).toEqual({ from: 0, to: 40 });
    expect(analyzedRange({ from: 0, to: 0 }, 30, 40)).toEqual({ from: 0, to: 30 });
  });
});

describe('its context', () => {
  it('fills the model’s window by default (16 characters a token), else the setting', () => {
    expect(contextLimit(-1, 1024)).toBe(16384);
    expect(contextLimit(-1, null)).toBe(16384);
    expect(contextLimit(-1, 2048)).toBe(32768);
    expect(contextLimit(0, 1024)).toBe(0);
    expect(contextLimit(300, 1024)).toBe(300);
  });

  it('is the end of the earlier cells and the text before, cut to the limit', () => {
    expect(contextText('cell 1\n\n', 'x = 1\n', 100)).toBe('cell 1\n\nx = 1\n');
    expect(contextText('cell 1\n\n', 'x = 1\n', 6)).toBe('x = 1\n');
    expect(contextText('abc', 'def', 4)).toBe('cdef');
    expect(contextText('abc', 'def', 0)).toBe('');
  });

  it('takes only earlier cells of the same type, joined as the notebook reads', () => {
    const cells = [
      { type: 'markdown', source: '# Title' },
      { type: 'code', source: 'import os' },
      { type: 'markdown', source: 'Some prose' },
      { type: 'code', source: 'x = 1' },
      { type: 'code', source: 'y = 2' }
    ];
    expect(precedingCells(cells, 3)).toBe('import os\n\n');
    expect(precedingCells(cells, 4)).toBe('import os\n\nx = 1\n\n');
    expect(precedingCells(cells, 2)).toBe('# Title\n\n');
    expect(precedingCells(cells, 0)).toBe('');
  });
});

describe('places', () => {
  const doc = 'a\nbb\nccc\ndddd\n';

  it('finds the 1-based lines a range spans (a trailing newline does not start one)', () => {
    expect(linesOf(doc, 0, 1)).toEqual([1, 1]);
    expect(linesOf(doc, 2, 9)).toEqual([2, 3]);
    expect(linesOf(doc, 2, 10)).toEqual([2, 4]); // one character of line 4
    expect(linesOf(doc, 0, doc.length)).toEqual([1, 4]);
  });

  it('clips the lines around a row to the text', () => {
    expect(linesAround(2, 10)).toEqual([1, 5]);
    expect(linesAround(9, 10)).toEqual([6, 10]);
    expect(linesAround(5, 10, 1)).toEqual([4, 6]);
  });

  it('turns the index’s code-point offsets into UTF-16 (emoji are two units)', () => {
    const text = 'a😀b😀c';
    expect(utf16Offset(text, 0)).toBe(0);
    expect(utf16Offset(text, 2)).toBe(3);
    expect(text.slice(utf16Offset(text, 4), utf16Offset(text, 5))).toBe('c');
    expect(utf16Offset(text, 99)).toBe(text.length);
  });

  it('labels a target by file, cell and lines', () => {
    expect(describeTarget({ path: 'src/tour.py', cell: null, lines: [8, 15] })).toBe('tour.py lines 8–15');
    expect(describeTarget({ path: 'tour.ipynb', cell: 2, lines: [1, 1] })).toBe('tour.ipynb cell 3 line 1');
  });
});
