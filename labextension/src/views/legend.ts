/** Colour legends: they always say what the colours of the text beside them mean. */
import { activationColor, deltaColor, diffColor, legend, ScaleName } from '../colors';
import { el, fmt } from '../format';

function swatches(label: string, stops: [string, string][], kind: string): HTMLElement {
  const box = el('div', 'ls-legend');
  box.dataset.legend = kind;
  box.append(el('span', 'ls-muted', label));
  for (const [text, colour] of stops) {
    const swatch = el('span', 'ls-swatch', text);
    swatch.style.backgroundColor = colour;
    box.append(swatch);
  }
  return box;
}

export function logprobLegend(scale: ScaleName, floor: number): HTMLElement {
  return swatches('log-prob of each token: ', legend(scale, floor), 'logprob');
}

export function diffLegend(a: string, b: string, clamp: number): HTMLElement {
  const box = swatches(
    `lp(${a}) − max(lp(${b}), ${clamp}): `,
    [-4, -2, 0, 2, 4].map(d => [`${d > 0 ? '+' : ''}${d}`, diffColor(d)]),
    'diff'
  );
  box.append(el('span', 'ls-muted', ` green: ${a} better · purple: ${b} better`));
  return box;
}

/** A continuous scale from 0 to `max` (activations at or below 0 are not coloured). */
export function activationLegend(label: string, max: number): HTMLElement {
  const box = el('div', 'ls-legend ls-activation-legend');
  box.dataset.legend = 'activation';
  box.append(el('span', 'ls-muted', `${label}: `));
  const bar = el('span', 'ls-gradient');
  bar.style.background = `linear-gradient(to right, ${activationColor(0, 1)}, ${activationColor(0.5, 1)}, ${activationColor(1, 1)})`;
  const ticks = el('span', 'ls-gradient-ticks');
  ticks.append(el('span', '', '≤ 0'), el('span', '', fmt(max / 2)), el('span', '', fmt(max)));
  const scale = el('span', 'ls-gradient-scale');
  scale.append(bar, ticks);
  box.append(scale);
  return box;
}

/** The intervention's Δ log-prob of the actual token, −span .. +span. */
export function deltaLegend(span: number): HTMLElement {
  const box = swatches(
    'Δ log-prob of the actual token: ',
    [-1, -0.5, 0, 0.5, 1].map(t => [`${t > 0 ? '+' : t < 0 ? '\u2212' : ''}${fmt(Math.abs(t * span), span < 0.2 ? 3 : 2).replace(/\.?0+$/, '') || '0'}`, deltaColor(t * span, span)]),
    'delta'
  );
  box.append(el('span', 'ls-muted', ' red = the intervention hurts · blue = it helps'));
  return box;
}
