/**
 * The lenscope side panel: model picker with load state, the selection's tokens as a compact
 * coloured view, the strongest neurons of the selection, and a neuron section with one
 * neuron's activations on the text. Plain DOM in a Lumino widget; every string is set as text.
 */
import { Widget } from '@lumino/widgets';

import type { Activations, Analysis } from './api/analysis';
import type { ModelEntry } from './api/client';
import { activationColor, colorFor, diffColor, legend, ScaleName, surprise } from './colors';
import { el, fmt, visible } from './format';

export interface PanelCallbacks {
  onModelChange(model: string): void;
  onNeuronClick(layer: number, index: number): void;
  onTokenClick(index: number): void;
  onRefreshModels(): void;
  onColourByLogprob(): void;
  onBuildIndex(): void;
  onCancelJob(): void;
  onOpenExample(file: string, charStart: number): void;
  onSearch(token: string): void;
  onCompareChange(model: string): void;
  onCompareCorpus(): void;
  onOpenRow(path: string, line: number): void;
  onOpenFile(path: string): void;
}

export interface CompareRowView {
  path: string;
  line: number;
  token: string;
  previous: string;
  before: string;
  after: string;
  lp_a: number;
  lp_b: number;
  diff: number;
}

export interface CompareGroupView {
  key: string;
  count: number;
  mean_diff: number;
}

export type PanelState =
  | { kind: 'empty' }
  | { kind: 'loading'; message: string }
  | { kind: 'error'; message: string; hint: string }
  | { kind: 'ready' };

export class LenscopePanel extends Widget {
  private readonly modelSelect = el('select', 'ls-model-select');
  private readonly modelState = el('span', 'ls-model-state');
  private readonly compareSelect = el('select', 'ls-compare-select');
  private readonly status = el('div', 'ls-status');
  private readonly legendBox = el('div', 'ls-legend');
  private readonly tokensBox = el('div', 'ls-tokens');
  private readonly neuronsBox = el('div', 'ls-neurons');
  private readonly neuronBox = el('div', 'ls-neuron');
  private readonly timingsBox = el('div', 'ls-timings ls-muted');
  private readonly cardBox = el('div', 'ls-card-box');
  private readonly indexBox = el('div', 'ls-index');
  private readonly indexProgress = el('progress', 'ls-progress');
  private readonly indexStatus = el('span', 'ls-index-status ls-muted');
  private readonly indexCancel = el('button', 'ls-button ls-cancel', 'cancel');
  private readonly searchResults = el('div', 'ls-search-results');
  private readonly compareBox = el('div', 'ls-compare-corpus');
  private readonly compareProgress = el('progress', 'ls-progress');
  private readonly compareStatus = el('span', 'ls-muted');
  private readonly compareResults = el('div', 'ls-compare-results');
  private analysis: Analysis | null = null;
  private models: ModelEntry[] = [];

