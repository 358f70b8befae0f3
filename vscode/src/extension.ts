/**
 * lenscope for VS Code: analyze the selection with a model served by a Jupyter server with
 * lenscope; colour tokens, hover for the top-10, open neuron cards and compare two models in
 * the side panel. The HTTP client and wire types are the JupyterLab extension's (./shared).
 */
import * as vscode from 'vscode';

import { authFetch, pickServer, ServerInfo } from './discovery';
import { activationBucketColor, BUCKETS, diffBucketColor, mapRange, surpriseColor, tokenAt, tokenRanges } from './decorate';
import { hoverMarkdown, OPEN_NEURON } from './hover';
import { Action, explain, NoServerError } from './messages';
import { LenscopePanel } from './panel';
import { listServers, startServer, Started } from './server';
import { Analysis, LenscopeClient, UnitActivations } from './shared';
import { COLOUR_BY_UNIT, maxActivation, parseUnit, saeChoices, unitInputProblem, unitRanges, unitStatus } from './units';

interface DocAnalysis {
  /** where the analyzed text starts and ends in the document (UTF-16 offsets) */
  base: number;
  end: number;
  /** the text before `base` sent as context */
  context: string;
  analysis: Analysis;
  compare: { analysis: Analysis; clamp: number } | null;
  floor: number;
}

/** The text coloured by one unit instead of by log-prob (until "Colour by log-prob again"). */
interface UnitColouring {
  base: number;
  end: number;
  unit: string;
  sae: string | null;
  acts: UnitActivations;
  max: number;
}

interface UnitArg {
  unit?: string;
  model?: string;
  sae?: string;
}

function config() {
  const c = vscode.workspace.getConfiguration('lenscope');
  return {
    serverUrl: c.get<string>('serverUrl', ''),
    token: c.get<string>('token', ''),
    jupyter: c.get<string>('jupyterCommand', 'jupyter') || 'jupyter',
    model: c.get<string>('model', ''),
    compareModel: c.get<string>('compareModel', ''),
    topK: c.get<number>('topK', 10),
    contextChars: c.get<number>('contextChars', 2000),
    floor: c.get<number>('floor', -10),
    clamp: c.get<number>('compareClamp', -6),
    timeout: c.get<number>('requestTimeoutSeconds', 60)
  };
}

export class Lenscope implements vscode.Disposable {
  private readonly analyses = new Map<string, DocAnalysis>();
  private readonly surpriseTypes: vscode.TextEditorDecorationType[] = [];
  private readonly diffTypes = new Map<number, vscode.TextEditorDecorationType>();
  private readonly unitTypes: vscode.TextEditorDecorationType[] = [];
  private readonly units = new Map<string, UnitColouring>();
  private readonly unitStatus = vscode.window.createStatusBarItem('lenscope.unit', vscode.StatusBarAlignment.Left, 100);
  private readonly disposables: vscode.Disposable[] = [];
  private started: Started | null = null;
  /** the model picked in the panel (else the setting, else the server's default) */
  model: string | null = null;
  compareModel: string | null = null;
  lastServer: ServerInfo | null = null;
  readonly output = vscode.window.createOutputChannel('lenscope');
  readonly panel: LenscopePanel;

