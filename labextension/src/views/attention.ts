/**
 * The panel's attention section (a <details>; opening it fetches `POST attention` for the run):
 * what it is of, the attention-mode toggle, a layer select and one toggle chip per head (with its
 * positional share), a heatmap of the chosen heads' mean pattern in a window of tokens around the
 * token attended from (query rows × source columns; the wheel scrolls it, a click picks that row
 * and reveals the source token in the editor), and that token's strongest sources as text.
 * Below: every head by its role (views/headroles.ts) and the induction probe's button.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { Attention, BOS } from '../api/attention';
import { attentionColor } from '../colors';
import { el, fmt, visible } from '../format';
import type { AttentionState, LenscopeModel } from '../model';
import { describeTarget } from '../target';
import { CommandIDs } from '../tokens';
import { copyCodeButton } from './copycode';
import { HeadRolesSection } from './headroles';

/** Rows and columns of the heatmap's window. */
export const WINDOW = 40;

/** The first token of a window of `size` around `focus`, within [0, n). */
export function windowStart(focus: number, n: number, size = WINDOW): number {
  return Math.max(0, Math.min(focus - Math.floor(size / 2), n - size));
}

export class AttentionView extends Widget {
  private readonly details = el('details', 'ls-attention');
  private readonly heading = el('p', 'ls-attention-title ls-muted');
  private readonly modeButton = el('button', 'ls-button ls-attention-mode');
  private readonly layerSelect = el('select', 'ls-attention-layer');
  private readonly chips = el('div', 'ls-attention-heads');
  private readonly status = el('p', 'ls-attention-status ls-muted');
  private readonly legend = el('p', 'ls-attention-legend ls-muted');
  private readonly canvas = el('canvas', 'ls-attention-map');
  private readonly caption = el('p', 'ls-attention-caption ls-muted');
  private readonly sources = el('ol', 'ls-attention-sources');
  private start = 0;

  constructor(
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry
  ) {
    super();
    this.addClass('ls-attention-view');
    const summary = el('summary', 'ls-attention-summary', 'Attention');
    this.modeButton.addEventListener('click', () => void commands.execute(CommandIDs.toggleAttentionMode));
    this.layerSelect.setAttribute('aria-label', 'layer');
    this.layerSelect.addEventListener('change', () => model.updateAttention({ layer: Number(this.layerSelect.value) }));
    this.chips.setAttribute('role', 'group');
    this.chips.setAttribute('aria-label', 'heads (several: their mean)');
    const picker = el('div', 'ls-attention-picker');
    picker.append(el('span', 'ls-muted', 'layer'), this.layerSelect, this.chips);
    this.canvas.setAttribute('role', 'img');
    this.canvas.tabIndex = 0;
    this.canvas.addEventListener('click', e => this.clickCell(e));
    this.canvas.addEventListener('mousemove', e => this.hoverCell(e));
    this.canvas.addEventListener('wheel', e => this.scroll(e), { passive: false });
    this.canvas.addEventListener('keydown', e => this.key(e));
    const copy = copyCodeButton('each head\'s positional share and the sources of the token attended from', () => {
      const run = model.run;
      const a = model.attention;
      return run && a.data
        ? { kind: 'attentionSnippet', request: { model: a.data.model, text: run.target.text, context: run.target.context, layers: a.data.layers, k: a.data.k, token: a.token ?? 0 } }
        : null;
    });
    copy.classList.add('ls-attention-code');
    const full = el('button', 'ls-button ls-attention-view-open', 'Open the attention view');
    full.title = 'Every head of the layer side by side, the chosen one large with the tokens on both axes (a lenscope tab)';
    full.addEventListener('click', () => void commands.execute('lenscope:open-attention-view', { layer: model.attention.layer, head: model.attention.heads[0] ?? 0 }));
    const roles = new HeadRolesSection(model, commands);
    this.details.append(summary, this.heading, this.modeButton, copy, full, picker, this.status, this.legend, this.canvas, this.caption, this.sources, roles.node);
    this.details.addEventListener('toggle', () => model.updateAttention({ open: this.details.open }));
    this.node.append(this.details);
    model.attentionChanged.connect(() => this.render());
    model.runChanged.connect(() => this.render());
    this.render();
  }

  private get state(): AttentionState {
    return this.model.attention;
  }

