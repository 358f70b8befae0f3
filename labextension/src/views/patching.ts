/**
 * The patching tab (main area): activation patching of the clean text into the corrupted one
 * (`POST patch`). A header (model, the two values of logit(target) − logit(baseline), the typed
 * target / baseline), then one heatmap per component: rows = layers (or L.H for heads), columns
 * = the corrupted text's tokens, each cell the restored share on a diverging scale −1 .. 1. A
 * cell (click, or Enter) is applied inline on the corrupted text as a `patch` intervention and
 * outlined.
 */
import { Widget } from '@lumino/widgets';

import { restoredColor } from '../colors';
import { el, visible } from '../format';
import type { PatchingModel, PatchingState } from '../patchmodel';
import { cellLabel, LAYER_GRIDS, PatchCell, PatchGrid, sameCell, shareText } from '../patching';
import { copyCodeButton } from './copycode';

/** The diverging scale's legend: −1 .. +1. */
export function restoredLegend(): HTMLElement {
  const box = el('div', 'ls-legend ls-patch-legend');
  box.dataset.legend = 'restored';
  box.append(el('span', 'ls-muted', 'restored share (patched − corrupted) / (clean − corrupted): '));
  for (const v of [-1, -0.5, 0, 0.5, 1]) {
    const swatch = el('span', 'ls-swatch', v > 0 ? `+${v}` : v < 0 ? `\u2212${-v}` : '0');
    swatch.style.backgroundColor = restoredColor(v);
    box.append(swatch);
  }
  box.append(el('span', 'ls-muted', ' blue: patching restores the clean value · orange: it pushes away'));
  return box;
}

export class PatchingView extends Widget {
  private readonly header = el('div', 'ls-patch-header');
  private readonly form = el('form', 'ls-patch-form');
  private readonly targetInput = el('input', 'ls-patch-target');
  private readonly baselineInput = el('input', 'ls-patch-baseline');
  private readonly status = el('p', 'ls-patch-status');
  private readonly body = el('div', 'ls-patch-body');
  private focusKey: string | null = null;

