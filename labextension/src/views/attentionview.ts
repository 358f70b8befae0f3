/**
 * The full attention view (`POST attention` with k at least the window's length: the whole
 * pattern): every head of a layer side by side as a small pattern (the way CircuitsVis's
 * attention heads view works, drawn here on canvases, offline), and the chosen head's pattern
 * large with the tokens labelled on both axes: rows attend from, columns are attended to (the
 * BOS and the context before the text first). Hover a cell for its weight; click it to pick
 * that row. Pure DOM from an `Attention`: the main-area view, the head card's "on the current
 * text" section and the notebook output share it.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { Attention } from '../api/attention';
import { attentionColor } from '../colors';
import { describe } from '../errors';
import { el, fmt, visible } from '../format';
import type { LenscopeModel } from '../model';
import { describeTarget } from '../target';
import { CommandIDs } from '../tokens';
import { copyCodeButton } from './copycode';

/** k for `POST attention` that keeps every source of the window (the server trims it to the window's length). */
export const FULL_K = 1024;

/** A column of the pattern: the BOS (-1), the context before the text (-2), or a text token. */
export interface PatternColumns {
  sources: number[];
  labels: string[];
}

/** The columns of a layer's patterns: the BOS, the context (when any head reads it), the text tokens. */
export function patternColumns(att: Attention, layer: number, labels: string[]): PatternColumns {
  let context = false;
  for (let h = 0; h < att.nHeads && !context; h++) {
    for (let q = 0; q < att.nTokens && !context; q++) {
      context = att.onText(layer, [h], q).context > 0;
    }
  }
  const sources = [-1, ...(context ? [-2] : []), ...labels.map((_, i) => i)];
  return { sources, labels: sources.map(s => (s === -1 ? 'BOS' : s === -2 ? 'context' : visible(labels[s]) || '\u2205')) };
}

/** Head (layer, head)'s weights from each text token on each column: [rows][columns]. */
export function patternMatrix(att: Attention, layer: number, head: number, columns: PatternColumns): number[][] {
  const out: number[][] = [];
  for (let q = 0; q < att.nTokens; q++) {
    const on = att.onText(layer, [head], q);
    out.push(columns.sources.map(s => (s === -1 ? on.bos : s === -2 ? on.context : on.weights[s])));
  }
  return out;
}

function draw(canvas: HTMLCanvasElement, matrix: number[][], cell: number, highlight: number | null = null): void {
  const rows = matrix.length;
  const cols = matrix[0]?.length ?? 0;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(cols * cell * ratio));
  canvas.height = Math.max(1, Math.round(rows * cell * ratio));
  canvas.style.width = `${cols * cell}px`;
  canvas.style.height = `${rows * cell}px`;
  const ctx = canvas.getContext('2d');
  if (!ctx) {
    return;
  }
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  // no background: the theme's shows through (light and dark), the weights in translucent orange
  const styles = getComputedStyle(document.body);
  ctx.clearRect(0, 0, cols * cell, rows * cell);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const w = matrix[r][c];
      if (w > 0) {
        ctx.fillStyle = attentionColor(w);
        ctx.fillRect(c * cell, r * cell, cell, cell);
      }
    }
  }
  if (cell >= 6) {
    ctx.strokeStyle = styles.getPropertyValue('--jp-border-color3').trim() || '#eee';
    ctx.lineWidth = 0.5;
    ctx.strokeRect(0.25, 0.25, cols * cell - 0.5, rows * cell - 0.5);
  }
  if (highlight !== null && highlight >= 0 && highlight < rows) {
    ctx.strokeStyle = styles.getPropertyValue('--jp-brand-color1').trim() || '#1976d2';
    ctx.lineWidth = 2;
    ctx.strokeRect(1, highlight * cell + 1, cols * cell - 2, cell - 2);
  }
}

export interface PatternOptions {
  /** a click on a cell: (query text token, source column: text token index, -1 BOS, -2 context) */
  onPick?: (query: number, source: number) => void;
  /** the readout line to write hovered numbers into (default: its own, above the pattern) */
  readout?: HTMLElement;
}

/**
 * One head's pattern, large, with the tokens on both axes: a canvas of cells (colour: the weight,
 * 0 to 1, the same orange as the editor's attention) between row labels (from) and column
 * labels (to). Hover: the readout says "from → to: weight" (and carries it in its data).
 */