  private render(): void {
    const run = this.model.run;
    const s = this.state;
    this.modeButton.textContent = s.mode ? 'Attention mode: on' : 'Attention mode: off';
    this.modeButton.setAttribute('aria-pressed', String(s.mode));
    this.modeButton.title = 'Alt+Shift+A in the editor. On: hover a token in the analyzed editor (or move the caret) to colour the tokens the chosen heads attend to from it';
    if (!run) {
      this.heading.textContent = 'Analyze some text first.';
      this.clearData();
      return;
    }
    this.heading.textContent = `${describeTarget(run.target)} · ${run.analysis.model}`;
    this.heading.title = run.target.path;
    const data = s.data;
    this.status.textContent = s.loading ? 'Fetching attention…' : s.error ? s.error : !data ? 'Open this section or turn attention mode on to fetch the attention.' : '';
    this.status.classList.toggle('ls-error', !!s.error);
    if (!data) {
      this.clearData(true);
      return;
    }
    this.renderPicker(data, s);
    this.renderMap(data, s);
    this.renderSources(data, s);
  }

  private clearData(keepStatus = false): void {
    if (!keepStatus) {
      this.status.textContent = '';
    }
    this.layerSelect.replaceChildren();
    this.chips.replaceChildren();
    this.legend.textContent = '';
    this.sources.replaceChildren();
    this.canvas.hidden = true;
    this.caption.textContent = '';
  }

  private renderPicker(data: Attention, s: AttentionState): void {
    const nLayers = this.model.models.find(m => m.name === data.model)?.shape?.n_layers ?? Math.max(...data.layers) + 1;
    if (this.layerSelect.options.length !== nLayers) {
      this.layerSelect.replaceChildren(...Array.from({ length: nLayers }, (_, l) => new Option(`L${l}`, String(l))));
    }
    this.layerSelect.value = String(s.layer);
    this.chips.replaceChildren();
    for (let h = 0; h < data.nHeads; h++) {
      const share = data.positionalShare(s.layer, h);
      const chip = el('button', 'ls-head-chip');
      chip.dataset.head = String(h);
      chip.setAttribute('aria-pressed', String(s.heads.includes(h)));
      chip.append(el('span', 'ls-head-name', `H${h}`), el('span', 'ls-head-pos', Number.isFinite(share) ? `${Math.round(share * 100)}% pos` : 'n/a'));
      chip.title = Number.isFinite(share)
        ? `L${s.layer}H${h}: ${Math.round(share * 100)}% of the spread of its scores over keys comes from their position (the rest from their content), on this text`
        : `L${s.layer}H${h}: no learned positional embedding`;
      chip.addEventListener('click', () => {
        const on = s.heads.includes(h);
        const heads = on ? s.heads.filter(x => x !== h) : [...s.heads, h].sort((a, b) => a - b);
        this.model.updateAttention({ heads: heads.length ? heads : [h] });
      });
      this.chips.append(chip);
    }
  }

  private focus(data: Attention, s: AttentionState): number {
    return Math.min(data.nTokens - 1, Math.max(0, s.token ?? 0));
  }