  constructor(readonly patching: PatchingModel) {
    super();
    this.id = 'lenscope-patching';
    this.addClass('ls-card-view');
    this.addClass('ls-patch-view');
    this.node.tabIndex = -1;
    this.targetInput.setAttribute('aria-label', 'target token');
    this.baselineInput.setAttribute('aria-label', 'baseline token');
    this.targetInput.size = 10;
    this.baselineInput.size = 10;
    const go = el('button', 'ls-action ls-patch-go', 'Patch');
    go.type = 'submit';
    this.form.append(el('span', '', 'logit( '), this.targetInput, el('span', '', ' ) − logit( '), this.baselineInput, el('span', '', ' ) '), go);
    this.form.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.patching.setTokens(this.targetInput.value, this.baselineInput.value);
    });
    const copy = copyCodeButton('this patching grid', () => {
      const r = this.patching.state.request;
      return r ? { kind: 'patchSnippet', request: r } : null;
    }, 'ls-action ls-copy-code');
    const bar = el('div', 'ls-patch-bar');
    bar.append(this.form, copy);
    this.node.append(el('h2', '', 'Activation patching'), this.header, bar, this.status, this.body);
    this.patching.changed.connect(this.render, this);
    this.render(this.patching, this.patching.state);
  }

  private render(_: unknown, s: PatchingState): void {
    const active = document.activeElement;
    this.focusKey = active instanceof HTMLElement && this.body.contains(active) ? (active.dataset.key ?? null) : this.focusKey;
    this.header.replaceChildren(...headerLines(s));
    if (document.activeElement !== this.targetInput) {
      this.targetInput.value = s.targetText;
    }
    if (document.activeElement !== this.baselineInput) {
      this.baselineInput.value = s.baselineText;
    }
    this.status.className = s.error ? 'ls-patch-status ls-error' : 'ls-patch-status ls-muted';
    this.status.textContent = s.error ?? (s.loading ? 'Patching…' : s.applied ? `Applied ${cellLabel(s.applied)} inline on the corrupted text (the panel's Interventions list shows it).` : s.grid ? 'Click a cell (or Enter on it) to apply that patch inline on the corrupted text.' : '');
    this.node.dataset.state = s.error ? 'error' : s.loading ? 'loading' : s.grid ? 'ready' : 'empty';
    const grid = s.grid;
    if (!grid) {
      this.body.replaceChildren();
      return;
    }
    const tables: HTMLElement[] = [restoredLegend()];
    for (const g of LAYER_GRIDS) {
      const rows = Array.from({ length: grid.nLayers }, (_, layer) => ({ label: `L${layer}`, cell: (position: number): PatchCell => ({ component: g.component, layer, head: null, position }) }));
      tables.push(this.table(g.title, g.component, grid, rows, s.applied));
    }
    const headRows = [];
    for (let layer = 0; layer < grid.nLayers; layer++) {
      for (let head = 0; head < grid.nHeads; head++) {
        headRows.push({ label: `L${layer}.H${head}`, cell: (position: number): PatchCell => ({ component: 'head', layer, head, position }) });
      }
    }
    tables.push(this.table('Each head’s output (hook_z)', 'head', grid, headRows, s.applied));
    this.body.replaceChildren(...tables);
    if (this.focusKey && this.node.contains(document.activeElement) === false && active === document.body) {
      this.body.querySelector<HTMLElement>(`[data-key="${this.focusKey}"]`)?.focus();
    }
  }

  private table(title: string, component: string, grid: PatchGrid, rows: { label: string; cell: (p: number) => PatchCell }[], applied: PatchCell | null): HTMLElement {
    const section = el('section', 'ls-patch-grid');
    section.dataset.component = component;
    section.append(el('h3', '', title));
    const wrap = el('div', 'ls-patch-scroll');
    const table = el('table', 'ls-patch-table');
    const head = el('tr');
    head.append(el('th', ''));
    grid.tokens.forEach((t, p) => {
      const th = el('th', 'ls-patch-token');
      th.append(el('code', '', visible(t)));
      th.title = `token ${p}${p === grid.position ? ' (the metric is read after it)' : ''}`;
      if (p === grid.position) {
        th.classList.add('ls-patch-metric');
      }
      head.append(th);
    });
    table.append(head);
    for (const row of rows) {
      const tr = el('tr');
      tr.append(el('th', 'ls-patch-row', row.label));
      for (let p = 0; p < grid.nPositions; p++) {
        const cell = row.cell(p);
        const v = grid.value(cell);
        const td = el('td', 'ls-patch-cell', shareText(v));
        td.style.backgroundColor = restoredColor(v);
        td.dataset.key = cellLabel(cell);
        td.dataset.component = cell.component;
        td.dataset.layer = String(cell.layer);
        td.dataset.position = String(p);
        if (cell.head !== null) {
          td.dataset.head = String(cell.head);
        }
        td.dataset.value = String(v);
        td.title = `${cellLabel(cell)} (${visible(grid.tokens[p])}): restored ${shareText(v)}; click or Enter: apply inline`;
        td.tabIndex = 0;
        td.setAttribute('role', 'button');
        if (sameCell(cell, applied)) {
          td.classList.add('ls-patch-applied');
          td.setAttribute('aria-pressed', 'true');
        }
        const apply = () => {
          this.focusKey = td.dataset.key ?? null;
          void this.patching.apply(cell);
        };
        td.addEventListener('click', apply);
        td.addEventListener('keydown', ev => {
          if (ev.key === 'Enter' || ev.key === ' ') {
            ev.preventDefault();
            apply();
          }
        });
        tr.append(td);
      }
      table.append(tr);
    }
    wrap.append(table);
    section.append(wrap);
    return section;
  }

  dispose(): void {
    this.patching.changed.disconnect(this.render, this);
    super.dispose();
  }
}

function where(side: { target: { path: string; cell: number | null; lines: [number, number]; text: string } } | null): string {
  if (!side) {
    return 'not set';
  }
  const t = side.target;
  const place = t.cell !== null ? `${t.path}, cell ${t.cell + 1}` : `${t.path}, lines ${t.lines[0]}–${t.lines[1]}`;
  const text = t.text.length > 60 ? `${t.text.slice(0, 60)}…` : t.text;
  return `${place}: ${visible(text)}`;
}

function headerLines(s: PatchingState): HTMLElement[] {
  const lines: HTMLElement[] = [];
  const clean = el('div', 'ls-patch-side');
  clean.dataset.side = 'clean';
  clean.append(el('strong', '', 'clean '), el('code', '', where(s.clean)));
  const corrupted = el('div', 'ls-patch-side');
  corrupted.dataset.side = 'corrupted';
  corrupted.append(el('strong', '', 'corrupted '), el('code', '', where(s.corrupted)));
  lines.push(clean, corrupted);
  const g = s.grid;
  if (g) {
    const values = el('div', 'ls-patch-values');
    const metric = `logit(${visible(g.tokenString(g.target))}) − logit(${visible(g.tokenString(g.baseline))})`;
    values.append(
      el('span', '', `${g.model} · ${metric} after token ${g.position}: clean `),
      valueSpan('clean', g.cleanValue),
      el('span', '', ', corrupted '),
      valueSpan('corrupted', g.corruptedValue),
      el('span', 'ls-muted', ' (both texts without context)')
    );
    lines.push(values);
  }
  return lines;
}

function valueSpan(which: string, v: number): HTMLElement {
  const span = el('strong', 'ls-patch-value', (v >= 0 ? '+' : '\u2212') + Math.abs(v).toFixed(3));
  span.dataset.which = which;
  span.dataset.value = String(v);
  return span;
}
