/**
 * The logit lens over a whole selection as a heatmap (`POST logit_lens`, every position): a row
 * per residual stream read (the embeddings, then after each block; the last row is the model's
 * own output), a column per text token (its label above, whitespace shown), each cell coloured by
 * the log-prob that read gives the token that really came next (or its rank: a toggle). Hover a
 * cell for its numbers; click it (or Enter) for its top-5. Pure DOM from a `LogitLens`: the
 * main-area view (`LensHeatmapView`) and the notebook output share it.
 */
import { Widget } from '@lumino/widgets';

import { LensColumn, LogitLens } from '../api/logitlens';
import { colorFor, ScaleName, surprise } from '../colors';
import { describe } from '../errors';
import { el, fmt, visible } from '../format';
import type { LenscopeModel } from '../model';
import { describeTarget } from '../target';
import { copyCodeButton } from './copycode';
import { rankColor } from './logitlens';

export type LensColour = 'logprob' | 'rank';

export interface LensHeatmapOptions {
  colour?: LensColour;
  scale?: ScaleName;
  floor?: number;
}

/** The line a cell shows on hover (its title and the readout). */
function cellLine(column: LensColumn, r: number, label: string): string {
  const row = column.rows[r];
  const where = `${row.name === 'embed' ? 'after the embeddings' : `after block ${row.name.slice(1)}`}${r === column.rows.length - 1 ? ' (the output)' : ''}`;
  if (!column.next || !row.actual) {
    return `token ${column.position} ${visible(label)} · ${where}: the last token, no next token · top: ${visible(row.top[0]?.token ?? '')}`;
  }
  return `token ${column.position} ${visible(label)} → next ${visible(column.next.token)} · ${where}: log-prob ${fmt(row.actual.logprob)}, rank ${row.actual.rank} · top: ${visible(row.top[0]?.token ?? '')} ${fmt(row.top[0]?.logprob ?? NaN)}`;
}

/**
 * The heatmap of `lens` (every text token) with `labels` the text tokens' strings. Cells carry
 * their numbers (`data-logprob`, `data-rank`, `data-row`, `data-position`).
 */
export function renderLensHeatmap(lens: LogitLens, labels: string[], options: LensHeatmapOptions = {}): HTMLElement {
  let colour: LensColour = options.colour ?? 'logprob';
  const scale = options.scale ?? 'surprise';
  const floor = options.floor ?? -10;
  const root = el('div', 'ls-lens-heatmap');
  root.dataset.model = lens.model;
  root.dataset.colour = colour;
  const columns = lens.positions.map(p => lens.at(p)!);
  const bar = el('div', 'ls-picture-bar');
  const toggle = el('button', 'ls-button ls-lh-colour');
  const legend = el('span', 'ls-lh-legend ls-muted');
  bar.append(toggle, legend);
  const readout = el('div', 'ls-lh-readout ls-muted', 'Hover a cell for its numbers; click it (or Enter) for its top 5.');
  readout.setAttribute('aria-live', 'polite');
  const scroller = el('div', 'ls-lh-scroll');
  const table = el('table', 'ls-lh-table');
  table.tabIndex = 0;
  table.setAttribute('aria-label', `logit lens of ${columns.length} tokens: rows are the residual stream after the embeddings and each block; arrow keys move, Enter shows the top 5`);
  const head = el('tr', 'ls-lh-labels');
  head.append(el('th', 'ls-lh-corner', 'next token after'));
  columns.forEach((c, j) => {
    const th = el('th', 'ls-lh-label');
    th.dataset.position = String(c.position);
    th.title = `token ${c.position}: ${visible(labels[c.position] ?? '')}${c.next ? ` → next ${visible(c.next.token)}` : ''}`;
    th.append(el('span', 'ls-lh-label-text', visible(labels[c.position] ?? '') || '\u2205'));
    if (j % 5 === 0) {
      th.dataset.tick = String(c.position);
    }
    head.append(th);
  });
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  const cells: HTMLTableCellElement[][] = [];
  lens.rows.forEach((name, r) => {
    const tr = el('tr', 'ls-lh-row');
    tr.dataset.row = name;
    tr.append(el('th', 'ls-lh-name', r === lens.rows.length - 1 ? `${name} (out)` : name));
    const line: HTMLTableCellElement[] = [];
    columns.forEach(c => {
      const td = el('td', 'ls-lh-cell');
      const actual = c.rows[r].actual;
      td.dataset.row = name;
      td.dataset.position = String(c.position);
      if (actual) {
        td.dataset.logprob = String(actual.logprob);
        td.dataset.rank = String(actual.rank);
      }
      td.title = cellLine(c, r, labels[c.position] ?? '');
      line.push(td);
      tr.append(td);
    });
    cells.push(line);
    tbody.append(tr);
  });
  table.append(thead, tbody);
  scroller.append(table);
  const detail = el('div', 'ls-lh-detail');
  root.append(bar, readout, scroller, detail);

  const paint = (): void => {
    root.dataset.colour = colour;
    toggle.textContent = colour === 'logprob' ? 'Colour: log-prob of the next token' : 'Colour: rank of the next token';
    toggle.setAttribute('aria-pressed', String(colour === 'rank'));
    toggle.title = 'Switch the colour between the next token’s log-prob and its rank';
    legend.textContent =
      colour === 'logprob'
        ? `clear: log-prob 0 (certain), darkest: ${floor} or below (the editor’s colours)`
        : 'green: rank 1, fading with log10(rank) to rank 10,000';
    cells.forEach((line, r) =>
      line.forEach((td, j) => {
        const actual = columns[j].rows[r].actual;
        td.style.backgroundColor = !actual ? '' : colour === 'rank' ? rankColor(actual.rank) : colorFor(surprise(actual.logprob, floor), scale);
      })
    );
  };
  toggle.addEventListener('click', () => {
    colour = colour === 'logprob' ? 'rank' : 'logprob';
    paint();
  });
  paint();

  let selected: { r: number; j: number } | null = null;
  const show = (r: number, j: number): void => {
    if (selected) {
      cells[selected.r][selected.j].removeAttribute('aria-selected');
    }
    selected = { r, j };
    const td = cells[r][j];
    td.setAttribute('aria-selected', 'true');
    td.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    const c = columns[j];
    const row = c.rows[r];
    detail.replaceChildren();
    detail.dataset.row = row.name;
    detail.dataset.position = String(c.position);
    const title = el('div', 'ls-lh-detail-title');
    title.append(el('span', '', `${row.name} at token ${c.position} `), el('code', 'ls-tooltip-token', visible(labels[c.position] ?? '')));
    if (c.next && row.actual) {
      title.append(el('span', '', ' → next '), el('code', 'ls-tooltip-token', visible(c.next.token)), el('span', 'ls-muted', ` rank ${row.actual.rank} · log-prob ${fmt(row.actual.logprob)}`));
    }
    const tops = el('ol', 'ls-lh-top');
    for (const t of row.top) {
      const li = el('li', c.next && t.id === c.next.id ? 'ls-lens-top ls-lens-actual' : 'ls-lens-top');
      li.dataset.tokenId = String(t.id);
      li.dataset.logprob = String(t.logprob);
      li.append(el('code', 'ls-tooltip-token', visible(t.token)), el('span', 'ls-lens-lp', ` ${fmt(t.logprob)}`));
      tops.append(li);
    }
    detail.append(title, tops);
  };
  const hover = (td: HTMLElement): void => {
    readout.textContent = td.title;
    readout.dataset.row = td.dataset.row;
    readout.dataset.position = td.dataset.position;
  };
  tbody.addEventListener('mouseover', e => {
    const td = (e.target as HTMLElement).closest<HTMLElement>('.ls-lh-cell');
    if (td) {
      hover(td);
    }
  });
  tbody.addEventListener('click', e => {
    const td = (e.target as HTMLElement).closest<HTMLTableCellElement>('.ls-lh-cell');
    if (td) {
      const r = lens.rows.indexOf(td.dataset.row ?? '');
      const j = lens.positions.indexOf(Number(td.dataset.position));
      if (r >= 0 && j >= 0) {
        show(r, j);
      }
    }
  });
  table.addEventListener('keydown', e => {
    const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const at = selected ?? { r: lens.rows.length - 1, j: 0 };
    if (e.key in moves) {
      e.preventDefault();
      const [dr, dj] = moves[e.key];
      const r = Math.max(0, Math.min(lens.rows.length - 1, at.r + (selected ? dr : 0)));
      const j = Math.max(0, Math.min(columns.length - 1, at.j + (selected ? dj : 0)));
      show(r, j);
      hover(cells[r][j]);
    } else if (e.key === 'Enter' && !selected) {
      show(at.r, at.j);
    }
  });
  return root;
}