  constructor(private readonly callbacks: PanelCallbacks) {
    super();
    this.id = 'lenscope-panel';
    this.addClass('ls-panel');
    this.title.caption = 'lenscope';
    const header = el('div', 'ls-header');
    header.append(el('h2', 'ls-title', 'lenscope'));
    const picker = el('label', 'ls-model-picker');
    picker.append(el('span', '', 'Model '), this.modelSelect, this.modelState);
    this.modelSelect.addEventListener('change', () => this.callbacks.onModelChange(this.modelSelect.value));
    const refresh = el('button', 'ls-button ls-refresh', '↻');
    refresh.title = 'Refresh the model list';
    refresh.addEventListener('click', () => this.callbacks.onRefreshModels());
    picker.append(refresh);
    header.append(picker);
    const compare = el('label', 'ls-model-picker');
    compare.append(el('span', '', 'Compare with '), this.compareSelect);
    this.compareSelect.title = 'Model B: colour tokens by lp(A) - max(lp(B), clamp), tooltips side by side';
    this.compareSelect.addEventListener('change', () => this.callbacks.onCompareChange(this.compareSelect.value));
    header.append(compare);
    const build = el('button', 'ls-neuron-chip ls-build-index', 'Index the workspace');
    build.title = 'Build a neuron index over the files of this workspace (Neuroscope over your own text)';
    build.addEventListener('click', () => this.callbacks.onBuildIndex());
    this.indexCancel.addEventListener('click', () => this.callbacks.onCancelJob());
    this.indexCancel.hidden = true;
    this.indexProgress.hidden = true;
    const search = el('input', 'ls-search');
    search.placeholder = 'neurons that peak on a token, e.g. self';
    search.addEventListener('keydown', event => {
      if (event.key === 'Enter' && search.value) {
        this.callbacks.onSearch(search.value);
      }
    });
    this.indexBox.append(el('h3', '', 'Neuron index'), build, this.indexProgress, this.indexCancel, this.indexStatus, search, this.searchResults);
    const runCompare = el('button', 'ls-neuron-chip ls-compare-run', 'Compare over the workspace');
    runCompare.title = 'Both models over every file of the workspace: tokens ranked by lp(A) - max(lp(B), clamp)';
    runCompare.addEventListener('click', () => this.callbacks.onCompareCorpus());
    this.compareProgress.hidden = true;
    this.compareBox.append(el('h3', '', 'Model comparison over files'), runCompare, this.compareProgress, this.compareStatus, this.compareResults);
    this.node.append(
      header,
      this.status,
      this.legendBox,
      this.tokensBox,
      this.neuronBox,
      this.cardBox,
      this.neuronsBox,
      this.compareBox,
      this.indexBox,
      this.timingsBox
    );
    this.setState({ kind: 'empty' });
  }

  get selectedModel(): string {
    return this.modelSelect.value;
  }

  setModels(models: ModelEntry[], selected: string): void {
    this.models = models;
    this.modelSelect.replaceChildren();
    for (const m of models) {
      const option = el('option', '', `${m.name}${m.loadable ? '' : ' (unavailable)'}`);
      option.value = m.name;
      option.disabled = !m.loadable;
      this.modelSelect.append(option);
    }
    this.modelSelect.value = selected;
    const current = this.compareSelect.value;
    this.compareSelect.replaceChildren(el('option', '', '(no comparison)'));
    (this.compareSelect.firstChild as HTMLOptionElement).value = '';
    for (const m of models.filter(m => m.loadable)) {
      const option = el('option', '', m.name);
      option.value = m.name;
      this.compareSelect.append(option);
    }
    this.compareSelect.value = current;
    this.showModelState();
  }

  showModelState(state?: string): void {
    const entry = this.models.find(m => m.name === this.modelSelect.value);
    const s = state ?? entry?.state ?? 'unknown';
    this.modelState.textContent = ` ${s}`;
    this.modelState.className = `ls-model-state ls-state-${s}`;
    this.modelSelect.title = entry?.shape
      ? `${entry.shape.n_layers} layers · d_model ${entry.shape.d_model} · ${entry.shape.d_mlp ?? 'no'} MLP neurons · vocab ${entry.shape.d_vocab} · context ${entry.shape.n_ctx}`
      : entry?.reason ?? '';
  }

  setState(state: PanelState): void {
    this.node.dataset.state = state.kind;
    this.status.replaceChildren();
    this.status.className = `ls-status ls-status-${state.kind}`;
    if (state.kind === 'empty') {
      this.status.append(
        el('p', '', 'Select text in a file or notebook cell and run “lenscope: Analyze selection”'),
        el('p', 'ls-muted', '(command palette, right-click menu, or Alt+Shift+L). With nothing selected, the cell or file is analyzed.')
      );
    } else if (state.kind === 'loading') {
      this.status.append(el('p', 'ls-spinner', state.message));
    } else if (state.kind === 'error') {
      this.status.append(el('p', 'ls-error', state.message), el('p', 'ls-muted', state.hint));
    }
  }

