/** The hover tooltip of a token: predictions after it, the actual next token, its neurons, and why. */
import type { Analysis } from '../api/analysis';
import { Attribution, headParts, neuronParts, sumOfParts } from '../api/attribution';
import { LensColumn, rankLine } from '../api/logitlens';
import { clampedDiff, colorFor, deltaColor, surprise } from '../colors';
import { el, fmt, visible } from '../format';
import { ComponentRef, componentLabel, signedDelta } from '../interventions';
import { neuronPartLabel } from '../parts';
import { resolveToken } from '../resolve';
import { barTrack, extent, partLine, place, signed, waterfallParts, WfPart, WfPlaced } from '../views/waterfall';
import type { Annotation } from './annotation';
import { featureRow, OpenFeature } from './features';

/** What a tooltip's neuron chip does: injected by the plugin (open the neuron's card, recolour). */
export type OpenNeuron = (layer: number, index: number) => void;

/** What a tooltip can ask for: injected by the plugin (the model) and the editor extension. */
export interface TooltipActions {
  openNeuron: OpenNeuron;
  /** open SAE feature `index`'s card (the analysis' SAE) */
  openFeature?: OpenFeature;
  /**
   * the attribution of the prediction after text token `position` for `target` (null: actual
   * next); with `baseline`, of logit(target) − logit(baseline)
   */
  attribute: (position: number, target: number | null, baseline?: number | null) => Promise<Attribution | null>;
  /** open head (layer, head)'s card (a main-area tab) */
  openHead?: (model: string, layer: number, head: number) => void;
  /** colour, in the editor, the text tokens head (layer, head) attends to; false when it cleared it instead */
  toggleHead?: (a: Attribution, layer: number, head: number) => boolean;
  /** zero this neuron or head in the current analysis (every position; `position`: the token it came from) */
  ablate?: (what: ComponentRef, position: number) => void;
  /** "Copy as code" of a why view: the Python cell of this attribution onto the clipboard (`snippets.ts`) */
  copyWhyCode?: (button: HTMLElement, position: number, target: number | null, baseline: number | null) => void;
  /** open the parts of the prediction after text token `position` as a waterfall (a main-area tab) */
  openWaterfall?: (position: number, target: number | null, baseline: number | null) => void;
  /** open the logit lens at every token of the analysis as a heatmap (a main-area tab) */
  openLensHeatmap?: () => void;
  /** the logit lens at text token `position` (cached; it also becomes the panel's lens token) */
  logitLens?: (position: number) => Promise<LensColumn | null>;
}

/**
 * "lens: embed r812 · L0 r3 · L1 r1": the actual next token's rank after the embeddings and each
 * block (the logit lens), fetched lazily when the tooltip opens; the panel's Logit lens section
 * shows the whole of it.
 */
function lensLine(i: number, actions: TooltipActions): HTMLElement | null {
  if (!actions.logitLens) {
    return null;
  }
  const line = el('div', 'ls-tooltip-lens ls-muted', 'lens: …');
  line.dataset.state = 'loading';
  line.title = "The next token's rank after the embeddings and after each block, each read through the final LayerNorm and the unembedding (the logit lens; the panel's Logit lens section has the top tokens)";
  actions.logitLens(i).then(
    column => {
      if (!column) {
        line.remove();
        return;
      }
      line.textContent = column.next ? rankLine(column) : 'lens: the last token has no next token';
      if (actions.openLensHeatmap && line.parentElement) {
        const open = el('button', 'ls-why-head-card ls-lens-heatmap-link', 'heatmap');
        open.title = 'The logit lens at every token of the analysis, as a heatmap (a lenscope tab)';
        onPress(open, () => actions.openLensHeatmap!());
        line.after(open);
      }
      line.dataset.state = 'done';
      line.dataset.ranks = JSON.stringify(column.rows.map(r => r.actual?.rank ?? 0));
    },
    (err: unknown) => {
      line.textContent = `lens: ${err instanceof Error ? err.message : String(err)}`;
      line.dataset.state = 'error';
    }
  );
  return line;
}

