/**
 * The SAE picker (in the panel's header, below the model): the SAEs the current model can use
 * (`GET models`' `saes`), "none", and what is wrong with the one asked for, if anything. The
 * choice is per model for this session; the `sae` setting gives the start ("auto": the model's
 * shipped SAE).
 */
import { el } from '../format';
import type { LenscopeModel } from '../model';
import { NO_SAE, saesFor, saeSummary } from '../saes';

export class SaePicker {
  readonly node = el('div', 'ls-sae-picker-box');
  private readonly select = el('select', 'ls-sae-select');
  private readonly problem = el('p', 'ls-muted ls-sae-problem');
  /** what the chosen SAE is (hook point, features, k, format) */
  private readonly summary = el('p', 'ls-muted ls-sae-summary');

  constructor(private readonly model: LenscopeModel) {
    const label = el('label', 'ls-model-picker ls-sae-picker');
    label.append(el('span', '', 'SAE features '), this.select);
    this.select.setAttribute('aria-label', 'SAE whose features each token shows');
    this.select.addEventListener('change', () => (model.sae = this.select.value));
    this.problem.hidden = true;
    this.node.append(label, this.summary, this.problem);
  }

  render(): void {
    const choice = this.model.saeChoice;
    const saes = saesFor(this.model.model, this.model.saes);
    const none = el('option', '', 'none');
    none.value = NO_SAE;
    none.title = 'No SAE: the tooltip shows neurons only';
    this.select.replaceChildren(none);
    for (const s of saes) {
      const option = el('option', '', `${s.name}${s.loadable ? '' : ' (unavailable)'}`);
      option.value = s.name;
      option.title = saeSummary(s);
      option.disabled = !s.loadable;
      this.select.append(option);
    }
    const value = choice.name ?? NO_SAE;
    if (!saes.some(s => s.name === value) && value !== NO_SAE) {
      const option = el('option', '', `${value} (not listed)`);
      option.value = value;
      this.select.append(option);
    }
    this.select.value = value;
    const entry = saes.find(s => s.name === value);
    this.select.title = entry ? saeSummary(entry) : saes.length ? 'No SAE: pick one to see its features per token' : `No SAE for ${this.model.model}`;
    this.select.disabled = !saes.length && value === NO_SAE;
    this.summary.textContent = entry ? saeSummary(entry) : '';
    this.summary.hidden = !entry;
    this.node.dataset.sae = value;
    this.problem.hidden = !choice.problem;
    this.problem.textContent = choice.problem ?? '';
  }
}
