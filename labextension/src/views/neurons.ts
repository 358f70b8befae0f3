/**
 * The side panel's neurons: the strongest in the analyzed text, and a search for neurons whose
 * top examples peak on a token. A neuron opens as a card tab (and colours the text).
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { Analysis } from '../api/analysis';
import type { NeuronSearch } from '../api/client';
import { featureLabel } from '../api/features';
import { describe } from '../errors';
import { el, fmt, visible } from '../format';
import type { LenscopeModel, Run } from '../model';
import { CommandIDs } from '../tokens';
import { moveInList } from './analysis';
import { featureButton, strongestFeatures } from './features';
import { IndexPicker } from './indexpicker';

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
  /** the search, a panel section of its own */
  readonly finder = new Widget();
  /** the selection's strongest SAE features, a panel section of its own (hidden without an SAE) */
  readonly features = new Widget();
  /** told whether the run has SAE features to list (the panel shows their section or not) */
  onFeatures: ((shown: boolean) => void) | null = null;

  private readonly searchBox = el('input', 'ls-search');
  /** which index the search (and the cards) read: the model's, or the chosen SAE's feature indexes */
  private readonly indexPicker: IndexPicker;
  /** the search in flight: an older one's answer is dropped */
  private searching = 0;

  constructor(
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry
  ) {
    super();
    const search = this.searchBox;
    search.placeholder = 'a token (self) or words (indentation, closing bracket)';
    search.setAttribute('aria-label', 'Find neurons whose top examples peak on a token, or whose description matches words');
    search.addEventListener('keydown', event => {
      if (event.key === 'Enter' && search.value) {
        void this.search(search.value);
      }
    });
    this.searchKind.setAttribute('aria-label', 'Search neurons or SAE features');
    this.searchKind.addEventListener('change', () => {
      // a result of the other kind would read as this kind's
      this.searching++;
      this.searchResults.replaceChildren();
      delete this.searchResults.dataset.query;
      this.indexPicker.render();
    });
    this.indexPicker = new IndexPicker(model, () => model.model, () => (this.searchKind.value === 'features' ? model.saeChoice.name : null)).follow();
    const find = el('div', 'ls-find');
    find.append(el('p', 'ls-muted ls-find-note', 'Neurons (or SAE features) of the index by token or description'), this.searchKind, this.indexPicker.node, search, this.searchResults);
    model.modelsChanged.connect(this.updateKinds, this);
    this.updateKinds();
    // the strongest units here; the search is a panel section of its own (panel.ts)
    this.addClass('ls-strongest-view');
    this.node.append(this.strongest);
    this.finder.addClass('ls-finder');
    this.finder.node.append(find);
    model.runChanged.connect((_, run) => this.showRun(run));
    this.showRun(model.run);
  }

  dispose(): void {
    this.indexPicker.dispose();
    super.dispose();
  }

  private showRun(run: Run | null): void {
    if (run?.analysis === this.shown) {
      return; // a recolouring of the same text: the list stays
    }
    this.shown = run?.analysis ?? null;
    this.strongest.replaceChildren();
    this.features.node.replaceChildren();
    this.onFeatures?.(false);
    this.title.label = '';
    if (!run) {
      this.strongest.append(el('p', 'ls-muted ls-strongest-empty', 'The neurons (and SAE features) that fire most on the analyzed text come here.'));
    }
    if (run) {
      // after the frame that paints the editor's colours: they come first
      requestAnimationFrame(() => {
        if (this.shown === run.analysis) {
          this.showStrongest(run);
          const features = strongestFeatures(run.analysis, this.commands);
          this.features.node.replaceChildren(...(features ? [features] : []));
          this.onFeatures?.(!!features);
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
    this.title.label = `Strongest neurons (${analysis.model})`;
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

  /**
   * Search the neurons (or the chosen SAE's features) of the index picked. Several words search
   * the descriptions; one word is searched both ways (as a token, and as a description word:
   * `newline`, `indentation`) and both kinds of match are shown, each under its heading.
   */
  private async search(query: string): Promise<void> {
    const model = this.model.model;
    const features = this.searchKind.value === 'features';
    const sae = features ? this.model.saeChoice.name : null;
    if (features && !sae) {
      return;
    }
    const index = this.model.indexFor(model, sae);
    const client = this.model.client;
    const ask = (by: 'token' | 'description') =>
      sae ? client.searchFeatures(model, sae, query, by, index) : client.searchNeurons(model, query, by, index);
    const words = /\S\s+\S/.test(query);
    const seq = ++this.searching;
    const out: HTMLElement[] = [];
    try {
      const found = await Promise.all(words ? [ask('description')] : [ask('token'), ask('description')]);
      if (seq !== this.searching) {
        return; // a newer search (or a switch of kind) took over
      }
      const unit = sae ? 'feature' : 'neuron';
      const where = `${found[0].index ?? index ?? 'the index'}`;
      if (found.every(f => !f.neurons.length)) {
        out.push(el('p', 'ls-muted', words
          ? `No ${unit}'s description in ${where} matches “${visible(query)}”.`
          : `No ${unit}'s top examples in ${where} peak on “${visible(query)}”, and no description matches it.`));
      }
      for (const f of found) {
        if (f.neurons.length) {
          out.push(this.resultGroup(f, sae, found.length > 1));
        }
      }
    } catch (err) {
      if (seq !== this.searching) {
        return;
      }
      out.push(el('p', 'ls-error', describe(err)));
    }
    this.searchResults.replaceChildren(...out);
    this.searchResults.dataset.query = query;
  }

  /** One kind of match: chips (by token) or chips with their description (by description). */
  private resultGroup(found: NeuronSearch, sae: string | null, titled: boolean): HTMLElement {
    const byDescription = found.by === 'description';
    const group = el('div', 'ls-search-group');
    group.dataset.by = found.by ?? 'token';
    if (titled) {
      group.append(el('div', 'ls-muted ls-search-kind-title', byDescription ? 'described as' : `top examples peak on “${visible(found.token)}”`));
    }
    for (const h of found.neurons) {
      const label = sae ? featureLabel(h.index) : `L${h.layer}.N${h.index}`;
      const c = sae
        ? featureButton(this.commands, found.model, sae, h.index, byDescription ? label : `${label} ×${h.hits}`)
        : chip(this.commands, found.model, h.layer, h.index, byDescription ? label : `${label} ×${h.hits}`);
      c.title =
        (byDescription ? `held-out F1 ${fmt(h.score)}` : `${h.hits} of its top examples peak on this token (activation sum ${fmt(h.score)})`) +
        (h.description ? `\n${h.description.text}` : '');
      if (byDescription && h.description) {
        const row = el('div', 'ls-search-described');
        row.append(c, el('span', 'ls-muted', ` ${h.description.text}`));
        group.append(row);
      } else {
        group.append(c);
      }
    }
    return group;
  }
}
