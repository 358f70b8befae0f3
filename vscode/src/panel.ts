/** The side panel: a webview view with the model picker, the analysis, neuron cards and the comparison. */
import * as vscode from 'vscode';

import type { Lenscope } from './extension';
import { explain } from './messages';
import { analysisView, compareView, FromWebview, ToWebview } from './protocol';
import type { Analysis, NeuronCard } from './shared';

export class LenscopePanel implements vscode.WebviewViewProvider {
  static readonly viewId = 'lenscope.panel';
  private view: vscode.WebviewView | null = null;
  private ready = false;
  /** the latest of each kind, replayed when the webview (re)loads */
  private readonly latest = new Map<ToWebview['type'], ToWebview>();

  constructor(private readonly extensionUri: vscode.Uri, private readonly app: Lenscope) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    view.webview.options = { enableScripts: true, localResourceRoots: [dist] };
    view.webview.html = this.html(view.webview, dist);
    view.webview.onDidReceiveMessage((m: FromWebview) => this.onMessage(m));
    view.onDidDispose(() => {
      this.view = null;
      this.ready = false;
    });
  }

  async reveal(): Promise<void> {
    if (!this.view) {
      await vscode.commands.executeCommand(`${LenscopePanel.viewId}.focus`);
    } else {
      this.view.show(true);
    }
  }

  private post(msg: ToWebview): void {
    this.latest.set(msg.type, msg);
    if (this.view && this.ready) {
      void this.view.webview.postMessage(msg);
    }
  }

  showAnalysis(analysis: Analysis | null, compare: { analysis: Analysis; clamp: number } | null): void {
    this.post({
      type: 'analysis',
      analysis: analysis ? analysisView(analysis) : null,
      compare: analysis && compare ? compareView(analysis, compare.analysis, compare.clamp) : null
    });
  }

  showCard(card: NeuronCard): void {
    this.post({ type: 'card', card });
  }

  showError(message: string): void {
    this.post({ type: 'error', message });
  }

  /** Ask the server for its models again and tell the webview. */
  async refresh(): Promise<void> {
    try {
      const client = await this.app.client();
      const models = await client.models();
      this.post({ type: 'server', url: this.app.lastServer?.url ?? null, models, model: this.app.currentModel() ?? models.default, compareModel: this.app.compareModel, error: null });
    } catch (err) {
      this.post({ type: 'server', url: this.app.lastServer?.url ?? null, models: null, model: this.app.currentModel(), compareModel: this.app.compareModel, error: explain(err, this.app.lastServer?.url ?? null).message });
    }
  }

  private async onMessage(m: FromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        for (const msg of this.latest.values()) {
          void this.view?.webview.postMessage(msg);
        }
        await this.refresh();
        break;
      case 'refresh':
        await this.refresh();
        break;
      case 'pickModel':
        this.app.model = m.model;
        await this.refresh();
        break;
      case 'pickCompare':
        this.app.compareModel = m.model || null;
        break;
      case 'openNeuron':
        await this.app.openNeuron({ model: m.model, layer: m.layer, index: m.index });
        break;
      case 'analyze':
        await vscode.commands.executeCommand('lenscope.analyzeSelection');
        break;
      case 'compare':
        await vscode.commands.executeCommand('lenscope.compareSelection');
        break;
    }
  }

  private html(webview: vscode.Webview, dist: vscode.Uri): string {
    const nonce = Array.from({ length: 32 }, () => Math.floor(Math.random() * 36).toString(36)).join('');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js'));
    const csp = `default-src 'none'; style-src ${webview.cspSource} 'unsafe-inline'; script-src 'nonce-${nonce}';`;
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style>
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 8px 12px; }
  h3 { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; margin: 14px 0 6px; opacity: .8; }
  select, button { font: inherit; color: var(--vscode-dropdown-foreground); background: var(--vscode-dropdown-background); border: 1px solid var(--vscode-dropdown-border, transparent); padding: 2px 4px; }
  button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 3px 8px; cursor: pointer; margin: 2px 4px 2px 0; }
  button:hover { background: var(--vscode-button-hoverBackground); }
  .row { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; margin: 4px 0; }
  .muted { opacity: .7; }
  .error { color: var(--vscode-errorForeground); white-space: pre-wrap; margin: 6px 0; }
  .tokens { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); line-height: 1.7; white-space: pre-wrap; word-break: break-all; }
  .tok { border-radius: 2px; }
  .chip { display: inline-block; font-family: var(--vscode-editor-font-family); font-size: 11px; padding: 1px 6px; margin: 2px 3px 2px 0; border-radius: 9px; background: var(--vscode-badge-background); color: var(--vscode-badge-foreground); cursor: pointer; border: none; }
  .chip:hover { outline: 1px solid var(--vscode-focusBorder); }
  .card { border: 1px solid var(--vscode-panel-border, rgba(128,128,128,.35)); border-radius: 4px; padding: 6px 8px; margin-top: 6px; }
  .example { font-family: var(--vscode-editor-font-family); font-size: 12px; white-space: pre-wrap; word-break: break-all; margin: 4px 0; padding: 3px 0; border-bottom: 1px dotted rgba(128,128,128,.3); }
  table { border-collapse: collapse; width: 100%; font-size: 12px; }
  td, th { padding: 1px 4px; text-align: left; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  code { font-family: var(--vscode-editor-font-family); }
  .hist { display: flex; align-items: flex-end; height: 40px; gap: 1px; margin: 4px 0; }
  .hist div { flex: 1; background: rgba(40, 120, 230, .6); min-height: 1px; }
</style></head>
<body>
  <div id="app"><p class="muted">lenscope: connecting…</p></div>
  <script nonce="${nonce}" src="${script}"></script>
</body></html>`;
  }
}
