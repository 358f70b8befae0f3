/**
 * A head's card, a main-area tab: the head read from its weights (`GET heads/{model}/{layer}/{head}`):
 * its copying score and positive share, each explained in a line, and its token pairs: OV
 * (a source token attended to -> the output token it raises, or lowers, most) and QK (the
 * query / key pairs with the highest attention score), over the 1,000 most frequent tokens of the
 * model's index corpus or (the toggle) the whole vocabulary; the two per-token questions (a source
 * token's OV row, a query token's QK row); and the positional QK heatmap (query position x key
 * position through W_pos: a previous-token head is the diagonal just below the main one).
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { HeadCard, HeadCardQuestions } from '../api/client';
import { decodeArray } from '../api/ndarray';
import { describe } from '../errors';
import { el, fmt, visible } from '../format';
import { COPYING_NOTE, HeadArgs, headLabel, pairRows, POSITIVE_NOTE } from '../heads';
import type { LenscopeModel } from '../model';
import { CommandIDs } from '../tokens';
import { FULL_K, renderPattern } from './attentionview';
import { copyCodeButton } from './copycode';
import { describeTarget } from '../target';

export class HeadCardView extends Widget {
  card: HeadCard | null = null;
  /** what the card is asked: the tokens it reads over, a source and a query token */
  ask: HeadCardQuestions = { vocab: 'frequent' };

  constructor(
    readonly args: HeadArgs,
    private readonly model: LenscopeModel,
    private readonly commands?: CommandRegistry
  ) {
    super();
    this.addClass('ls-card-view');
    this.addClass('ls-head-view');
    this.node.tabIndex = -1;
    this.node.dataset.layer = String(args.layer);
    this.node.dataset.head = String(args.head);
    this.node.dataset.model = args.model;
    this.node.append(el('p', 'ls-spinner', `Loading the card of ${headLabel(args)}…`));
    void this.load();
  }

  /** "Ablate in the current analysis": zero this head at every position of the analyzed text. */
  private ablateBar(): HTMLElement {
    const { model, layer, head } = this.args;
    const bar = el('div', 'ls-ablate-bar');
    if (!this.commands) {
      bar.append(copyCodeButton('this head\'s copying score, positive share and OV / QK pairs', () => ({ kind: 'headCardSnippet', request: { model, layer, head } }), 'ls-action ls-copy-code'));
      return bar;
    }
    const commands = this.commands;
    const button = el('button', 'ls-action ls-ablate-card', 'Ablate in the current analysis');
    button.title = `Zero L${layer}.H${head} at every position of the analyzed text and re-run it: the text is coloured by the change in log-prob (the panel's Interventions list can change the op)`;
    button.addEventListener('click', () => void commands.execute(CommandIDs.ablate, { model, component: 'head', layer, index: head }));
    bar.append(button, copyCodeButton('this head\'s copying score, positive share and OV / QK pairs', () => ({ kind: 'headCardSnippet', request: { model, layer, head } }), 'ls-action ls-copy-code'));
    return bar;
  }

  private async onText(): Promise<void> {
    const section = await patternOnText(this.model, this.args);
    if (section) {
      (this.node.querySelector('.ls-head-card') ?? this.node).append(section);
    }
  }

  private async load(): Promise<void> {
    const { model, layer, head } = this.args;
    this.node.dataset.state = 'loading';
    try {
      this.card = await this.model.headCard(model, layer, head, this.ask);
      this.node.replaceChildren(renderHeadCard(this.card, { ask: this.ask, reask: ask => this.reask(ask) }));
      this.node.querySelector('h2')?.after(this.ablateBar());
      this.node.dataset.state = 'ready';
      void this.onText();
    } catch (err) {
      this.node.dataset.state = 'error';
      this.node.replaceChildren(el('h2', '', `Head L${layer}.H${head} of ${model}`), el('p', 'ls-error', describe(err)));
    }
  }

  /** Ask again (the vocabulary toggle, a source or query token); a bad token is shown under the inputs. */
  private async reask(ask: HeadCardQuestions): Promise<void> {
    const { model, layer, head } = this.args;
    const status = this.node.querySelector<HTMLElement>('.ls-head-ask-status');
    if (status) {
      status.textContent = 'Reading the weights…';
      status.className = 'ls-head-ask-status ls-muted';
    }
    try {
      const card = await this.model.headCard(model, layer, head, ask);
      this.ask = ask;
      this.card = card;
      const onText = this.node.querySelector('.ls-head-on-text');
      this.node.replaceChildren(renderHeadCard(card, { ask, reask: next => this.reask(next) }));
      this.node.querySelector('h2')?.after(this.ablateBar());
      if (onText) {
        (this.node.querySelector('.ls-head-card') ?? this.node).append(onText);
      }
    } catch (err) {
      if (status) {
        status.textContent = describe(err);
        status.className = 'ls-head-ask-status ls-error';
      }
    }
  }
}

