/**
 * A neuron's card, a main-area tab: its top corpus examples coloured by activation (with the
 * scale), what it reads (the tokens that raise it, from the weights), its direct effect on the
 * logits, and its activation histogram with axes. An example
 * opens where it came from: the workspace file (a notebook at its cell), or, for a file that is
 * not in this workspace (a shipped index), the text the index stored.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { LenscopeApiError, NeuronCard, NeuronExample, NeuronInputs, SampleExample } from '../api/client';
import { activationColor } from '../colors';
import { describe } from '../errors';
import type { JobView } from '../jobs';
import { el, fmt, visible } from '../format';
import type { LenscopeModel } from '../model';
import { CommandIDs } from '../tokens';
import { copyCodeButton } from './copycode';
import { IndexPicker } from './indexpicker';
import { moveInList } from './analysis';
import { activationLegend } from './legend';
import { TestOnText } from './testontext';

export interface CardArgs {
  model: string;
  layer: number;
  index: number;
}

export function cardLabel(a: CardArgs): string {
  return `L${a.layer}.N${a.index} · ${a.model}`;
}

/** Arguments of the command that opens where an example came from. */
export function exampleTarget(card: NeuronCard, ex: NeuronExample | SampleExample): { command: string; args: Record<string, string | number | null> } {
  const end = ex.max_char_start + Array.from(ex.tokens[ex.max_token] ?? '').length;
  if (ex.available) {
    return { command: CommandIDs.openAt, args: { path: ex.file, cell: ex.cell, start: ex.max_char_start, end } };
  }
  return { command: CommandIDs.openStored, args: { index: card.index_path, path: ex.file, start: ex.max_char_start, end, context_start: ex.char_start, context_end: ex.char_end } };
}

export const INPUTS_NOTE = 'Each token’s embedding alone through the LayerNorm into the pre-activation: an approximation that ignores position and attention.';

/** The input side: the tokens that most raise the neuron's pre-activation on their own. */
export function inputsBox(inputs: NeuronInputs | Error): HTMLElement {
  const box = el('div', 'ls-effect ls-inputs');
  box.append(el('h4', '', 'Inputs (from the weights): raise it most'), el('div', 'ls-muted ls-head-note', INPUTS_NOTE));
  if (inputs instanceof Error) {
    box.append(el('div', 'ls-error', describe(inputs)));
    return box;
  }
  for (const e of inputs.inputs) {
    const row = el('div', 'ls-effect-row ls-input-row');
    row.dataset.id = String(e.id);
    row.dataset.value = String(e.value);
    row.append(el('code', 'ls-tooltip-token', visible(e.token)), el('span', 'ls-num', ` ${fmt(e.value)}`));
    box.append(row);
  }
  return box;
}

/** A finished index job (a build, or an update after a save): the open cards fetch themselves again. */
export function refreshesCards(view: JobView): boolean {
  return view.job.kind === 'index' && view.job.state === 'done';
}

export class NeuronCardView extends Widget {
  card: NeuronCard | null = null;
  /** "Test on text": kept across reloads (the typed text stays) */
  private readonly tester: TestOnText;
  /** the input side, read from the weights: fetched once, an index update does not change it */
  private inputs: Promise<NeuronInputs | Error> | null = null;
  /** how many times the card was fetched (a finished index job fetches it again) */
  private loads = 0;

  constructor(
    readonly args: CardArgs,
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry
  ) {
    super();
    this.addClass('ls-card-view');
    this.node.tabIndex = -1;
    this.node.dataset.layer = String(args.layer);
    this.node.dataset.index = String(args.index);
    this.node.dataset.model = args.model;
    this.node.append(el('p', 'ls-spinner', `Loading the card of ${cardLabel(args)}…`));
    this.tester = new TestOnText({ model: args.model, name: `L${args.layer}.N${args.index}`, sae: null }, model);
    model.jobs.changed.connect(this.onJob, this);
    model.indexChanged.connect(this.onIndex, this); // another index picked for the model: read it
    void this.load();
  }

  dispose(): void {
    this.tester.dispose();
    this.model.jobs.changed.disconnect(this.onJob, this);
    this.model.indexChanged.disconnect(this.onIndex, this);
    super.dispose();
  }

  private onIndex(): void {
    if (!this.isDisposed && this.card?.index_path !== this.model.indexFor(this.args.model, null)) {
      void this.load();
    }
  }

  private onJob(_: unknown, view: JobView): void {
    if (refreshesCards(view) && !this.isDisposed) {
      void this.load(); // the old card stays on screen until the new one is here
    }
  }

