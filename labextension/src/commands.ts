/** lenscope's commands, their menus and keys. Views reach the app through these. */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard, ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import type { LabIcon } from '@jupyterlab/ui-components';
import { EditorView } from '@codemirror/view';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { moveToToken, pinOrEnterTooltip } from './editor/annotations';
import { activeTarget, EditorServices, openEditor, reveal, selectLines } from './editors';
import { analysisTsv, cardJson } from './export';
import type { MainViews } from './mainarea';
import type { LenscopeModel } from './model';
import { parseHeadRef } from './heads';
import { ComponentRef, componentLabel } from './interventions';
import { linesAround, utf16Offset } from './target';
import { CommandIDs } from './tokens';
import type { StoredArgs } from './views/stored';

/** The CodeMirror view that has the keyboard focus, if any. */
function focusedView(): EditorView | null {
  const dom = document.activeElement?.closest('.cm-editor');
  return dom instanceof HTMLElement ? EditorView.findFromDOM(dom) : null;
}

const str = (args: ReadonlyPartialJSONObject, key: string): string => String(args[key] ?? '');
const int = (args: ReadonlyPartialJSONObject, key: string): number => Number(args[key] ?? 0);
/** `{component, layer, index}` of a command's args (component default: neuron). */
const componentOf = (args: ReadonlyPartialJSONObject): ComponentRef => {
  const component = (['neuron', 'head', 'mlp', 'attn', 'feature'] as const).find(c => c === args.component) ?? 'neuron';
  if (component === 'feature') {
    return { component, layer: null, index: int(args, 'index'), sae: str(args, 'sae') || null };
  }
  return { component, layer: int(args, 'layer'), index: component === 'neuron' || component === 'head' ? int(args, 'index') : null };
};
const cellOf = (args: ReadonlyPartialJSONObject): number | null => (typeof args.cell === 'number' ? args.cell : null);