/** A small "ablate" button beside a chip: zero the component everywhere in this analysis (it re-runs). */
function ablateButton(what: ComponentRef, position: number, actions: TooltipActions): HTMLButtonElement | null {
  if (!actions.ablate) {
    return null;
  }
  const label = componentLabel(what);
  const button = el('button', 'ls-ablate', '\u2715');
  button.dataset.component = what.component;
  button.dataset.layer = String(what.layer ?? '');
  button.dataset.index = String(what.index);
  button.title = `Ablate ${label}: zero it at every position and re-run this text (the panel's Interventions list changes it)`;
  button.setAttribute('aria-label', `ablate ${label}`);
  // not a Tab stop: Tab goes from chip to chip (Enter opens the card); x on a chip ablates it
  button.tabIndex = -1;
  onPress(button, () => actions.ablate!(what, position));
  return button;
}


/** Enter / Space on a focused element acts as a press (keyboard); mousedown keeps the editor's focus. */
function onPress(node: HTMLElement, act: () => void): void {
  node.addEventListener('mousedown', event => {
    event.preventDefault();
    act();
  });
  node.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      event.stopPropagation();
      act();
    }
  });
}

/**
 * A neuron's chip: a press (mouse, Enter, Space) colours the text by it and opens its card; with
 * `ablate`, x (or Delete) on the focused chip zeroes the neuron (its ✕ button is not a Tab stop).
 */
function neuronChip(layer: number, index: number, text: string, openNeuron: OpenNeuron, ablate?: () => void): HTMLButtonElement {
  const chip = el('button', 'ls-neuron-chip', text);
  chip.dataset.layer = String(layer);
  chip.dataset.index = String(index);
  chip.title = ablate ? 'Colour the text by this neuron and open its card (Enter); x: ablate it' : 'Colour the text by this neuron and open its card';
  if (ablate) {
    chip.addEventListener('keydown', event => {
      if ((event.key === 'x' || event.key === 'Delete') && !event.altKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        event.stopPropagation();
        ablate();
      }
    });
  }
  // mousedown, not click: the editor keeps its focus (and the hover tooltip stays)
  chip.addEventListener('mousedown', event => {
    event.preventDefault();
    openNeuron(layer, index);
  });
  // keyboard: Enter / Space on a focused chip (a click with no mouse press)
  chip.addEventListener('click', event => {
    if (event.detail === 0) {
      openNeuron(layer, index);
    }
  });
  return chip;
}

/** How many of the why view's parts it lists before a last "the other n parts" row (the tooltip is small). */
const WHY_ROWS = 12;

/** A head's line in the why view: its button (colour its sources), its card, ablate, its 3 strongest sources. */
function headLine(attr: Attribution, h: WfPart, actions: TooltipActions): HTMLElement[] {
  const out: HTMLElement[] = [];
  const button = el('button', 'ls-why-head', `${h.label} ${signed(h.value)}`);
  button.dataset.layer = String(h.layer);
  button.dataset.head = String(h.index);
  button.dataset.value = String(h.value);
  button.setAttribute('aria-pressed', 'false');
  button.title = 'Colour the tokens this head attends to from here (again or Esc: clear)';
  if (actions.toggleHead) {
    onPress(button, () => button.setAttribute('aria-pressed', String(actions.toggleHead!(attr, h.layer!, h.index!))));
  } else {
    button.disabled = true;
  }
  out.push(button);
  if (actions.openHead) {
    const card = el('button', 'ls-why-head-card', 'card');
    card.dataset.layer = String(h.layer);
    card.dataset.head = String(h.index);
    card.title = `Open the card of L${h.layer}.H${h.index}: what it copies (OV) and attends to (QK), from its weights`;
    card.setAttribute('aria-label', `open the card of head L${h.layer}.H${h.index}`);
    onPress(card, () => actions.openHead!(attr.model, h.layer!, h.index!));
    out.push(card);
  }
  const ablate = ablateButton({ component: 'head', layer: h.layer!, index: h.index! }, attr.position, actions);
  if (ablate) {
    out.push(ablate);
  }
  // one line: each source is its token and its part (the attention weight on hover)
  const sources = el('span', 'ls-why-sources');
  for (const src of attr.sources(h.layer!, h.index!).slice(0, 3)) {
    const s = el('span', 'ls-why-source');
    s.dataset.textIndex = String(src.textIndex);
    s.dataset.weight = String(src.weight);
    const where = src.textIndex < 0 ? (src.source === 0 ? ' BOS' : ' ctx') : '';
    s.title = `${visible(src.token)}${src.textIndex >= 0 ? ` (token ${src.textIndex})` : src.source === 0 ? ' (the BOS)' : ' (in the context)'}: part ${signed(src.value, 3)}, attention ${fmt(src.weight, 3)}`;
    s.append(el('code', 'ls-tooltip-token', visible(src.token)), el('span', 'ls-muted', ` ${signed(src.value)}${where}`));
    sources.append(s);
  }
  out.push(sources);
  return out;
}

