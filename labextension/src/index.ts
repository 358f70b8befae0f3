/**
 * lenscope's JupyterLab plugin: commands, menus, the editor extension and the side panel.
 * The API client (`api/`) holds no JupyterLab imports; this file wires it into the app.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import { CodeMirrorEditor, EditorExtensionRegistry, IEditorExtensionRegistry } from '@jupyterlab/codemirror';
import { IEditorTracker } from '@jupyterlab/fileeditor';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';
import type { EditorView } from '@codemirror/view';

import type { Analysis } from './api/analysis';
import { LenscopeApiError, LenscopeClient, ModelEntry } from './api/client';
import type { ScaleName } from './colors';
import { annotationExtension, currentAnnotation, setAnnotation } from './editor/annotations';
import { NEURON_EVENT, NeuronEventDetail } from './editor/tooltip';
import { renderCard } from './card';
import { LenscopePanel } from './panel';

const PLUGIN_ID = 'lenscope:plugin';

export namespace CommandIDs {
  export const analyze = 'lenscope:analyze-selection';
  export const clear = 'lenscope:clear-annotations';
  export const chooseModel = 'lenscope:choose-model';
  export const showPanel = 'lenscope:show-panel';
  export const buildIndex = 'lenscope:build-index';
}

interface Settings {
  defaultModel: string;
  topK: number;
  topNeurons: number;
  colorScale: ScaleName;
  logprobFloor: number;
  contextChars: number;
  maxChars: number;
  compareClamp: number;
}

const DEFAULTS: Settings = {
  defaultModel: '',
  topK: 10,
  topNeurons: 10,
  colorScale: 'surprise',
  logprobFloor: -10,
  contextChars: -1,
  maxChars: 20000,
  compareClamp: -6
};

const ICON = new LabIcon({
  name: 'lenscope:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M10 2a8 8 0 0 1 6.32 12.9l5.39 5.4-1.42 1.4-5.39-5.38A8 8 0 1 1 10 2zm0 2a6 6 0 1 0 0 12 6 6 0 0 0 0-12z"/>' +
    '<rect x="6" y="8" width="2" height="4"/><rect x="9" y="6" width="2" height="8"/><rect x="12" y="9" width="2" height="3"/></g></svg>'
});

/** The text to analyze in the active editor and what precedes it. */
interface Target {
  view: EditorView;
  from: number;
  text: string;
  context: string;
}

