/** The model picker: the model requests go to (and its load state), and the comparison model. */
import { Widget } from '@lumino/widgets';

import { el } from '../format';
import type { LenscopeModel } from '../model';
import { modelSummary } from '../saes';
import { SaePicker } from './saepicker';

export class ModelPicker extends Widget {
  private readonly select = el('select', 'ls-model-select');
  private readonly state = el('span', 'ls-model-state');
  private readonly compare = el('select', 'ls-compare-select');
  private readonly problem = el('p', 'ls-error ls-model-problem');
  private readonly shape = el('p', 'ls-muted ls-model-shape');
  private readonly saePicker: SaePicker;

  constructor(private readonly model: LenscopeModel) {
    super();
    this.addClass('ls-header');
    const picker = el('label', 'ls-model-picker');
    picker.append(el('span', '', 'Model '), this.select, this.state);
    this.select.setAttribute('aria-label', 'Model');
    this.select.addEventListener('change', () => (model.model = this.select.value));
    // models attached in a kernel come and go (lenscope.attach, a restart): list them afresh when the picker is opened
    this.select.addEventListener('mousedown', () => this.refreshSoon());
    this.select.addEventListener('focus', () => this.refreshSoon());
    const refresh = el('button', 'ls-button ls-refresh', '↻');
    refresh.title = 'Refresh the model list';
    refresh.setAttribute('aria-label', 'Refresh the model list');
    refresh.addEventListener('click', () => void model.refreshModels());
    picker.append(refresh);
    const compare = el('label', 'ls-model-picker');
    compare.append(el('span', '', 'Compare with '), this.compare);
    this.compare.title = 'Model B: colour tokens by lp(A) - max(lp(B), clamp), tooltips side by side';
    this.compare.addEventListener('change', () => (model.compareModel = this.compare.value));
    this.problem.hidden = true;
    this.saePicker = new SaePicker(model);
    this.node.append(el('h2', 'ls-title', 'lenscope'), picker, this.shape, this.problem, this.saePicker.node, compare);
    model.modelsChanged.connect(this.render, this);
    this.render();
  }

  private lastRefresh = 0;

  private refreshSoon(): void {
    if (performance.now() - this.lastRefresh > 1000) {
      this.lastRefresh = performance.now();
      void this.model.refreshModels();
    }
  }

  private render(): void {
    const { name, problem } = this.model.choice;
    const models = this.model.models;
    this.select.replaceChildren();
    for (const m of models) {
      const summary = modelSummary(m);
      // the name alone (the closed select stays readable); what it is in its tooltip and, for the current one, the line below
      const option = el('option', '', `${m.name}${m.kernel ? ` (kernel: ${m.kernel.notebook ?? m.kernel.id.slice(0, 8)})` : ''}${m.loadable ? '' : ' (unavailable)'}`);
      option.value = m.name;
      option.title = m.kernel ? `${summary ?? ''} · lives in ${kernelLabel(m.kernel)}: gone when it restarts` : summary ?? m.reason;
      option.disabled = !m.loadable;
      this.select.append(option);
    }
    if (name && !models.some(m => m.name === name)) {
      // the truth: a name the server does not list (e.g. a mistyped setting), not a silent fallback
      const option = el('option', '', `${name} (unknown)`);
      option.value = name;
      this.select.append(option);
    }
    this.select.value = name;
    const entry = this.model.entry;
    const state = problem ? 'error' : entry?.state ?? 'unknown';
    this.state.textContent = ` ${problem ? (entry ? 'unavailable' : 'unknown') : state}`;
    this.state.className = `ls-model-state ls-state-${state}`;
    this.node.dataset.model = name;
    this.node.dataset.modelState = state;
    this.problem.hidden = !problem;
    this.problem.textContent = problem ?? '';
    this.select.title = entry?.shape
      ? `${entry.shape.n_layers} layers · d_model ${entry.shape.d_model} · ${entry.shape.d_mlp ?? 'no'} MLP neurons · vocab ${entry.shape.d_vocab} · context ${entry.shape.n_ctx}`
      : entry?.reason ?? '';
    this.shape.textContent = entry ? [modelSummary(entry), entry.kernel ? `runs in ${kernelLabel(entry.kernel)}` : null].filter(Boolean).join(' · ') : '';
    this.shape.hidden = !this.shape.textContent;
    this.saePicker.render();
    this.compare.replaceChildren(el('option', '', '(no comparison)'));
    (this.compare.firstChild as HTMLOptionElement).value = '';
    for (const m of models.filter(m => m.loadable)) {
      const option = el('option', '', m.name);
      option.value = m.name;
      this.compare.append(option);
    }
    this.compare.value = this.model.compareModel;
  }
}

/** Where an attached model lives, for people: its notebook, or the kernel's id. */
export function kernelLabel(kernel: { id: string; notebook?: string | null }): string {
  return kernel.notebook ? `the kernel of ${kernel.notebook}` : `kernel ${kernel.id.slice(0, 8)}`;
}