/**
 * The why view's content for one attribution, a compact waterfall: the total, then the parts,
 * the decisive ones (largest |part|) first: each layer's MLP (its neurons one click deeper), the
 * strongest heads with their sources, the embeddings and biases; each with its bar from the
 * running sum before it to after it. The sum line closes it (kept in view: `.ls-why-footer`).
 */
export function buildWhy(attr: Attribution, actions: TooltipActions, targetLabel: string): HTMLElement {
  const box = el('div', 'ls-why-body');
  box.dataset.target = String(attr.target);
  box.dataset.value = String(attr.value);
  const title = el('div', 'ls-why-title');
  title.append(el('span', '', 'why '));
  title.append(el('code', 'ls-tooltip-token', visible(attr.tokenString(attr.target))));
  if (attr.baseline !== null) {
    box.dataset.baseline = String(attr.baseline);
    title.append(el('span', '', ' vs '), el('code', 'ls-tooltip-token', visible(attr.tokenString(attr.baseline))));
  }
  title.append(el('span', 'ls-muted', ` (${targetLabel}) · direct parts, largest |part| first`));
  if (actions.openWaterfall) {
    const open = el('button', 'ls-why-waterfall', 'waterfall');
    open.title = 'Open these parts as a waterfall in a lenscope tab (every head, the MLP neurons and features)';
    onPress(open, () => actions.openWaterfall!(attr.position, attr.target, attr.baseline));
    title.append(open);
  }
  box.append(title);

  const heads = new Set(headParts(attr).slice(0, 6).map(h => `${h.layer}.${h.index}`));
  let parts = waterfallParts(attr).filter(p => p.kind !== 'head' || heads.has(`${p.layer}.${p.index}`));
  const hiddenHeads = waterfallParts(attr).filter(p => p.kind === 'head' && !heads.has(`${p.layer}.${p.index}`));
  const tail = [...parts.slice(WHY_ROWS), ...hiddenHeads];
  parts = parts.slice(0, WHY_ROWS);
  if (tail.length) {
    parts.push({ kind: 'rest', label: `the other ${tail.length} parts`, value: tail.reduce((s, p) => s + p.value, 0) });
  }
  const what = attr.baseline === null ? 'centred logit' : `logit difference vs ${visible(attr.tokenString(attr.baseline))}`;
  const total: WfPlaced = { kind: 'total', label: what, value: attr.value, start: 0, end: attr.value };
  const placed = place(parts);
  const neurons = neuronParts(attr);
  const deeper = new Map<number, WfPlaced[]>();
  for (const p of placed) {
    if (p.kind === 'mlp') {
      deeper.set(p.layer!, place(neurons.filter(n => n.layer === p.layer).map(n => ({ kind: 'neuron' as const, label: n.label, value: n.value, layer: n.layer, index: n.index })), p.start));
    }
  }
  const [lo, hi] = extent([total, ...placed, ...[...deeper.values()].flat()]);
  const list = el('div', 'ls-why-parts');
  const line = (p: WfPlaced, className: string): HTMLElement => {
    const row = el('div', `ls-why-line ${className}`);
    row.dataset.kind = p.kind;
    row.dataset.value = String(p.value);
    row.title = partLine(p);
    row.append(barTrack(p, lo, hi));
    return row;
  };
  const totalRow = line(total, 'ls-why-part ls-why-total');
  totalRow.append(el('span', 'ls-why-label', `${what} ${signed(attr.value)}`));
  list.append(totalRow);
  for (const p of placed) {
    if (p.kind === 'head') {
      const row = line(p, 'ls-why-head-line');
      row.append(...headLine(attr, p, actions));
      list.append(row);
    } else if (p.kind === 'mlp') {
      const row = line(p, 'ls-why-mlp-line');
      const chips = el('div', 'ls-why-neurons');
      chips.hidden = true;
      chips.dataset.layer = String(p.layer);
      for (const n of deeper.get(p.layer!) ?? []) {
        const ablate = ablateButton({ component: 'neuron', layer: n.layer!, index: n.index! }, attr.position, actions);
        const chip = neuronChip(n.layer!, n.index!, `${n.label} ${signed(n.value)}`, actions.openNeuron, ablate ? () => actions.ablate!({ component: 'neuron', layer: n.layer!, index: n.index! }, attr.position) : undefined);
        chip.classList.add('ls-why-neuron');
        chip.dataset.value = String(n.value);
        chips.append(chip);
        if (ablate) {
          chips.append(ablate);
        }
      }
      const n = chips.querySelectorAll('.ls-why-neuron').length;
      const toggle = el('button', 'ls-why-mlp', `\u25b8 ${p.label} ${signed(p.value)}`);
      toggle.dataset.layer = String(p.layer);
      toggle.dataset.value = String(p.value);
      toggle.setAttribute('aria-expanded', 'false');
      toggle.title = `All neurons of layer ${p.layer} together; ${n ? `click for its ${n} listed neurons (largest |part| first)` : 'none listed'}`;
      onPress(toggle, () => {
        chips.hidden = !chips.hidden;
        toggle.setAttribute('aria-expanded', String(!chips.hidden));
        toggle.textContent = `${chips.hidden ? '\u25b8' : '\u25be'} ${p.label} ${signed(p.value)}`;
      });
      row.append(toggle);
      list.append(row, chips);
    } else {
      const row = line(p, 'ls-why-part');
      row.append(el('span', 'ls-why-label', `${p.label} ${signed(p.value)}`));
      list.append(row);
    }
  }
  box.append(list);

  const footer = el('div', 'ls-why-footer');
  footer.append(
    el('div', 'ls-why-sum', `${what} ${fmt(attr.value, 3)} = sum of parts ${fmt(sumOfParts(attr), 3)}; final LayerNorm scale frozen at ${fmt(attr.lnScale, 3)}`)
  );
  box.append(footer);
  return box;
}

