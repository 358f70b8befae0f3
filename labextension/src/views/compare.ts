/**
 * A corpus comparison, a main-area tab: where model A beats model B most over the workspace's
 * files (full-width table, filterable, rows open the place with the comparison inline), the
 * same grouped by token and by preceding token, and the exports as downloads.
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
      el('p', 'ls-muted', `${result.tokens.toLocaleString()} tokens in ${result.files} files: where ${a} beats ${b} most, by lp(A) − max(lp(B), clamp). Click a row (or Enter) to open it with the comparison inline.`)
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
    const header = el('tr');
    for (const [h, title] of [
      ['diff', 'lp(A) − max(lp(B), clamp)'],
      ['lp A', `log-prob ${a} gave the token`],
      ['lp B', `log-prob ${b} gave the token`],
      ["A's MLP", `${a}'s MLP: its direct part of the token's centred logit at the position predicting it`],
      ["A's neurons", `${a}'s 3 neurons with the largest |direct part| there (click: the neuron's card)`],
      ['token in context', ''],
      ['where', '']
    ]) {
      const th = el('th', '', h);
      th.title = title;
      header.append(th);
    }
    table.append(header);
    result.rows.forEach((r, i) => {
      const row = el('tr', 'ls-compare-row');
      row.tabIndex = i === 0 ? 0 : -1;
      row.dataset.path = r.path;
      row.dataset.line = String(r.line);
      row.dataset.cell = r.cell === null ? '' : String(r.cell);
      row.append(el('td', 'ls-num', fmt(r.diff)), el('td', 'ls-num', fmt(r.lp_a)), el('td', 'ls-num', fmt(r.lp_b)));
      const mlp = r.mlp_a;
      row.append(el('td', 'ls-num ls-compare-mlp', mlp === null || mlp === undefined ? '—' : signedPart(mlp)));
      const chips = el('td', 'ls-compare-neurons');
      for (const n of r.neurons_a ?? []) {
        chips.append(this.neuronChip(a, n));
      }
      row.append(chips);
      const ctx = el('td', 'ls-compare-context');
      ctx.append(el('span', 'ls-muted', visible(r.before.slice(-40))), el('mark', 'ls-compare-token', visible(r.token)), el('span', 'ls-muted', visible(r.after.slice(0, 20))));
      row.append(ctx, el('td', 'ls-muted ls-where', rowPlace(r)));
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

  private open(r: CompareRow, b: string): void {
    void this.commands.execute(CommandIDs.openRow, { path: r.path, cell: r.cell, line: r.line, compare: b });
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