  showAnalysis(analysis: Analysis, scale: ScaleName, floor: number, clientMs: number, compare?: { model: string; clamp: number }): void {
    this.analysis = analysis;
    this.setState({ kind: 'ready' });
    if (compare) {
      this.legendBox.replaceChildren(el('span', 'ls-muted', `lp(${analysis.model}) - max(lp(${compare.model}), ${compare.clamp}): `));
      for (const d of [-4, -2, 0, 2, 4]) {
        const swatch = el('span', 'ls-swatch', `${d > 0 ? '+' : ''}${d}`);
        swatch.style.backgroundColor = diffColor(d);
        this.legendBox.append(swatch);
      }
    } else {
      this.legendBox.replaceChildren(el('span', 'ls-muted', 'log-prob of each token: '));
      for (const [label, color] of legend(scale, floor)) {
        const swatch = el('span', 'ls-swatch', label);
        swatch.style.backgroundColor = color;
        this.legendBox.append(swatch);
      }
    }
    this.tokensBox.replaceChildren(el('h3', '', `Tokens (${analysis.length}${analysis.windowed ? ', windowed' : ''})`));
    const flow = el('div', 'ls-token-flow');
    analysis.tokens.forEach((t, i) => {
      const span = el('span', 'ls-flow-token', visible(t.text));
      span.dataset.lsToken = String(i);
      span.style.backgroundColor = colorFor(surprise(analysis.logprobOf(i), floor), scale);
      const actual = analysis.prediction(i).actual;
      span.title = actual ? `log-prob ${fmt(actual.logprob)} · rank ${actual.rank}` : '';
      span.addEventListener('click', () => this.callbacks.onTokenClick(i));
      flow.append(span);
    });
    this.tokensBox.append(flow);
    this.showNeurons(analysis);
    this.neuronBox.replaceChildren();
    const t = analysis.timings;
    const server = t.server_total ?? t.forward;
    this.timingsBox.textContent = `server ${fmt(server, 1)} ms (forward ${fmt(t.forward, 1)}) · in the browser ${fmt(clientMs, 1)} ms · ${analysis.servedFrom ?? ''}`;
    this.node.dataset.serverMs = String(server);
    this.node.dataset.clientMs = String(clientMs);
  }

  private showNeurons(analysis: Analysis): void {
    this.neuronsBox.replaceChildren();
    if (!analysis.neuronsPerToken) {
      this.neuronsBox.append(el('p', 'ls-muted', 'This model has no MLP neurons (attention-only).'));
      return;
    }
    this.neuronsBox.append(el('h3', '', 'Strongest neurons in the selection'));
    const list = el('ol', 'ls-neuron-list');
    for (const n of analysis.strongestNeurons(20)) {
      const item = el('li');
      const button = el('button', 'ls-neuron-chip', `L${n.layer}.N${n.index}`);
      button.dataset.layer = String(n.layer);
      button.dataset.index = String(n.index);
      button.addEventListener('click', () => this.callbacks.onNeuronClick(n.layer, n.index));
      item.append(
        button,
        el('span', '', ` max ${fmt(n.max)} at `),
        el('code', '', visible(analysis.tokens[n.at].text)),
        el('span', 'ls-muted', ` · top-${analysis.neuronsPerToken} at ${n.count} token${n.count === 1 ? '' : 's'}`)
      );
      list.append(item);
    }
    this.neuronsBox.append(list);
  }

  showNeuronLoading(layer: number, index: number): void {
    this.neuronBox.replaceChildren(el('h3', '', `Neuron L${layer}.N${index}`), el('p', 'ls-spinner', 'computing activations…'));
  }