/** The text tokens' strings of a lens response, from the text its UTF-16 spans index into. */
export function lensLabels(text: string, spans: { from: number; to: number }[]): string[] {
  return spans.map(s => text.slice(s.from, s.to));
}

/** The heatmap as a main-area tab, of the current analysis (every token of the selection). */
export class LensHeatmapView extends Widget {
  lens: LogitLens | null = null;

  constructor(private readonly model: LenscopeModel) {
    super();
    this.addClass('ls-picture-view');
    this.addClass('ls-lens-heatmap-view');
    this.node.tabIndex = -1;
    this.node.dataset.state = 'loading';
    this.node.append(el('p', 'ls-spinner', 'Reading the logit lens at every token…'));
    void this.load();
  }

  private async load(): Promise<void> {
    const run = this.model.run;
    if (!run) {
      this.node.dataset.state = 'error';
      this.node.replaceChildren(el('p', 'ls-error', 'Analyze some text first.'));
      return;
    }
    const request = { model: run.analysis.model, text: run.target.text, context: run.target.context, top_k: 5 };
    try {
      const lens = await this.model.client.logitLens(request);
      this.lens = lens;
      const labels = run.analysis.tokens.map(t => t.text);
      const settings = this.model.settings;
      const title = el('h2', '', `Logit lens · ${describeTarget(run.target)}`);
      const sub = el(
        'p',
        'ls-muted',
        `${lens.model} · ${lens.positions.length} tokens · each row reads the residual stream (after the embeddings, after each block) through the final LayerNorm and the unembedding; a cell is what that read predicts for the token that came next`
      );
      const copy = copyCodeButton('the logit lens at every token of the selection', () => ({ kind: 'logitLensHeatmapSnippet', request }));
      const view = renderLensHeatmap(lens, labels, { scale: settings.colorScale, floor: settings.logprobFloor });
      view.querySelector('.ls-picture-bar')?.append(copy);
      this.node.replaceChildren(title, sub, view);
      this.node.dataset.state = 'ready';
    } catch (err) {
      this.node.dataset.state = 'error';
      this.node.replaceChildren(el('p', 'ls-error', `Could not read the logit lens: ${describe(err)}`));
    }
  }
}
