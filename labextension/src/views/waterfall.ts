/**
 * The prediction's parts as a waterfall (`POST attribute`): the total first (the centred logit,
 * or the logit difference), then every direct part, largest |part| first (the embeddings, each
 * head, each layer's MLP, the biases), each a bar from the running sum before it to the running
 * sum after it, so the bars walk from 0 to the total. A layer's MLP opens one click deeper into
 * its listed neurons (and the SAE's features, when the attribution has them). Pure DOM from an
 * `Attribution`: the main-area view (`WaterfallView`), the notebook output and the tooltip's
 * compact version (`editor/tooltip.ts`) share it.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { Attribution } from '../api/attribution';
import { extent, mlpChildren, place, signed, waterfallParts, WfPlaced } from '../waterfallparts';
import { describe } from '../errors';
import { el, fmt, visible } from '../format';
import type { LenscopeModel } from '../model';
import { describeTarget } from '../target';
import { CommandIDs } from '../tokens';
import { copyCodeButton } from './copycode';
import { SweepSection } from './sweep';

export { extent, mlpChildren, place, signed, waterfallParts } from '../waterfallparts';
export type { WfKind, WfPart, WfPlaced } from '../waterfallparts';

/** A bar's track: the zero line and the bar from `start` to `end` on the range [lo, hi]. */
export function barTrack(p: { start: number; end: number; value: number; kind: string }, lo: number, hi: number): HTMLElement {
  const track = el('div', 'ls-wf-track');
  const pct = (x: number): string => `${(((x - lo) / (hi - lo)) * 100).toFixed(3)}%`;
  const zero = el('div', 'ls-wf-zero');
  zero.style.left = pct(0);
  const bar = el('div', `ls-wf-bar ${p.kind === 'total' ? 'ls-wf-total' : p.value >= 0 ? 'ls-wf-up' : 'ls-wf-down'}`);
  bar.style.left = pct(Math.min(p.start, p.end));
  bar.style.width = `max(1px, ${(((Math.abs(p.end - p.start)) / (hi - lo)) * 100).toFixed(3)}%)`;
  track.append(zero, bar);
  return track;
}

/** What a waterfall's rows can open: cards (injected: the commands, or nothing in a saved output). */
export interface WaterfallActions {
  openNeuron?: (layer: number, index: number) => void;
  openFeature?: (index: number) => void;
  /** zero a feature at every position of the analysis (the why is split into the SAE's features) */
  ablateFeature?: (index: number) => void;
  openHead?: (layer: number, head: number) => void;
}

/** The line a bar shows on hover (its title and the readout). */
export function partLine(p: WfPlaced): string {
  return p.kind === 'total' ? `${p.label}: ${signed(p.value, 3)}` : `${p.label}: ${signed(p.value, 3)} (running sum ${fmt(p.start, 3)} \u2192 ${fmt(p.end, 3)})`;
}

function row(p: WfPlaced, lo: number, hi: number, readout: HTMLElement, child: boolean, open?: () => void, ablate?: () => void): HTMLElement {
  const r = el('div', child ? 'ls-wf-row ls-wf-child' : 'ls-wf-row');
  r.dataset.kind = p.kind;
  r.dataset.value = String(p.value);
  r.dataset.start = String(p.start);
  r.dataset.end = String(p.end);
  if (p.layer !== undefined) {
    r.dataset.layer = String(p.layer);
  }
  if (p.index !== undefined) {
    r.dataset.index = String(p.index);
  }
  r.title = partLine(p);
  const label = open ? el('button', 'ls-wf-label ls-wf-link', p.label) : el('span', 'ls-wf-label', p.label);
  if (open) {
    label.title = p.kind === 'head' ? `Open the card of ${p.label}` : p.kind === 'feature' ? `Open the card of feature ${p.label}` : `Open the card of ${p.label}`;
    label.addEventListener('click', open);
  }
  let cell: HTMLElement = label;
  if (ablate) {
    // the label and its ✕ share the label's column
    const x = el('button', 'ls-ablate ls-wf-ablate', '\u2715');
    x.title = `Ablate ${p.label}: zero it at every position of the analyzed text and re-run it (the panel's Interventions list changes it)`;
    x.setAttribute('aria-label', `ablate ${p.label}`);
    x.addEventListener('click', ablate);
    cell = el('span', 'ls-wf-label-cell');
    cell.append(label, x);
  }
  r.append(cell, barTrack(p, lo, hi), el('span', 'ls-wf-value ls-num', signed(p.value)));
  r.addEventListener('mouseenter', () => {
    readout.textContent = partLine(p);
    readout.dataset.value = String(p.value);
  });
  return r;
}

