/**
 * The panel's Interventions section: the current run's list (label, op, value: the steering
 * coefficient or the factor, positions, enable, remove), "clear all", where a mean came from, an
 * "add" form (`L0.N123`, `L0.H3`, `L0.MLP`, `L0.ATTN`) and the state of the re-run.
 */
import { Widget } from '@lumino/widgets';

import { el, visible } from '../format';
import { componentLabel, DEFAULT_VALUE, Intervention, Op, opsOf, parseComponent, VALUE_OF } from '../interventions';
import type { LenscopeModel } from '../model';

const MEAN_FROM: Record<string, string> = { index: 'mean over the workspace index', selection: 'mean over the selection' };

export class InterventionsView extends Widget {
  private readonly list = el('ul', 'ls-iv-list');
  private readonly intro = el('p', 'ls-muted ls-iv-intro');
  private readonly status = el('div', 'ls-iv-status');
  private readonly input = el('input', 'ls-iv-add-input');
  private readonly clearButton = el('button', 'ls-action ls-iv-clear', 'clear all');

  constructor(private readonly model: LenscopeModel) {
    super();
    this.addClass('ls-interventions');
    this.status.setAttribute('role', 'status');
    this.intro.textContent =
      'Change neurons or heads and re-run the text: ✕ beside a neuron in a tooltip or a why view, “Ablate” on a card, or add one here. The text is then coloured by the change in each token’s log-prob.';
    const form = el('form', 'ls-iv-add');
    this.input.type = 'text';
    this.input.placeholder = 'L0.N123 · L0.H3 · F12 · L0.MLP · L0.ATTN · L0.RESID';
    this.input.spellcheck = false;
    this.input.setAttribute('aria-label', 'add an intervention: L0.N123, L0.H3, L0.MLP, L0.ATTN or L0.RESID (Enter)');
    const add = el('button', 'ls-action', 'add');
    add.type = 'submit';
    form.append(this.input, add);
    form.addEventListener('submit', event => {
      event.preventDefault();
      this.add();
    });
    this.clearButton.addEventListener('click', () => model.clearInterventions());
    this.node.append(el('h4', '', 'Interventions'), this.intro, this.list, form, this.status, this.clearButton);
    model.interventionsChanged.connect(() => this.render());
    model.runChanged.connect(() => this.render());
    this.render();
  }

  private add(): void {
    const spec = this.input.value.trim();
    // a feature is of the analysis' SAE (else the one picked)
    const ref = parseComponent(spec, this.model.run?.analysis.features?.sae ?? this.model.saeChoice.name ?? null);
    if (!ref) {
      this.model.setInterventionError(`Not a component: “${spec}”. Type L0.N123 (a neuron), L0.H3 (a head), F12 (an SAE feature), L0.MLP, L0.ATTN (a whole layer) or L0.RESID (the residual stream before layer 0).`);
      return;
    }
    if (this.model.addIntervention(ref) !== null) {
      this.input.value = '';
    }
  }

  private render(): void {
    const state = this.model.interventions;
    const run = this.model.run;
    // keep the focus on the control that was changed (the list is rebuilt)
    const active = document.activeElement as HTMLElement | null;
    const focusKey = active && this.list.contains(active) ? `${active.closest<HTMLElement>('.ls-iv')?.dataset.id}:${active.dataset.role}` : null;
    this.list.replaceChildren();
    const enabled = state.items.filter(i => i.enabled);
    const applied = !state.loading && run?.intervened && state.applied.length === enabled.length ? state.applied : null;
    for (const item of state.items) {
      const k = enabled.indexOf(item);
      this.list.append(this.row(item, applied && k >= 0 ? applied[k] : null));
    }
    this.intro.hidden = state.items.length > 0;
    this.clearButton.hidden = state.items.length === 0;
    this.status.replaceChildren();
    this.status.dataset.state = state.loading ? 'running' : state.error ? 'error' : run?.intervened ? 'done' : 'idle';
    if (state.loading) {
      this.status.append(el('span', 'ls-spinner', `re-running ${run?.analysis.model ?? ''} with ${enabled.length} intervention${enabled.length === 1 ? '' : 's'}…`));
    } else if (state.error) {
      this.status.append(el('span', 'ls-error', state.error));
    } else if (run?.intervened) {
      this.status.append(el('span', 'ls-muted', `applied: ${run.intervened.applied.map(a => a.label).join(', ')}`));
    } else if (state.items.length) {
      this.status.append(el('span', 'ls-muted', 'none enabled: the colours are the plain log-probs'));
    }
    if (focusKey) {
      const [id, role] = focusKey.split(':');
      this.list.querySelector<HTMLElement>(`.ls-iv[data-id="${id}"] [data-role="${role}"]`)?.focus();
    }
  }

