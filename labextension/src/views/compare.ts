/**
 * A corpus comparison, a main-area tab: where model A beats model B most over the workspace's
 * files (full-width table: the token and the token before it as columns, the context centred on
 * the token, sortable by a header's click, filterable; a row opens the place with the comparison
 * inline and the caret on the token), the same grouped by token and by preceding token, and the
 * exports as downloads.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { CompareGroup, CompareJobResult, CompareRow } from '../api/client';
import type { components } from '../api/schema';
import { describe } from '../errors';
import { neuronPartLabel, signedPart } from '../parts';
import { el, fmt, visible } from '../format';
import type { LenscopeModel } from '../model';
import { CommandIDs } from '../tokens';
import { moveInList } from './analysis';
import { copyCodeButton, serverRoot } from './copycode';

export function rowPlace(r: Pick<CompareRow, 'path' | 'cell' | 'line'>): string {
  return r.cell === null ? `${r.path}:${r.line}` : `${r.path} · cell ${r.cell + 1}:${r.line}`;
}

type NeuronCarrier = components['schemas']['NeuronCarrier'];

/** The columns the comparison's rows sort by. */
export type SortKey = 'token' | 'previous' | 'diff' | 'lp_a' | 'lp_b' | 'mlp_a' | 'where';
const NUMERIC = new Set<SortKey>(['diff', 'lp_a', 'lp_b', 'mlp_a']);

/** Ascending order of two rows by a column; a missing number (no MLP) sorts below every number. */
export function compareBy(key: SortKey, x: CompareRow, y: CompareRow): number {
  if (key === 'token' || key === 'previous') {
    return x[key].localeCompare(y[key]);
  }
  if (key === 'where') {
    return x.path.localeCompare(y.path) || (x.cell ?? -1) - (y.cell ?? -1) || x.line - y.line || x.start - y.start;
  }
  const a = x[key] ?? -Infinity;
  const b = y[key] ?? -Infinity;
  return a === b ? 0 : a < b ? -1 : 1;
}
type AttributedNeuron = components['schemas']['AttributedNeuron'];