/** The head card's "on the current text" section: this head's pattern over the analyzed text, labelled. */
export async function patternOnText(model: LenscopeModel, args: HeadArgs): Promise<HTMLElement | null> {
  const run = model.run;
  if (!run || run.analysis.model !== args.model) {
    return null;
  }
  const box = el('div', 'ls-effect ls-head-on-text');
  box.dataset.layer = String(args.layer);
  box.dataset.head = String(args.head);
  box.append(el('h4', '', `On the current text: ${describeTarget(run.target)}`), el('div', 'ls-muted ls-head-note', 'where it attends from each token (rows) to each token before it (columns), weights 0 to 1; hover a cell for its weight'));
  try {
    const att = await model.client.attention({ model: args.model, text: run.target.text, context: run.target.context, k: FULL_K, layers: [args.layer] });
    box.append(renderPattern(att, args.layer, args.head, run.analysis.tokens.map(t => t.text)));
    box.dataset.state = 'ready';
  } catch (err) {
    box.append(el('p', 'ls-error', describe(err)));
    box.dataset.state = 'error';
  }
  return box;
}

function score(name: string, value: number, note: string, key: string): HTMLElement {
  const row = el('div', 'ls-head-score');
  row.dataset.score = key;
  row.dataset.value = String(value);
  row.append(el('span', 'ls-head-score-name', `${name} `), el('span', 'ls-num', fmt(value, 3)), el('span', 'ls-muted', ` · ${note}`));
  return row;
}

function pairTable(title: string, note: string, kind: string, headers: [string, string], rows: ReturnType<typeof pairRows>): HTMLElement {
  const box = el('div', 'ls-effect ls-head-pairs');
  box.dataset.kind = kind;
  box.append(el('h4', '', title), el('div', 'ls-muted ls-head-note', note));
  const table = el('table', 'ls-pairs');
  const header = el('tr');
  for (const h of [headers[0], '', headers[1], 'value']) {
    header.append(el('th', '', h));
  }
  table.append(header);
  for (const r of rows) {
    const tr = el('tr', 'ls-pair');
    tr.dataset.source = String(r.sourceId);
    tr.dataset.target = String(r.targetId);
    tr.dataset.value = String(r.value);
    const a = el('td');
    a.append(el('code', 'ls-tooltip-token', visible(r.source)));
    const b = el('td');
    b.append(el('code', 'ls-tooltip-token', visible(r.target)));
    tr.append(a, el('td', 'ls-muted', '→'), b, el('td', 'ls-num', fmt(r.value)));
    table.append(tr);
  }
  box.append(table);
  return box;
}

/** What a rendered card can ask again: the toggle and the two token questions. */
export interface HeadCardAsk {
  ask: HeadCardQuestions;
  reask: (ask: HeadCardQuestions) => void | Promise<void>;
}

function vocabToggle(card: HeadCard, actions?: HeadCardAsk): HTMLElement {
  const box = el('div', 'ls-head-vocab');
  box.setAttribute('role', 'group');
  box.setAttribute('aria-label', 'Tokens the pairs are read over');
  box.dataset.vocab = card.vocab;
  box.append(el('span', 'ls-muted', 'Read over: '));
  const options: ['frequent' | 'all', string, string][] = [
    ['frequent', `${card.frequent_tokens.toLocaleString()} most frequent tokens`, 'the most frequent tokens of the model\'s index corpus (rare tokens give noise pairs)'],
    ['all', 'whole vocabulary', 'every token of the vocabulary']
  ];
  for (const [vocab, label, title] of options) {
    const b = el('button', 'ls-action ls-head-vocab-option', label);
    b.dataset.vocab = vocab;
    b.title = title;
    b.setAttribute('aria-pressed', String(card.vocab === vocab));
    b.disabled = !actions;
    b.addEventListener('click', () => {
      if (actions && card.vocab !== vocab) {
        void actions.reask({ ...actions.ask, vocab });
      }
    });
    box.append(b);
  }
  return box;
}

