/**
 * The tooltip's SAE features row: "features (SAE name): F123 1.72 …", the features that fire at
 * the token (index ≥ 0), strongest first. A chip opens the feature's card and colours the text by
 * it; its ✕ (when the tooltip can ablate) zeroes it at every position.
 */
import type { Analysis } from '../api/analysis';
import { featureLabel } from '../api/features';
import { el, fmt } from '../format';

/** What a feature chip does: injected by the plugin (open the feature's card). */
export type OpenFeature = (index: number) => void;

export function featureChip(index: number, text: string, sae: string, open: OpenFeature): HTMLButtonElement {
  const chip = el('button', 'ls-feature-chip', text);
  chip.dataset.index = String(index);
  chip.dataset.sae = sae;
  chip.title = `Colour the text by feature ${featureLabel(index)} of ${sae} and open its card`;
  chip.setAttribute('aria-label', `open the card of feature ${featureLabel(index)} (${sae})`);
  // mousedown, not click: the editor keeps its focus (and the hover tooltip stays)
  chip.addEventListener('mousedown', event => {
    event.preventDefault();
    open(index);
  });
  // keyboard: Enter / Space on a focused chip (a click with no mouse press)
  chip.addEventListener('click', event => {
    if (event.detail === 0) {
      open(index);
    }
  });
  return chip;
}

/** The row of token i's features, or null when the analysis has no SAE (or nothing fires there). */
export function featureRow(analysis: Analysis, i: number, open: OpenFeature | undefined, ablateFor?: (index: number) => HTMLElement | null): HTMLElement | null {
  const features = analysis.features;
  if (!features || !open) {
    return null;
  }
  const box = el('div', 'ls-tooltip-features');
  box.dataset.sae = features.sae;
  box.append(el('span', 'ls-muted', `features (${features.sae}): `));
  const hits = features.at(i);
  for (const h of hits) {
    const chip = featureChip(h.index, `${featureLabel(h.index)} ${fmt(h.activation)}`, features.sae, open);
    chip.dataset.activation = String(h.activation);
    const ablate = ablateFor?.(h.index) ?? null;
    if (ablate) {
      const pair = el('span', 'ls-chip-pair');
      pair.append(chip, ablate);
      box.append(pair);
    } else {
      box.append(chip);
    }
  }
  if (!hits.length) {
    box.append(el('span', 'ls-muted', 'none fire here'));
  }
  return box;
}
