/**
 * What to analyze and its context: pure functions of the editor's state, so they are tested
 * without an editor. `editors.ts` reads the state out of JupyterLab and calls these.
 */
import type { EditorView } from '@codemirror/view';

/** The text to analyze, where it is, and what precedes it. */
export interface Target {
  view: EditorView;
  /** document position (UTF-16) of the text's start */
  from: number;
  text: string;
  context: string;
  /** the file, for titles and for forgetting the analysis when it closes */
  path: string;
  /** notebook cell index, null in a file */
  cell: number | null;
  /** 1-based first and last line of the text in its editor */
  lines: [number, number];
}

export interface SelectionLike {
  from: number;
  to: number;
}

/**
 * The range to analyze: the selection; with nothing selected the whole editor, except that a
 * file (not a cell) is cut at `maxChars` so a long file does not go to the server whole.
 */
export function analyzedRange(selection: SelectionLike, docLength: number, wholeFileLimit: number | null): SelectionLike {
  if (selection.from !== selection.to) {
    return { from: Math.min(selection.from, selection.to), to: Math.max(selection.from, selection.to) };
  }
  return { from: 0, to: wholeFileLimit === null ? docLength : Math.min(docLength, wholeFileLimit) };
}

/**
 * How many characters of context to send: the setting when it is 0 or more; with -1, enough
 * characters to fill the model's context window (the server keeps the tokens that fit).
 */
export function contextLimit(setting: number, nCtx: number | null | undefined): number {
  return setting >= 0 ? setting : (nCtx ?? 1024) * 16;
}

/** The last `limit` characters of what precedes the text (earlier cells, then the editor's text before it). */
export function contextText(preceding: string, before: string, limit: number): string {
  if (limit <= 0) {
    return '';
  }
  const all = preceding + before;
  return all.length > limit ? all.slice(all.length - limit) : all;
}

export interface CellLike {
  type: string;
  source: string;
}

/** Earlier cells of the same type as cell `index` (code after code, markdown after markdown), joined as the notebook reads. */
export function precedingCells(cells: CellLike[], index: number): string {
  const type = cells[index]?.type;
  const before = cells
    .slice(0, index)
    .filter(c => c.type === type)
    .map(c => c.source)
    .join('\n\n');
  return before ? before + '\n\n' : '';
}

/** 1-based lines of [from, to) in a text. */
export function linesOf(doc: string, from: number, to: number): [number, number] {
  const first = countNewlines(doc, 0, from) + 1;
  const end = Math.max(from, to - (to > from && doc[to - 1] === '\n' ? 1 : 0));
  return [first, first + countNewlines(doc, from, end)];
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = s.indexOf('\n', from); i !== -1 && i < to; i = s.indexOf('\n', i + 1)) {
    n++;
  }
  return n;
}

/** A UTF-16 offset from a code-point offset (the index counts code points; CodeMirror UTF-16). */
export function utf16Offset(text: string, codePoints: number): number {
  let units = 0;
  let n = 0;
  for (const ch of text) {
    if (n >= codePoints) {
      break;
    }
    units += ch.length;
    n++;
  }
  return units;
}

/** Lines [line - around, line + around] of a text of `lineCount` lines, clipped to it (1-based). */
export function linesAround(line: number, lineCount: number, around = 3): [number, number] {
  return [Math.max(1, line - around), Math.min(lineCount, line + around)];
}

/** A short label of a target: "tour.py lines 8–15" or "tour.ipynb cell 3". */
export function describeTarget(t: Pick<Target, 'path' | 'cell' | 'lines'>): string {
  const name = t.path.split('/').pop() || t.path || 'untitled';
  const lines = t.lines[0] === t.lines[1] ? `line ${t.lines[0]}` : `lines ${t.lines[0]}–${t.lines[1]}`;
  return t.cell === null ? `${name} ${lines}` : `${name} cell ${t.cell + 1} ${lines}`;
}