/**
 * The waterfall of an attribution: a readout line (the bar under the mouse), the total, then the
 * parts, largest |part| first; an MLP row opens its neurons (and features). `limit`: the parts
 * shown before a last "the other n parts" bar.
 */
export function renderWaterfall(a: Attribution, actions: WaterfallActions = {}, limit = 40): HTMLElement {
  const root = el('div', 'ls-waterfall');
  root.dataset.value = String(a.value);
  root.dataset.total = String(a.total);
  root.dataset.target = String(a.target);
  root.dataset.position = String(a.position);
  const readout = el('div', 'ls-wf-readout ls-muted', 'Hover a bar for its numbers; click an MLP row for its neurons.');
  readout.setAttribute('aria-live', 'polite');
  const all = waterfallParts(a);
  let parts = all;
  if (all.length > limit) {
    const rest = all.slice(limit - 1);
    parts = [...all.slice(0, limit - 1), { kind: 'rest', label: `the other ${rest.length} parts`, value: rest.reduce((s, p) => s + p.value, 0) }];
  }
  const what = a.baseline === null ? 'centred logit' : `logit(${visible(a.tokenString(a.target))}) \u2212 logit(${visible(a.tokenString(a.baseline))})`;
  const total: WfPlaced = { kind: 'total', label: what, value: a.value, start: 0, end: a.value };
  const placed = place(parts);
  // the MLPs' children share the scale
  const children = new Map<number, { neurons: WfPlaced[]; features: WfPlaced[] }>();
  for (const p of placed) {
    if (p.kind === 'mlp' && p.layer !== undefined) {
      const c = mlpChildren(a, p.layer);
      children.set(p.layer, { neurons: place(c.neurons, p.start), features: place(c.features, p.start) });
    }
  }
  const [lo, hi] = extent([total, ...placed, ...[...children.values()].flatMap(c => [...c.neurons, ...c.features])]);
  const rows = el('div', 'ls-wf-rows');
  rows.append(row(total, lo, hi, readout, false));
  for (const p of placed) {
    const open =
      p.kind === 'head' && actions.openHead ? () => actions.openHead!(p.layer!, p.index!) : undefined;
    const r = row(p, lo, hi, readout, false, open);
    rows.append(r);
    const c = p.kind === 'mlp' && p.layer !== undefined ? children.get(p.layer) : undefined;
    if (c) {
      const deeper = el('div', 'ls-wf-children');
      deeper.hidden = true;
      deeper.dataset.layer = String(p.layer);
      for (const n of c.neurons) {
        deeper.append(row(n, lo, hi, readout, true, n.kind === 'neuron' && actions.openNeuron ? () => actions.openNeuron!(n.layer!, n.index!) : undefined));
      }
      if (c.features.length) {
        deeper.append(el('div', 'ls-wf-group ls-muted', `the same MLP part as ${a.features?.sae ?? 'SAE'} features:`));
        for (const f of c.features) {
          const isFeature = f.kind === 'feature';
          deeper.append(
            row(f, lo, hi, readout, true, isFeature && actions.openFeature ? () => actions.openFeature!(f.index!) : undefined, isFeature && actions.ablateFeature ? () => actions.ablateFeature!(f.index!) : undefined)
          );
        }
      }
      const label = r.querySelector('.ls-wf-label')!;
      const toggle = el('button', 'ls-wf-label ls-wf-expand', `\u25b8 ${p.label}`);
      toggle.setAttribute('aria-expanded', 'false');
      toggle.title = `${partLine(p)}: click for its ${c.neurons.length - 1} listed neurons${c.features.length ? ' and the SAE features' : ''}`;
      toggle.addEventListener('click', () => {
        deeper.hidden = !deeper.hidden;
        toggle.setAttribute('aria-expanded', String(!deeper.hidden));
        toggle.textContent = `${deeper.hidden ? '\u25b8' : '\u25be'} ${p.label}`;
      });
      label.replaceWith(toggle);
      rows.append(deeper);
    }
  }
  const sum = el('div', 'ls-wf-sum ls-muted', `${what} ${fmt(a.value, 3)} = sum of parts ${fmt(a.total, 3)}; final LayerNorm scale frozen at ${fmt(a.lnScale, 3)}; direct effects only`);
  root.append(readout, rows, sum);
  return root;
}