interface LastRun {
  target: Target;
  model: string;
  analysis: Analysis;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A language model’s predictions and neurons, inline on your text',
  autoStart: true,
  requires: [IEditorExtensionRegistry],
  optional: [ICommandPalette, INotebookTracker, IEditorTracker, ISettingRegistry, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    extensions: IEditorExtensionRegistry,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    editors: IEditorTracker | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const serverSettings = ServerConnection.makeSettings();
    const client = new LenscopeClient(serverSettings.baseUrl, (url, init) =>
      ServerConnection.makeRequest(url, init, serverSettings)
    );
    let settings: Settings = { ...DEFAULTS };
    let models: ModelEntry[] = [];
    let model = '';
    let last: LastRun | null = null;
    const annotated = new Set<EditorView>();

    extensions.addExtension({
      name: 'lenscope:annotations',
      factory: () => EditorExtensionRegistry.createImmutableExtension(annotationExtension())
    });

    const panel = new LenscopePanel({
      onModelChange: name => {
        model = name;
        panel.showModelState();
      },
      onNeuronClick: (layer, index) => void showNeuron(layer, index),
      onTokenClick: index => {
        if (last) {
          const t = last.analysis.tokens[index];
          last.target.view.dispatch({ selection: { anchor: last.target.from + t.from }, scrollIntoView: true });
          last.target.view.focus();
        }
      },
      onRefreshModels: () => void refreshModels(),
      onBuildIndex: () => void buildIndex(),
      onCancelJob: () => {
        if (job) {
          void client.cancelJob(job);
        }
      },
      onOpenExample: (file, charStart) => void openAt(file, charStart),
      onCompareChange: name => {
        compareModel = name;
      },
      onCompareCorpus: () => void compareCorpus(),
      onOpenRow: (path, line) => void openRow(path, line),
      onOpenFile: path => void app.commands.execute('docmanager:open', { path }),
      onSearch: token => {
        client
          .searchNeurons(model, token)
          .then(found => panel.showSearch(token, found.neurons))
          .catch(err => panel.showSearchError(describe(err)));
      },
      onColourByLogprob: () => {
        const annotation = last ? currentAnnotation(last.target.view) : null;
        if (last && annotation) {
          last.target.view.dispatch({ effects: setAnnotation.of({ ...annotation, neuron: null }) });
        }
      }
    });
    panel.title.icon = ICON;
    app.shell.add(panel, 'right', { rank: 900 });

    let job: string | null = null;
    let compareModel = '';

    async function refreshIndexes(): Promise<void> {
      try {
        panel.showIndexes((await client.indexes()).indexes);
      } catch {
        // the index list is informative only
      }
    }

    async function buildIndex(): Promise<void> {
      app.shell.activateById(panel.id);
      try {
        let current = await client.buildIndex({ model: model || null, paths: ['.'], name: 'workspace', k: 20 });
        job = current.id;
        panel.showJob(current);
        while (current.state === 'queued' || current.state === 'running') {
          await new Promise(resolve => setTimeout(resolve, 300));
          current = await client.job(current.id);
          panel.showJob(current);
        }
        await refreshIndexes();
      } catch (err) {
        panel.showJob({ state: 'failed', error: { message: describe(err) } });
      }
    }

    /** Open a workspace file with the cursor at a code-point offset (CodeMirror counts UTF-16). */
    async function openAt(file: string, charStart: number): Promise<void> {
      const view = await openView(file);
      if (view) {
        const pos = Array.from(view.state.doc.toString()).slice(0, charStart).join('').length;
        view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
        view.focus();
      }
    }

    /** Open a file as text in the file editor and return its CodeMirror view, once loaded. */
    async function openView(path: string): Promise<EditorView | null> {
      // as text, whatever the file type: examples and scans read files as text, with its lines
      const widget = (await app.commands.execute('docmanager:open', { path, factory: 'Editor' })) as {
        content?: { editor?: unknown };
        context?: { ready: Promise<void> };
      };
      await widget?.context?.ready;
      const editor = widget?.content?.editor;
      return editor instanceof CodeMirrorEditor ? editor.editor : null;
    }

    async function compareCorpus(): Promise<void> {
      app.shell.activateById(panel.id);
      if (!compareModel) {
        panel.showCompareJob({ state: 'failed', error: { message: 'pick model B in “Compare with” first' } });
        return;
      }
      const models: [string, string] = [model, compareModel];
      try {
        let current = await client.compareCorpus({ model_a: model || null, model_b: compareModel, paths: ['.'], clamp: settings.compareClamp, min_count: 10 });
        panel.showCompareJob(current);
        while (current.state === 'queued' || current.state === 'running') {
          await new Promise(resolve => setTimeout(resolve, 300));
          current = await client.job(current.id);
          panel.showCompareJob(current);
        }
        if (current.state === 'done' && current.result) {
          panel.showCompareResult(models, current.result as unknown as Parameters<typeof panel.showCompareResult>[1]);
        }
      } catch (err) {
        panel.showCompareJob({ state: 'failed', error: { message: describe(err) } });
      }
    }

    /** Open a file at a line and analyze the lines around it, compared, inline. */
    async function openRow(path: string, line: number): Promise<void> {
      const view = await openView(path);
      if (!view) {
        return;
      }
      const doc = view.state.doc;
      const first = doc.line(Math.max(1, line - 3));
      const last = doc.line(Math.min(doc.lines, line + 3));
      view.dispatch({ selection: { anchor: first.from, head: last.to }, scrollIntoView: true });
      view.focus();
      await analyze();
    }

    async function refreshModels(): Promise<void> {
      try {
        const listing = await client.models();
        models = listing.models;
        model = model || settings.defaultModel || listing.default;
        panel.setModels(models, model);
      } catch (err) {
        panel.setState({ kind: 'error', message: describe(err), hint: 'Is the lenscope server extension enabled?' });
      }
    }

    function activeTarget(): Target | null {
      const widget = app.shell.currentWidget;
      if (notebooks?.currentWidget && widget === notebooks.currentWidget) {
        const nb = notebooks.currentWidget.content;
        const cell = nb.activeCell;
        const editor = cell?.editor;
        if (!cell || !(editor instanceof CodeMirrorEditor)) {
          return null;
        }
        const view = editor.editor;
        // earlier cells of the notebook precede this one: they are the context
        const before = nb.widgets
          .slice(0, nb.activeCellIndex)
          .filter(c => c.model.type === cell.model.type)
          .map(c => c.model.sharedModel.getSource())
          .join('\n\n');
        return fromView(view, before ? before + '\n\n' : '', false);
      }
      if (editors?.currentWidget && widget === editors.currentWidget) {
        const editor = editors.currentWidget.content.editor;
        return editor instanceof CodeMirrorEditor ? fromView(editor.editor, '', true) : null;
      }
      return null;
    }

    function fromView(view: EditorView, preceding: string, wholeFileLimit: boolean): Target {
      const sel = view.state.selection.main;
      let { from, to } = sel;
      if (sel.empty) {
        from = 0;
        to = wholeFileLimit ? Math.min(view.state.doc.length, settings.maxChars) : view.state.doc.length;
      }
      const limit = settings.contextChars >= 0 ? settings.contextChars : contextBudget();
      const context = (preceding + view.state.sliceDoc(0, from)).slice(-limit || undefined);
      return { view, from, text: view.state.sliceDoc(from, to), context: limit === 0 ? '' : context };
    }

    /** Enough characters to fill the model's context window (the server keeps what fits). */
    function contextBudget(): number {
      const nCtx = models.find(m => m.name === model)?.shape?.n_ctx ?? 1024;
      return nCtx * 16;
    }

    async function analyze(): Promise<void> {
      const started = performance.now();
      const target = activeTarget();
      if (!target) {
        panel.setState({ kind: 'error', message: 'No editor is active.', hint: 'Click into a file or a notebook cell first.' });
        app.shell.activateById(panel.id);
        return;
      }
      if (!target.text.trim()) {
        panel.setState({ kind: 'error', message: 'Nothing to analyze here: the selection is empty or only whitespace.', hint: 'Select some text, or run the command in a cell or file that has some.' });
        app.shell.activateById(panel.id);
        return;
      }
      if (!models.length) {
        await refreshModels();
      }
      const entry = models.find(m => m.name === model);
      panel.setState({ kind: 'loading', message: entry && entry.state !== 'loaded' ? `Loading ${model} and analyzing…` : `Analyzing with ${model}…` });
      panel.showModelState(entry && entry.state !== 'loaded' ? 'loading' : undefined);
      try {
        const request = { text: target.text, context: target.context, top_k: settings.topK, top_neurons: settings.topNeurons };
        const [analysis, other] = await Promise.all([
          client.analyze({ ...request, model: model || null }),
          compareModel ? client.analyze({ ...request, model: compareModel, top_neurons: 0 }) : Promise.resolve(null)
        ]);
        if (other && !sameTokens(analysis, other)) {
          panel.setState({
            kind: 'error',
            message: `${analysis.model} and ${other.model} tokenize this text differently: a token-by-token comparison needs one tokenizer.`,
            hint: 'Pick models that share a tokenizer (the two default models do).'
          });
          return;
        }
        const compare = other ? { analysis: other, clamp: settings.compareClamp } : null;
        target.view.dispatch({
          effects: setAnnotation.of({ analysis, offset: target.from, scale: settings.colorScale, floor: settings.logprobFloor, neuron: null, compare })
        });
        annotated.add(target.view);
        last = { target, model, analysis };
        requestAnimationFrame(() => {
          const cmp = other ? { model: other.model, clamp: settings.compareClamp } : undefined;
          panel.showAnalysis(analysis, settings.colorScale, settings.logprobFloor, performance.now() - started, cmp);
          panel.showModelState('loaded');
        });
      } catch (err) {
        panel.setState({ kind: 'error', message: describe(err), hint: hintFor(err) });
        panel.showModelState();
      }
    }

    async function showNeuron(layer: number, index: number): Promise<void> {
      app.shell.activateById(panel.id);
      const cardModel = last?.model || model;
      void client
        .neuronCard(cardModel, layer, index)
        .then(card => panel.showCard(renderCard(card, { onOpenExample: (file, at) => void openAt(file, at) })))
        .catch(err =>
          panel.showCardMessage(
            err instanceof LenscopeApiError && err.code === 'index_not_found'
              ? `No neuron index for ${cardModel} yet: “Index the workspace” below builds one.`
              : describe(err),
            !(err instanceof LenscopeApiError && err.code === 'index_not_found')
          )
        );
      if (!last) {
        return; // no analyzed text: the card alone
      }
      const run = last;
      panel.showNeuronLoading(layer, index);
      try {
        const acts = await client.activations({
          model: run.model || null,
          text: run.target.text,
          context: run.target.context,
          neurons: [{ layer, index }]
        });
        const annotation = currentAnnotation(run.target.view);
        if (annotation && annotation.analysis === run.analysis) {
          const values = new Float32Array(run.analysis.length);
          values.forEach((_, i) => (values[i] = acts.at(i)));
          run.target.view.dispatch({ effects: setAnnotation.of({ ...annotation, neuron: { layer, index, values } }) });
        }
        panel.showNeuron(acts, run.analysis);
      } catch (err) {
        panel.showNeuronError(describe(err));
      }
    }

    function clear(): void {
      for (const view of annotated) {
        view.dispatch({ effects: setAnnotation.of(null) });
      }
      annotated.clear();
      last = null;
      panel.clear();
    }

    document.addEventListener(NEURON_EVENT, event => {
      const { layer, index } = (event as CustomEvent<NeuronEventDetail>).detail;
      void showNeuron(layer, index);
    });

    app.commands.addCommand(CommandIDs.analyze, {
      label: 'lenscope: Analyze selection',
      caption: 'Per-token predictions and neurons of the selection (or the cell / file)',
      icon: ICON,
      execute: () => {
        app.shell.activateById(panel.id);
        return analyze();
      }
    });
    app.commands.addCommand(CommandIDs.clear, { label: 'lenscope: Clear annotations', execute: clear });
    app.commands.addCommand(CommandIDs.buildIndex, {
      label: 'lenscope: Index the workspace (neuron index)',
      execute: () => buildIndex()
    });
    app.commands.addCommand(CommandIDs.showPanel, {
      label: 'lenscope: Show panel',
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.chooseModel, {
      label: 'lenscope: Choose model',
      execute: async () => {
        await refreshModels();
        const names = models.filter(m => m.loadable).map(m => m.name);
        const result = await InputDialog.getItem({ title: 'lenscope model', items: names, current: Math.max(0, names.indexOf(model)) });
        if (result.button.accept && result.value) {
          model = result.value;
          panel.setModels(models, model);
        }
      }
    });

    for (const command of [CommandIDs.analyze, CommandIDs.clear, CommandIDs.chooseModel, CommandIDs.showPanel, CommandIDs.buildIndex]) {
      palette?.addItem({ command, category: 'lenscope' });
    }
    for (const selector of ['.jp-FileEditor', '.jp-Notebook .jp-Cell']) {
      app.contextMenu.addItem({ command: CommandIDs.analyze, selector, rank: 0 });
      app.contextMenu.addItem({ command: CommandIDs.clear, selector, rank: 0 });
    }
    app.commands.addKeyBinding({ command: CommandIDs.analyze, keys: ['Alt Shift L'], selector: '.jp-CodeMirrorEditor' });

    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then(loaded => {
        const apply = (): void => {
          settings = { ...DEFAULTS, ...(loaded.composite as Partial<Settings>) };
          if (settings.defaultModel) {
            model = settings.defaultModel;
          }
        };
        apply();
        loaded.changed.connect(apply);
        void refreshModels();
      });
    } else {
      void refreshModels();
    }
    void refreshIndexes();
  }
};

function sameTokens(a: Analysis, b: Analysis): boolean {
  return a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i]);
}

function describe(err: unknown): string {
  if (err instanceof LenscopeApiError) {
    return `${err.message} (${err.status} ${err.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

function hintFor(err: unknown): string {
  if (!(err instanceof LenscopeApiError)) {
    return 'Check that the Jupyter server is running.';
  }
  switch (err.code) {
    case 'input_too_large':
      return 'Select a shorter stretch of text.';
    case 'unknown_model':
    case 'model_unavailable':
      return 'Pick another model in the list above.';
    case 'queue_full':
    case 'worker_died':
      return `The model worker is busy or restarting; try again${err.retryAfter ? ` in ${err.retryAfter} s` : ''}.`;
    default:
      return 'See the message above; the server log has details.';
  }
}

export default plugin;