  showNeuron(activations: Activations, analysis: Analysis): void {
    const { layer, index } = activations.neurons[0];
    const back = el('button', 'ls-button ls-back', 'colour by log-prob again');
    back.addEventListener('click', () => {
      this.neuronBox.replaceChildren();
      this.callbacks.onColourByLogprob();
    });
    this.neuronBox.replaceChildren(el('h3', '', `Neuron L${layer}.N${index}`), back);
    this.neuronBox.dataset.layer = String(layer);
    this.neuronBox.dataset.index = String(index);
    const n = analysis.length;
    let max = 0;
    let at = 0;
    for (let i = 0; i < n; i++) {
      if (activations.at(i) > max) {
        max = activations.at(i);
        at = i;
      }
    }
    this.neuronBox.append(
      el('p', 'ls-muted', `Activation on this text (text coloured inline too): max ${fmt(max)} at “${visible(analysis.tokens[at]?.text ?? '')}”. Its card, with its top corpus examples, follows.`)
    );
    const flow = el('div', 'ls-token-flow');
    for (let i = 0; i < n; i++) {
      const span = el('span', 'ls-flow-token', visible(analysis.tokens[i].text));
      span.style.backgroundColor = activationColor(activations.at(i), max);
      span.title = `activation ${fmt(activations.at(i), 3)}`;
      span.dataset.activation = String(activations.at(i));
      flow.append(span);
    }
    this.neuronBox.append(flow);
  }

  showIndexes(indexes: { name: string; model: string; tokens: number; shipped: boolean }[]): void {
    this.indexStatus.textContent = indexes.length
      ? indexes.map(i => `${i.name} (${i.model}, ${i.tokens.toLocaleString()} tokens${i.shipped ? ', shipped' : ''})`).join(' · ')
      : 'none yet';
  }

  showJob(job: { state: string; progress?: { tokens_done: number; tokens_total: number; rate: number; eta_s?: number | null } | null; error?: { message: string } | null }): void {
    const running = job.state === 'queued' || job.state === 'running';
    this.indexProgress.hidden = false;
    this.indexCancel.hidden = !running;
    this.indexBox.dataset.jobState = job.state;
    const p = job.progress;
    if (p) {
      this.indexProgress.max = p.tokens_total;
      this.indexProgress.value = p.tokens_done;
    }
    if (running) {
      this.indexStatus.textContent = p
        ? `${p.tokens_done.toLocaleString()} / ${p.tokens_total.toLocaleString()} tokens · ${Math.round(p.rate).toLocaleString()} tok/s${p.eta_s ? ` · ${Math.ceil(p.eta_s)} s left` : ''}`
        : 'starting…';
    } else if (job.state === 'done') {
      this.indexStatus.textContent = 'done: neuron cards now come from this index';
    } else {
      this.indexStatus.textContent = `${job.state}: ${job.error?.message ?? ''}`;
    }
  }

  showSearch(token: string, hits: { layer: number; index: number; hits: number; score: number }[]): void {
    this.searchResults.replaceChildren();
    if (!hits.length) {
      this.searchResults.append(el('p', 'ls-muted', `No neuron's top examples peak on “${visible(token)}”.`));
      return;
    }
    for (const h of hits) {
      const chip = el('button', 'ls-neuron-chip', `L${h.layer}.N${h.index} ×${h.hits}`);
      chip.dataset.layer = String(h.layer);
      chip.dataset.index = String(h.index);
      chip.title = `${h.hits} of its top examples peak on this token (activation sum ${fmt(h.score)})`;
      chip.addEventListener('click', () => this.callbacks.onNeuronClick(h.layer, h.index));
      this.searchResults.append(chip);
    }
  }

  showSearchError(message: string): void {
    this.searchResults.replaceChildren(el('p', 'ls-error', message));
  }

  showCompareJob(job: { state: string; progress?: { tokens_done: number; tokens_total: number } | null; error?: { message: string } | null }): void {
    this.compareBox.dataset.jobState = job.state;
    this.compareProgress.hidden = false;
    if (job.progress) {
      this.compareProgress.max = job.progress.tokens_total;
      this.compareProgress.value = job.progress.tokens_done;
    }
    this.compareStatus.textContent = job.state === 'failed' || job.state === 'cancelled' ? ` ${job.state}: ${job.error?.message ?? ''}` : ` ${job.state}`;
  }