export function addCommands(
  app: JupyterFrontEnd,
  model: LenscopeModel,
  views: MainViews,
  editors: EditorServices,
  panelId: string,
  icon: LabIcon,
  palette: ICommandPalette | null
): void {
  const { commands } = app;
  const showPanel = () => app.shell.activateById(panelId);

  /** A command from a notebook's context menu acts on the cell right-clicked, not the active one: make it active first. */
  function toClickedCell(args: ReadonlyPartialJSONObject): void {
    const nb = args.contextMenu ? editors.notebooks?.currentWidget?.content : null;
    const node = nb ? app.contextMenuHitTest(n => n.classList.contains('jp-Cell')) : undefined;
    const i = nb && node ? nb.widgets.findIndex(c => c.node === node) : -1;
    if (nb && i >= 0 && i !== nb.activeCellIndex) {
      nb.activeCellIndex = i;
    }
  }

  async function analyze(args: ReadonlyPartialJSONObject = {}): Promise<void> {
    const started = performance.now();
    toClickedCell(args);
    showPanel();
    const target = activeTarget(editors, model.settings, model.entry?.shape?.n_ctx);
    if (!target) {
      model.setStatus({ kind: 'error', message: 'No editor is active.', hint: 'Click into a file or a notebook cell first.' });
      return;
    }
    if (!target.text.trim()) {
      model.setStatus({ kind: 'error', message: 'Nothing to analyze here: the selection is empty or only whitespace.', hint: 'Select some text, or run the command in a cell or file that has some.' });
      return;
    }
    await model.analyze(target, started);
  }

  commands.addCommand(CommandIDs.analyze, {
    label: 'lenscope: Analyze selection',
    caption: 'Per-token predictions and neurons of the selection (or the cell / file)',
    icon,
    execute: args => analyze(args)
  });
  commands.addCommand(CommandIDs.clear, { label: 'lenscope: Clear annotations', execute: () => model.clear() });
  commands.addCommand(CommandIDs.buildIndex, {
    label: 'lenscope: Index the workspace (neuron index)',
    execute: () => {
      showPanel();
      return model.buildIndex();
    }
  });
  commands.addCommand(CommandIDs.compareCorpus, {
    label: 'lenscope: Compare the two models over the workspace',
    execute: () => {
      showPanel();
      return model.compareCorpus();
    }
  });
  commands.addCommand(CommandIDs.showPanel, { label: 'lenscope: Show panel', execute: showPanel });
  commands.addCommand(CommandIDs.chooseModel, {
    label: 'lenscope: Choose model',
    execute: async () => {
      await model.refreshModels();
      const names = model.models.filter(m => m.loadable).map(m => m.name);
      const result = await InputDialog.getItem({ title: 'lenscope model', items: names, current: Math.max(0, names.indexOf(model.model)) });
      if (result.button.accept && result.value) {
        model.model = result.value;
      }
    }
  });

  // keyboard: move between annotated tokens, open (pin) the caret token's tooltip
  commands.addCommand(CommandIDs.nextToken, {
    label: 'lenscope: Next annotated token',
    execute: () => {
      const view = focusedView();
      return view ? moveToToken(view, 1) : false;
    }
  });
  commands.addCommand(CommandIDs.previousToken, {
    label: 'lenscope: Previous annotated token',
    execute: () => {
      const view = focusedView();
      return view ? moveToToken(view, -1) : false;
    }
  });
  commands.addCommand(CommandIDs.toggleTooltip, {
    label: 'lenscope: Show the token’s predictions (tooltip) at the caret',
    execute: () => {
      const view = focusedView();
      return view ? pinOrEnterTooltip(view) : false;
    }
  });
  commands.addCommand(CommandIDs.toggleAttentionMode, {
    label: 'lenscope: Attention mode (hover a token: where the chosen heads attend)',
    isToggled: () => model.attention.mode,
    execute: () => {
      const mode = !model.attention.mode;
      if (mode && model.attention.token === null) {
        // start from the caret's token, so the keyboard has something shown at once
        const view = focusedView();
        const run = model.run;
        if (view && run && run.target.view === view) {
          const at = view.state.selection.main.head - run.target.from;
          const i = run.analysis.tokens.findIndex(t => t.from <= at && at < t.to);
          model.updateAttention({ mode, token: i >= 0 ? i : null });
          return;
        }
      }
      model.updateAttention({ mode });
    }
  });
  commands.addCommand(CommandIDs.copyAnalysis, {
    label: 'lenscope: Copy the analysis (TSV)',
    isEnabled: () => !!model.run,
    execute: () => {
      const run = model.run;
      if (run) {
        Clipboard.copyToSystem(analysisTsv(run.analysis, run.compare?.analysis));
      }
    }
  });
  commands.addCommand(CommandIDs.copyCard, {
    label: 'lenscope: Copy the neuron card (JSON)',
    isEnabled: () => !!views.cards.currentWidget?.content.card,
    execute: () => {
      const card = views.cards.currentWidget?.content.card;
      if (card) {
        Clipboard.copyToSystem(cardJson(card));
      }
    }
  });

  // opening things (the views call these; the layout restorer too)
  commands.addCommand(CommandIDs.openNeuron, {
    label: args => (args.layer === undefined ? 'lenscope: Open neuron' : `lenscope: Open neuron L${args.layer}.N${args.index}`),
    execute: args => model.openNeuron(int(args, 'layer'), int(args, 'index'), str(args, 'model') || undefined)
  });
  commands.addCommand(CommandIDs.openFeature, {
    label: args => (args.index === undefined ? 'lenscope: Open feature' : `lenscope: Open feature F${args.index}`),
    execute: args => model.openFeature(int(args, 'index'), str(args, 'sae') || undefined, str(args, 'model') || undefined)
  });
  commands.addCommand(CommandIDs.openHead, {
    label: args => (args.layer === undefined ? 'lenscope: Open head card…' : `lenscope: Open head L${args.layer}.H${args.head}`),
    caption: 'A head read from its weights: OV and QK token pairs, copying score',
    execute: async args => {
      const name = str(args, 'model') || model.run?.analysis.model || model.model;
      if (typeof args.layer === 'number' && typeof args.head === 'number') {
        views.openHead({ model: name, layer: args.layer, head: args.head });
        return;
      }
      const result = await InputDialog.getText({ title: `lenscope: open a head of ${name}`, label: 'Head (e.g. L0.H3)', placeholder: 'L0.H3' });
      const ref = result.button.accept && result.value ? parseHeadRef(result.value) : null;
      if (ref) {
        views.openHead({ model: name, ...ref });
      } else if (result.button.accept) {
        model.setStatus({ kind: 'error', message: `Not a head: “${result.value ?? ''}”.`, hint: 'Type it as L0.H3 (layer 0, head 3).' });
      }
    }
  });
  commands.addCommand(CommandIDs.ablate, {
    label: args => (args.layer === undefined && args.component !== 'feature' ? 'lenscope: Ablate in the current analysis' : `lenscope: Ablate ${componentLabel(componentOf(args))} in the current analysis`),
    caption: 'Zero a neuron, head or SAE feature at every position of the analyzed text and re-run it (colours: Δ log-prob)',
    execute: args => {
      const what = componentOf(args);
      if (what.component === 'feature' && !what.sae) {
        what.sae = model.run?.analysis.features?.sae ?? model.saeChoice.name ?? null; // the analysis' SAE
      }
      const name = str(args, 'model');
      const run = model.run;
      showPanel();
      if (run && name && name !== run.analysis.model) {
        model.setInterventionError(`${componentLabel(what)} is of ${name}; the current analysis is by ${run.analysis.model}.`);
        return;
      }
      model.addIntervention({ ...what, origin: typeof args.position === 'number' ? args.position : null });
    }
  });
  /** The active editor's selection (cell, file) without its context, or null with the reason in the patching tab. */
  function patchTarget() {
    const target = activeTarget(editors, model.settings, model.entry?.shape?.n_ctx);
    return target && target.text.trim() ? target : null;
  }
  commands.addCommand(CommandIDs.patchSetClean, {
    label: 'lenscope: Use the selection as the clean text (patching)',
    caption: 'Activation patching: the selection (or cell, file) is the clean text patched into another',
    execute: async args => {
      toClickedCell(args);
      const target = patchTarget();
      if (!target) {
        model.setStatus({ kind: 'error', message: 'No text to use as the clean text.', hint: 'Click into a file or a notebook cell with some text first.' });
        return;
      }
      await views.patching.setClean(target);
    }
  });
  commands.addCommand(CommandIDs.patchRun, {
    label: 'lenscope: Patch the clean text into the selection',
    caption: 'Activation patching: the selection is the corrupted text; per layer, component and head, the share of the clean logit difference restored',
    execute: async args => {
      toClickedCell(args);
      const target = patchTarget();
      if (!target) {
        model.setStatus({ kind: 'error', message: 'No text to patch into.', hint: 'Click into a file or a notebook cell with some text first.' });
        return;
      }
      views.openPatching();
      showPanel();
      await views.patching.run(target);
    }
  });
  commands.addCommand(CommandIDs.openComparison, {
    label: 'lenscope: Open a comparison',
    execute: args => void views.openComparison(str(args, 'job'))
  });
  commands.addCommand(CommandIDs.openStored, {
    label: 'lenscope: Open stored text',
    execute: args => {
      const stored: StoredArgs = { index: str(args, 'index'), path: str(args, 'path'), start: int(args, 'start'), end: int(args, 'end') };
      if (typeof args.context_start === 'number' && typeof args.context_end === 'number') {
        stored.context_start = args.context_start;
        stored.context_end = args.context_end;
      }
      views.openStored(stored);
    }
  });
  commands.addCommand(CommandIDs.openAt, {
    label: 'lenscope: Open at',
    execute: async args => {
      const view = await openEditor(app, str(args, 'path'), cellOf(args));
      if (view) {
        const doc = view.state.doc.toString();
        reveal(view, utf16Offset(doc, int(args, 'start')), utf16Offset(doc, int(args, 'end')));
      }
    }
  });
  commands.addCommand(CommandIDs.openRow, {
    label: 'lenscope: Open a comparison row',
    execute: async args => {
      const view = await openEditor(app, str(args, 'path'), cellOf(args));
      if (!view) {
        return;
      }
      if (args.compare && args.compare !== model.compareModel) {
        model.compareModel = str(args, 'compare'); // so the lines open compared, as in the table
      }
      const [first, last] = linesAround(int(args, 'line'), view.state.doc.lines);
      selectLines(view, first, last);
      await analyze();
      if (typeof args.start === 'number') {
        // the caret on the row's token (`start`: code points in the file or cell), not after the lines
        reveal(view, utf16Offset(view.state.doc.toString(), args.start));
      }
    }
  });
  commands.addCommand(CommandIDs.revealToken, {
    label: 'lenscope: Go to a token of the analysis',
    execute: args => {
      const run = model.run;
      const t = run?.analysis.tokens[int(args, 'index')];
      if (run && t && run.target.view.dom.isConnected) {
        reveal(run.target.view, run.target.from + t.from);
      }
    }
  });

  for (const command of [CommandIDs.analyze, CommandIDs.clear, CommandIDs.chooseModel, CommandIDs.showPanel, CommandIDs.buildIndex, CommandIDs.compareCorpus, CommandIDs.copyAnalysis, CommandIDs.copyCard, CommandIDs.openHead, CommandIDs.nextToken, CommandIDs.previousToken, CommandIDs.toggleTooltip, CommandIDs.toggleAttentionMode, CommandIDs.patchSetClean, CommandIDs.patchRun]) {
    palette?.addItem({ command, category: 'lenscope' });
  }
  for (const selector of ['.jp-FileEditor', '.jp-Notebook .jp-Cell']) {
    // args.contextMenu: act on the cell right-clicked (toClickedCell)
    app.contextMenu.addItem({ command: CommandIDs.analyze, selector, rank: 0, args: { contextMenu: true } });
    app.contextMenu.addItem({ command: CommandIDs.clear, selector, rank: 0 });
    app.contextMenu.addItem({ command: CommandIDs.copyAnalysis, selector, rank: 0 });
    app.contextMenu.addItem({ command: CommandIDs.patchSetClean, selector, rank: 0, args: { contextMenu: true } });
    app.contextMenu.addItem({ command: CommandIDs.patchRun, selector, rank: 0, args: { contextMenu: true } });
  }
  // Alt+Shift+→ / ← / K are in the editor's keymap (editor/annotations.ts): CodeMirror sees
  // keys before JupyterLab does and binds Alt+Shift+arrows itself
  commands.addKeyBinding({ command: CommandIDs.analyze, keys: ['Alt Shift L'], selector: '.jp-CodeMirrorEditor' });
  commands.addKeyBinding({ command: CommandIDs.toggleAttentionMode, keys: ['Alt Shift A'], selector: '.jp-CodeMirrorEditor' });
}
