/**
 * A collapsible section of the side panel: a header button (aria-expanded, aria-controls) over
 * a view. The header reads the view's `title.label` when it sets one (e.g. "Tokens (42)"), else
 * the section's name. Whether it is collapsed is remembered for the browser session
 * (sessionStorage, by the section's key), so a reload keeps it.
 */
import { Panel, Widget } from '@lumino/widgets';

import { el } from '../format';

const STORE = 'lenscope:panel-section:';

/** Whether a section was collapsed this session (null: never toggled). */
export function storedCollapsed(key: string): boolean | null {
  try {
    const v = window.sessionStorage.getItem(STORE + key);
    return v === null ? null : v === 'collapsed';
  } catch {
    return null; // storage refused: the default
  }
}

export class PanelSection extends Panel {
  readonly toggle = el('button', 'ls-section-toggle');
  private readonly label = el('span', 'ls-section-label');

  constructor(
    readonly key: string,
    private readonly name: string,
    readonly content: Widget,
    expanded = true
  ) {
    super();
    this.addClass('ls-section');
    this.node.dataset.section = key;
    content.addClass('ls-section-body');
    content.id ||= `ls-section-${key}`;
    const header = new Widget({ node: el('h3', 'ls-section-head') });
    this.toggle.type = 'button';
    this.toggle.setAttribute('aria-controls', content.id);
    this.toggle.append(el('span', 'ls-section-caret'), this.label);
    this.toggle.addEventListener('click', () => this.setExpanded(!this.expanded, true));
    header.node.append(this.toggle);
    this.addWidget(header);
    this.addWidget(content);
    content.title.changed.connect(this.showLabel, this);
    this.showLabel();
    this.setExpanded(!(storedCollapsed(key) ?? !expanded), false);
  }

  get expanded(): boolean {
    return this.toggle.getAttribute('aria-expanded') === 'true';
  }

  setExpanded(expanded: boolean, remember: boolean): void {
    this.toggle.setAttribute('aria-expanded', String(expanded));
    this.node.dataset.expanded = String(expanded);
    this.content.setHidden(!expanded);
    this.toggle.title = `${expanded ? 'Collapse' : 'Expand'} “${this.name}”`;
    if (remember) {
      try {
        window.sessionStorage.setItem(STORE + this.key, expanded ? 'expanded' : 'collapsed');
      } catch {
        // not remembered: storage refused
      }
    }
  }

  private showLabel(): void {
    this.label.textContent = this.content.title.label || this.name;
  }
}
