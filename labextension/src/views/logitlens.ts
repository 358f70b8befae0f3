/**
 * The panel's logit lens section (a <details>; opening it fetches `POST logit_lens` for the
 * current token only): for the current token (the last one whose tooltip showed, or stepped with
 * ‹ ›), a row per residual stream read (the embeddings, then after each block): its top-5 tokens
 * with log-probs (the actual next token outlined), and the actual next token's rank and log-prob,
 * the rank cell shaded (full at rank 1, fading with log10 of the rank). The last row is the
 * model's own output, the same numbers as the tooltip's.
 */
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

  constructor(private readonly model: LenscopeModel) {
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
    this.details.append(summary, this.heading, nav, copy, this.status, this.table);
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
    this.heading.textContent = `${describeTarget(run.target)} · ${run.analysis.model} · the residual stream after each block, read through the final LayerNorm and the unembedding`;
    this.heading.title = run.target.path;
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
    const k = column.rows[0]?.top.length ?? 0;
    const header = el('tr');
    header.append(el('th', '', 'after'));
    for (let j = 0; j < k; j++) {
      header.append(el('th', '', `#${j + 1}`));
    }
    header.append(el('th', '', 'rank'), el('th', '', 'log-prob'));
    this.table.append(header);
    for (const row of column.rows) {
      const tr = el('tr', 'ls-lens-row');
      tr.dataset.row = row.name;
      tr.append(el('th', 'ls-lens-name', row.name));
      for (const t of row.top) {
        const td = el('td', column.next && t.id === column.next.id ? 'ls-lens-top ls-lens-actual' : 'ls-lens-top');
        td.dataset.tokenId = String(t.id);
        td.dataset.logprob = String(t.logprob);
        td.title = `${visible(t.token)}: log-prob ${fmt(t.logprob, 3)}`;
        td.append(el('code', 'ls-tooltip-token', visible(t.token)), el('span', 'ls-lens-lp', ` ${fmt(t.logprob)}`));
        tr.append(td);
      }
      const rank = el('td', 'ls-num ls-lens-rank', row.actual ? String(row.actual.rank) : '');
      const lp = el('td', 'ls-num ls-lens-logprob', row.actual ? fmt(row.actual.logprob) : '');
      if (row.actual) {
        rank.dataset.rank = String(row.actual.rank);
        lp.dataset.logprob = String(row.actual.logprob);
        rank.style.backgroundColor = rankColor(row.actual.rank);
      }
      tr.append(rank, lp);
      this.table.append(tr);
    }
  }
}