export class CompareView extends Widget {
  constructor(
    readonly jobId: string,
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry,
    private readonly setLabel: (label: string) => void
  ) {
    super();
    this.addClass('ls-compare-view');
    this.node.dataset.job = jobId;
    this.node.append(el('p', 'ls-spinner', `Loading comparison ${jobId}…`));
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const { result } = await this.model.comparison(this.jobId);
      const [a, b] = [result.model_a, result.model_b];
      this.setLabel(`${a} vs ${b} · ${result.files} files`);
      this.node.replaceChildren(...this.render(a, b, result));
      this.node.dataset.jobState = 'done';
    } catch (err) {
      this.node.replaceChildren(el('h2', '', `Comparison ${this.jobId}`), el('p', 'ls-error', describe(err)));
    }
  }

  private render(a: string, b: string, result: CompareJobResult): HTMLElement[] {
    const head = el('div', 'ls-compare-head');
    head.append(
      el('h2', '', `${a} (A) vs ${b} (B)`),
      el('p', 'ls-muted', `${result.tokens.toLocaleString()} tokens in ${result.files} files: where ${a} beats ${b} most, by lp(A) − max(lp(B), clamp). Click a row (or Enter) to open it with the comparison inline and the caret on its token; click a column's header to sort by it.`)
    );
    if (result.skipped.length) {
      head.append(el('p', 'ls-muted', `Skipped: ${result.skipped.map(s => `${s.path} (${s.reason})`).join(', ')}`));
    }
    const exports = el('p', 'ls-exports', 'Export: ');
    for (const link of result.exports) {
      const a = el('a', 'ls-export', `${link.format.toUpperCase()} (${link.name})`);
      a.href = this.model.client.exportUrl(link);
      a.download = link.name;
      a.dataset.format = link.format;
      exports.append(a, document.createTextNode(' '));
    }
    head.append(exports);
    const copy = copyCodeButton('this comparison (both models over the files, the top rows, A\'s MLP parts, the carriers)', () => ({
      kind: 'corpusCompareSnippet',
      // the comparison the panel starts: every file under the server's root
      request: { model_a: a, model_b: b, paths: ['.'], clamp: result.clamp, min_count: this.model.settings.compareMinCount, root: serverRoot() }
    }));
    exports.append(copy);

    const filter = el('input', 'ls-search ls-compare-filter');
    filter.placeholder = 'filter by token or file';
    filter.setAttribute('aria-label', 'Filter the rows by token or file');
    const table = el('table', 'ls-topk ls-compare-table');
    const header = el('tr', 'ls-compare-header');
    const columns: [string, string, SortKey | null, boolean][] = [
      ['token', 'the token model A predicted better (click: sort)', 'token', false],
      ['previous', 'the token before it (click: sort)', 'previous', false],
      ['diff', 'lp(A) − max(lp(B), clamp)', 'diff', true],
      ['lp A', `log-prob ${a} gave the token`, 'lp_a', true],
      ['lp B', `log-prob ${b} gave the token`, 'lp_b', true],
      ["A's MLP", `${a}'s MLP: its direct part of the token's centred logit at the position predicting it`, 'mlp_a', true],
      ['token in context', 'the text around the token, centred on it', null, false],
      ["A's neurons", `${a}'s 3 neurons with the largest |direct part| there (click: the neuron's card)`, null, false],
      ['where', 'file (cell) and line (click: sort)', 'where', false]
    ];
    const ths: HTMLTableCellElement[] = [];
    for (const [h, title, key, numeric] of columns) {
      const th = el('th', numeric ? 'ls-num' : '');
      th.title = title;
      th.scope = 'col';
      if (key) {
        // a button in the header: click or Enter sorts by the column, again reverses
        const button = el('button', 'ls-sort', h);
        button.type = 'button';
        button.dataset.sort = key;
        button.addEventListener('click', () => this.sortBy(table, ths, th, key, result.rows));
        th.append(button);
        th.dataset.sort = key;
        th.setAttribute('aria-sort', key === 'diff' ? 'descending' : 'none');
      } else {
        th.textContent = h;
      }
      ths.push(th);
      header.append(th);
    }
    table.append(header);
    result.rows.forEach((r, i) => {
      const row = el('tr', 'ls-compare-row');
      row.tabIndex = i === 0 ? 0 : -1;
      row.dataset.row = String(i);
      row.dataset.path = r.path;
      row.dataset.line = String(r.line);
      row.dataset.cell = r.cell === null ? '' : String(r.cell);
      row.dataset.start = String(r.start);
      const token = el('td', 'ls-compare-token-cell');
      const tokenText = token.appendChild(el('code', 'ls-tooltip-token', visible(r.token)));
      tokenText.title = visible(r.token);
      const previous = el('td', 'ls-compare-previous');
      previous.appendChild(el('code', 'ls-tooltip-token ls-muted', visible(r.previous))).title = visible(r.previous);
      row.append(token, previous);
      row.append(el('td', 'ls-num', fmt(r.diff)), el('td', 'ls-num', fmt(r.lp_a)), el('td', 'ls-num', fmt(r.lp_b)));
      const mlp = r.mlp_a;
      row.append(el('td', 'ls-num ls-compare-mlp', mlp === null || mlp === undefined ? '—' : signedPart(mlp)));
      // centred on the token: the text before it clipped on its left, the text after on its right
      const ctx = el('td', 'ls-compare-context');
      const line = el('div', 'ls-ctx');
      const before = el('span', 'ls-ctx-before');
      before.append(el('span', 'ls-muted', visible(r.before)));
      line.append(before, el('mark', 'ls-compare-token', visible(r.token)), el('span', 'ls-ctx-after ls-muted', visible(r.after)));
      ctx.append(line);
      // A's neurons after the context: a click in the middle of a row lands on the row, not a chip
      const chips = el('td', 'ls-compare-neurons');
      for (const n of r.neurons_a ?? []) {
        chips.append(this.neuronChip(a, n));
      }
      row.append(ctx, chips, el('td', 'ls-muted ls-where', rowPlace(r)));
      row.addEventListener('click', () => this.open(r, b));
      table.append(row);
    });
    table.addEventListener('keydown', event =>
      moveInList(event, table, '.ls-compare-row:not([hidden])', i => (table.querySelectorAll<HTMLElement>('.ls-compare-row:not([hidden])')[i]).click())
    );
    // a row's chips are reachable by Tab from that row only (one tab stop for the whole list)
    table.addEventListener('focusin', event => {
      const current = (event.target as HTMLElement).closest('.ls-compare-row');
      table.querySelectorAll<HTMLElement>('.ls-compare-row .ls-neuron-chip').forEach(chip => {
        chip.tabIndex = chip.closest('.ls-compare-row') === current ? 0 : -1;
      });
    });
    filter.addEventListener('input', () => {
      const q = filter.value.toLowerCase();
      table.querySelectorAll<HTMLElement>('.ls-compare-row').forEach(tr => {
        tr.hidden = !!q && !(tr.textContent ?? '').toLowerCase().includes(q);
      });
    });
    const rows = el('div', 'ls-compare-rows');
    rows.append(el('h3', '', `Top ${result.rows.length} tokens`), filter, table);

    const groups = el('div', 'ls-compare-groups');
    for (const [title, list] of [
      ['by token', result.groups_token],
      ['by preceding token', result.groups_previous]
    ] as const) {
      groups.append(groupTable(`Groups ${title}`, list));
    }
    return [head, rows, this.carriers(a, result.carriers ?? []), groups];
  }

  private neuronChip(model: string, n: Pick<AttributedNeuron, 'layer' | 'index' | 'value'>): HTMLButtonElement {
    const chip = el('button', 'ls-neuron-chip', neuronPartLabel(n));
    chip.tabIndex = -1;
    chip.dataset.layer = String(n.layer);
    chip.dataset.index = String(n.index);
    chip.title = `Open the card of L${n.layer}.N${n.index} · ${model}`;
    chip.addEventListener('click', event => {
      event.stopPropagation(); // not the row's click
      this.openNeuron(model, n.layer, n.index);
    });
    return chip;
  }

  private openNeuron(model: string, layer: number, index: number): void {
    void this.commands.execute(CommandIDs.openNeuron, { model, layer, index });
  }

  /** The neurons whose direct parts, summed over the top 100 rows, carry most of A's advantage. */
  private carriers(a: string, carriers: NeuronCarrier[]): HTMLElement {
    const box = el('div', 'ls-compare-carriers');
    box.append(el('h3', '', "Neurons that carry A's advantage (summed direct part over the top 100 rows)"));
    if (!carriers.length) {
      box.append(el('p', 'ls-muted ls-carriers-none', `${a} has no MLP: no neuron carries its advantage.`));
      box.dataset.empty = 'true';
      return box;
    }
    const table = el('table', 'ls-topk ls-carriers-table');
    const header = el('tr');
    for (const [h, title] of [
      ['neuron', 'click (or Enter): its card'],
      ['summed part', `its direct part of the token's centred logit, summed over the top 100 rows`],
      ['rows where positive', 'of the top 100 rows, those where its part is positive']
    ]) {
      const th = el('th', '', h);
      th.title = title;
      header.append(th);
    }
    table.append(header);
    carriers.forEach((c, i) => {
      const row = el('tr', 'ls-carrier-row');
      row.tabIndex = i === 0 ? 0 : -1;
      row.dataset.layer = String(c.layer);
      row.dataset.index = String(c.index);
      const name = el('td');
      name.append(el('code', 'ls-carrier-neuron', `L${c.layer}.N${c.index}`));
      row.append(name, el('td', 'ls-num ls-carrier-total', signedPart(c.total)), el('td', 'ls-num ls-carrier-rows', String(c.rows)));
      row.addEventListener('click', () => this.openNeuron(a, c.layer, c.index));
      table.append(row);
    });
    table.addEventListener('keydown', event =>
      moveInList(event, table, '.ls-carrier-row', i => table.querySelectorAll<HTMLElement>('.ls-carrier-row')[i].click())
    );
    box.append(table);
    return box;
  }

  /** Open the row's place, compared as in the table, with the caret on its token (`start`, code points). */
  private open(r: CompareRow, b: string): void {
    void this.commands.execute(CommandIDs.openRow, { path: r.path, cell: r.cell, line: r.line, start: r.start, end: r.end, compare: b });
  }

  /** Sort the rows by a column (descending first for numbers, ascending for text; again: reversed). */
  private sortBy(table: HTMLTableElement, ths: HTMLTableCellElement[], th: HTMLTableCellElement, key: SortKey, rows: CompareRow[]): void {
    const numeric = NUMERIC.has(key);
    const now = th.getAttribute('aria-sort');
    const descending = now === 'none' ? numeric : now === 'ascending';
    for (const other of ths) {
      if (other.hasAttribute('aria-sort')) {
        other.setAttribute('aria-sort', other === th ? (descending ? 'descending' : 'ascending') : 'none');
      }
    }
    const trs = Array.from(table.querySelectorAll<HTMLTableRowElement>('.ls-compare-row'));
    const value = (tr: HTMLTableRowElement) => rows[Number(tr.dataset.row)];
    trs.sort((x, y) => compareBy(key, value(x), value(y)) * (descending ? -1 : 1) || Number(x.dataset.row) - Number(y.dataset.row));
    trs.forEach((tr, i) => {
      tr.tabIndex = i === 0 ? 0 : -1;
      table.append(tr);
    });
  }
}

function groupTable(title: string, groups: CompareGroup[]): HTMLElement {
  const box = el('div', 'ls-compare-group');
  box.append(el('h3', '', title));
  const table = el('table', 'ls-topk');
  const header = el('tr');
  for (const h of ['token', 'mean diff', 'count']) {
    header.append(el('th', '', h));
  }
  table.append(header);
  for (const g of groups.slice(0, 20)) {
    const row = el('tr');
    const key = el('td');
    key.append(el('code', 'ls-tooltip-token', visible(g.key)));
    row.append(key, el('td', 'ls-num', fmt(g.mean_diff)), el('td', 'ls-num', g.count.toLocaleString()));
    table.append(row);
  }
  box.append(table);
  return box;
}