  private row(item: Intervention, applied: { label: string; mean_from: string | null } | null): HTMLElement {
    const label = componentLabel(item);
    const li = el('li', 'ls-iv');
    li.dataset.id = String(item.id);
    li.dataset.enabled = String(item.enabled);
    li.dataset.op = item.op;

    const enable = el('input', 'ls-iv-enable');
    enable.type = 'checkbox';
    enable.checked = item.enabled;
    enable.dataset.role = 'enable';
    enable.setAttribute('aria-label', `apply ${label}`);
    enable.addEventListener('change', () => this.model.toggleIntervention(item.id, enable.checked));

    const name = el('code', 'ls-iv-label', label);

    const op = el('select', 'ls-iv-op');
    op.dataset.role = 'op';
    op.setAttribute('aria-label', `what to do to ${label}`);
    for (const o of item.op === 'patch' ? ['patch' as const] : opsOf(item.component)) {
      const option = el('option', '', o);
      option.value = o;
      option.selected = o === item.op;
      op.append(option);
    }
    if (item.op === 'patch') {
      op.disabled = true;
      op.title = 'patched in from the patching tab’s clean text';
    }
    op.addEventListener('change', () => {
      const next = op.value as Op;
      this.model.updateIntervention(item.id, { op: next, value: VALUE_OF[next] === VALUE_OF[item.op] ? item.value : DEFAULT_VALUE[next] });
    });

    const value = el('input', 'ls-iv-value');
    value.type = 'number';
    value.step = 'any';
    value.dataset.role = 'value';
    const what = VALUE_OF[item.op];
    value.hidden = !what;
    value.value = String(item.value);
    value.title = item.op === 'steer' ? (item.component === 'neuron' ? 'steering coefficient: adds coefficient × the neuron’s output direction' : 'steering coefficient: the head’s output × (1 + coefficient)') : what ?? '';
    value.setAttribute('aria-label', `${what ?? 'value'} of ${label}`);
    value.addEventListener('change', () => {
      const v = Number(value.value);
      if (Number.isFinite(v) && value.value.trim() !== '') {
        this.model.updateIntervention(item.id, { value: v });
      }
    });

    const where = el('select', 'ls-iv-positions');
    where.dataset.role = 'positions';
    where.setAttribute('aria-label', `where ${label} is changed`);
    const all = el('option', '', 'all positions');
    all.value = 'all';
    where.append(all);
    if (item.origin !== null) {
      const token = this.model.run?.analysis.tokens[item.origin]?.text ?? '';
      const only = el('option', '', `only token ${item.origin} “${visible(token)}”`);
      only.value = 'one';
      only.selected = item.positions !== null;
      where.append(only);
    } else {
      where.disabled = true;
      where.title = 'Added by name: it applies everywhere (ablate from a token’s tooltip for “this token only”)';
    }
    where.addEventListener('change', () => this.model.updateIntervention(item.id, { positions: where.value === 'one' && item.origin !== null ? [item.origin] : null }));

    const remove = el('button', 'ls-iv-remove', '\u2715');
    remove.dataset.role = 'remove';
    remove.title = `remove ${label}`;
    remove.setAttribute('aria-label', `remove ${label}`);
    remove.addEventListener('click', () => this.model.removeIntervention(item.id));

    const line = el('div', 'ls-iv-line');
    line.append(enable, name, op);
    if (what) {
      const named = el('label', 'ls-iv-value-box');
      named.append(el('span', 'ls-muted', `${what} `), value);
      line.append(named);
    }
    const place = el('div', 'ls-iv-line ls-iv-where');
    place.append(where, remove);
    li.append(line, place);
    if (applied) {
      li.dataset.applied = applied.label;
      if (applied.mean_from) {
        const note = el('div', 'ls-muted ls-iv-mean', MEAN_FROM[applied.mean_from] ?? `mean from ${applied.mean_from}`);
        note.dataset.meanFrom = applied.mean_from;
        li.append(note);
      }
    }
    return li;
  }
}