function tokenValueTable(kind: string, header: string, rows: { id: number; value: number }[], str: (id: number) => string): HTMLElement {
  const table = el('table', 'ls-pairs ls-head-row');
  table.dataset.kind = kind;
  const h = el('tr');
  h.append(el('th', '', header), el('th', '', 'value'));
  table.append(h);
  for (const r of rows) {
    const tr = el('tr', 'ls-pair');
    tr.dataset.target = String(r.id);
    tr.dataset.value = String(r.value);
    const a = el('td');
    a.append(el('code', 'ls-tooltip-token', visible(str(r.id))));
    tr.append(a, el('td', 'ls-num', fmt(r.value)));
    table.append(tr);
  }
  return table;
}

/** The two per-token questions: a source token's OV row, a query token's QK row. */
function questions(card: HeadCard, actions?: HeadCardAsk): HTMLElement {
  const box = el('div', 'ls-effect ls-head-questions');
  box.append(el('h4', '', 'Ask about one token'));
  const names = new Map<number, string>();
  card.strings.ids.forEach((id, i) => names.set(id, card.strings.values[i]));
  const str = (id: number): string => names.get(id) ?? `#${id}`;
  const form = el('form', 'ls-head-ask');
  const input = (key: 'source' | 'query', label: string, placeholder: string): HTMLInputElement => {
    const wrap = el('label', 'ls-head-ask-field');
    const field = el('input', `ls-head-ask-${key}`);
    field.type = 'text';
    field.placeholder = placeholder;
    const asked = actions?.ask[key] ?? '';
    field.value = asked.trim() !== asked ? `"${asked}"` : asked; // a leading space stays visible
    field.setAttribute('aria-label', label);
    wrap.append(el('span', 'ls-muted', label), field);
    form.append(wrap);
    return field;
  };
  const source = input('source', 'What does it write when it attends to', 'a token, e.g. [ or an id');
  const query = input('query', 'Which keys does a query look for', 'a token, e.g. " for"');
  const go = el('button', 'ls-action ls-head-ask-go', 'Ask');
  go.type = 'submit';
  go.disabled = !actions;
  form.append(go);
  // a leading space is part of a token (" for"): quotes around the text keep it visible
  const unquote = (v: string): string => (v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v);
  form.addEventListener('submit', e => {
    e.preventDefault();
    if (actions) {
      void actions.reask({ ...actions.ask, source: unquote(source.value) || undefined, query: unquote(query.value) || undefined });
    }
  });
  box.append(form, el('div', 'ls-head-ask-status ls-muted', 'A token by its text (exactly one token; put it in quotes to keep a leading space) or its id.'));
  const over = card.vocab === 'frequent' ? 'among the frequent tokens' : 'over the whole vocabulary';
  const answers = el('div', 'ls-effects');
  if (card.source_row) {
    const a = el('div', 'ls-head-answer');
    a.dataset.kind = 'source';
    a.dataset.token = String(card.source_row.token);
    const t = el('div', 'ls-head-note');
    t.append('Attending to ', el('code', 'ls-tooltip-token', visible(str(card.source_row.token))), ` it raises (${over}):`);
    a.append(t, tokenValueTable('boosted', 'output', card.source_row.boosted, str));
    a.append(el('div', 'ls-head-note', '… and lowers:'), tokenValueTable('suppressed', 'output', card.source_row.suppressed, str));
    answers.append(a);
  }
  if (card.query_row) {
    const a = el('div', 'ls-head-answer');
    a.dataset.kind = 'query';
    a.dataset.token = String(card.query_row.token);
    const t = el('div', 'ls-head-note');
    t.append('A query ', el('code', 'ls-tooltip-token', visible(str(card.query_row.token))), ` looks for the keys (${over}):`);
    a.append(t, tokenValueTable('keys', 'key', card.query_row.keys, str));
    answers.append(a);
  }
  box.append(answers);
  return box;
}

/** Blue (negative) through the background to red (positive), `t` in [-1, 1]. */
function diverging(t: number): [number, number, number] {
  const x = Math.max(-1, Math.min(1, t));
  return x >= 0 ? [255, Math.round(255 * (1 - x)), Math.round(255 * (1 - x))] : [Math.round(255 * (1 + x)), Math.round(255 * (1 + x)), 255];
}

