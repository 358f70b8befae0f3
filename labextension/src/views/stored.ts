/**
 * The text of a file as a neuron index stored it: read-only, for examples whose file is not in
 * this workspace (e.g. the shipped index's stdlib files). The example is highlighted.
 */
import { Widget } from '@lumino/widgets';

import { describe } from '../errors';
import { el } from '../format';
import type { LenscopeModel } from '../model';
import { utf16Offset } from '../target';

export interface StoredArgs {
  index: string;
  path: string;
  /** code-point offsets of the highlighted token, and of the example around it */
  start: number;
  end: number;
  context_start?: number;
  context_end?: number;
}

export function storedLabel(a: Pick<StoredArgs, 'index' | 'path'>): string {
  return `${a.path.split('/').pop()} (stored in index ${a.index})`;
}

export class StoredTextView extends Widget {
  constructor(
    readonly args: StoredArgs,
    private readonly model: LenscopeModel
  ) {
    super();
    this.addClass('ls-stored-view');
    this.node.dataset.path = args.path;
    this.node.append(el('p', 'ls-spinner', `Loading ${args.path} from the index ${args.index}…`));
    void this.load();
  }

  private async load(): Promise<void> {
    const a = this.args;
    try {
      const doc = await this.model.client.indexDocument(a.index, a.path);
      const text = doc.text;
      const at = (cp: number) => utf16Offset(text, cp);
      const [cs, s, e, ce] = [at(a.context_start ?? a.start), at(a.start), at(a.end), at(a.context_end ?? a.end)];
      const pre = el('pre', 'ls-stored-text');
      const mark = el('mark', 'ls-stored-max', text.slice(s, e));
      pre.append(
        document.createTextNode(text.slice(0, cs)),
        el('span', 'ls-stored-example', text.slice(cs, s)),
        mark,
        el('span', 'ls-stored-example', text.slice(e, ce)),
        document.createTextNode(text.slice(ce))
      );
      this.node.replaceChildren(
        el('p', 'ls-muted', `${a.path} is not in this workspace: this is the text the index “${a.index}” read (read-only).`),
        pre
      );
      requestAnimationFrame(() => mark.scrollIntoView({ block: 'center' }));
    } catch (err) {
      this.node.replaceChildren(el('p', 'ls-error', describe(err)));
    }
  }
}