  showCompareResult(
    models: [string, string],
    result: { tokens: number; files: number; rows: CompareRowView[]; groups_token: CompareGroupView[]; groups_previous: CompareGroupView[]; csv: string; jsonl: string }
  ): void {
    const box = this.compareResults;
    box.replaceChildren(el('p', 'ls-muted', `${result.tokens.toLocaleString()} tokens in ${result.files} files: where ${models[0]} beats ${models[1]} most.`));
    const filter = el('input', 'ls-search ls-compare-filter');
    filter.placeholder = 'filter by token or file';
    box.append(filter);
    const table = el('table', 'ls-topk ls-compare-table');
    const head = el('tr');
    for (const h of ['diff', 'in context', 'where']) {
      head.append(el('th', '', h));
    }
    table.append(head);
    for (const r of result.rows.slice(0, 100)) {
      const row = el('tr', 'ls-compare-row');
      row.dataset.path = r.path;
      row.dataset.line = String(r.line);
      row.title = `lp(A) ${fmt(r.lp_a)} · lp(B) ${fmt(r.lp_b)} — click to open with the comparison inline`;
      row.append(el('td', 'ls-num', fmt(r.diff)));
      const ctx = el('td', 'ls-compare-context');
      ctx.append(
        el('span', 'ls-muted', visible(r.before.slice(-24))),
        el('mark', 'ls-compare-token', visible(r.token)),
        el('span', 'ls-muted', visible(r.after.slice(0, 12)))
      );
      row.append(ctx, el('td', 'ls-muted', `${r.path}:${r.line}`));
      row.addEventListener('click', () => this.callbacks.onOpenRow(r.path, r.line));
      table.append(row);
    }
    box.append(table);
    filter.addEventListener('input', () => {
      const q = filter.value.toLowerCase();
      table.querySelectorAll<HTMLElement>('.ls-compare-row').forEach(tr => {
        tr.hidden = !!q && !(tr.textContent ?? '').toLowerCase().includes(q);
      });
    });
    for (const [title, groups] of [
      ['by token', result.groups_token],
      ['by preceding token', result.groups_previous]
    ] as const) {
      box.append(el('h4', '', `Groups ${title}`));
      const list = el('ol', 'ls-neuron-list');
      for (const g of groups.slice(0, 10)) {
        const item = el('li');
        item.append(el('code', 'ls-tooltip-token', visible(g.key)), el('span', 'ls-muted', ` ${fmt(g.mean_diff)} on average over ${g.count}`));
        list.append(item);
      }
      box.append(list);
    }
    const exports = el('p', 'ls-muted', 'Export: ');
    for (const path of [result.csv, result.jsonl]) {
      const link = el('a', 'ls-example-file', path.split('.').pop() ?? path);
      link.href = '#';
      link.addEventListener('click', event => {
        event.preventDefault();
        this.callbacks.onOpenFile(path);
      });
      exports.append(link, document.createTextNode(' '));
    }
    box.append(exports);
  }

  showCard(card: HTMLElement): void {
    this.cardBox.replaceChildren(card);
  }

  showCardMessage(message: string, isError: boolean): void {
    this.cardBox.replaceChildren(el('p', isError ? 'ls-error' : 'ls-muted', message));
  }

  showNeuronError(message: string): void {
    this.neuronBox.replaceChildren(el('p', 'ls-error', message));
  }

  clear(): void {
    this.analysis = null;
    for (const box of [this.legendBox, this.tokensBox, this.neuronsBox, this.neuronBox]) {
      box.replaceChildren();
    }
    this.timingsBox.textContent = '';
    this.setState({ kind: 'empty' });
  }

  get current(): Analysis | null {
    return this.analysis;
  }
}
