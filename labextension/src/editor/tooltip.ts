/** The hover tooltip of a token: predictions after it, the actual next token, its neurons. */
import type { Analysis } from '../api/analysis';
import { clampedDiff, colorFor, surprise } from '../colors';
import { el, fmt, visible } from '../format';
import type { Annotation } from './annotation';

/** What a tooltip's neuron chip does: injected by the plugin (open the neuron's card, recolour). */
export type OpenNeuron = (layer: number, index: number) => void;

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

export function buildTooltip(a: Annotation, i: number, openNeuron: OpenNeuron, pinned = false): HTMLElement {
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

  if (a.compare) {
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
    return root;
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

  root.append(topTable(analysis, i, a.floor));

  const neurons = analysis.neurons(i);
  if (neurons.length) {
    const box = el('div', 'ls-tooltip-neurons');
    box.append(el('span', 'ls-muted', 'strongest neurons: '));
    for (const n of neurons.slice(0, 10)) {
      const chip = el('button', 'ls-neuron-chip', `L${n.layer}.N${n.index} ${fmt(n.activation)}`);
      chip.dataset.layer = String(n.layer);
      chip.dataset.index = String(n.index);
      chip.title = 'Colour the text by this neuron and open its card';
      // mousedown, not click: the editor keeps its focus (and the hover tooltip stays)
      chip.addEventListener('mousedown', event => {
        event.preventDefault();
        openNeuron(n.layer, n.index);
      });
      // keyboard: Enter / Space on a focused chip (a click with no mouse press)
      chip.addEventListener('click', event => {
        if (event.detail === 0) {
          openNeuron(n.layer, n.index);
        }
      });
      box.append(chip);
    }
    root.append(box);
  }
  if (pinned) {
    root.append(el('div', 'ls-muted ls-tooltip-keys', 'Alt+Shift+→ / ← next / previous token · Alt+Shift+K again: focus the neurons · Esc: close'));
  }
  return root;
}
