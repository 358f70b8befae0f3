/**
 * The panel's webview: model picker, the analysis (tokens coloured by log-prob, strongest
 * neurons as chips), neuron cards, the comparison. Token text only ever goes in as textContent.
 */
import type { AnalysisView, CompareView, FromWebview, ToWebview } from '../protocol';
import type { ModelsResponse, NeuronCard } from '../shared';
import { activationColor, colorFor, diffColor, fmt, surprise, visible } from '../shared';

declare function acquireVsCodeApi(): { postMessage(msg: FromWebview): void };
const vscode = acquireVsCodeApi();

interface State {
  url: string | null;
  models: ModelsResponse | null;
  model: string | null;
  compareModel: string | null;
  serverError: string | null;
  analysis: AnalysisView | null;
  compare: CompareView | null;
  card: NeuronCard | null;
  error: string | null;
}

const state: State = { url: null, models: null, model: null, compareModel: null, serverError: null, analysis: null, compare: null, card: null, error: null };

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const n = document.createElement(tag);
  if (cls) {
    n.className = cls;
  }
  if (text !== undefined) {
    n.textContent = text;
  }
  return n;
}

function chip(layer: number, index: number, label: string, model?: string): HTMLElement {
  const b = el('button', 'chip', label);
  b.dataset.neuron = `${layer}.${index}`;
  b.title = `open the card of neuron ${layer}.${index}`;
  b.addEventListener('click', () => vscode.postMessage({ type: 'openNeuron', layer, index, model }));
  return b;
}

function renderServer(root: HTMLElement): void {
  root.append(el('h3', '', 'Server'));
  root.append(el('div', 'muted', state.url ? state.url : 'no server yet'));
  if (state.serverError) {
    root.append(el('div', 'error', state.serverError));
  }
  const row = el('div', 'row');
  const pick = el('select');
  pick.id = 'lenscope-model';
  const pickB = el('select');
  pickB.id = 'lenscope-compare-model';
  pickB.append(new Option('(model B)', ''));
  for (const m of state.models?.models ?? []) {
    const label = `${m.name}${m.loadable ? '' : ' (unavailable)'}`;
    const o = new Option(label, m.name, false, m.name === state.model);
    o.disabled = !m.loadable;
    pick.append(o);
    const ob = new Option(label, m.name, false, m.name === state.compareModel);
    ob.disabled = !m.loadable;
    pickB.append(ob);
  }
  pick.addEventListener('change', () => {
    state.model = pick.value;
    vscode.postMessage({ type: 'pickModel', model: pick.value });
  });
  pickB.addEventListener('change', () => {
    state.compareModel = pickB.value || null;
    vscode.postMessage({ type: 'pickCompare', model: pickB.value });
  });
  row.append(el('span', '', 'model'), pick);
  root.append(row);
  const row2 = el('div', 'row');
  const analyze = el('button', '', 'Analyze selection');
  analyze.addEventListener('click', () => vscode.postMessage({ type: 'analyze' }));
  const refresh = el('button', '', 'Reconnect');
  refresh.addEventListener('click', () => vscode.postMessage({ type: 'refresh' }));
  row2.append(analyze, refresh);
  root.append(row2);
  const row3 = el('div', 'row');
  const compare = el('button', '', 'Compare on selection');
  compare.id = 'lenscope-compare';
  compare.addEventListener('click', () => vscode.postMessage({ type: 'compare' }));
  row3.append(el('span', '', 'vs'), pickB, compare);
  root.append(row3);
}

function renderAnalysis(root: HTMLElement, a: AnalysisView): void {
  root.append(el('h3', '', `Selection · ${a.model} · ${a.tokens.length} tokens`));
  const toks = el('div', 'tokens');
  toks.id = 'lenscope-tokens';
  a.tokens.forEach((t, i) => {
    const s = el('span', 'tok', visible(t.text));
    s.style.backgroundColor = colorFor(surprise(t.logprob));
    s.title = `token ${i}: log-prob ${fmt(t.logprob)}${t.rank > 0 ? ` · rank ${t.rank}` : ''}`;
    toks.append(s);
  });
  root.append(toks);
  root.append(el('h3', '', 'Strongest neurons'));
  const chips = el('div', '');
  chips.id = 'lenscope-neurons';
  for (const n of a.neurons) {
    chips.append(chip(n.layer, n.index, `L${n.layer}.N${n.index} ${fmt(n.max)} @${visible(n.token)}`, a.model));
  }
  if (a.neurons.length === 0) {
    chips.append(el('span', 'muted', 'none (an attention-only model has no MLP neurons)'));
  }
  root.append(chips);
}

