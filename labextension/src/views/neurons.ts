/**
 * The side panel's neurons: the strongest in the analyzed text, and a search for neurons whose
 * top examples peak on a token. A neuron opens as a card tab (and colours the text).
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { Analysis } from '../api/analysis';
import { describe } from '../errors';
import { el, fmt, visible } from '../format';
import type { LenscopeModel, Run } from '../model';
import { CommandIDs } from '../tokens';
import { moveInList } from './analysis';
import { featureSearchResults, strongestFeatures } from './features';

function chip(commands: CommandRegistry, model: string, layer: number, index: number, label: string): HTMLButtonElement {
  const button = el('button', 'ls-neuron-chip', label);
  button.dataset.layer = String(layer);
  button.dataset.index = String(index);
  button.addEventListener('click', () => void commands.execute(CommandIDs.openNeuron, { model, layer, index }));
  return button;
}

export class NeuronsView extends Widget {
  private readonly strongest = el('div', 'ls-neurons');
  private readonly searchResults = el('div', 'ls-search-results');
  private shown: Analysis | null = null;
  /** what the search box finds: neurons, or the chosen SAE's features */
  private readonly searchKind = el('select', 'ls-search-kind');

  constructor(
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry
  ) {
    super();
    const search = el('input', 'ls-search');
    search.placeholder = 'a token (self) or words (closing bracket)';
    search.setAttribute('aria-label', 'Find neurons whose top examples peak on a token, or whose description matches words');
    search.addEventListener('keydown', event => {
      if (event.key === 'Enter' && search.value) {
        void (this.searchKind.value === 'features' ? this.searchFeatures(search.value) : this.search(search.value));
      }
    });
    this.searchKind.setAttribute('aria-label', 'Search neurons or SAE features');
    const find = el('div', 'ls-find');
    find.append(el('h4', '', 'Find neurons (or SAE features) by token or description (in the index)'), this.searchKind, search, this.searchResults);
    model.modelsChanged.connect(this.updateKinds, this);
    this.updateKinds();
    this.node.append(this.strongest, find);
    model.runChanged.connect((_, run) => this.showRun(run));
  }

  private showRun(run: Run | null): void {
    if (run?.analysis === this.shown) {
      return; // a recolouring of the same text: the list stays
    }
    this.shown = run?.analysis ?? null;
    this.strongest.replaceChildren();
    if (run) {
      // after the frame that paints the editor's colours: they come first
      requestAnimationFrame(() => {
        if (this.shown === run.analysis) {
          this.showStrongest(run);
          const features = strongestFeatures(run.analysis, this.commands);
          if (features) {
            this.strongest.append(features);
          }
        }
      });
    }
  }

  private showStrongest(run: Run): void {
    const { analysis } = run;
    if (!analysis.neuronsPerToken) {
      this.strongest.append(el('p', 'ls-muted', `${analysis.model} has no MLP neurons (attention-only).`));
      return;
    }
    this.strongest.append(el('h4', '', `Strongest neurons in the selection (${analysis.model})`));
    const list = el('ol', 'ls-neuron-list');
    const found = analysis.strongestNeurons(20);
    for (const n of found) {
      const item = el('li');
      const button = chip(this.commands, analysis.model, n.layer, n.index, `L${n.layer}.N${n.index}`);
      button.tabIndex = list.childElementCount ? -1 : 0;
      item.append(
        button,
        el('span', '', ` max ${fmt(n.max)} at `),
        el('code', '', visible(analysis.tokens[n.at].text)),
        el('span', 'ls-muted', ` · top-${analysis.neuronsPerToken} at ${n.count} token${n.count === 1 ? '' : 's'}`)
      );
      list.append(item);
    }
    // one tab stop; arrow keys move along the list, Enter opens (a button's own click)
    list.addEventListener('keydown', event => moveInList(event, list, '.ls-neuron-chip', i => list.querySelectorAll<HTMLElement>('.ls-neuron-chip')[i].click()));
    this.strongest.append(list);
  }

  /** The search box's kinds: neurons, and features when an SAE is chosen for the model. */
  private updateKinds(): void {
    const sae = this.model.saeChoice.name;
    const kinds: [string, string][] = [['neurons', 'neurons'], ...(sae ? [['features', `features (${sae})`] as [string, string]] : [])];
    const before = this.searchKind.value;
    this.searchKind.replaceChildren(
      ...kinds.map(([value, label]) => {
        const option = el('option', '', label);
        option.value = value;
        return option;
      })
    );
    this.searchKind.value = kinds.some(([v]) => v === before) ? before : 'neurons';
    this.searchKind.hidden = kinds.length < 2;
  }

  /** Features of the chosen SAE whose top examples peak on a token (the SAE's feature index). */
  private async searchFeatures(token: string): Promise<void> {
    const model = this.model.model;
    const sae = this.model.saeChoice.name;
    if (!sae) {
      return;
    }
    try {
      const found = await this.model.client.searchFeatures(model, sae, token);
      this.searchResults.replaceChildren(...featureSearchResults(found, sae, this.commands));
    } catch (err) {
      this.searchResults.replaceChildren(el('p', 'ls-error', describe(err)));
    }
  }

  /** Several words search the neurons' descriptions; one word is a token first, then a description word. */
  private async search(token: string): Promise<void> {
    const model = this.model.model;
    try {
      const words = /\S\s+\S/.test(token);
      let found = await this.model.client.searchNeurons(model, token, words ? 'description' : 'token');
      if (!found.neurons.length && !words) {
        found = await this.model.client.searchNeurons(model, token, 'description');
      }
      this.searchResults.replaceChildren();
      if (!found.neurons.length) {
        this.searchResults.append(el('p', 'ls-muted', `No neuron's top examples (${model}) peak on “${visible(token)}”, and no description matches it.`));
        return;
      }
      for (const h of found.neurons) {
        const byDescription = found.by === 'description';
        const c = chip(this.commands, model, h.layer, h.index, byDescription ? `L${h.layer}.N${h.index}` : `L${h.layer}.N${h.index} ×${h.hits}`);
        c.title =
          (byDescription ? `held-out F1 ${fmt(h.score)}` : `${h.hits} of its top examples peak on this token (activation sum ${fmt(h.score)})`) +
          (h.description ? `\n${h.description.text}` : '');
        if (byDescription && h.description) {
          const row = el('div', 'ls-search-described');
          row.append(c, el('span', 'ls-muted', ` ${h.description.text}`));
          this.searchResults.append(row);
        } else {
          this.searchResults.append(c);
        }
      }
    } catch (err) {
      this.searchResults.replaceChildren(el('p', 'ls-error', describe(err)));
    }
  }
}