/** A text input of the why view's typed target: its keys stay its own (w, Enter), Esc goes on. */
function tokenInput(className: string, placeholder: string, label: string, onEnter: () => void): HTMLInputElement {
  const input = el('input', className);
  input.type = 'text';
  input.placeholder = placeholder;
  input.setAttribute('aria-label', label);
  input.spellcheck = false;
  input.addEventListener('keydown', event => {
    if (event.key === 'Escape') {
      return;
    }
    event.stopPropagation();
    if (event.key === 'Enter') {
      event.preventDefault();
      onEnter();
    }
  });
  return input;
}

/**
 * The "why" section of a tooltip: a toggle, and the view for the chosen target (the actual next
 * token unless `choose` was called with one of the top-10, or a token was typed: resolved among
 * the strings the analysis and the last attribution know), optionally against a typed baseline.
 */
class WhySection {
  readonly toggle: HTMLButtonElement;
  readonly root: HTMLElement;
  /** the typed target and baseline: below the why view (after it in the Tab order), shown with it */
  readonly form: HTMLElement;
  private readonly body: HTMLElement;
  private readonly typedTarget: HTMLInputElement;
  private readonly typedBaseline: HTMLInputElement;
  private readonly message: HTMLElement;
  private target: number | null = null;
  private baseline: number | null = null;
  private targetLabel = 'actual next token';
  private open = false;
  private seq = 0;
  private last: Attribution | null = null;