export function renderPattern(att: Attention, layer: number, head: number, labels: string[], options: PatternOptions = {}): HTMLElement {
  const columns = patternColumns(att, layer, labels);
  const matrix = patternMatrix(att, layer, head, columns);
  const n = matrix.length;
  const cell = Math.max(12, Math.min(20, Math.floor(760 / Math.max(1, columns.sources.length))));
  const root = el('div', 'ls-pattern');
  root.dataset.layer = String(layer);
  root.dataset.head = String(head);
  root.style.setProperty('--ls-cell', `${cell}px`);
  const readout = options.readout ?? el('div', 'ls-pattern-readout ls-muted', `L${layer}H${head}: hover a cell for its weight`);
  readout.setAttribute('aria-live', 'polite');
  const grid = el('div', 'ls-pattern-grid');
  const corner = el('div', 'ls-pattern-corner ls-muted', 'from ↓ · to →');
  const top = el('div', 'ls-pattern-cols');
  columns.labels.forEach((label, c) => {
    const t = el('div', 'ls-pattern-col', label);
    t.dataset.source = String(columns.sources[c]);
    t.title = columns.sources[c] >= 0 ? `token ${columns.sources[c]}: ${label}` : label;
    top.append(t);
  });
  const left = el('div', 'ls-pattern-rows');
  for (let q = 0; q < n; q++) {
    const t = el('div', 'ls-pattern-row', visible(labels[q]) || '\u2205');
    t.dataset.token = String(q);
    t.title = `token ${q}: ${visible(labels[q])}`;
    left.append(t);
  }
  const canvas = el('canvas', 'ls-pattern-map');
  canvas.dataset.layer = String(layer);
  canvas.dataset.head = String(head);
  canvas.dataset.cell = String(cell);
  canvas.dataset.sources = JSON.stringify(columns.sources);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `attention of L${layer}H${head}: ${n} rows (from) by ${columns.sources.length} columns (to)`);
  let picked: number | null = null;
  draw(canvas, matrix, cell);
  const at = (e: MouseEvent): { q: number; c: number } | null => {
    const rect = canvas.getBoundingClientRect();
    const c = Math.floor((e.clientX - rect.left) / cell);
    const q = Math.floor((e.clientY - rect.top) / cell);
    return q >= 0 && q < n && c >= 0 && c < columns.sources.length ? { q, c } : null;
  };
  canvas.addEventListener('mousemove', e => {
    const hit = at(e);
    if (!hit) {
      return;
    }
    const w = matrix[hit.q][hit.c];
    const line = `L${layer}H${head}: from ${visible(labels[hit.q])} #${hit.q} → ${columns.labels[hit.c]}${columns.sources[hit.c] >= 0 ? ` #${columns.sources[hit.c]}` : ''}: ${fmt(w, 3)}`;
    canvas.title = line;
    readout.textContent = line;
    readout.dataset.layer = String(layer);
    readout.dataset.head = String(head);
    readout.dataset.query = String(hit.q);
    readout.dataset.source = String(columns.sources[hit.c]);
    readout.dataset.weight = String(w);
  });
  canvas.addEventListener('click', e => {
    const hit = at(e);
    if (hit) {
      picked = hit.q;
      draw(canvas, matrix, cell, picked);
      options.onPick?.(hit.q, columns.sources[hit.c]);
    }
  });
  grid.append(corner, top, left, canvas);
  if (!options.readout) {
    root.append(readout);
  }
  const scroller = el('div', 'ls-pattern-scroll');
  scroller.append(grid);
  root.append(scroller);
  return root;
}

export interface HeadsOptions extends PatternOptions {
  head?: number;
  /** the layer select's choices (all the model's layers); without it, the response's layers */
  nLayers?: number;
  onLayer?: (layer: number) => void;
}

/**
 * Every head of `layer` side by side (small patterns, each with its positional share), the chosen
 * one (a click on another chooses it) large below, labelled.
 */