  constructor(context: vscode.ExtensionContext) {
    for (let b = 0; b < BUCKETS; b++) {
      this.surpriseTypes.push(vscode.window.createTextEditorDecorationType({ backgroundColor: surpriseColor(b), borderRadius: '2px' }));
    }
    for (let b = 0; b < BUCKETS; b++) {
      this.unitTypes.push(vscode.window.createTextEditorDecorationType({ backgroundColor: activationBucketColor(b), borderRadius: '2px' }));
    }
    this.unitStatus.name = 'lenscope: unit colouring';
    this.unitStatus.command = 'lenscope.colourByLogprob';
    this.unitStatus.tooltip = 'The text is coloured by this unit’s activation (0..max). Click: colour by log-prob again.';
    for (let b = -BUCKETS; b <= BUCKETS; b++) {
      if (b !== 0) {
        this.diffTypes.set(b, vscode.window.createTextEditorDecorationType({ backgroundColor: diffBucketColor(b), borderRadius: '2px' }));
      }
    }
    this.panel = new LenscopePanel(context.extensionUri, this);
    this.disposables.push(
      this.output,
      this.unitStatus,
      vscode.window.onDidChangeActiveTextEditor(() => this.showUnitStatus()),
      vscode.window.registerWebviewViewProvider(LenscopePanel.viewId, this.panel, { webviewOptions: { retainContextWhenHidden: true } }),
      vscode.languages.registerHoverProvider([{ pattern: '**' }, { scheme: 'untitled' }, { scheme: 'vscode-notebook-cell' }], { provideHover: (doc, pos) => this.hover(doc, pos) }),
      vscode.workspace.onDidChangeTextDocument(e => this.onEdit(e)),
      vscode.window.onDidChangeVisibleTextEditors(editors => editors.forEach(ed => this.paint(ed))),
      vscode.workspace.onDidCloseTextDocument(doc => {
        this.analyses.delete(doc.uri.toString());
        this.units.delete(doc.uri.toString());
      }),
      vscode.commands.registerCommand('lenscope.analyzeSelection', () => this.analyzeSelection(false)),
      vscode.commands.registerCommand('lenscope.compareSelection', () => this.analyzeSelection(true)),
      vscode.commands.registerCommand('lenscope.clear', () => this.clear()),
      vscode.commands.registerCommand(COLOUR_BY_UNIT, (arg?: UnitArg) => this.colourByUnit(arg)),
      vscode.commands.registerCommand('lenscope.colourByLogprob', () => this.colourByLogprob()),
      vscode.commands.registerCommand('lenscope.chooseModel', () => this.chooseModel()),
      vscode.commands.registerCommand('lenscope.showPanel', () => this.panel.reveal()),
      vscode.commands.registerCommand('lenscope.startServer', () => this.startServer()),
      vscode.commands.registerCommand(OPEN_NEURON, (arg?: { model?: string; layer: number; index: number }) => this.openNeuron(arg))
    );
  }

  dispose(): void {
    this.surpriseTypes.forEach(t => t.dispose());
    this.diffTypes.forEach(t => t.dispose());
    this.unitTypes.forEach(t => t.dispose());
    this.disposables.forEach(d => d.dispose());
    this.started?.process.kill();
  }

  // ---- the server ------------------------------------------------------------------------

  /** The server to use now: one this extension started, else the settings, else `jupyter server list`. */
  async server(): Promise<ServerInfo> {
    const cfg = config();
    if (this.started && this.started.process.exitCode === null && !cfg.serverUrl) {
      return this.started.info;
    }
    let listed: ServerInfo[] = [];
    let detail = '';
    if (!cfg.serverUrl || !cfg.token) {
      const r = await listServers(cfg.jupyter);
      listed = r.servers;
      detail = r.detail;
    }
    const workspace = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? null;
    const s = pickServer({ serverUrl: cfg.serverUrl, token: cfg.token }, listed, workspace);
    if (!s) {
      if (this.started && this.started.process.exitCode === null) {
        return this.started.info;
      }
      throw new NoServerError(detail || 'none configured');
    }
    return s;
  }

  async client(): Promise<LenscopeClient> {
    const s = await this.server();
    this.lastServer = s;
    return new LenscopeClient(s.url, authFetch(s.token, config().timeout * 1000));
  }

  /** Show what went wrong and what to do, with buttons that do it. */
  async reportError(err: unknown, retry?: () => unknown): Promise<void> {
    const e = explain(err, err instanceof NoServerError ? null : this.lastServer?.url ?? (config().serverUrl || null), config().timeout);
    this.output.appendLine(`[error] ${e.message}${err instanceof Error && err.stack ? `\n${err.stack}` : ''}`);
    this.panel.showError(e.message);
    const actions = e.actions.filter(a => a !== 'Retry' || retry);
    const picked = (await vscode.window.showErrorMessage(e.message, ...actions)) as Action | undefined;
    if (picked === 'Start Jupyter server') {
      await this.startServer();
    } else if (picked === 'Open settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'lenscope.');
    } else if (picked === 'Retry' && retry) {
      await retry();
    }
  }

