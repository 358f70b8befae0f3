/**
 * Rank by causal effect (`POST sweep`), compact, beside the waterfall: the units whose zero-ablation
 * at the position moves the target's log-prob most, each with its direct-attribution rank, then
 * the direct top units the causal list leaves out, so a researcher sees where the two disagree.
 * A toggle asks for the exact sweep (each unit ablated alone) or the estimate (gradient ×
 * activation), which says it is one. Requests go through one `LatestRequest`: a toggle aborts the
 * answer in flight.
 */
import type { LenscopeClient, SweepRequest, SweepResponse, SweptUnit } from '../api/client';
import { describe } from '../errors';
import { el, fmt } from '../format';
import { LatestRequest } from '../request';
import type { WaterfallActions } from './waterfall';

export type SweepMethod = 'exact' | 'estimate';
/** Which prediction: the request less what the section itself sets. */
export type SweepAsk = Omit<Partial<SweepRequest>, 'method' | 'top' | 'last'> & Pick<SweepRequest, 'text' | 'position'>;

/** The causal top `limit` units, and the direct top `limit` units that are not among them. */
export function sweepRows(r: SweepResponse, limit: number): { causal: SweptUnit[]; directOnly: SweptUnit[] } {
  const causal = r.units.slice(0, limit);
  const shown = new Set(causal.map(u => u.unit));
  return { causal, directOnly: r.direct_units.slice(0, limit).filter(u => !shown.has(u.unit)) };
}

function unitLabel(u: SweptUnit, actions: WaterfallActions): HTMLElement {
  const open =
    u.kind === 'neuron' ? actions.openNeuron && (() => actions.openNeuron!(u.layer ?? 0, u.index))
    : u.kind === 'head' ? actions.openHead && (() => actions.openHead!(u.layer ?? 0, u.index))
    : actions.openFeature && (() => actions.openFeature!(u.index));
  if (!open) {
    return el('span', 'ls-sweep-unit', u.unit);
  }
  const b = el('button', 'ls-sweep-unit', u.unit);
  b.title = `Open the card of ${u.unit}`;
  b.addEventListener('click', open);
  return b;
}

/** The ranking as DOM: a line saying what the numbers are, the table, the disagreements. */
export function renderSweep(r: SweepResponse, actions: WaterfallActions = {}, limit = 12): HTMLElement {
  const root = el('div', 'ls-sweep-body');
  root.dataset.method = r.method;
  const estimate = r.method === 'estimate';
  const what = el('div', `ls-sweep-note${estimate ? ' ls-sweep-estimate' : ''}`, r.note);
  const rho = el('div', 'ls-muted', r.rank_correlation === null ? 'no direct attribution for this model' : `rank correlation with direct attribution (Spearman, |Δ| vs |direct part|): ${fmt(r.rank_correlation, 3)}`);
  const measure = r.measure === 'mean_abs_delta_logprob' ? 'mean |Δ log-prob|' : 'Δ log-prob';
  const table = el('table', 'ls-sweep-table');
  const head = el('tr');
  for (const [text, title] of [
    ['#', 'rank by causal effect'],
    ['unit', ''],
    [estimate ? `${measure} (est.)` : measure, estimate ? 'estimated: gradient × activation, not an ablation' : 'each unit zero-ablated alone at the position'],
    ['direct #', 'its rank by |direct part| of the centred logit (the waterfall)']
  ]) {
    const th = el('th', '', text);
    th.title = title;
    head.append(th);
  }
  table.append(head);
  const { causal, directOnly } = sweepRows(r, limit);
  const signed = (x: number): string => (r.measure === 'delta_logprob' && x >= 0 ? '+' : '') + fmt(x, 3);
  for (const u of causal) {
    const tr = el('tr', 'ls-sweep-row');
    tr.dataset.unit = u.unit;
    tr.dataset.rank = String(u.rank);
    tr.dataset.effect = String(u.effect);
    tr.dataset.directRank = u.direct_rank === null ? '' : String(u.direct_rank);
    const unit = el('td');
    unit.append(unitLabel(u, actions));
    tr.append(el('td', 'ls-num', String(u.rank)), unit, el('td', 'ls-num', signed(u.effect)), el('td', 'ls-num', u.direct_rank === null ? '—' : String(u.direct_rank)));
    table.append(tr);
  }
  root.append(what, rho, table);
  if (directOnly.length) {
    const line = el('div', 'ls-sweep-disagree');
    line.append(el('span', 'ls-muted', `direct top ${limit}, not in the causal top ${limit}: `));
    for (const u of directOnly) {
      const chip = el('span', 'ls-sweep-other');
      chip.dataset.unit = u.unit;
      chip.append(unitLabel(u, actions), el('span', 'ls-muted', ` (direct ${u.direct_rank}, causal ${u.rank}) `));
      line.append(chip);
    }
    root.append(line);
  }
  return root;
}

/**
 * The section: a heading, the exact / estimate toggle and the ranking of one prediction. It asks
 * for the exact sweep when it is made.
 */
export class SweepSection {
  readonly node = el('section', 'ls-sweep');
  private readonly request = new LatestRequest();
  private readonly body = el('div', 'ls-sweep-content');
  private readonly buttons = new Map<SweepMethod, HTMLButtonElement>();

  constructor(
    private readonly client: LenscopeClient,
    private readonly ask: SweepAsk,
    private readonly actions: WaterfallActions = {}
  ) {
    this.node.dataset.position = String(ask.position);
    this.node.dataset.sae = ask.sae ?? '';
    const bar = el('div', 'ls-sweep-bar');
    bar.append(el('h3', '', 'Rank by causal effect'));
    const toggle = el('div', 'ls-sweep-toggle');
    toggle.setAttribute('role', 'group');
    toggle.setAttribute('aria-label', 'exact or estimate');
    for (const [method, title] of [
      ['exact', 'Each unit zero-ablated alone at the position: the change in the target\u2019s log-prob'],
      ['estimate', 'Attribution patching: gradient \u00d7 activation, the first-order estimate of the same ablation (for large models)']
    ] as [SweepMethod, string][]) {
      const b = el('button', 'ls-action ls-sweep-method', method);
      b.dataset.method = method;
      b.title = title;
      b.addEventListener('click', () => void this.load(method));
      this.buttons.set(method, b);
      toggle.append(b);
    }
    bar.append(toggle);
    this.node.append(bar, this.body);
    void this.load('exact');
  }

  async load(method: SweepMethod): Promise<void> {
    for (const [m, b] of this.buttons) {
      b.setAttribute('aria-pressed', String(m === method));
    }
    this.node.dataset.method = method;
    this.node.dataset.state = 'loading';
    this.body.replaceChildren(el('p', 'ls-spinner', method === 'exact' ? 'Ablating every unit…' : 'Estimating every unit\u2019s effect…'));
    try {
      const r = await this.request.run(signal => this.client.sweep({ ...this.ask, method, top: 30 }, signal));
      if (r === null) {
        return; // superseded by the other method
      }
      this.body.replaceChildren(renderSweep(r, this.actions));
      this.node.dataset.state = 'ready';
    } catch (err) {
      this.node.dataset.state = 'error';
      this.body.replaceChildren(el('p', 'ls-error', `Could not rank: ${describe(err)}`));
    }
  }

  dispose(): void {
    this.request.abort();
  }
}
