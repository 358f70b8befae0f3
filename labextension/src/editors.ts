/**
 * JupyterLab's editors as lenscope needs them: the active editor's target (through the pure
 * functions of `target.ts`) and opening a file, or a notebook's cell, at a place.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { CodeMirrorEditor } from '@jupyterlab/codemirror';
import type { IEditorTracker } from '@jupyterlab/fileeditor';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { EditorView } from '@codemirror/view';
import type { Widget } from '@lumino/widgets';

import type { Settings } from './settings';
import { analyzedRange, contextLimit, contextText, linesOf, precedingCells, Target } from './target';

export interface EditorServices {
  app: JupyterFrontEnd;
  notebooks: INotebookTracker | null;
  editors: IEditorTracker | null;
}

/** The active editor's selection (or cell, or file) as a target; null when no editor is active. */
export function activeTarget(services: EditorServices, settings: Settings, nCtx: number | null | undefined): Target | null {
  const { app, notebooks, editors } = services;
  const widget = app.shell.currentWidget;
  const limit = contextLimit(settings.contextChars, nCtx);
  if (notebooks?.currentWidget && widget === notebooks.currentWidget) {
    const nb = notebooks.currentWidget.content;
    const cell = nb.activeCell;
    if (!cell || !(cell.editor instanceof CodeMirrorEditor)) {
      return null;
    }
    const cells = nb.widgets.map(c => ({ type: c.model.type, source: c.model.sharedModel.getSource() }));
    // earlier cells of the same type precede this one: they are the context
    return fromView(cell.editor.editor, precedingCells(cells, nb.activeCellIndex), null, limit, notebooks.currentWidget.context.path, nb.activeCellIndex);
  }
  if (editors?.currentWidget && widget === editors.currentWidget) {
    const editor = editors.currentWidget.content.editor;
    return editor instanceof CodeMirrorEditor ? fromView(editor.editor, '', settings.maxChars, limit, editors.currentWidget.context.path, null) : null;
  }
  return null;
}

function fromView(view: EditorView, preceding: string, wholeFileLimit: number | null, limit: number, path: string, cell: number | null): Target {
  const { from, to } = analyzedRange(view.state.selection.main, view.state.doc.length, wholeFileLimit);
  const doc = view.state.doc.toString();
  return {
    view,
    from,
    text: doc.slice(from, to),
    context: contextText(preceding, doc.slice(0, from), limit),
    path,
    cell,
    lines: linesOf(doc, from, to)
  };
}

/** The CodeMirror view inside a document widget, once its file has loaded. */
async function viewOf(widget: Widget | undefined, cell: number | null): Promise<EditorView | null> {
  if (!widget) {
    return null;
  }
  if (widget instanceof NotebookPanel) {
    await widget.context.ready;
    const nb = widget.content;
    if (cell !== null && cell < nb.widgets.length) {
      nb.activeCellIndex = cell;
      nb.mode = 'edit'; // a markdown cell shows its source (and so the colours on it)
      await nb.scrollToItem(cell, 'center');
    }
    const editor = nb.activeCell?.editor;
    return editor instanceof CodeMirrorEditor ? editor.editor : null;
  }
  const doc = widget as Widget & { context?: { ready: Promise<void> }; content?: { editor?: unknown } };
  await doc.context?.ready;
  const editor = doc.content?.editor;
  return editor instanceof CodeMirrorEditor ? editor.editor : null;
}

/**
 * Open a file (a notebook at a cell when `cell` is set; anything else as text, since the index
 * and comparisons read files as text) and return the editor of that text.
 */
export async function openEditor(app: JupyterFrontEnd, path: string, cell: number | null): Promise<EditorView | null> {
  const args = cell === null ? { path, factory: 'Editor' } : { path };
  const widget = (await app.commands.execute('docmanager:open', args)) as Widget | undefined;
  return viewOf(widget, cell);
}

/** Put the caret at a UTF-16 offset (or select [from, to)) and bring it into view. */
export function reveal(view: EditorView, from: number, to = from): void {
  const len = view.state.doc.length;
  view.dispatch({ selection: { anchor: Math.min(from, len), head: Math.min(to, len) }, effects: EditorView.scrollIntoView(Math.min(from, len), { y: 'center' }) });
  view.focus();
}

/** Select lines [first, last] (1-based, clipped). */
export function selectLines(view: EditorView, first: number, last: number): void {
  const doc = view.state.doc;
  const a = doc.line(Math.max(1, Math.min(doc.lines, first)));
  const b = doc.line(Math.max(1, Math.min(doc.lines, last)));
  reveal(view, a.from, b.to);
}
