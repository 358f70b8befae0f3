/** The neuron card: top corpus examples coloured by activation, direct logit effect, histogram. */
import type { NeuronCard } from './api/client';
import { activationColor } from './colors';
import { el, fmt, visible } from './format';

export interface CardCallbacks {
  onOpenExample(file: string, charStart: number): void;
}

export function renderCard(card: NeuronCard, callbacks: CardCallbacks): HTMLElement {
  const root = el('div', 'ls-card');
  root.dataset.layer = String(card.layer);
  root.dataset.index = String(card.index);
  root.append(
    el('p', 'ls-muted', `From the index “${card.index_path}”: max ${fmt(card.stats.max ?? NaN)}, mean ${fmt(card.stats.mean, 3)} over ${card.stats.count.toLocaleString()} tokens.`)
  );

  const effects = el('div', 'ls-effects');
  for (const [title, list] of [
    ['boosts', card.logit_boosted],
    ['suppresses', card.logit_suppressed]
  ] as const) {
    const box = el('div', 'ls-effect');
    box.append(el('h4', '', `Direct effect: ${title}`));
    for (const e of list) {
      const row = el('div', 'ls-effect-row');
      row.append(el('code', 'ls-tooltip-token', visible(e.token)), el('span', 'ls-num', ` ${fmt(e.value)}`));
      box.append(row);
    }
    effects.append(box);
  }
  root.append(effects);

  root.append(el('h4', '', 'Activation histogram (corpus)'));
  root.append(histogram(card.histogram.counts, card.histogram.edges));

  root.append(el('h4', '', `Top ${card.examples.length} examples`));
  const list = el('div', 'ls-examples');
  card.examples.forEach((ex, j) => {
    const item = el('div', 'ls-example');
    item.dataset.example = String(j);
    const head = el('div', 'ls-example-head');
    const link = el('a', 'ls-example-file', `${ex.file}`);
    link.href = '#';
    link.title = 'Open the file at this place';
    link.addEventListener('click', event => {
      event.preventDefault();
      callbacks.onOpenExample(ex.file, ex.max_char_start);
    });
    head.append(el('span', 'ls-num', `${fmt(ex.value)} `), link);
    item.append(head);
    const line = el('div', 'ls-example-tokens');
    const max = Math.max(...ex.activations, 0);
    ex.tokens.forEach((t, i) => {
      const span = el('span', i === ex.max_token ? 'ls-flow-token ls-max' : 'ls-flow-token', visible(t));
      span.style.backgroundColor = activationColor(ex.activations[i], max);
      span.title = `activation ${fmt(ex.activations[i], 3)}`;
      line.append(span);
    });
    item.append(line);
    list.append(item);
  });
  root.append(list);
  return root;
}

function histogram(counts: number[], edges: number[]): HTMLElement {
  const box = el('div', 'ls-histogram');
  const logs = counts.map(c => Math.log1p(c));
  const top = Math.max(...logs, 1);
  counts.forEach((c, i) => {
    const bar = el('div', 'ls-bar');
    bar.style.height = `${Math.round((40 * logs[i]) / top)}px`;
    const lo = i === 0 ? '-∞' : fmt(edges[i - 1], 2);
    const hi = i === edges.length ? '∞' : fmt(edges[i], 2);
    bar.title = `[${lo}, ${hi}): ${c.toLocaleString()}`;
    box.append(bar);
  });
  return box;
}