export function renderAttentionHeads(att: Attention, layer: number, labels: string[], options: HeadsOptions = {}): HTMLElement {
  const root = el('div', 'ls-attention-heads-view');
  root.dataset.layer = String(layer);
  let head = Math.min(options.head ?? 0, att.nHeads - 1);
  const bar = el('div', 'ls-picture-bar');
  const layers = options.nLayers ? Array.from({ length: options.nLayers }, (_, l) => l) : att.layers;
  if (layers.length > 1) {
    const select = el('select', 'ls-attention-layer');
    select.setAttribute('aria-label', 'layer');
    select.append(...layers.map(l => new Option(`layer ${l}`, String(l))));
    select.value = String(layer);
    select.addEventListener('change', () => options.onLayer?.(Number(select.value)));
    bar.append(select);
  }
  const readout = el('div', 'ls-pattern-readout ls-muted', 'Hover a cell for its weight; click a head to show it large.');
  const thumbs = el('div', 'ls-attention-thumbs');
  thumbs.setAttribute('role', 'group');
  thumbs.setAttribute('aria-label', `the heads of layer ${layer}`);
  const big = el('div', 'ls-attention-big');
  const columns = patternColumns(att, layer, labels);
  const size = Math.min(6, 96 / Math.max(1, columns.sources.length));
  const choose = (h: number): void => {
    head = h;
    root.dataset.head = String(h);
    thumbs.querySelectorAll<HTMLElement>('.ls-attention-thumb').forEach(t => t.setAttribute('aria-pressed', String(Number(t.dataset.head) === h)));
    big.replaceChildren(renderPattern(att, layer, h, labels, { ...options, readout }));
  };
  for (let h = 0; h < att.nHeads; h++) {
    const thumb = el('button', 'ls-attention-thumb');
    thumb.dataset.head = String(h);
    const share = att.positionalShare(layer, h);
    const canvas = el('canvas', 'ls-attention-thumb-map');
    draw(canvas, patternMatrix(att, layer, h, columns), size);
    thumb.append(el('span', 'ls-attention-thumb-name', `L${layer}H${h}${Number.isFinite(share) ? ` · ${Math.round(share * 100)}% pos` : ''}`), canvas);
    thumb.title = `Show L${layer}H${h} large${Number.isFinite(share) ? ` (${Math.round(share * 100)}% of the spread of its scores comes from the keys' position)` : ''}`;
    thumb.addEventListener('click', () => choose(h));
    thumbs.append(thumb);
  }
  root.append(bar, thumbs, readout, big);
  choose(head);
  return root;
}

/** The attention view as a main-area tab, of the current analysis. */
export class AttentionPicturesView extends Widget {
  attention: Attention | null = null;
  private layer = 0;
  private head = 0;

  constructor(
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry,
    start: { layer?: number; head?: number } = {}
  ) {
    super();
    this.addClass('ls-picture-view');
    this.addClass('ls-attention-picture-view');
    this.node.tabIndex = -1;
    this.layer = start.layer ?? model.attention.layer ?? 0;
    this.head = start.head ?? model.attention.heads[0] ?? 0;
    void this.load();
  }

  private async load(): Promise<void> {
    const run = this.model.run;
    this.node.dataset.state = 'loading';
    if (!run) {
      this.node.dataset.state = 'error';
      this.node.replaceChildren(el('p', 'ls-error', 'Analyze some text first.'));
      return;
    }
    if (!this.node.childElementCount) {
      this.node.append(el('p', 'ls-spinner', 'Fetching the attention…'));
    }
    const request = { model: run.analysis.model, text: run.target.text, context: run.target.context, k: FULL_K, layers: [this.layer] };
    try {
      const att = await this.model.client.attention(request);
      this.attention = att;
      const labels = run.analysis.tokens.map(t => t.text);
      const nLayers = this.model.models.find(m => m.name === att.model)?.shape?.n_layers ?? 1;
      const title = el('h2', '', `Attention · ${describeTarget(run.target)}`);
      const sub = el('p', 'ls-muted', `${att.model} · ${att.nTokens} tokens · every head of layer ${this.layer} side by side; the chosen one large: rows attend from, columns are attended to (weights 0 to 1)`);
      const view = renderAttentionHeads(att, this.layer, labels, {
        head: this.head,
        nLayers,
        onLayer: layer => {
          this.layer = layer;
          void this.load();
        },
        onPick: (query, source) => {
          if (source >= 0) {
            void this.commands.execute(CommandIDs.revealToken, { index: source });
          }
          this.query = query;
        }
      });
      view.addEventListener('click', () => (this.head = Number(view.dataset.head ?? this.head)));
      const copy = copyCodeButton('this layer’s attention from the picked token', () => ({ kind: 'attentionSnippet', request: { ...request, token: this.query } }));
      view.querySelector('.ls-picture-bar')?.append(copy);
      this.node.replaceChildren(title, sub, view);
      this.node.dataset.state = 'ready';
    } catch (err) {
      this.node.dataset.state = 'error';
      this.node.replaceChildren(el('p', 'ls-error', `Could not fetch the attention: ${describe(err)}`));
    }
  }

  private query = 0;
}
