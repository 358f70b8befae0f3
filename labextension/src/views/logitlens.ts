/**
 * The panel's logit lens section (a <details>; opening it fetches `POST logit_lens` for the
 * current token only): for the current token (the last one whose tooltip showed, or stepped with
 * ‹ ›), a row per residual stream read (the embeddings, then after each block): its top-5 tokens
 * with log-probs (the actual next token outlined), and the actual next token's rank and log-prob,
 * the rank cell shaded (full at rank 1, fading with log10 of the rank). The last row is the
 * model's own output, the same numbers as the tooltip's.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { LensColumn, rankStrength } from '../api/logitlens';
import { el, fmt, visible } from '../format';
import type { LensState, LenscopeModel } from '../model';
import { describeTarget } from '../target';
import { copyCodeButton } from './copycode';

/** The rank cell's background: translucent green, so light and dark themes both show through. */
export function rankColor(rank: number): string {
  return `rgba(34, 139, 34, ${(0.6 * rankStrength(rank)).toFixed(3)})`;
}

export class LogitLensView extends Widget {
  private readonly details = el('details', 'ls-lens');
  private readonly heading = el('p', 'ls-lens-title ls-muted');
  private readonly prev = el('button', 'ls-button ls-lens-prev', '\u2039');
  private readonly next = el('button', 'ls-button ls-lens-next', '\u203a');
  private readonly where = el('span', 'ls-lens-token');
  private readonly status = el('p', 'ls-lens-status ls-muted');
  private readonly table = el('table', 'ls-lens-table');

  constructor(
    private readonly model: LenscopeModel,
    commands?: CommandRegistry
  ) {
    super();
    this.addClass('ls-lens-view');
    const summary = el('summary', 'ls-lens-summary', 'Logit lens');
    this.prev.title = 'the previous token';
    this.prev.setAttribute('aria-label', 'previous token');
    this.next.title = 'the next token';
    this.next.setAttribute('aria-label', 'next token');
    this.prev.addEventListener('click', () => this.step(-1));
    this.next.addEventListener('click', () => this.step(1));
    const nav = el('div', 'ls-lens-nav');
    nav.append(this.prev, this.where, this.next);
    const copy = copyCodeButton("this token's logit lens", () => {
      const run = model.run;
      const token = model.lens.token;
      return run && token !== null
        ? { kind: 'logitLensSnippet', request: { model: run.analysis.model, text: run.target.text, context: run.target.context, position: token, top_k: 5 } }
        : null;
    });
    copy.classList.add('ls-lens-code');
    const heatmap = el('button', 'ls-button ls-lens-heatmap-open', 'Heatmap of the selection');
    heatmap.title = 'Open the logit lens at every token of the analyzed text as a heatmap (a lenscope tab)';
    heatmap.addEventListener('click', () => void commands?.execute('lenscope:open-logit-lens-heatmap'));
    heatmap.hidden = !commands; // (the panel passes its commands; the palette and the tooltip's lens line open it too)
    this.details.append(summary, this.heading, nav, copy, heatmap, this.status, this.table);
    this.details.addEventListener('toggle', () => model.updateLens({ open: this.details.open }));
    this.node.append(this.details);
    model.lensChanged.connect(() => this.render());
    model.runChanged.connect(() => this.render());
    this.render();
  }

  private step(by: number): void {
    const n = this.model.run?.analysis.tokens.length ?? 0;
    const token = this.model.lens.token ?? 0;
    if (n) {
      this.model.updateLens({ token: Math.max(0, Math.min(n - 1, token + by)) });
    }
  }

  private render(): void {
    const run = this.model.run;
    const s: LensState = this.model.lens;
    this.table.replaceChildren();
    if (!run) {
      this.heading.textContent = 'Analyze some text first.';
      this.where.textContent = '';
      this.status.textContent = '';
      return;
    }
    this.heading.textContent = `${describeTarget(run.target)} · ${run.analysis.model}`;
    this.heading.title = `${run.target.path}: the residual stream after the embeddings and after each block, each read through the final LayerNorm and the unembedding; the last row is the model's output`;
    const n = run.analysis.tokens.length;
    const token = s.token;
    this.where.textContent = token === null ? '' : `token ${token} ${visible(run.analysis.tokens[token]?.text ?? '')}`;
    this.prev.disabled = token === null || token <= 0;
    this.next.disabled = token === null || token >= n - 1;
    this.status.classList.toggle('ls-error', !!s.error);
    this.status.textContent = s.loading
      ? 'Fetching the lens…'
      : s.error
        ? s.error
        : !s.open
          ? ''
          : s.column
            ? s.column.next
              ? `next token: ${visible(s.column.next.token)} · hover a token in the editor to show its lens here`
              : 'the last token of the selection: no next token'
            : '';
    if (s.column && s.column.position === token) {
      this.renderTable(s.column);
    }
  }

  private renderTable(column: LensColumn): void {
    // a layer is two lines (a <tbody>): its name, the next token's rank and log-prob, then its
    // top tokens, wrapping: the side panel is narrow
    const head = el('thead');
    const header = el('tr');
    header.append(el('th', '', 'after'), el('th', '', 'next token: rank'), el('th', '', 'log-prob'));
    head.append(header);
    this.table.append(head);
    for (const row of column.rows) {
      const body = el('tbody', 'ls-lens-row');
      body.dataset.row = row.name;
      const line = el('tr');
      line.append(el('th', 'ls-lens-name', row.name));
      const rank = el('td', 'ls-num ls-lens-rank', row.actual ? String(row.actual.rank) : '');
      const lp = el('td', 'ls-num ls-lens-logprob', row.actual ? fmt(row.actual.logprob) : '');
      if (row.actual) {
        rank.dataset.rank = String(row.actual.rank);
        rank.title = `the next token's rank among the whole vocabulary after ${row.name === 'embed' ? 'the embeddings' : `block ${row.name.slice(1)}`}`;
        lp.dataset.logprob = String(row.actual.logprob);
        rank.style.backgroundColor = rankColor(row.actual.rank);
      }
      line.append(rank, lp);
      const tops = el('td', 'ls-lens-tops');
      tops.colSpan = 3;
      tops.title = `the top ${row.top.length} after ${row.name} (log-prob); outlined: the actual next token`;
      for (const t of row.top) {
        const chip = el('span', column.next && t.id === column.next.id ? 'ls-lens-top ls-lens-actual' : 'ls-lens-top');
        chip.dataset.tokenId = String(t.id);
        chip.dataset.logprob = String(t.logprob);
        chip.append(el('code', 'ls-tooltip-token', visible(t.token)), el('span', 'ls-lens-lp', ` ${fmt(t.logprob)}`));
        tops.append(chip);
      }
      const second = el('tr');
      second.append(tops);
      body.append(line, second);
      this.table.append(body);
    }
  }
}
