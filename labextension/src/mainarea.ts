/**
 * lenscope's main-area tabs: neuron cards, head cards, corpus comparisons, stored texts. Each kind has a
 * WidgetTracker, so the layout restorer brings them back on reload (through the commands that
 * open them), and opening one that is already open activates it instead.
 */
import type { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import type { LabIcon } from '@jupyterlab/ui-components';
import type { Widget } from '@lumino/widgets';

import type { LenscopeModel } from './model';
import { CommandIDs } from './tokens';
import { cardLabel, CardArgs, NeuronCardView } from './views/card';
import { FeatureArgs, featureCardLabel, FeatureCardView } from './views/featurecard';
import { HeadArgs, headLabel } from './heads';
import { CompareView } from './views/compare';
import { HeadCardView } from './views/head';
import { PatchingModel } from './patchmodel';
import { PatchingView } from './views/patching';
import { StoredArgs, storedLabel, StoredTextView } from './views/stored';

type Tab<T extends Widget> = MainAreaWidget<T>;

export class MainViews {
  readonly cards = new WidgetTracker<Tab<NeuronCardView>>({ namespace: 'lenscope-neuron' });
  readonly heads = new WidgetTracker<Tab<HeadCardView>>({ namespace: 'lenscope-head' });
  readonly features = new WidgetTracker<Tab<FeatureCardView>>({ namespace: 'lenscope-feature' });
  readonly comparisons = new WidgetTracker<Tab<CompareView>>({ namespace: 'lenscope-comparison' });
  readonly stored = new WidgetTracker<Tab<StoredTextView>>({ namespace: 'lenscope-stored' });
  /** the patching tab (one; not restored on reload: its texts are this session's selections) */
  readonly patchings = new WidgetTracker<Tab<PatchingView>>({ namespace: 'lenscope-patching' });
  readonly patching: PatchingModel;

  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly model: LenscopeModel,
    private readonly icon: LabIcon,
    restorer: ILayoutRestorer | null
  ) {
    this.patching = new PatchingModel(model);
    void restorer?.restore(this.cards, {
      command: CommandIDs.openNeuron,
      args: w => ({ ...w.content.args }),
      name: w => cardKey(w.content.args)
    });
    void restorer?.restore(this.features, {
      command: CommandIDs.openFeature,
      args: w => ({ ...w.content.args }),
      name: w => featureKey(w.content.args)
    });
    void restorer?.restore(this.heads, {
      command: CommandIDs.openHead,
      args: w => ({ ...w.content.args }),
      name: w => headKey(w.content.args)
    });
    void restorer?.restore(this.comparisons, {
      command: CommandIDs.openComparison,
      args: w => ({ job: w.content.jobId }),
      name: w => w.content.jobId
    });
    void restorer?.restore(this.stored, {
      command: CommandIDs.openStored,
      args: w => ({ ...w.content.args }),
      name: w => `${w.content.args.index}/${w.content.args.path}`
    });
  }

  openCard(args: CardArgs): Tab<NeuronCardView> {
    const open = this.cards.find(w => cardKey(w.content.args) === cardKey(args));
    if (open) {
      this.app.shell.activateById(open.id);
      return open;
    }
    const tab = this.tab(new NeuronCardView(args, this.model, this.app.commands), cardLabel(args), `lenscope-neuron-${cardKey(args).replace(/[^\w-]/g, '_')}`);
    // beside the head cards when there are some: both are cards
    const ref = this.cards.currentWidget?.isAttached ? this.cards : this.heads.currentWidget?.isAttached ? this.heads : this.cards;
    this.place(tab, this.cards, 'split-right', ref);
    return tab;
  }

  /** An SAE feature's card: a tab among the neuron cards (both are cards of units). */
  openFeature(args: FeatureArgs): Tab<FeatureCardView> {
    const open = this.features.find(w => featureKey(w.content.args) === featureKey(args));
    if (open) {
      this.app.shell.activateById(open.id);
      return open;
    }
    const tab = this.tab(new FeatureCardView(args, this.model, this.app.commands), featureCardLabel(args), `lenscope-feature-${featureKey(args).replace(/[^\w-]/g, '_')}`);
    const ref = this.features.currentWidget?.isAttached ? this.features : this.cards.currentWidget?.isAttached ? this.cards : this.features;
    this.place(tab, this.features, 'split-right', ref);
    return tab;
  }

  openHead(args: HeadArgs): Tab<HeadCardView> {
    const open = this.heads.find(w => headKey(w.content.args) === headKey(args));
    if (open) {
      this.app.shell.activateById(open.id);
      return open;
    }
    const tab = this.tab(new HeadCardView(args, this.model, this.app.commands), headLabel(args), `lenscope-head-${headKey(args).replace(/[^\w-]/g, '_')}`);
    // beside the neuron cards when there are some: both are cards
    const ref = this.heads.currentWidget?.isAttached ? this.heads : this.cards.currentWidget?.isAttached ? this.cards : this.heads;
    this.place(tab, this.heads, 'split-right', ref);
    return tab;
  }

  openComparison(job: string): Tab<CompareView> {
    const open = this.comparisons.find(w => w.content.jobId === job);
    if (open) {
      this.app.shell.activateById(open.id);
      return open;
    }
    let tab: Tab<CompareView> | null = null;
    const view = new CompareView(job, this.model, this.app.commands, label => {
      if (tab) {
        tab.title.label = label;
        tab.title.caption = `lenscope comparison: ${label}`;
      }
    });
    tab = this.tab(view, `comparison ${job}`, `lenscope-comparison-${job.replace(/[^\w-]/g, '_')}`);
    // below the editors, full width: the table has wide rows
    this.place(tab, this.comparisons, 'split-bottom');
    return tab;
  }

  openStored(args: StoredArgs): Tab<StoredTextView> {
    const key = `${args.index}/${args.path}`;
    const open = this.stored.find(w => `${w.content.args.index}/${w.content.args.path}` === key);
    if (open) {
      open.dispose(); // a new highlight: reopen at the new place
    }
    const tab = this.tab(new StoredTextView(args, this.model), storedLabel(args), `lenscope-stored-${key.replace(/[^\w-]/g, '_')}`);
    this.place(tab, this.stored, 'split-right');
    return tab;
  }

  /** The patching tab, opened right of the editors (or brought to the front). */
  openPatching(): Tab<PatchingView> {
    const open = this.patchings.currentWidget;
    if (open && !open.isDisposed) {
      this.app.shell.activateById(open.id);
      return open;
    }
    const tab = this.tab(new PatchingView(this.patching), 'patching', 'lenscope-patching-tab');
    this.place(tab, this.patchings, 'split-right');
    return tab;
  }

  /** A main-area widget that is not one of lenscope's (the current one if so): cards open beside it. */
  private editorRef(): string | undefined {
    const ours = (w: Widget) => this.cards.has(w) || this.features.has(w) || this.heads.has(w) || this.comparisons.has(w) || this.stored.has(w) || this.patchings.has(w);
    const current = this.app.shell.currentWidget;
    if (current && !ours(current)) {
      return current.id;
    }
    for (const w of this.app.shell.widgets('main')) {
      if (!ours(w)) {
        return w.id;
      }
    }
    return undefined;
  }

  private tab<T extends Widget>(content: T, label: string, id: string): Tab<T> {
    const tab = new MainAreaWidget({ content });
    tab.id = id;
    tab.title.label = label;
    tab.title.caption = `lenscope: ${label}`;
    tab.title.icon = this.icon;
    tab.title.closable = true;
    return tab;
  }

  /**
   * Beside the others of its kind (tabs), else the first of its kind: right of the editors
   * (cards, stored text), or below everything, full width (comparisons).
   */
  private place<T extends Widget>(tab: Tab<T>, tracker: WidgetTracker<Tab<T>>, split: 'split-right' | 'split-bottom', beside: WidgetTracker<Tab<Widget>> = tracker): void {
    const ref = beside.currentWidget;
    if (ref && !ref.isDisposed && ref.isAttached) {
      this.app.shell.add(tab, 'main', { mode: 'tab-after', ref: ref.id });
    } else if (split === 'split-right') {
      this.app.shell.add(tab, 'main', { mode: split, ref: this.editorRef() });
    } else {
      this.app.shell.add(tab, 'main', { mode: split });
    }
    void tracker.add(tab);
    this.app.shell.activateById(tab.id);
  }
}

function headKey(a: HeadArgs): string {
  return `${a.model}/${a.layer}/${a.head}`;
}

function featureKey(a: FeatureArgs): string {
  return `${a.model}/${a.sae}/${a.index}`;
}

function cardKey(a: CardArgs): string {
  return `${a.model}/${a.layer}/${a.index}`;
}
