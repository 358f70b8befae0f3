/**
 * A head's card, a main-area tab: the head read from its weights (`GET heads/{model}/{layer}/{head}`):
 * its copying score and positive share, each explained in a line, and its token pairs: OV
 * (a source token attended to -> the output token it raises, or lowers, most) and QK (the
 * query / key pairs with the highest attention score).
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { HeadCard } from '../api/client';
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
    try {
      this.card = await this.model.headCard(model, layer, head);
      this.node.replaceChildren(renderHeadCard(this.card));
      this.node.querySelector('h2')?.after(this.ablateBar());
      void this.onText();
    } catch (err) {
      this.node.replaceChildren(el('h2', '', `Head L${layer}.H${head} of ${model}`), el('p', 'ls-error', describe(err)));
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

export function renderHeadCard(card: HeadCard): HTMLElement {
  const root = el('div', 'ls-card ls-head-card');
  root.dataset.layer = String(card.layer);
  root.dataset.head = String(card.head);
  root.append(
    el('h2', '', `Head L${card.layer}.H${card.head} of ${card.model}`),
    el('p', 'ls-muted', 'Read from the weights: each token alone through the LayerNorms (ignores position and the rest of the context).')
  );
  const scores = el('div', 'ls-head-scores');
  scores.append(score('copying score', card.copying_score, COPYING_NOTE, 'copying'), score('positive share', card.positive_share, POSITIVE_NOTE, 'positive'));
  root.append(scores);
  const tables = el('div', 'ls-effects');
  tables.append(
    pairTable('OV: raises most', 'a source token attended to → the output token it raises most', 'ov_top', ['source', 'output'], pairRows(card.ov_top, card)),
    pairTable('OV: lowers most', '… and the one it lowers most', 'ov_bottom', ['source', 'output'], pairRows(card.ov_bottom, card)),
    pairTable('QK: attends most', 'a query token → the key token it attends to most', 'qk_top', ['query', 'key'], pairRows(card.qk_top, card))
  );
  root.append(tables);
  return root;
}