function renderCompare(root: HTMLElement, c: CompareView): void {
  root.append(el('h3', '', `Comparison · ${c.modelA} vs ${c.modelB}`));
  root.append(el('div', 'muted', `diff = log-prob A − max(log-prob B, ${c.clamp}); green: A better, purple: B better`));
  const table = el('table');
  table.id = 'lenscope-compare-table';
  const head = el('tr');
  for (const [h, cls] of [['token', ''], [c.modelA, 'num'], [c.modelB, 'num'], ['diff', 'num']]) {
    head.append(el('th', cls, h));
  }
  table.append(head);
  const shown = c.rows.length > 24 ? [...c.rows.slice(0, 12), ...c.rows.slice(-12)] : c.rows;
  for (const r of shown) {
    const tr = el('tr');
    const code = el('code', '', visible(r.text));
    code.style.backgroundColor = diffColor(r.diff);
    const td = el('td');
    td.append(code);
    tr.append(td, el('td', 'num', fmt(r.a)), el('td', 'num', fmt(r.b)), el('td', 'num', fmt(r.diff)));
    table.append(tr);
  }
  root.append(table);
}

function renderCard(root: HTMLElement, card: NeuronCard): void {
  root.append(el('h3', '', 'Neuron card'));
  const box = el('div', 'card');
  box.id = 'lenscope-card';
  box.dataset.neuron = `${card.layer}.${card.index}`;
  box.append(el('div', '', `${card.model} · layer ${card.layer} · neuron ${card.index}`));
  if (card.description) {
    box.append(el('div', 'muted', card.description.text));
  }
  box.append(el('div', 'muted', `max ${fmt(card.stats.max ?? NaN)} · mean ${fmt(card.stats.mean, 3)} · ${card.stats.count} tokens · index ${card.index_path}`));
  const counts = card.histogram.counts;
  if (counts.length > 0) {
    const peak = Math.max(...counts.map(c => Math.log1p(c)));
    const hist = el('div', 'hist');
    hist.title = 'activation histogram (log counts)';
    for (const c of counts) {
      const bar = el('div');
      bar.style.height = `${peak > 0 ? (100 * Math.log1p(c)) / peak : 0}%`;
      hist.append(bar);
    }
    box.append(hist);
  }
  box.append(el('h3', '', `Top examples (${card.examples.length})`));
  const maxAct = Math.max(0, ...card.examples.map(e => e.value));
  for (const ex of card.examples.slice(0, 12)) {
    const div = el('div', 'example');
    div.title = `${ex.file}${ex.cell !== null ? ` cell ${ex.cell}` : ''} · max ${fmt(ex.value)}`;
    ex.tokens.forEach((t, j) => {
      const s = el('span', 'tok', visible(t));
      s.style.backgroundColor = activationColor(ex.activations[j], maxAct);
      if (j === ex.max_token) {
        s.style.outline = '1px solid var(--vscode-focusBorder)';
      }
      div.append(s);
    });
    box.append(div);
  }
  const effects = el('table');
  const head = el('tr');
  head.append(el('th', '', 'boosts'), el('th', 'num', ''), el('th', '', 'suppresses'), el('th', 'num', ''));
  effects.append(head);
  for (let j = 0; j < Math.max(card.logit_boosted.length, card.logit_suppressed.length) && j < 10; j++) {
    const tr = el('tr');
    const up = card.logit_boosted[j];
    const down = card.logit_suppressed[j];
    const cell = (t?: { token: string }) => {
      const td = el('td');
      if (t) {
        td.append(el('code', '', visible(t.token)));
      }
      return td;
    };
    tr.append(cell(up), el('td', 'num', up ? fmt(up.value) : ''), cell(down), el('td', 'num', down ? fmt(down.value) : ''));
    effects.append(tr);
  }
  box.append(el('h3', '', 'Direct logit effect'), effects);
  root.append(box);
}

/** Render, then bring the part that just changed into view. */
function render(focus?: string): void {
  const app = document.getElementById('app')!;
  app.replaceChildren();
  renderServer(app);
  if (state.error) {
    const e = el('div', 'error', state.error);
    e.id = 'lenscope-error';
    app.append(e);
  }
  if (state.card) {
    renderCard(app, state.card);
  }
  if (state.compare) {
    renderCompare(app, state.compare);
  }
  if (state.analysis) {
    renderAnalysis(app, state.analysis);
  } else {
    app.append(el('p', 'muted', 'Select text in an editor and run "lenscope: Analyze selection" (Ctrl+Alt+L).'));
  }
  if (focus) {
    document.getElementById(focus)?.scrollIntoView({ block: 'start' });
  }
}

window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  const m = event.data;
  let focus: string | undefined;
  switch (m.type) {
    case 'server':
      Object.assign(state, { url: m.url, models: m.models, model: m.model, compareModel: m.compareModel, serverError: m.error });
      break;
    case 'analysis':
      state.analysis = m.analysis;
      state.compare = m.compare;
      state.error = null;
      focus = m.compare ? 'lenscope-compare-table' : undefined;
      break;
    case 'card':
      state.card = m.card;
      state.error = null;
      focus = 'lenscope-card';
      break;
    case 'error':
      state.error = m.message;
      focus = 'lenscope-error';
      break;
  }
  render(focus);
});

render();
vscode.postMessage({ type: 'ready' });
