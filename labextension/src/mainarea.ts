/**
 * lenscope's main-area views, in ONE place: neuron, feature and head cards, stored texts, the
 * patching tab (and any later view, through `dock`) open as tabs of one lenscope tab area beside
 * the editor. The first opens a split right of the current editor, which keeps 62% of the width
 * it had (`EDITOR_SHARE`); later ones join that tab area. Comparisons (wide tables whose chips
 * open cards) open below, full width, beside each other. Each kind has a WidgetTracker, so the
 * layout restorer brings them back on reload (through the commands that open them), and opening
 * one that is already open activates it instead.
 */
import type { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import type { LabIcon } from '@jupyterlab/ui-components';
import { DockLayout, DockPanel, Widget } from '@lumino/widgets';

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

/** The share of its width the editor keeps when the lenscope tab area first opens beside it. */
export const EDITOR_SHARE = 0.62;
/** Below this width (px) the lenscope tab area would be too narrow: the left sidebar makes room. */
export const MIN_AREA_WIDTH = 360;

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
    // keyboard: Enter (or Space) on a lenscope tab in a tab bar opens it with the focus in it, so
    // Tab goes on into the view (Lumino's tab bar would select it and keep the focus on the tab)
    document.addEventListener(
      'keydown',
      event => {
        const tab = (event.target as HTMLElement | null)?.closest?.('.lm-DockPanel-tabBar .lm-TabBar-tab') as HTMLElement | null;
        const id = tab?.dataset.id;
        if (id && (event.key === 'Enter' || event.key === ' ') && this.ours.some(w => w.id === id)) {
          event.preventDefault();
          event.stopPropagation();
          this.app.shell.activateById(id);
        }
      },
      true
    );
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
    this.place(tab, this.cards);
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
    this.place(tab, this.features);
    return tab;
  }

  openHead(args: HeadArgs): Tab<HeadCardView> {
    const open = this.heads.find(w => headKey(w.content.args) === headKey(args));
    if (open) {
      this.app.shell.activateById(open.id);
      return open;
    }
    const tab = this.tab(new HeadCardView(args, this.model, this.app.commands), headLabel(args), `lenscope-head-${headKey(args).replace(/[^\w-]/g, '_')}`);
    this.place(tab, this.heads);
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
    // below the editors and the lenscope tabs, full width: the table has wide rows, and its chips
    // open cards that stay visible beside it
    this.place(tab, this.comparisons, 'below');
    return tab;
  }

  openStored(args: StoredArgs): Tab<StoredTextView> {
    const key = `${args.index}/${args.path}`;
    const open = this.stored.find(w => `${w.content.args.index}/${w.content.args.path}` === key);
    if (open) {
      open.dispose(); // a new highlight: reopen at the new place
    }
    const tab = this.tab(new StoredTextView(args, this.model), storedLabel(args), `lenscope-stored-${key.replace(/[^\w-]/g, '_')}`);
    this.place(tab, this.stored);
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
    this.place(tab, this.patchings);
    return tab;
  }

  /**
   * Any lenscope view into the lenscope tab area (the logit-lens heatmap, the waterfall, the
   * attention view, ...): a tab there (or the first split right of the editor), activated, and
   * remembered as one of lenscope's until it is disposed. Pass a `MainAreaWidget` (see
   * `mainAreaTab`) or any widget with an id and a title; a tracker, when given, gets it too.
   */
  dock<T extends Widget>(widget: T, tracker?: WidgetTracker<T>): T {
    this.place(widget, tracker);
    return widget;
  }

  /** A closable main-area tab of lenscope's (its icon, `lenscope: label` as caption) around a view. */
  mainAreaTab<T extends Widget>(content: T, label: string, id: string): Tab<T> {
    return this.tab(content, label, id);
  }

  /** Whether a main-area widget is one of lenscope's views. */
  isLenscope(w: Widget): boolean {
    return this.ours.includes(w);
  }

  /** lenscope's views in the main area, oldest first (comparisons included). */
  private ours: Widget[] = [];
  /** the comparisons (below, full width): not part of the lenscope tab area */
  private below = new Set<Widget>();

  /** A main-area widget that is not one of lenscope's (the current one if so): the first view opens beside it. */
  private editorRef(): Widget | undefined {
    const current = this.app.shell.currentWidget;
    if (current && !this.isLenscope(current)) {
      return current;
    }
    for (const w of this.app.shell.widgets('main')) {
      if (!this.isLenscope(w)) {
        return w;
      }
    }
    return undefined;
  }

  /** A tab of the lenscope tab area (the current one if it is ours, else the newest still there). */
  private areaRef(): Widget | undefined {
    const inArea = (w: Widget | null | undefined): w is Widget => !!w && !w.isDisposed && w.isAttached && this.isLenscope(w) && !this.below.has(w);
    const current = this.app.shell.currentWidget;
    if (inArea(current)) {
      return current;
    }
    for (let i = this.ours.length - 1; i >= 0; i--) {
      if (inArea(this.ours[i])) {
        return this.ours[i];
      }
    }
    return undefined;
  }

  /**
   * Where the lenscope tab area would get less than `MIN_AREA_WIDTH` beside the editor, the left
   * sidebar (the file browser) collapses to make room (its tab brings it back).
   */
  private makeRoom(editor: Widget | undefined): void {
    const shell = this.app.shell as JupyterFrontEnd.IShell & { leftCollapsed?: boolean; collapseLeft?: () => void };
    const width = editor?.node.getBoundingClientRect().width ?? 0;
    if (width && width * (1 - EDITOR_SHARE) < MIN_AREA_WIDTH && shell.leftCollapsed === false && shell.collapseLeft) {
      shell.collapseLeft();
    }
  }

  private tab<T extends Widget>(content: T, label: string, id: string): Tab<T> {
    if (!content.node.hasAttribute('tabindex')) {
      content.node.tabIndex = -1; // focusable: activating the tab puts the focus in the view
    }
    const tab = new MainAreaWidget({ content });
    tab.id = id;
    tab.title.label = label;
    tab.title.caption = `lenscope: ${label}`;
    tab.title.icon = this.icon;
    tab.title.closable = true;
    return tab;
  }

  /**
   * Into the lenscope tab area: a tab after one of its tabs, else (the first) a split right of the
   * editor that keeps `EDITOR_SHARE` of the editor's width. Comparisons go below everything, full
   * width, as tabs beside each other.
   */
  private place<T extends Widget>(tab: T, tracker?: WidgetTracker<T>, where: 'lenscope' | 'below' = 'lenscope'): void {
    if (where === 'below') {
      const ref = [...this.below].reverse().find(w => !w.isDisposed && w.isAttached);
      this.app.shell.add(tab, 'main', ref ? { mode: 'tab-after', ref: ref.id } : { mode: 'split-bottom' });
      this.below.add(tab);
    } else {
      const ref = this.areaRef();
      if (ref) {
        this.app.shell.add(tab, 'main', { mode: 'tab-after', ref: ref.id });
      } else {
        const editor = this.editorRef();
        this.makeRoom(editor);
        this.app.shell.add(tab, 'main', { mode: 'split-right', ref: editor?.id });
        if (editor) {
          keepWidth(tab, editor, EDITOR_SHARE);
        }
      }
    }
    this.ours.push(tab);
    tab.disposed.connect(() => {
      this.ours = this.ours.filter(w => w !== tab);
      this.below.delete(tab);
    });
    void tracker?.add(tab);
    this.app.shell.activateById(tab.id);
  }
}

/**
 * After `tab` was split off right of `editor`: give the editor's tab area `share` of the width the
 * two now have together (Lumino halves it). Through the dock panel's own layout config, the way
 * JupyterLab restores layouts; nothing happens where the two are not side by side.
 */
export function keepWidth(tab: Widget, editor: Widget, share: number): void {
  const dock = tab.parent;
  if (!(dock instanceof DockPanel)) {
    return;
  }
  const config = dock.saveLayout();
  const holds = (area: DockLayout.AreaConfig, w: Widget): boolean =>
    area.type === 'tab-area' ? area.widgets.includes(w) : area.children.some(c => holds(c, w));
  const adjust = (area: DockLayout.AreaConfig | null): boolean => {
    if (!area || area.type !== 'split-area') {
      return false;
    }
    const i = area.children.findIndex(c => holds(c, tab));
    if (area.orientation === 'horizontal' && i > 0 && holds(area.children[i - 1], editor)) {
      const both = area.sizes[i - 1] + area.sizes[i];
      area.sizes[i - 1] = both * share;
      area.sizes[i] = both * (1 - share);
      return true;
    }
    return area.children.some(adjust);
  };
  if (adjust(config.main)) {
    dock.restoreLayout(config);
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