  constructor(
    private readonly position: number,
    private readonly actions: TooltipActions,
    private readonly known: () => Iterable<[number, string]>
  ) {
    this.toggle = el('button', 'ls-why-toggle', 'Why?');
    this.toggle.title = 'Which neurons, heads and embeddings pushed this prediction (w)';
    this.toggle.setAttribute('aria-expanded', 'false');
    onPress(this.toggle, () => this.setOpen(!this.open));
    this.root = el('div', 'ls-why');
    this.root.hidden = true;
    const form = el('div', 'ls-why-typed');
    form.hidden = true;
    this.form = form;
    this.typedTarget = tokenInput('ls-why-target-input', 'token…', 'explain this token (Enter)', () => this.explainTyped());
    this.typedBaseline = tokenInput('ls-why-baseline-input', 'optional', 'versus this token: logit difference (Enter)', () => this.explainTyped());
    this.message = el('span', 'ls-why-typed-message');
    this.message.setAttribute('role', 'status');
    form.append(el('span', 'ls-muted', 'explain '), this.typedTarget, el('span', 'ls-muted', ' vs '), this.typedBaseline, this.message);
    form.title = 'A token seen in this analysis (text or top-10), whitespace as typed or as · → ↵; #id for any id. Enter explains it; with vs, the logit difference.';
    this.body = el('div', 'ls-why-content');
    this.root.append(this.body, form);
  }

  /** The typed target (and baseline) resolved and explained, or a message where one is not known. */
  private explainTyped(): void {
    const known = (): [number, string][] => [...this.known(), ...(this.last ? this.last.knownStrings() : [])];
    const t = this.typedTarget.value;
    const b = this.typedBaseline.value;
    const target = t === '' ? null : resolveToken(t, known());
    const baseline = b === '' ? null : resolveToken(b, known());
    for (const [r, input] of [
      [target, this.typedTarget],
      [baseline, this.typedBaseline]
    ] as const) {
      if (r && r.id === null) {
        this.message.textContent = `“${input.value}”: ${r.message}`;
        this.message.dataset.state = 'error';
        input.setAttribute('aria-invalid', 'true');
        return;
      }
      input.removeAttribute('aria-invalid');
    }
    this.message.textContent = '';
    delete this.message.dataset.state;
    if (target && target.id !== null) {
      this.target = target.id;
      this.targetLabel = 'typed';
    }
    this.baseline = baseline && baseline.id !== null ? baseline.id : null;
    this.setOpen(true);
  }

