/**
 * The induction probe as a lenscope tab: the first probe sequence (BOS, n random frequent tokens,
 * the same n again; `GET heads/{model}/scores` returns its ids), analyzed on its token ids as
 * given (`POST analyze` and `POST attention` with `token_ids`: a decoded probe would re-tokenize
 * differently) and shown read-only, each token coloured by the log-prob the model gave it, with
 * attention mode on the top induction head: hovering (or focusing) a token colours the tokens
 * that head attends to from it instead. The probe's tokens are no file's: the tab is not an editor.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { Analysis } from '../api/analysis';
import type { Attention } from '../api/attention';
import type { HeadScores } from '../api/client';
import { attentionColor, colorFor, surprise } from '../colors';
import { describe } from '../errors';
import { el, fmt, visible } from '../format';
import { probeScores } from '../headroles';
import type { LenscopeModel } from '../model';
import { CommandIDs } from '../tokens';

interface Loaded {
  scores: HeadScores;
  analysis: Analysis;
  attention: Attention;
  ids: number[];
}

export class ProbeView extends Widget {
  private readonly heading = el('p', 'ls-probe-heading');
  private readonly controls = el('div', 'ls-probe-controls');
  private readonly headSelect = el('select', 'ls-probe-head');
  private readonly modeButton = el('button', 'ls-button ls-probe-mode');
  private readonly caption = el('p', 'ls-probe-caption ls-muted');
  private readonly tokens = el('div', 'ls-probe-tokens');
  private data: Loaded | null = null;
  private mode = true;
  private focusToken: number | null = null;

  constructor(
    private readonly model: LenscopeModel,
    commands: CommandRegistry,
    readonly modelName: string
  ) {
    super();
    this.addClass('ls-probe-view');
    this.id = 'lenscope-induction-probe';
    this.headSelect.setAttribute('aria-label', 'head');
    this.headSelect.addEventListener('change', () => void this.loadHead());
    this.modeButton.addEventListener('click', () => {
      this.mode = !this.mode;
      this.paint();
    });
    const card = el('button', 'ls-button ls-probe-card', 'Open the head’s card');
    card.addEventListener('click', () => {
      const [layer, head] = this.head();
      void commands.execute(CommandIDs.openHead, { model: modelName, layer, head });
    });
    this.controls.append(el('span', 'ls-muted', 'head'), this.headSelect, this.modeButton, card);
    this.tokens.setAttribute('role', 'group');
    this.tokens.setAttribute('aria-label', 'the probe’s tokens');
    this.node.append(this.heading, this.controls, this.caption, this.tokens);
    this.heading.textContent = `Running the induction probe on ${modelName}…`;
    void this.load();
  }

  private head(): [number, number] {
    const [layer, head] = this.headSelect.value.split('.').map(Number);
    return [layer || 0, head || 0];
  }

  private async load(): Promise<void> {
    try {
      const scores = await probeScores(this.model.client, this.modelName);
      const ids = (scores.sequence ?? []).slice(1); // without the BOS: analyze adds it
      if (!ids.length) {
        throw new Error('the server did not send the probe’s tokens');
      }
      const top = scores.top.induction ?? [];
      this.headSelect.replaceChildren(...top.map(t => new Option(`L${t.layer}.H${t.head} (induction ${t.score.toFixed(2)})`, `${t.layer}.${t.head}`)));
      const [layer] = this.head();
      const [analysis, attention] = await Promise.all([
        this.model.client.analyze({ model: this.modelName, text: '', context: '', token_ids: ids, top_k: 5, top_neurons: 0 }),
        this.model.client.attention({ model: this.modelName, text: '', token_ids: ids, layers: [layer], k: 8 })
      ]);
      this.data = { scores, analysis, attention, ids };
      const n = ids.length / 2;
      this.focusToken = Math.min(ids.length - 1, n + 9); // a token of the second copy: the induction head looks back to the first
      this.renderAll();
    } catch (err) {
      this.heading.textContent = `The induction probe failed: ${describe(err)}`;
      this.heading.classList.add('ls-error');
    }
  }

  private async loadHead(): Promise<void> {
    if (!this.data) {
      return;
    }
    const [layer] = this.head();
    if (!this.data.attention.hasLayer(layer)) {
      this.caption.textContent = 'Fetching attention…';
      this.data.attention = await this.model.client.attention({ model: this.modelName, text: '', token_ids: this.data.ids, layers: [layer], k: 8 });
    }
    this.paint();
  }

  private renderAll(): void {
    const d = this.data;
    if (!d) {
      return;
    }
    const n = d.ids.length / 2;
    const mean = (from: number, to: number): number => {
      let s = 0;
      for (let i = from; i < to; i++) {
        s += d.analysis.logprobOf(i);
      }
      return s / (to - from);
    };
    const gain = d.scores.in_context_gain;
    this.heading.replaceChildren(
      el('strong', '', `Induction probe on ${d.scores.model}: `),
      el('span', '', `in-context gain `),
      el('strong', 'ls-probe-gain', gain === null ? 'n/a' : `${gain.toFixed(2)} nats`),
      el('span', 'ls-muted', ` over ${d.scores.sequences} sequences of ${n} random tokens twice. This sequence: mean log-prob ${fmt(mean(1, n))} on the first copy, ${fmt(mean(n + 1, 2 * n))} on the second.`)
    );
    this.tokens.replaceChildren();
    for (let i = 0; i < d.ids.length; i++) {
      if (i === n) {
        this.tokens.append(el('span', 'ls-probe-divider', 'the same again ⟶'));
      }
      const span = el('span', 'ls-probe-token', visible(d.analysis.tokenString(d.ids[i])));
      span.dataset.index = String(i);
      span.tabIndex = 0;
      span.addEventListener('mouseenter', () => this.hover(i));
      span.addEventListener('focus', () => this.hover(i));
      this.tokens.append(span);
    }
    this.paint();
  }

  private hover(i: number): void {
    this.focusToken = i;
    this.paint();
  }

  /** Log-prob colours, or (attention mode, a token focused) the chosen head's attention from it. */
  private paint(): void {
    const d = this.data;
    if (!d) {
      return;
    }
    this.modeButton.textContent = this.mode ? 'Attention mode: on' : 'Attention mode: off';
    this.modeButton.setAttribute('aria-pressed', String(this.mode));
    const [layer, head] = this.head();
    const spans = Array.from(this.tokens.querySelectorAll<HTMLElement>('.ls-probe-token'));
    const q = this.focusToken;
    const on = this.mode && q !== null && d.attention.hasLayer(layer) ? d.attention.onText(layer, [head], q) : null;
    let max = 0;
    on?.weights.forEach(w => (max = Math.max(max, w)));
    spans.forEach((span, i) => {
      const lp = d.analysis.logprobOf(i);
      span.title = `#${i} log-prob ${fmt(lp)} · rank ${d.analysis.rankOf(i)}${on ? ` · L${layer}.H${head} from #${q}: ${fmt(on.weights[i])}` : ''}`;
      span.style.backgroundColor = on ? (on.weights[i] > 0 ? attentionColor(on.weights[i] / (max || 1)) : 'transparent') : colorFor(surprise(lp));
      span.classList.toggle('ls-probe-query', on !== null && i === q);
    });
    if (on && q !== null) {
      const n = d.ids.length / 2;
      let best = 0;
      on.weights.forEach((w, i) => (w > on.weights[best] ? (best = i) : undefined));
      const target = q >= n ? q - n + 1 : -1; // the token after this one's first occurrence
      this.caption.textContent =
        `Attention mode on L${layer}.H${head}: from “${visible(d.analysis.tokenString(d.ids[q]))}” (#${q}) its strongest key is “${visible(d.analysis.tokenString(d.ids[best]))}” (#${best}, ${fmt(on.weights[best])})` +
        (target >= 0 && target < n ? `; the token after this one’s first occurrence is #${target} (${fmt(on.weights[target])}).` : '.') +
        ' Hover a token to attend from it; attention mode off shows the log-prob colours.';
    } else {
      this.caption.textContent = 'Colours: the log-prob of each token (stronger: more surprising). The second copy is predictable from the first to a model with induction heads.';
    }
  }
}