  private renderMap(data: Attention, s: AttentionState): void {
    const n = data.nTokens;
    const size = Math.min(WINDOW, n);
    if (s.token !== null) {
      this.start = windowStart(s.token, n, size);
    }
    this.start = Math.max(0, Math.min(this.start, n - size));
    const width = Math.max(160, Math.min(this.node.clientWidth || 280, 520) - 8);
    const cell = width / size;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.hidden = false;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(width * ratio);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${width}px`;
    this.canvas.dataset.start = String(this.start);
    this.canvas.dataset.size = String(size);
    this.canvas.setAttribute('aria-label', `attention of tokens ${this.start}–${this.start + size - 1} (rows: from, columns: to)`);
    this.caption.textContent = `Tokens ${this.start}–${this.start + size - 1} of ${n}: rows attend to columns, each row on its own scale.${n > size ? ' The wheel scrolls;' : ''} A click picks the row and goes to the column’s token; ↑/↓ move the row.`;
    const ctx = this.canvas.getContext('2d');
    if (!ctx) {
      return;
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const styles = getComputedStyle(this.node);
    ctx.fillStyle = styles.getPropertyValue('--jp-layout-color1').trim() || '#fff';
    ctx.fillRect(0, 0, width, width);
    ctx.strokeStyle = styles.getPropertyValue('--jp-border-color2').trim() || '#ddd';
    ctx.lineWidth = 0.5;
    for (let r = 0; r < size; r++) {
      const q = this.start + r;
      const row = data.onText(s.layer, s.heads, q).weights;
      let max = 0;
      for (let c = 0; c <= r; c++) {
        max = Math.max(max, row[this.start + c]);
      }
      for (let c = 0; c <= r; c++) {
        const w = row[this.start + c];
        if (w > 0) {
          // each row on its own scale, as the editor does
          ctx.fillStyle = attentionColor(w / (max || 1));
          ctx.fillRect(c * cell, r * cell, cell, cell);
        }
      }
      // the causal edge
      ctx.strokeRect(0, r * cell, (r + 1) * cell, cell);
    }
    if (s.token !== null && s.token >= this.start && s.token < this.start + size) {
      ctx.strokeStyle = styles.getPropertyValue('--jp-brand-color1').trim() || '#1976d2';
      ctx.lineWidth = 2;
      ctx.strokeRect(1, (s.token - this.start) * cell + 1, width - 2, cell - 2);
    }
  }

  private renderSources(data: Attention, s: AttentionState): void {
    this.sources.replaceChildren();
    const heads = s.heads.map(h => `H${h}`).join('+');
    if (s.token === null) {
      this.legend.textContent = `L${s.layer} ${heads}: hover a token in the editor (attention mode) or click a row above.`;
      return;
    }
    const t = this.focus(data, s);
    const on = data.onText(s.layer, s.heads, t);
    const ranked = Array.from(on.weights, (w, i) => ({ i, w })).filter(x => x.w > 0).sort((a, b) => b.w - a.w);
    const max = ranked[0]?.w ?? 0;
    // the BOS among the kept sources of every chosen head, else its weight is below the kept ones
    const bosKept = s.heads.every(h => data.row(s.layer, h, t).some(x => x.source === BOS));
    this.legend.replaceChildren(
      el('span', 'ls-attention-query', `From “${visible(data.tokenString(t))}” (token ${t}), L${s.layer} ${heads}${s.heads.length > 1 ? ' (mean)' : ''}: `),
      el('span', 'ls-attention-bos', bosKept ? `BOS: ${fmt(on.bos)}` : `BOS: below the ${data.k} strongest`),
      el('span', '', on.context > 0 ? ` · context: ${fmt(on.context)}` : ''),
      el('br'),
      el('span', 'ls-attention-scale', `Colours are scaled by the row’s largest weight on the text (${fmt(max)}): faint weights stay visible.`)
    );
    for (const { i, w } of ranked.slice(0, 8)) {
      const item = el('li', 'ls-attention-source');
      item.dataset.token = String(i);
      item.tabIndex = 0;
      const swatch = el('span', 'ls-swatch');
      swatch.style.backgroundColor = attentionColor(w / (max || 1));
      item.append(swatch, el('code', '', visible(data.tokenString(i))), el('span', 'ls-muted', ` #${i} `), el('span', 'ls-attention-weight', fmt(w)));
      item.addEventListener('click', () => void this.commands.execute(CommandIDs.revealToken, { index: i }));
      item.addEventListener('keydown', e => e.key === 'Enter' && void this.commands.execute(CommandIDs.revealToken, { index: i }));
      this.sources.append(item);
    }
  }

  private cellAt(e: MouseEvent): { row: number; col: number } | null {
    const size = Number(this.canvas.dataset.size ?? 0);
    const rect = this.canvas.getBoundingClientRect();
    if (!size || !rect.width) {
      return null;
    }
    const col = Math.floor(((e.clientX - rect.left) / rect.width) * size);
    const row = Math.floor(((e.clientY - rect.top) / rect.height) * size);
    return row >= 0 && row < size && col >= 0 && col <= row ? { row: this.start + row, col: this.start + col } : null;
  }

  private hoverCell(e: MouseEvent): void {
    const data = this.state.data;
    const cell = this.cellAt(e);
    if (!data || !cell) {
      this.canvas.title = '';
      return;
    }
    const w = data.onText(this.state.layer, this.state.heads, cell.row).weights[cell.col];
    this.canvas.title = `“${visible(data.tokenString(cell.row))}” #${cell.row} → “${visible(data.tokenString(cell.col))}” #${cell.col}: ${fmt(w)}`;
  }

  private clickCell(e: MouseEvent): void {
    const cell = this.cellAt(e);
    if (cell) {
      this.model.updateAttention({ token: cell.row });
      void this.commands.execute(CommandIDs.revealToken, { index: cell.col });
    }
  }

  private scroll(e: WheelEvent): void {
    const data = this.state.data;
    if (!data || data.nTokens <= WINDOW) {
      return;
    }
    e.preventDefault();
    this.start = Math.max(0, Math.min(this.start + Math.sign(e.deltaY) * 4, data.nTokens - WINDOW));
    const s = this.state;
    this.renderMap(data, { ...s, token: null });
  }

  /** Keyboard: ↑ / ↓ move the token attended from, Enter reveals it. */
  private key(e: KeyboardEvent): void {
    const data = this.state.data;
    if (!data) {
      return;
    }
    const t = this.focus(data, this.state);
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      this.model.updateAttention({ token: Math.max(0, Math.min(data.nTokens - 1, t + (e.key === 'ArrowDown' ? 1 : -1))) });
    } else if (e.key === 'Enter') {
      void this.commands.execute(CommandIDs.revealToken, { index: t });
    }
  }
}