/** The positional QK heatmap: a canvas (one pixel per cell, scaled up), hover for a cell's score. */
function positionalHeatmap(card: HeadCard): HTMLElement {
  const box = el('div', 'ls-effect ls-head-positional');
  const pos = card.positional;
  box.append(el('h4', '', 'Positional QK: query position × key position'));
  if (!pos) {
    box.append(el('p', 'ls-muted', 'This model has no learned positional embedding (W_pos).'));
    return box;
  }
  const { data } = decodeArray(pos.scores);
  const p = pos.positions;
  box.dataset.positions = String(p);
  const note = `score(i, j) = (p_i W_Q + b_Q) · (p_j W_K + b_K) / √d_head, p_i = W_pos[i] alone through LN1; keys j ≤ i. A previous-token head is the diagonal j = i − 1.` +
    (pos.capped ? ` The first ${p} of ${pos.n_ctx} positions.` : '');
  box.append(el('div', 'ls-muted ls-head-note', note));
  let lim = 0;
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i])) {
      lim = Math.max(lim, Math.abs(data[i]));
    }
  }
  const canvas = el('canvas', 'ls-head-heatmap');
  canvas.width = p;
  canvas.height = p;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `positional QK scores, ${p} by ${p} positions`);
  const ctx = canvas.getContext('2d');
  if (ctx) {
    const img = ctx.createImageData(p, p);
    for (let i = 0; i < p * p; i++) {
      const v = data[i];
      if (Number.isFinite(v)) {
        const [r, g, b] = diverging(lim > 0 ? v / lim : 0);
        img.data.set([r, g, b, 255], 4 * i);
      }
    }
    ctx.putImageData(img, 0, 0);
  }
  const readout = el('div', 'ls-head-heatmap-readout ls-muted', `Hover a cell for its score (colour: −${fmt(lim)} blue to +${fmt(lim)} red).`);
  readout.setAttribute('aria-live', 'polite');
  canvas.addEventListener('mousemove', e => {
    // offsetX/Y: from the canvas' padding edge, inside its border
    const j = Math.min(p - 1, Math.max(0, Math.floor((e.offsetX / canvas.clientWidth) * p)));
    const i = Math.min(p - 1, Math.max(0, Math.floor((e.offsetY / canvas.clientHeight) * p)));
    const v = data[i * p + j];
    readout.dataset.query = String(i);
    readout.dataset.key = String(j);
    readout.textContent = Number.isFinite(v) ? `query position ${i}, key position ${j}${j === i - 1 ? ' (previous)' : ''}: ${fmt(v, 3)}` : `query position ${i}, key position ${j}: a future key (masked)`;
  });
  const s = pos.summary;
  const f = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : fmt(x, 3));
  const summary = el('div', 'ls-head-positional-summary ls-head-note');
  summary.dataset.previous = String(s.previous ?? '');
  summary.dataset.other = String(s.other ?? '');
  summary.textContent = `mean score on key i − 1: ${f(s.previous)} · on key i: ${f(s.diagonal)} · on keys before: ${f(s.other)}; with position alone, the weight on i − 1 is ${f(s.previous_weight)} and i − 1 scores highest for ${f(s.previous_argmax_share)} of queries`;
  const axes = el('div', 'ls-head-heatmap-axes ls-muted', 'rows: query position (0 at the top) · columns: key position (0 at the left)');
  box.append(canvas, axes, readout, summary);
  return box;
}

export function renderHeadCard(card: HeadCard, actions?: HeadCardAsk): HTMLElement {
  const root = el('div', 'ls-card ls-head-card');
  root.dataset.layer = String(card.layer);
  root.dataset.head = String(card.head);
  root.append(
    el('h2', '', `Head L${card.layer}.H${card.head} of ${card.model}`),
    el('p', 'ls-muted', 'Read from the weights: each token alone through the LayerNorms (ignores position and the rest of the context).'),
    vocabToggle(card, actions)
  );
  root.dataset.vocab = card.vocab;
  const scores = el('div', 'ls-head-scores');
  scores.append(
    score(`copying score on the ${card.frequent_tokens.toLocaleString()} frequent tokens`, card.copying_score_frequent, COPYING_NOTE, 'copying_frequent'),
    score('copying score on the whole vocabulary', card.copying_score, 'the same over every token (rare tokens included)', 'copying'),
    score('positive share on the frequent tokens', card.positive_share_frequent, POSITIVE_NOTE, 'positive_frequent'),
    score('positive share on the whole vocabulary', card.positive_share, 'the same over every token', 'positive')
  );
  root.append(scores);
  const tables = el('div', 'ls-effects');
  tables.append(
    pairTable('OV: raises most', 'a source token attended to → the output token it raises most', 'ov_top', ['source', 'output'], pairRows(card.ov_top, card)),
    pairTable('OV: lowers most', '… and the one it lowers most', 'ov_bottom', ['source', 'output'], pairRows(card.ov_bottom, card)),
    pairTable('QK: attends most', 'a query token → the key token it attends to most', 'qk_top', ['query', 'key'], pairRows(card.qk_top, card))
  );
  root.append(tables, questions(card, actions), positionalHeatmap(card));
  return root;
}