  async startServer(): Promise<void> {
    const cfg = config();
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!root) {
      void vscode.window.showErrorMessage('lenscope: open a folder first: the Jupyter server is started in the workspace folder.');
      return;
    }
    this.started?.process.kill();
    this.started = null;
    this.output.show(true);
    try {
      this.started = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'lenscope: starting a Jupyter server…' },
        () => startServer(cfg.jupyter, root, line => this.output.appendLine(line))
      );
      const note = cfg.serverUrl ? ' (lenscope.serverUrl is set and wins: clear it to use this one)' : '';
      void vscode.window.showInformationMessage(`lenscope: Jupyter server started at ${this.started.info.url}${note}`);
      await this.panel.refresh();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const hint = /ENOENT/.test(msg)
        ? `\`${cfg.jupyter}\` was not found: install JupyterLab and lenscope (\`pip install lenscope\`) or set lenscope.jupyterCommand to the jupyter of that environment.`
        : msg;
      this.output.appendLine(`[error] ${msg}`);
      void vscode.window.showErrorMessage(`lenscope: could not start a Jupyter server: ${hint}`, 'Open settings').then(p => {
        if (p) {
          void vscode.commands.executeCommand('workbench.action.openSettings', 'lenscope.jupyterCommand');
        }
      });
    }
  }

  // ---- analysis --------------------------------------------------------------------------

  currentModel(): string | null {
    return this.model || config().model || null;
  }

  async analyzeSelection(compare: boolean): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showWarningMessage('lenscope: open a file and select some text to analyze.');
      return;
    }
    const cfg = config();
    const doc = editor.document;
    const picked = selected(editor, cfg.contextChars);
    if (!picked) {
      return;
    }
    const { start, end, text, context } = picked;
    const run = async (): Promise<void> => {
      try {
        const client = await this.client();
        let modelB: string | null = null;
        if (compare) {
          modelB = this.compareModel || cfg.compareModel || (await this.pickCompareModel(client));
          if (!modelB) {
            return;
          }
        }
        const model = this.currentModel();
        const request = { model, text, context, top_k: cfg.topK, top_neurons: 10 };
        const [analysis, other] = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Window, title: `lenscope: analyzing ${text.length} characters` },
          () => Promise.all([client.analyze(request), modelB ? client.analyze({ ...request, model: modelB, top_neurons: 0 }) : Promise.resolve(null)])
        );
        const entry: DocAnalysis = {
          base: start,
          end,
          context,
          analysis,
          compare: other ? { analysis: other, clamp: cfg.clamp } : null,
          floor: cfg.floor
        };
        if (other && other.length !== analysis.length) {
          entry.compare = null;
          void vscode.window.showWarningMessage(`lenscope: ${analysis.model} and ${other.model} tokenize the text differently; showing ${analysis.model} only.`);
        }
        this.analyses.set(doc.uri.toString(), entry);
        this.units.delete(doc.uri.toString());
        this.showUnitStatus();
        vscode.window.visibleTextEditors.filter(e => e.document === doc).forEach(e => this.paint(e));
        this.panel.showAnalysis(entry.analysis, entry.compare);
        this.output.appendLine(`analyzed ${analysis.length} tokens of ${doc.uri.fsPath} with ${analysis.model}${other ? ` and ${other.model}` : ''} (${JSON.stringify(analysis.timings)})`);
      } catch (err) {
        await this.reportError(err, run);
      }
    };
    await run();
  }

  private async pickCompareModel(client: LenscopeClient): Promise<string | null> {
    const models = await client.models();
    const a = this.currentModel() || models.default;
    const items = models.models.filter(m => m.name !== a && m.loadable).map(m => ({ label: m.name, description: m.source }));
    const picked = await vscode.window.showQuickPick(items, { title: `lenscope: compare ${a} with…` });
    if (picked) {
      this.compareModel = picked.label;
    }
    return picked?.label ?? null;
  }

  async chooseModel(): Promise<void> {
    try {
      const models = await (await this.client()).models();
      const current = this.currentModel() || models.default;
      const picked = await vscode.window.showQuickPick(
        models.models.map(m => ({ label: m.name, description: `${m.source}${m.name === current ? ' · current' : ''}${m.loadable ? '' : ` · ${m.reason}`}` })),
        { title: 'lenscope: model' }
      );
      if (picked) {
        this.model = picked.label;
        await this.panel.refresh();
      }
    } catch (err) {
      await this.reportError(err);
    }
  }

  clear(editor = vscode.window.activeTextEditor): void {
    if (!editor) {
      return;
    }
    this.analyses.delete(editor.document.uri.toString());
    this.units.delete(editor.document.uri.toString());
    this.showUnitStatus();
    vscode.window.visibleTextEditors.filter(e => e.document === editor.document).forEach(e => this.paint(e));
    this.panel.showAnalysis(null, null);
  }

  private paint(editor: vscode.TextEditor): void {
    const a = this.analyses.get(editor.document.uri.toString());
    const doc = editor.document;
    const bySurprise: vscode.Range[][] = this.surpriseTypes.map(() => []);
    const byDiff = new Map<number, vscode.Range[]>();
    const byUnit: vscode.Range[][] = this.unitTypes.map(() => []);
    const u = this.units.get(editor.document.uri.toString());
    if (u) {
      for (const r of unitRanges(u.acts, u.base, u.max)) {
        byUnit[r.bucket].push(new vscode.Range(doc.positionAt(r.start), doc.positionAt(r.end)));
      }
    } else if (a) {
      for (const r of tokenRanges(a.analysis, a.base, a.floor, a.compare)) {
        const range = new vscode.Range(doc.positionAt(r.start), doc.positionAt(r.end));
        if (a.compare) {
          byDiff.set(r.bucket, [...(byDiff.get(r.bucket) ?? []), range]);
        } else {
          bySurprise[r.bucket].push(range);
        }
      }
    }
    this.surpriseTypes.forEach((t, b) => editor.setDecorations(t, bySurprise[b]));
    this.diffTypes.forEach((t, b) => editor.setDecorations(t, byDiff.get(b) ?? []));
    this.unitTypes.forEach((t, b) => editor.setDecorations(t, byUnit[b]));
  }

  private onEdit(e: vscode.TextDocumentChangeEvent): void {
    const key = e.document.uri.toString();
    if (e.contentChanges.length === 0 || !(this.analyses.has(key) || this.units.has(key))) {
      return;
    }
    for (const map of [this.analyses, this.units] as Map<string, { base: number; end: number }>[]) {
      const a = map.get(key);
      if (!a) {
        continue;
      }
      let range: { start: number; end: number } | null = { start: a.base, end: a.end };
      // VS Code lists a multi-cursor edit's changes from the end of the document backwards
      for (const c of e.contentChanges) {
        range = range && mapRange(range.start, range.end, { rangeOffset: c.rangeOffset, rangeLength: c.rangeLength, textLength: c.text.length });
      }
      if (range) {
        a.base = range.start;
        a.end = range.end;
      } else {
        map.delete(key);
      }
    }
    this.showUnitStatus();
    vscode.window.visibleTextEditors.filter(ed => ed.document === e.document).forEach(ed => this.paint(ed));
  }

  private hover(doc: vscode.TextDocument, pos: vscode.Position): vscode.Hover | null {
    const a = this.analyses.get(doc.uri.toString());
    if (!a) {
      return null;
    }
    const i = tokenAt(a.analysis, a.base, doc.offsetAt(pos));
    if (i < 0) {
      return null;
    }
    const md = new vscode.MarkdownString(hoverMarkdown(a.analysis, i, { compare: a.compare }));
    md.isTrusted = { enabledCommands: [OPEN_NEURON, COLOUR_BY_UNIT] };
    const t = a.analysis.tokens[i];
    return new vscode.Hover(md, new vscode.Range(doc.positionAt(a.base + t.from), doc.positionAt(a.base + t.to)));
  }

  // ---- colouring by a unit ----------------------------------------------------------------

  /**
   * Colour the analyzed range (else the selection, else the file) by one neuron's or feature's
   * activation, asked for when not given; a feature's SAE is the only one the server lists for
   * the model, or picked.
   */
  async colourByUnit(arg: UnitArg = {}): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showWarningMessage('lenscope: open a file to colour by a unit.');
      return;
    }
    const input =
      arg.unit ??
      (await vscode.window.showInputBox({
        title: 'lenscope: colour by a unit',
        prompt: 'a neuron (L0.N224) or an SAE feature (F1741)',
        placeHolder: 'L0.N224',
        validateInput: unitInputProblem
      }));
    if (!input) {
      return;
    }
    const unit = parseUnit(input);
    if (!unit) {
      void vscode.window.showErrorMessage(`lenscope: “${input}” is not a unit: write ${unitInputProblem(input)}.`);
      return;
    }
    const doc = editor.document;
    const key = doc.uri.toString();
    const a = this.analyses.get(key);
    let range: { start: number; end: number; text: string; context: string } | null;
    if (a) {
      range = { start: a.base, end: a.end, text: doc.getText(new vscode.Range(doc.positionAt(a.base), doc.positionAt(a.end))), context: a.context };
    } else {
      range = selected(editor, config().contextChars);
    }
    if (!range) {
      return;
    }
    const { start, end, text, context } = range;
    const run = async (): Promise<void> => {
      try {
        const client = await this.client();
        let model = arg.model || a?.analysis.model || this.currentModel();
        let sae: string | null = null;
        if (unit.kind === 'feature') {
          sae = arg.sae ?? null;
          if (!sae) {
            const listing = await client.models();
            model = model || listing.default;
            const choices = saeChoices(model, listing.saes ?? []);
            if (choices.length === 0) {
              void vscode.window.showErrorMessage(`lenscope: the server lists no SAE for ${model}, so ${unit.name} has no feature to read. Colour by a neuron (L0.N224) instead.`);
              return;
            }
            sae =
              choices.length === 1
                ? choices[0].name
                : ((await vscode.window.showQuickPick(
                    choices.map(s => ({ label: s.name, description: `${s.hook_point ?? ''} · ${s.d_sae ?? '?'} features${s.shipped ? ' · shipped' : ''}` })),
                    { title: `lenscope: the SAE whose feature ${unit.index} colours the text` }
                  ))?.label ?? null);
            if (!sae) {
              return;
            }
          }
        }
        const acts = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `lenscope: ${unit.name} on ${text.length} characters` }, () =>
          client.unitActivations({ model, text, context, units: [unit.name], sae })
        );
        const max = maxActivation(acts);
        this.units.set(key, { base: start, end, unit: unit.name, sae: acts.sae, acts, max });
        vscode.window.visibleTextEditors.filter(e => e.document === doc).forEach(e => this.paint(e));
        this.showUnitStatus();
        this.output.appendLine(`coloured ${acts.length} tokens of ${doc.uri.fsPath} by ${unit.name}${acts.sae ? ` of ${acts.sae}` : ''} (${acts.model}): max ${max}`);
        if (!(max > 0)) {
          void vscode.window.showInformationMessage(`${unitStatus(unit.name, acts.sae, max)}: nothing to colour on this text.`);
        }
      } catch (err) {
        await this.reportError(err, run);
      }
    };
    await run();
  }

  /** Back to the log-prob colouring of the analysis (if any). */
  colourByLogprob(editor = vscode.window.activeTextEditor): void {
    if (!editor) {
      return;
    }
    this.units.delete(editor.document.uri.toString());
    vscode.window.visibleTextEditors.filter(e => e.document === editor.document).forEach(e => this.paint(e));
    this.showUnitStatus();
  }

  /** The status bar says which unit colours the active editor's text, and its max. */
  private showUnitStatus(): void {
    const doc = vscode.window.activeTextEditor?.document;
    const u = doc && this.units.get(doc.uri.toString());
    if (u) {
      this.unitStatus.text = `$(symbol-color) ${unitStatus(u.unit, u.sae, u.max)}`;
      this.unitStatus.show();
    } else {
      this.unitStatus.hide();
    }
  }

  async openNeuron(arg?: { model?: string; layer: number; index: number }): Promise<void> {
    if (!arg) {
      const input = await vscode.window.showInputBox({ prompt: 'lenscope: neuron as layer.index (e.g. 0.123)', validateInput: v => (/^\d+\.\d+$/.test(v.trim()) ? null : 'layer.index') });
      if (!input) {
        return;
      }
      const [layer, index] = input.trim().split('.').map(Number);
      arg = { layer, index };
    }
    const model = arg.model || this.currentModel();
    await this.panel.reveal();
    try {
      const client = await this.client();
      const name = model || (await client.models()).default;
      this.panel.showCard(await client.neuronCard(name, arg.layer, arg.index));
    } catch (err) {
      await this.reportError(err);
    }
  }
}

/** The selection (the whole file when nothing is selected), its offsets and `contextChars` before it; null (after a warning) when it is blank. */
function selected(editor: vscode.TextEditor, contextChars: number): { start: number; end: number; text: string; context: string } | null {
  const doc = editor.document;
  let start = doc.offsetAt(editor.selection.start);
  let end = doc.offsetAt(editor.selection.end);
  if (start === end) {
    start = 0;
    end = doc.getText().length;
  }
  const text = doc.getText(new vscode.Range(doc.positionAt(start), doc.positionAt(end)));
  if (!text.trim()) {
    void vscode.window.showWarningMessage('lenscope: the selection is empty; select some text.');
    return null;
  }
  const context = doc.getText(new vscode.Range(doc.positionAt(Math.max(0, start - contextChars)), doc.positionAt(start)));
  return { start, end, text, context };
}

let instance: Lenscope | null = null;

export function activate(context: vscode.ExtensionContext): Lenscope {
  instance = new Lenscope(context);
  context.subscriptions.push(instance);
  return instance;
}

export function deactivate(): void {
  instance = null;
}