  setOpen(open: boolean): void {
    this.open = open;
    this.toggle.setAttribute('aria-expanded', String(open));
    this.root.hidden = !open;
    this.form.hidden = !open;
    if (open) {
      void this.load();
    }
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Explain `target` (a token id) instead, and open. */
  choose(target: number, label: string): void {
    this.target = target;
    this.targetLabel = label;
    this.baseline = null;
    this.typedTarget.value = '';
    this.typedBaseline.value = '';
    this.message.textContent = '';
    this.setOpen(true);
  }

  /**
   * The tooltip scrolls (it never exceeds the window): when the why view is taller than what is
   * left below the top-10, scroll its title to the top, so its decisive parts are in view.
   */
  private reveal(): void {
    const scroller = this.root.closest<HTMLElement>('.ls-tooltip');
    const title = this.body.querySelector<HTMLElement>('.ls-why-title');
    if (!scroller || !title || scroller.scrollHeight <= scroller.clientHeight) {
      return;
    }
    const offset = title.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
    if (offset > scroller.clientHeight / 3) {
      scroller.scrollTop += offset - 4;
    }
  }

  private async load(): Promise<void> {
    const seq = ++this.seq;
    this.root.append(this.form); // out of the old view's footer: it is kept across views
    this.body.replaceChildren(el('div', 'ls-muted ls-why-loading', 'explaining…'));
    this.root.dataset.state = 'loading';
    try {
      const attr = await this.actions.attribute(this.position, this.target, this.baseline);
      if (seq !== this.seq || !attr) {
        return;
      }
      this.last = attr;
      const built = buildWhy(attr, this.actions, this.targetLabel);
      this.body.replaceChildren(built);
      // the typed target and baseline stay in view below the sum line (the footer sticks to the tooltip's bottom)
      built.querySelector('.ls-why-footer')?.append(this.form);
      if (this.actions.copyWhyCode) {
        const copy = el('button', 'ls-why-code', 'Copy as code');
        copy.title = "Copy a Python cell that recomputes this attribution with lenscope's Python API and prints it";
        const { target, baseline } = this;
        onPress(copy, () => this.actions.copyWhyCode!(copy, this.position, target, baseline));
        (this.body.querySelector('.ls-why-title') ?? this.body).append(copy);
      }
      this.root.dataset.state = 'ready';
      this.reveal();
    } catch (err) {
      if (seq === this.seq) {
        this.body.replaceChildren(el('div', 'ls-state-error', `Could not explain: ${err instanceof Error ? err.message : String(err)}`));
        this.root.dataset.state = 'error';
      }
    }
  }
}

/** A's MLP direct part per token of a comparison, fetched once per (analysis, token). */
const mlpCache = new WeakMap<Analysis, Map<number, Attribution>>();

/**
 * "A's MLP: +x.xx (L0.N5 +a, …)": model A's MLP direct part of token i's centred logit, from
 * the attribution of the prediction made at token i − 1 (its actual next token is token i);
 * fetched lazily when the tooltip opens, cached per token. Removed when A has no MLP.
 */
function mlpLine(analysis: Analysis, i: number, actions: TooltipActions): HTMLElement {
  const line = el('div', 'ls-tooltip-mlp ls-muted', `${analysis.model}'s MLP: …`);
  line.dataset.state = 'loading';
  const show = (attr: Attribution): void => {
    if (!attr.mlpTotal.length) {
      line.remove();
      return;
    }
    const total = Array.from(attr.mlpTotal).reduce((s, x) => s + x, 0);
    const top = attr.topNeurons.slice(0, 3).map(neuronPartLabel);
    line.textContent = `${analysis.model}'s MLP: ${signed(total)}${top.length ? ` (${top.join(', ')})` : ''}`;
    line.title = `${analysis.model}'s MLP direct part of this token's centred logit (at the position before it), and its 3 largest neurons`;
    line.dataset.state = 'done';
    line.dataset.value = String(total);
  };
  const cached = mlpCache.get(analysis)?.get(i);
  if (cached) {
    show(cached);
    return line;
  }
  actions.attribute(i - 1, null).then(
    attr => {
      if (!attr) {
        line.textContent = `${analysis.model}'s MLP: (superseded)`;
        line.dataset.state = 'aborted';
        return;
      }
      let byToken = mlpCache.get(analysis);
      if (!byToken) {
        byToken = new Map();
        mlpCache.set(analysis, byToken);
      }
      byToken.set(i, attr);
      show(attr);
    },
    (err: unknown) => {
      line.textContent = `${analysis.model}'s MLP: ${err instanceof Error ? err.message : String(err)}`;
      line.dataset.state = 'error';
    }
  );
  return line;
}

/** The top-k after token i, the actual next token highlighted. */
function topTable(analysis: Analysis, i: number, floor: number): HTMLElement {
  const pred = analysis.after(i);
  const table = el('table', 'ls-topk');
  const header = el('tr');
  for (const h of ['#', 'next token', 'p', 'log-prob']) {
    header.append(el('th', '', h));
  }
  table.append(header);
  pred.top.forEach((c, j) => {
    const row = el('tr', pred.actual && c.id === pred.actual.id ? 'ls-topk-row ls-topk-actual' : 'ls-topk-row');
    row.dataset.tokenId = String(c.id);
    row.append(el('td', 'ls-muted', String(j + 1)));
    const cell = el('td');
    cell.append(el('code', 'ls-tooltip-token', visible(c.token)));
    row.append(cell);
    const p = el('td', 'ls-num', fmt(c.prob, 3));
    p.style.backgroundColor = colorFor(1 - (surprise(c.logprob, floor) ?? 1), 'grayscale');
    row.append(p);
    row.append(el('td', 'ls-num', fmt(c.logprob)));
    table.append(row);
  });
  return table;
}

/** The why section of each tooltip root (its w key acts on it). */
const whyOf = new WeakMap<HTMLElement, WhySection>();

/**
 * The content of an open tooltip rebuilt in place for a new annotation of the same text (after
 * an intervention re-ran it, or the text was recoloured): the same element, so CodeMirror keeps
 * showing it where it is.
 */
export function refreshTooltip(dom: HTMLElement, a: Annotation, i: number, actions: TooltipActions, pinned = false): void {
  if (i >= a.analysis.tokens.length) {
    return;
  }
  const fresh = buildTooltip(a, i, actions, pinned);
  dom.replaceChildren(...Array.from(fresh.childNodes));
  dom.className = fresh.className;
  dom.dataset.lsToken = fresh.dataset.lsToken;
  const why = whyOf.get(fresh);
  if (why) {
    whyOf.set(dom, why);
  }
}

export function buildTooltip(a: Annotation, i: number, actions: TooltipActions, pinned = false): HTMLElement {
  const analysis = a.analysis;
  const root = el('div', 'ls-tooltip');
  root.dataset.lsToken = String(i);
  if (pinned) {
    root.classList.add('ls-tooltip-pinned');
  }
  const head = el('div', 'ls-tooltip-head');
  head.append(el('code', 'ls-tooltip-token', visible(analysis.tokens[i].text)));
  const own = analysis.logprobOf(i);
  head.append(el('span', 'ls-muted', ` token ${i} · its own log-prob ${fmt(own)}`));
  root.append(head);

  if (a.compare && !a.intervened) {
    const diff = clampedDiff(analysis.logprobOf(i), a.compare.analysis.logprobOf(i), a.compare.clamp);
    root.append(
      el('div', 'ls-tooltip-diff', `this token: ${analysis.model} ${fmt(analysis.logprobOf(i))} vs ${a.compare.analysis.model} ${fmt(a.compare.analysis.logprobOf(i))} · diff ${fmt(diff)} (B clamped at ${a.compare.clamp})`)
    );
    const pair = el('div', 'ls-compare');
    for (const side of [analysis, a.compare.analysis]) {
      const col = el('div', 'ls-compare-side');
      col.dataset.model = side.model;
      col.append(el('div', 'ls-muted', side.model));
      col.append(topTable(side, i, a.floor));
      pair.append(col);
    }
    root.append(pair);
    if (i > 0) {
      root.append(mlpLine(analysis, i, actions));
    }
    return root;
  }
  const iv = a.intervened;
  if (iv) {
    const d = iv.deltas[i];
    const line = el('div', 'ls-tooltip-delta');
    line.dataset.delta = String(d);
    line.append(el('span', '', 'this token with '), el('span', 'ls-tooltip-labels', iv.labels.join(', ') || 'the interventions'), el('span', '', ': '));
    const value = el('span', 'ls-delta-value', `Δ ${signedDelta(d)}`);
    value.style.backgroundColor = deltaColor(d, iv.span);
    line.append(value, el('span', 'ls-muted', ` (log-prob ${fmt(analysis.logprobOf(i))} → ${fmt(iv.analysis.logprobOf(i))})`));
    root.append(line);
  }
  const pred = analysis.after(i);
  const actual = pred.actual;
  const summary = el('div', 'ls-tooltip-actual');
  if (actual) {
    summary.append(el('span', '', 'next: '));
    summary.append(el('code', 'ls-tooltip-token', visible(actual.token)));
    summary.append(el('span', 'ls-actual-stats', ` rank ${actual.rank} · log-prob ${fmt(actual.logprob)} · p ${fmt(Math.exp(actual.logprob), 3)}`));
  } else {
    summary.append(el('span', 'ls-muted', 'last token of the selection: no actual next token'));
  }
  summary.append(el('span', 'ls-muted', ` · entropy ${fmt(pred.entropy)} nats`));
  root.append(summary);

  const table = topTable(analysis, i, a.floor);
  if (iv) {
    // before and after side by side, like a comparison's two models
    const pair = el('div', 'ls-compare ls-intervened');
    const next = (p: ReturnType<Analysis['after']>): string => (p.actual ? ` · next token's log-prob ${fmt(p.actual.logprob)}` : '');
    for (const [side, title, t] of [
      ['plain', `before${next(pred)}`, table],
      ['intervened', `after${next(iv.analysis.after(i))}`, topTable(iv.analysis, i, a.floor)]
    ] as const) {
      const col = el('div', 'ls-compare-side');
      col.dataset.side = side;
      col.append(el('div', 'ls-muted', title), t);
      pair.append(col);
    }
    root.append(pair);
  } else {
    root.append(table);
  }
  const lens = lensLine(i, actions);
  if (lens) {
    root.append(lens);
  }
  // the why view: of the actual next token, or of any top-10 prediction (click or Enter on its row)
  const why = new WhySection(i, actions, () => analysis.knownStrings());
  table.querySelectorAll<HTMLElement>('.ls-topk-row').forEach((row, j) => {
    const id = Number(row.dataset.tokenId);
    row.tabIndex = 0;
    row.title = 'Why this prediction? (click or Enter)';
    onPress(row, () => why.choose(id, pred.actual && id === pred.actual.id ? 'actual next token' : `prediction #${j + 1}`));
  });
  if (actual) {
    // back to the actual next token (it may not be in the top-10)
    summary.tabIndex = 0;
    summary.title = 'Why this token? (click or Enter)';
    onPress(summary, () => why.choose(actual.id, 'actual next token'));
  }

  const neurons = analysis.neurons(i);
  if (neurons.length) {
    const box = el('div', 'ls-tooltip-neurons');
    box.append(el('span', 'ls-muted', 'strongest neurons: '));
    for (const n of neurons.slice(0, 10)) {
      const ablate = ablateButton({ component: 'neuron', layer: n.layer, index: n.index }, i, actions);
      const zero = ablate ? () => actions.ablate!({ component: 'neuron', layer: n.layer, index: n.index }, i) : undefined;
      const chip = neuronChip(n.layer, n.index, `L${n.layer}.N${n.index} ${fmt(n.activation)}`, actions.openNeuron, zero);
      if (ablate) {
        const pairOf = el('span', 'ls-chip-pair');
        pairOf.append(chip, ablate);
        box.append(pairOf);
      } else {
        box.append(chip);
      }
    }
    root.append(box);
  }
  const sae = analysis.features?.sae ?? null;
  const features = featureRow(analysis, i, actions.openFeature, index => ablateButton({ component: 'feature', layer: null, index, sae }, i, actions));
  if (features) {
    root.append(features);
  }
  const bar = el('div', 'ls-why-bar');
  bar.append(why.toggle);
  bar.append(el('span', 'ls-muted', ' neurons, heads and embeddings behind the prediction'));
  root.append(bar);
  root.append(why.root);
  // w inside the tooltip (focused): open or close why (the current one: `refreshTooltip` replaces it)
  whyOf.set(root, why);
  root.addEventListener('keydown', event => {
    const current = whyOf.get(root);
    if (current && event.key === 'w' && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      current.setOpen(!current.isOpen);
      current.toggle.focus();
    }
  });
  if (pinned) {
    const keys = el('div', 'ls-muted ls-tooltip-keys', 'Alt+Shift+→ / ← next / previous token · Alt+Shift+K again: focus the first neuron (Tab: the next, Enter: its card, x: ablate it, w: why) · Alt+Shift+W: why · Esc: close');
    // above the why view: the view's sum line and inputs close the tooltip
    bar.before(keys);
  }
  return root;
}
