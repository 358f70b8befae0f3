/**
 * The panel's SAE features (in the neurons view): the selection's strongest features, and the
 * results of a search for features whose top examples peak on a token. A feature chip opens its
 * card and colours the text by it (`lenscope:open-feature`); ✕ beside it ablates it.
 */
import type { CommandRegistry } from '@lumino/commands';

import type { Analysis } from '../api/analysis';
import type { NeuronSearch } from '../api/client';
import { featureLabel } from '../api/features';
import { el, fmt, visible } from '../format';
import { CommandIDs } from '../tokens';
import { moveInList } from './analysis';

export function featureButton(commands: CommandRegistry, model: string, sae: string, index: number, label: string): HTMLButtonElement {
  const button = el('button', 'ls-feature-chip', label);
  button.dataset.index = String(index);
  button.dataset.sae = sae;
  button.title = `Colour the text by feature ${featureLabel(index)} of ${sae} and open its card`;
  button.setAttribute('aria-label', `open the card of feature ${featureLabel(index)} (${sae})`);
  button.addEventListener('click', () => void commands.execute(CommandIDs.openFeature, { model, sae, index }));
  return button;
}

/** ✕ beside a feature chip: zero the feature at every position of the analyzed text (`lenscope:ablate`). */
export function featureAblateButton(commands: CommandRegistry, model: string, sae: string, index: number): HTMLButtonElement {
  const button = el('button', 'ls-ablate ls-feature-ablate', '\u2715');
  button.dataset.component = 'feature';
  button.dataset.index = String(index);
  button.tabIndex = -1; // the list keeps one tab stop
  button.title = `Ablate feature ${featureLabel(index)}: zero it at every position and re-run this text (the Interventions list changes it)`;
  button.setAttribute('aria-label', `ablate feature ${featureLabel(index)}`);
  button.addEventListener('click', () => void commands.execute(CommandIDs.ablate, { model, component: 'feature', sae, index }));
  return button;
}

/** "Features (sae)": the selection's strongest features (a focusable list), or null without an SAE. */
export function strongestFeatures(analysis: Analysis, commands: CommandRegistry, limit = 20): HTMLElement | null {
  const features = analysis.features;
  if (!features) {
    return null;
  }
  const box = el('div', 'ls-features');
  box.dataset.sae = features.sae;
  box.append(el('h4', '', `Features in the selection (${features.sae}, ${features.hookPoint})`));
  const found = features.strongest(limit);
  if (!found.length) {
    box.append(el('p', 'ls-muted', 'No feature fires on the selection.'));
    return box;
  }
  const list = el('ol', 'ls-feature-list');
  for (const f of found) {
    const item = el('li');
    const button = featureButton(commands, analysis.model, features.sae, f.index, featureLabel(f.index));
    button.tabIndex = list.childElementCount ? -1 : 0;
    item.append(
      button,
      featureAblateButton(commands, analysis.model, features.sae, f.index),
      el('span', '', ` max ${fmt(f.max)} at `),
      el('code', '', visible(analysis.tokens[f.at].text)),
      el('span', 'ls-muted', ` · top-${features.perToken} at ${f.count} token${f.count === 1 ? '' : 's'}`)
    );
    list.append(item);
  }
  // one tab stop; arrow keys move along the list, Enter opens (a button's own click)
  list.addEventListener('keydown', event => moveInList(event, list, '.ls-feature-chip', i => list.querySelectorAll<HTMLElement>('.ls-feature-chip')[i].click()));
  box.append(list);
  return box;
}

/** A feature search's chips (`F123 ×3`), or a line saying none was found. */
export function featureSearchResults(found: NeuronSearch, sae: string, commands: CommandRegistry): HTMLElement[] {
  if (!found.neurons.length) {
    return [el('p', 'ls-muted', `No feature's top examples (${sae}) peak on “${visible(found.token)}”.`)];
  }
  return found.neurons.map(h => {
    const c = featureButton(commands, found.model, sae, h.index, `${featureLabel(h.index)} ×${h.hits}`);
    c.title = `${h.hits} of its top examples peak on this token (activation sum ${fmt(h.score)})` + (h.description ? `\n${h.description.text}` : '');
    return c;
  });
}