/** Which prediction a waterfall tab explains. */
export interface WaterfallArgs {
  position: number;
  target: number | null;
  baseline: number | null;
}

/**
 * The waterfall as a main-area tab, for the current analysis: `POST attribute` of the prediction
 * after text token `position` (30 neurons listed, the analysis' SAE's features when it has one).
 */
export class WaterfallView extends Widget {
  attribution: Attribution | null = null;
  private sweep: SweepSection | null = null;

  constructor(
    readonly args: WaterfallArgs,
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry
  ) {
    super();
    this.addClass('ls-picture-view');
    this.addClass('ls-waterfall-view');
    this.node.tabIndex = -1;
    this.node.dataset.state = 'loading';
    this.node.append(el('p', 'ls-spinner', 'Explaining the prediction…'));
    void this.load();
  }

  private request(): { model: string; text: string; context: string; position: number; target: number | null; baseline: number | null; top: number; sae?: string } | null {
    const run = this.model.run;
    if (!run) {
      return null;
    }
    const sae = run.analysis.features?.sae;
    return { model: run.analysis.model, text: run.target.text, context: run.target.context, position: this.args.position, target: this.args.target, baseline: this.args.baseline, top: 30, ...(sae ? { sae } : {}) };
  }

  dispose(): void {
    this.sweep?.dispose();
    super.dispose();
  }

  private async load(): Promise<void> {
    const request = this.request();
    const run = this.model.run;
    if (!request || !run) {
      this.node.dataset.state = 'error';
      this.node.replaceChildren(el('p', 'ls-error', 'Analyze some text first.'));
      return;
    }
    try {
      const a = await this.model.client.attribute(request);
      this.attribution = a;
      const token = run.analysis.tokens[a.position]?.text ?? '';
      const head = el('h2', '', 'Why ');
      head.append(el('code', 'ls-tooltip-token', visible(a.tokenString(a.target))));
      if (a.baseline !== null) {
        head.append(' vs ', el('code', 'ls-tooltip-token', visible(a.tokenString(a.baseline))));
      }
      head.append(` after token ${a.position} `, el('code', 'ls-tooltip-token', visible(token)));
      const sub = el('p', 'ls-muted', `${describeTarget(run.target)} · ${a.model} · the direct parts of the prediction, largest |part| first; each bar runs from the sum before it to the sum after it`);
      const bar = el('div', 'ls-picture-bar');
      bar.append(copyCodeButton('these parts of the prediction', () => ({ kind: 'attributionSnippet', request })));
      const commands = this.commands;
      const actions: WaterfallActions = {
        openNeuron: (layer, index) => void commands.execute(CommandIDs.openNeuron, { model: a.model, layer, index }),
        openFeature: index => void commands.execute(CommandIDs.openFeature, { model: a.model, sae: request.sae ?? a.features?.sae ?? '', index }),
        ablateFeature: index => void commands.execute(CommandIDs.ablate, { model: a.model, component: 'feature', sae: request.sae ?? a.features?.sae ?? '', index }),
        openHead: (layer, head) => void commands.execute(CommandIDs.openHead, { model: a.model, layer, head })
      };
      const view = renderWaterfall(a, actions);
      // beside it, the same prediction's units ranked by causal effect (their direct rank is this waterfall's order)
      this.sweep = new SweepSection(
        this.model.client,
        { model: request.model, text: request.text, context: request.context, position: a.position, target: a.target, ...(request.sae ? { sae: request.sae } : {}) },
        actions
      );
      const layout = el('div', 'ls-wf-layout');
      layout.append(view, this.sweep.node);
      this.node.replaceChildren(head, sub, bar, layout);
      this.node.dataset.state = 'ready';
    } catch (err) {
      this.node.dataset.state = 'error';
      this.node.replaceChildren(el('p', 'ls-error', `Could not explain: ${describe(err)}`));
    }
  }
}