  /** "Ablate in the current analysis": zero this neuron at every position of the analyzed text. */
  private ablateBar(): HTMLElement {
    const { model, layer, index } = this.args;
    const bar = el('div', 'ls-ablate-bar');
    const button = el('button', 'ls-action ls-ablate-card', 'Ablate in the current analysis');
    button.title = `Zero L${layer}.N${index} at every position of the analyzed text and re-run it: the text is coloured by the change in log-prob (the panel's Interventions list can change the op)`;
    button.addEventListener('click', () => void this.commands.execute(CommandIDs.ablate, { model, component: 'neuron', layer, index }));
    bar.append(button, copyCodeButton('this neuron\'s logit effects and inputs from the weights', () => ({ kind: 'neuronCardSnippet', request: { model, layer, index } }), 'ls-action ls-copy-code'));
    return bar;
  }

  private async load(): Promise<void> {
    const { model, layer, index } = this.args;
    // the input side is read from the weights: it needs no index, and its failure is its own
    const inputs = (this.inputs ??= this.model.neuronInputs(model, layer, index).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
    const load = ++this.loads;
    try {
      const card = await this.model.neuronCard(model, layer, index);
      if (load !== this.loads || this.isDisposed) {
        return; // a newer fetch is under way
      }
      this.card = card;
      const rendered = renderCard(card, this.commands, await inputs);
      rendered.querySelector('h2')?.after(this.ablateBar(), new IndexPicker(this.model, () => model).node);
      this.tester.setCard(card);
      placeTester(rendered, this.tester.node);
      const top = this.node.scrollTop; // a refreshed card stays where the reader was
      this.node.replaceChildren(rendered);
      this.node.scrollTop = top;
      this.node.dataset.loads = String(load);
    } catch (err) {
      if (load !== this.loads || this.isDisposed) {
        return;
      }
      this.node.dataset.loads = String(load);
      const missing = err instanceof LenscopeApiError && err.code === 'index_not_found';
      this.node.replaceChildren(
        el('h2', '', `Neuron L${layer}.N${index} of ${model}`),
        el('p', missing ? 'ls-muted' : 'ls-error', missing ? `No neuron index for ${model} yet: “Index the workspace” in the lenscope panel builds one.` : describe(err)),
        inputsBox(await inputs),
        this.tester.node
      );
      this.node.querySelector('h2')?.after(this.ablateBar());
    }
  }
}

/** "Test on text" goes right below the description (what it tests), else below the card's first lines. */
export function placeTester(root: HTMLElement, tester: HTMLElement): void {
  const after = root.querySelector('.ls-card-description') ?? root.querySelector('h2 ~ p.ls-muted') ?? root.querySelector('h2');
  if (after) {
    after.after(tester);
  } else {
    root.append(tester);
  }
}

export function renderCard(card: NeuronCard, commands: CommandRegistry, inputs?: NeuronInputs | Error): HTMLElement {
  const root = el('div', 'ls-card');
  root.dataset.layer = String(card.layer);
  root.dataset.index = String(card.index);
  const unit = card.sae ? 'feature' : 'neuron'; // an SAE feature's card (views/featurecard.ts) says feature
  if (card.sae) {
    root.dataset.sae = card.sae;
  }
  root.append(
    el('h2', '', card.sae ? `Feature F${card.index} · ${card.sae}` : `Neuron L${card.layer}.N${card.index} of ${card.model}`),
    el('p', 'ls-muted', `From the index “${card.index_path}”: max ${fmt(card.stats.max ?? NaN)}, mean ${fmt(card.stats.mean, 3)} over ${card.stats.count.toLocaleString()} tokens.`)
  );
  const d = card.description;
  if (d) {
    // chosen on half the index's files, scored on the other half (docs/core.md)
    const line = el('p', 'ls-card-description', d.text);
    line.title =
      `Fires: above ${fmt(d.threshold)} (half its max on the files the pattern was chosen on). On the other files the pattern ` +
      `occurs ${d.occurs} times, the ${unit} fires ${d.fires} times, both ${d.both}. It matches ${d.examples_matched} of the ` +
      `${d.examples_chosen} top examples it was chosen from.` +
      (d.categories.length ? ` Kinds: ${d.categories.join(', ')}.` : '');
    root.append(line, el('p', 'ls-muted ls-card-metrics', `Metrics: ${d.metrics}.`));
  }
  if (card.firing) {
    const f = card.firing;
    const above = f.threshold === null ? '' : ` (above ${fmt(f.threshold)})`;
    root.append(
      el('p', 'ls-muted ls-card-firing', `Fires${above} on ${(100 * f.above_threshold).toFixed(2)}% of ${f.tokens.toLocaleString()} tokens; above 0 on ${(100 * f.above_zero).toFixed(2)}%.`)
    );
  }

  const effects = el('div', 'ls-effects');
  if (inputs) {
    effects.append(inputsBox(inputs));
  }
  for (const [title, list] of [
    ['boosts', card.logit_boosted],
    ['suppresses', card.logit_suppressed]
  ] as const) {
    const box = el('div', 'ls-effect');
    box.append(el('h4', '', card.sae ? `Direct effect on the logits (decoder direction → W_out → W_U): ${title}` : `Direct effect on the logits: ${title}`));
    for (const e of list) {
      const row = el('div', 'ls-effect-row');
      row.append(el('code', 'ls-tooltip-token', visible(e.token)), el('span', 'ls-num', ` ${fmt(e.value)}`));
      box.append(row);
    }
    effects.append(box);
  }
  const hist = el('div', 'ls-effect ls-histogram-box');
  hist.append(el('h4', '', 'Activation histogram over the corpus'), histogram(card.histogram.counts, card.histogram.edges, card.stats.max));
  effects.append(hist);
  root.append(effects);

  const top = Math.max(0, ...card.examples.map(e => Math.max(...e.activations)));
  root.append(el('h4', '', `Top ${card.examples.length} examples`), activationLegend('activation', top));
  const list = el('div', 'ls-examples');
  card.examples.forEach((ex, j) => {
    const item = el('div', 'ls-example');
    item.dataset.example = String(j);
    const head = el('div', 'ls-example-head');
    const where = ex.cell === null ? ex.file : `${ex.file} · cell ${ex.cell + 1}`;
    const link = el('a', 'ls-example-file', where);
    link.href = '#';
    link.dataset.available = String(ex.available);
    link.dataset.file = ex.file;
    link.title = ex.available ? 'Open the file at this place' : 'Not in this workspace: open the text the index stored (read-only)';
    link.tabIndex = j === 0 ? 0 : -1;
    link.addEventListener('click', event => {
      event.preventDefault();
      const { command, args } = exampleTarget(card, ex);
      void commands.execute(command, args);
    });
    head.append(el('span', 'ls-num', `${fmt(ex.value)} `), link);
    if (!ex.available) {
      head.append(el('span', 'ls-muted', ' (stored text)'));
    }
    item.append(head);
    const line = el('div', 'ls-example-tokens');
    // colours on the card's one scale (the legend above), so examples compare with each other
    ex.tokens.forEach((t, i) => {
      const span = el('span', i === ex.max_token ? 'ls-flow-token ls-max' : 'ls-flow-token', visible(t));
      span.style.backgroundColor = activationColor(ex.activations[i], top);
      span.title = `activation ${fmt(ex.activations[i], 3)}`;
      line.append(span);
    });
    item.append(line);
    list.append(item);
  });
  list.addEventListener('keydown', event => moveInList(event, list, '.ls-example-file', i => list.querySelectorAll<HTMLElement>('.ls-example-file')[i].click()));
  root.append(list);
  root.append(...sampleSections(card, commands, top));
  return root;
}

/** One sampled example (a quantile or random one): its context, only its own token coloured (the index keeps only its activation). */
function sampleItem(card: NeuronCard, ex: SampleExample, commands: CommandRegistry, top: number): HTMLElement {
  const item = el('div', 'ls-sample');
  const head = el('div', 'ls-example-head');
  const link = el('a', 'ls-example-file', ex.cell === null || ex.cell === undefined ? ex.file : `${ex.file} · cell ${ex.cell + 1}`);
  link.href = '#';
  link.tabIndex = -1;
  link.addEventListener('click', event => {
    event.preventDefault();
    const { command, args } = exampleTarget(card, ex);
    void commands.execute(command, args);
  });
  head.append(el('span', 'ls-num', `${fmt(ex.value)} `), link);
  const line = el('div', 'ls-example-tokens');
  ex.tokens.forEach((t, i) => {
    const span = el('span', i === ex.max_token ? 'ls-flow-token ls-max' : 'ls-flow-token', visible(t));
    if (i === ex.max_token) {
      span.style.backgroundColor = activationColor(ex.value, top);
      span.title = `activation ${fmt(ex.value, 3)}`;
    }
    line.append(span);
  });
  item.append(head, line);
  return item;
}

/** Examples from each activation interval and at random where the unit fires, or a note that the index has none. */
export function sampleSections(card: NeuronCard, commands: CommandRegistry, top: number): HTMLElement[] {
  if (!card.quantiles) {
    return [el('p', 'ls-muted ls-no-quantiles', 'No examples by activation interval: this index was built before them (rebuild it to record them).')];
  }
  const box = el('div', 'ls-quantiles');
  box.append(el('h4', '', 'Examples by activation interval (5 at random from each tenth of (0, max])'));
  for (const q of card.quantiles) {
    const section = el('div', 'ls-quantile');
    section.append(el('div', 'ls-muted', `${fmt(q.low, 3)} – ${fmt(q.high, 3)}${q.examples.length ? '' : ': no tokens'}`));
    q.examples.forEach(ex => section.append(sampleItem(card, ex, commands, top)));
    box.append(section);
  }
  const random = el('div', 'ls-random-examples');
  random.append(el('h4', '', 'Random examples where it fires'));
  (card.random_examples ?? []).forEach(ex => random.append(sampleItem(card, ex, commands, top)));
  return [box, random];
}

/** The plot's height in px (bars on a log count scale). */
export const HISTOGRAM_HEIGHT = 120;

/**
 * The part of a histogram worth drawing: from the lower edge of its first non-empty bin to its
 * maximum observed value (`max`, else the upper edge of its last non-empty bin). Bins are
 * [edges[i-1], edges[i]) with an open bin below the first edge and one above the last.
 * `first`/`last`: the bins drawn; `lo`/`hi`: the x axis' range.
 */
export function histogramRange(counts: number[], edges: number[], max: number | null): { first: number; last: number; lo: number; hi: number } {
  let first = counts.findIndex(c => c > 0);
  let last = counts.length - 1 - [...counts].reverse().findIndex(c => c > 0);
  if (first < 0) {
    first = 1;
    last = counts.length - 2; // nothing counted: the edges' range
  }
  const lower = (i: number) => (i === 0 ? edges[0] - (edges[1] - edges[0]) : edges[i - 1]);
  const upper = (i: number) => (i >= edges.length ? edges[edges.length - 1] + (edges[1] - edges[0]) : edges[i]);
  const lo = lower(first);
  let hi = max !== null && Number.isFinite(max) && max > lo ? max : upper(last);
  if (hi <= lo) {
    hi = upper(last);
  }
  return { first, last, lo, hi };
}

/** Round tick values (1, 2 or 5 times a power of ten apart) within [lo, hi]: about `n` of them. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo;
  if (!(span > 0)) {
    return [lo];
  }
  const raw = span / n;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map(m => m * power).find(s => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

/**
 * Bars on a log count scale over the unit's own range (its first non-empty bin to its maximum),
 * each bar as wide as the part of its bin in that range, with both axes labelled: counts on the
 * left, round activation values below. Bins outside the range stay in the DOM, hidden (each
 * `.ls-bar` is one bin of the index's histogram, its title the bin and count).
 */
function histogram(counts: number[], edges: number[], max: number | null): HTMLElement {
  const box = el('div', 'ls-histogram-figure');
  const { first, last, lo, hi } = histogramRange(counts, edges, max);
  box.dataset.lo = String(lo);
  box.dataset.hi = String(hi);
  const logs = counts.map(c => Math.log1p(c));
  const top = Math.max(...logs, 1);
  const peak = Math.max(...counts, 0);
  const yAxis = el('div', 'ls-axis-y');
  yAxis.style.height = `${HISTOGRAM_HEIGHT}px`;
  yAxis.append(el('span', '', peak.toLocaleString()), el('span', 'ls-axis-title', 'tokens (log)'), el('span', '', '0'));
  const plot = el('div', 'ls-histogram');
  plot.style.height = `${HISTOGRAM_HEIGHT}px`;
  counts.forEach((c, i) => {
    const bar = el('div', 'ls-bar');
    const lower = i === 0 ? -Infinity : edges[i - 1];
    const upper = i === edges.length ? Infinity : edges[i];
    const width = Math.min(hi, upper) - Math.max(lo, lower);
    if (i < first || i > last || !(width > 0)) {
      bar.hidden = true; // outside the unit's range: nothing counted there
    } else {
      bar.style.flex = `${width} 1 0`;
    }
    bar.style.height = `${Math.round((HISTOGRAM_HEIGHT * logs[i]) / top)}px`;
    const loText = i === 0 ? '-∞' : fmt(edges[i - 1], 2);
    const hiText = i === edges.length ? '∞' : fmt(edges[i], 2);
    bar.title = `[${loText}, ${hiText}): ${c.toLocaleString()}`;
    plot.append(bar);
  });
  // round values along the x axis, each at its place; the range's ends in the title line
  const xAxis = el('div', 'ls-axis-x');
  for (const v of ticks(lo, hi)) {
    const tick = el('span', 'ls-axis-tick', fmt(v, Math.abs(v) >= 10 || Number.isInteger(v) ? 0 : 1));
    tick.style.left = `${(100 * (v - lo)) / (hi - lo)}%`;
    xAxis.append(tick);
  }
  const title = el('div', 'ls-axis-x-title');
  title.append(el('span', '', fmt(lo, 2)), el('span', 'ls-axis-title', 'activation'), el('span', '', `max ${fmt(hi, 2)}`));
  const right = el('div', 'ls-histogram-plot');
  right.append(plot, xAxis, title);
  box.append(yAxis, right);
  return box;
}
