/**
 * The index picker: which index a model's cards and searches read (`GET indexes`: the shipped
 * index, a workspace index, any other index of the model). The default is the one with the most
 * tokens; a pick holds for the model this session, on the panel's search and every card alike.
 */
import type { IndexEntry } from '../api/client';
import { el } from '../format';
import type { LenscopeModel } from '../model';

/** One option's text: `name · 159,810 tokens · shipped`. */
export function indexLabel(e: IndexEntry): string {
  return [e.name, `${(e.tokens ?? 0).toLocaleString()} tokens`, e.shipped ? 'shipped' : `${e.files ?? 0} file${e.files === 1 ? '' : 's'} here`].join(' · ');
}

/**
 * A labelled select of `model`'s indexes (with `sae`: that SAE's feature indexes). `render()`
 * reads the list and the choice again; `follow()` keeps it current (the panel's; a card's is
 * rebuilt with the card).
 */
export class IndexPicker {
  readonly node = el('label', 'ls-model-picker ls-index-picker');
  private readonly select = el('select', 'ls-index-select');

  constructor(
    private readonly model: LenscopeModel,
    private modelName: () => string,
    private sae: () => string | null = () => null
  ) {
    this.select.setAttribute('aria-label', 'Index the cards and searches read');
    this.select.addEventListener('change', () => model.setIndex(this.modelName(), this.sae(), this.select.value));
    this.node.append(el('span', '', 'Index '), this.select);
    this.render();
  }

  /** Follow the index list, the choice and the model (until `dispose`). */
  follow(): this {
    this.model.indexChanged.connect(this.render, this);
    this.model.modelsChanged.connect(this.render, this);
    return this;
  }

  dispose(): void {
    this.model.indexChanged.disconnect(this.render, this);
    this.model.modelsChanged.disconnect(this.render, this);
  }

  render(): void {
    const model = this.modelName();
    const sae = this.sae();
    const found = this.model.indexesOf(model, sae);
    const chosen = this.model.indexFor(model, sae);
    this.select.replaceChildren(
      ...found.map(e => {
        const option = el('option', '', indexLabel(e));
        option.value = e.name;
        option.title = `${e.name}: ${(e.tokens ?? 0).toLocaleString()} tokens in ${e.files ?? 0} files${e.shipped ? ', shipped with lenscope' : ', built in this workspace'}${e.created ? ` (${e.created})` : ''}`;
        return option;
      })
    );
    this.select.value = chosen ?? '';
    this.node.hidden = found.length < 2; // one index (or none): nothing to choose
    this.node.dataset.index = chosen ?? '';
    this.node.title = 'Which index cards and searches read: the one with the most tokens unless you pick another';
  }
}
