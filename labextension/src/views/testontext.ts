/**
 * A card's "Test on text": type (or pick: the current analysis' text, a top example) a text, and
 * see the unit's activation at each of its tokens (`POST unit_activations`: colour and number)
 * beside where its description predicts it fires (outlined), with the prediction's precision
 * P(pattern | fires) and recall P(fires | pattern) on that text. One request at a time through a
 * `LatestRequest` (a newer test aborts the older).
 */
import type { NeuronCard } from '../api/client';
import type { UnitActivations } from '../api/units';
import { activationColor } from '../colors';
import { describe } from '../errors';
import { el, fmt, visible } from '../format';
import { Description, PatternWire, predicted, scoreLine, scoreOnText } from '../hypothesis';
import type { LenscopeModel } from '../model';
import { LatestRequest } from '../request';
import { copyCodeButton } from './copycode';
import { activationLegend } from './legend';

/** The unit tested: its model and name (`L0.N5`, `F12` of `sae`). */
export interface TestedUnit {
  model: string;
  name: string;
  sae: string | null;
}

/** Tokens shown at most. */
const MAX_TOKENS = 300;

export class TestOnText {
  readonly node = el('div', 'ls-test-on-text');
  private readonly source = el('select', 'ls-test-source');
  private readonly input = el('textarea', 'ls-test-input');
  private readonly output = el('div', 'ls-test-output');
  private readonly request: LatestRequest;
  private card: NeuronCard | null = null;
  private sent: { text: string; context: string } | null = null;

  constructor(
    private readonly unit: TestedUnit,
    private readonly model: LenscopeModel
  ) {
    this.request = new LatestRequest({
      busy: busy => {
        if (busy) {
          this.node.dataset.state = 'loading';
        }
      },
      failed: err => {
        this.node.dataset.state = 'error';
        this.output.replaceChildren(el('p', 'ls-error', describe(err)));
      }
    });
    this.node.dataset.state = 'idle';
    this.input.rows = 3;
    this.input.placeholder = 'Type a text to test the description on';
    this.input.setAttribute('aria-label', `text to test ${unit.name} on`);
    this.source.setAttribute('aria-label', 'pick a text');
    this.source.addEventListener('change', () => this.pick());
    const run = el('button', 'ls-action ls-test-run', 'Test');
    run.title = `${unit.name}'s activation at every token of the text (POST unit_activations) beside its description's prediction`;
    run.addEventListener('click', () => void this.test());
    const form = el('div', 'ls-test-form');
    form.append(this.source, this.input, run, copyCodeButton(`${unit.name}'s activation at every token of the text`, () => this.code(), 'ls-action ls-copy-code'));
    this.node.append(
      el('h4', '', 'Test on text'),
      el('p', 'ls-muted', 'Does the description predict where it fires? Outlined: where the pattern occurs; colour and number: the activation.'),
      form,
      this.output
    );
    this.listSources();
    this.pick();
  }

  /** The card (re)loaded: its description and examples are the ones to test and pick from. */
  setCard(card: NeuronCard | null): void {
    this.card = card;
    this.listSources();
  }

  dispose(): void {
    this.request.abort();
  }

  /** "the current analysis' text" and the card's top examples. */
  private listSources(): void {
    const chosen = this.source.value;
    const options = [el('option', '', 'the current analysis’ text')];
    options[0].value = 'run';
    (this.card?.examples ?? []).slice(0, 10).forEach((ex, i) => {
      const o = el('option', '', `example ${i + 1}: ${visible(ex.tokens.join('')).slice(0, 40)}`);
      o.value = String(i);
      options.push(o);
    });
    options.push(Object.assign(el('option', '', 'typed'), { value: 'typed' }));
    this.source.replaceChildren(...options);
    this.source.value = options.some(o => o.value === chosen) ? chosen : 'run';
  }

  private pick(): void {
    const v = this.source.value;
    if (v === 'run') {
      this.input.value = this.model.run?.target.text ?? '';
    } else if (v !== 'typed') {
      this.input.value = this.card?.examples[Number(v)]?.tokens.join('') ?? '';
    }
  }

  private code() {
    const t = this.sent;
    return t ? { kind: 'unitActivationsSnippet' as const, request: { model: this.unit.model, text: t.text, context: t.context, units: [this.unit.name], sae: this.unit.sae } } : null;
  }

  /** Ask for the unit's activations on the text and show them beside the prediction. */
  async test(): Promise<void> {
    const text = this.input.value;
    if (!text.trim()) {
      this.output.replaceChildren(el('p', 'ls-muted', 'Type or pick a text first.'));
      return;
    }
    const run = this.model.run;
    // the current analysis' text keeps its context (the text before the selection)
    const context = this.source.value === 'run' && run && run.target.text === text && run.analysis.model === this.unit.model ? run.target.context : '';
    const { model, name, sae } = this.unit;
    const acts = await this.request.run(signal => this.model.client.unitActivations({ model, text, context, units: [name], sae }, signal));
    if (!acts) {
      return;
    }
    this.sent = { text, context };
    this.node.dataset.state = 'ready';
    this.output.replaceChildren(...this.render(acts, this.card?.description ?? null));
  }

  private render(acts: UnitActivations, d: Description | null): HTMLElement[] {
    const values = acts.column(0);
    const max = Math.max(0, ...values);
    const prediction = d ? predicted(d, acts.ids) : null;
    const out: HTMLElement[] = [];
    if (d && prediction) {
      const s = scoreOnText(values, d.threshold, prediction);
      const line = el('p', 'ls-test-score', scoreLine(s, d.threshold, this.unit.name));
      Object.assign(line.dataset, { fires: String(s.fires), occurs: String(s.occurs), both: String(s.both) });
      out.push(el('p', 'ls-muted', `Description: ${d.text}`), line);
    } else {
      const kind = (d as PatternWire | null)?.kind;
      out.push(
        el(
          'p',
          'ls-muted ls-test-score',
          !d ? 'No description to test: the activations alone.' : kind === 'none' ? 'No simple pattern to test: the activations alone.' : `This description’s pattern kind (${kind ?? 'more than a pair'}) is not predicted here: the activations alone.`
        )
      );
    }
    out.push(activationLegend(`${this.unit.name} activation`, max));
    const line = el('div', 'ls-test-tokens');
    for (let i = 0; i < Math.min(values.length, MAX_TOKENS); i++) {
      const cell = el('span', 'ls-test-token');
      cell.dataset.token = String(i);
      cell.dataset.activation = String(values[i]);
      const fires = d ? values[i] > d.threshold : false;
      if (prediction?.[i]) {
        cell.classList.add('ls-test-predicted');
      }
      if (fires) {
        cell.classList.add('ls-test-fires');
      }
      const tok = el('span', 'ls-test-text', visible(acts.texts[i] ?? ''));
      tok.style.backgroundColor = activationColor(values[i], max);
      // a zero (a feature that is off) stays blank: the numbers that matter stand out
      cell.append(tok, el('span', 'ls-test-value ls-num', values[i] === 0 ? '\u00a0' : fmt(values[i], 1)));
      cell.title = `token ${i}: activation ${fmt(values[i], 3)}${prediction ? (prediction[i] ? ' · the pattern occurs' : '') : ''}${fires ? ' · fires' : ''}`;
      line.append(cell);
    }
    out.push(line);
    if (values.length > MAX_TOKENS) {
      out.push(el('p', 'ls-muted', `(the first ${MAX_TOKENS} of ${values.length} tokens; the counts are over all)`));
    }
    return out;
  }
}
