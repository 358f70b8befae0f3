/**
 * An SAE feature's card, a main-area tab: the neuron card's view (`renderCard`) over
 * `GET features/{model}/{sae}/{index}` (top examples, the logit effects of its decoder direction
 * → W_out → W_U, histogram), and the feature on the current analysis' text, read from the
 * analysis' feature arrays: coloured where the feature is among a token's top features, marked
 * where it is not (its activation there is unknown, not zero).
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import type { Analysis } from '../api/analysis';
import { LenscopeApiError, NeuronCard } from '../api/client';
import { featureLabel } from '../api/features';
import { activationColor } from '../colors';
import { describe } from '../errors';
import type { JobView } from '../jobs';
import { el, fmt, visible } from '../format';
import type { LenscopeModel, Run } from '../model';
import { CommandIDs } from '../tokens';
import { placeTester, refreshesCards, renderCard } from './card';
import { TestOnText } from './testontext';
import { copyCodeButton } from './copycode';
import { IndexPicker } from './indexpicker';
import { activationLegend } from './legend';

export interface FeatureArgs {
  model: string;
  sae: string;
  index: number;
}

/** A feature card tab's label: `F123 · sae`. */
export function featureCardLabel(a: FeatureArgs): string {
  return `${featureLabel(a.index)} · ${a.sae}`;
}

/** Tokens of the current text shown at most (the rest is summarised). */
const MAX_TOKENS = 400;

/**
 * The feature on the analysis' text: each token coloured by the feature's activation where it is
 * among that token's top features, outlined as "not in the top" elsewhere; a click reveals the token.
 */
export function onTextSection(analysis: Analysis | null, args: FeatureArgs, commands: CommandRegistry): HTMLElement {
  const box = el('div', 'ls-feature-on-text');
  box.append(el('h4', '', 'On the current text'));
  const features = analysis?.features ?? null;
  if (!analysis || analysis.model !== args.model || !features || features.sae !== args.sae) {
    box.dataset.state = 'none';
    box.append(
      el(
        'p',
        'ls-muted',
        analysis
          ? `The current analysis (${analysis.model}${features ? `, ${features.sae}` : ', no SAE'}) has no features of ${args.sae} on ${args.model}: pick ${args.sae} in the panel's SAE picker and analyze.`
          : `Analyze a selection with ${args.model} and ${args.sae} to see ${featureLabel(args.index)} on it.`
      )
    );
    return box;
  }
  box.dataset.state = 'shown';
  const column = features.column(args.index);
  const present = column.filter((v): v is number => v !== null);
  const max = Math.max(0, ...present);
  const at = column.indexOf(present.length ? max : NaN);
  const summary = el(
    'p',
    'ls-muted ls-feature-on-text-summary',
    present.length
      ? `In the top ${features.perToken} features at ${present.length} of ${column.length} tokens; max ${fmt(max)} at “${visible(analysis.tokens[at].text)}” (token ${at}). Elsewhere it is not among the top ${features.perToken} (its activation there is not known: dotted).`
      : `Not among the top ${features.perToken} features at any of the ${column.length} tokens.`
  );
  box.dataset.count = String(present.length);
  box.append(summary, activationLegend(`${featureLabel(args.index)} activation`, max));
  const line = el('div', 'ls-example-tokens ls-feature-tokens');
  column.slice(0, MAX_TOKENS).forEach((v, i) => {
    const span = el('span', v === null ? 'ls-flow-token ls-feature-absent' : 'ls-flow-token ls-feature-present', visible(analysis.tokens[i].text));
    span.dataset.token = String(i);
    if (v === null) {
      span.title = `token ${i}: not among its top ${features.perToken} features`;
    } else {
      span.dataset.activation = String(v);
      span.style.backgroundColor = activationColor(v, max);
      span.title = `token ${i}: activation ${fmt(v, 3)} (click: go to the token)`;
      span.addEventListener('click', () => void commands.execute(CommandIDs.revealToken, { index: i }));
    }
    line.append(span);
  });
  box.append(line);
  if (column.length > MAX_TOKENS) {
    box.append(el('p', 'ls-muted', `(the first ${MAX_TOKENS} of ${column.length} tokens)`));
  }
  return box;
}

export class FeatureCardView extends Widget {
  card: NeuronCard | null = null;
  private readonly onText = el('div', 'ls-feature-on-text-slot');
  /** "Test on text": kept across reloads (the typed text stays) */
  private readonly tester: TestOnText;
  private shown: Analysis | null | undefined = undefined;
  /** how many times the card was fetched (a finished index job fetches it again) */
  private loads = 0;

  constructor(
    readonly args: FeatureArgs,
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry
  ) {
    super();
    this.addClass('ls-card-view');
    this.addClass('ls-feature-card-view');
    this.node.tabIndex = -1;
    this.node.dataset.sae = args.sae;
    this.node.dataset.index = String(args.index);
    this.node.dataset.model = args.model;
    this.node.append(el('p', 'ls-spinner', `Loading the card of feature ${featureCardLabel(args)}…`));
    this.tester = new TestOnText({ model: args.model, name: featureLabel(args.index), sae: args.sae }, model);
    model.runChanged.connect(this.followRun, this);
    model.jobs.changed.connect(this.onJob, this);
    model.indexChanged.connect(this.onIndex, this); // another index picked for the model: read it
    void this.load();
  }

  dispose(): void {
    this.tester.dispose();
    this.model.runChanged.disconnect(this.followRun, this);
    this.model.jobs.changed.disconnect(this.onJob, this);
    this.model.indexChanged.disconnect(this.onIndex, this);
    super.dispose();
  }

  /** A finished index build or update: fetch the card again (the old one stays until then). */
  private onIndex(): void {
    if (!this.isDisposed && this.card?.index_path !== this.model.indexFor(this.args.model, this.args.sae)) {
      void this.load();
    }
  }

  private onJob(_: unknown, view: JobView): void {
    if (refreshesCards(view) && !this.isDisposed) {
      void this.load();
    }
  }

  private followRun(_: unknown, run: Run | null): void {
    const analysis = run?.analysis ?? null;
    if (analysis !== this.shown) {
      this.shown = analysis;
      this.onText.replaceChildren(onTextSection(analysis, this.args, this.commands));
    }
  }

  /** What the feature is of, and "Copy as code" (its logit effects from the weights). */
  private header(): HTMLElement {
    const { model, sae, index } = this.args;
    const bar = el('div', 'ls-ablate-bar ls-feature-bar');
    const entry = this.model.saes.find(s => s.name === sae);
    const what = entry?.hook_point ? ` at ${entry.hook_point}` : '';
    const size = entry?.d_sae ? ` · ${entry.d_sae.toLocaleString('en-US')} features${entry.k ? `, k=${entry.k}` : ''}` : '';
    const colour = el('button', 'ls-action ls-colour-card', 'Colour the editor by it');
    colour.title = `Colour the analyzed text by ${featureLabel(index)}'s activation at every token (POST unit_activations)`;
    colour.addEventListener('click', () => {
      const run = this.model.run;
      if (run && run.analysis.model !== model) {
        this.model.setStatus({ kind: 'error', message: `${featureLabel(index)} is of ${model}; the current analysis is by ${run.analysis.model}.`, hint: `Analyze the text with ${model} first.` });
        return;
      }
      void this.model.colourByFeature({ sae, index });
    });
    const ablate = el('button', 'ls-action ls-ablate-card', 'Ablate in the current analysis');
    ablate.title = `Zero ${featureLabel(index)} at every position of the analyzed text and re-run it (its decoder direction removed, the SAE's error kept): the text is coloured by the change in log-prob`;
    ablate.addEventListener('click', () => void this.commands.execute(CommandIDs.ablate, { model, component: 'feature', sae, index }));
    bar.append(
      el('span', 'ls-muted ls-feature-of', `An SAE feature of ${model}${what}${size}. `),
      colour,
      ablate,
      copyCodeButton('this feature’s logit effects from the SAE’s decoder and the model’s weights', () => ({ kind: 'featureCardSnippet', request: { model, sae, index } }), 'ls-action ls-copy-code')
    );
    return bar;
  }

  private async load(): Promise<void> {
    const { model, sae, index } = this.args;
    this.followRun(null, this.model.run);
    const load = ++this.loads;
    try {
      const card = await this.model.client.featureCard(model, sae, index, this.model.indexFor(model, sae));
      if (load !== this.loads || this.isDisposed) {
        return; // a newer fetch is under way
      }
      this.card = card;
      this.node.dataset.loads = String(load);
      const root = renderCard(card, this.commands);
      root.querySelector('h2')?.after(this.header(), new IndexPicker(this.model, () => model, () => sae).node);
      // the feature on the current text, before the corpus' examples
      root.querySelector('.ls-effects')?.after(this.onText);
      this.tester.setCard(card);
      placeTester(root, this.tester.node);
      const top = this.node.scrollTop; // a refreshed card stays where the reader was
      this.node.replaceChildren(root);
      this.node.scrollTop = top;
    } catch (err) {
      if (load !== this.loads || this.isDisposed) {
        return;
      }
      this.node.dataset.loads = String(load);
      const missing = err instanceof LenscopeApiError && err.code === 'index_not_found';
      const parts: HTMLElement[] = [
        el('h2', '', `Feature ${featureCardLabel(this.args)}`),
        this.header(),
        el('p', missing ? 'ls-muted ls-feature-missing' : 'ls-error', missing ? `No feature index for ${sae} on ${model} yet: its examples, logit effects and histogram come from one.` : describe(err))
      ];
      if (missing) {
        const build = el('button', 'ls-action ls-build-feature-index', 'Index the workspace for this SAE’s features');
        build.title = `Build a feature index of ${sae} over the workspace (a job; the panel shows its progress), then reopen this card`;
        build.addEventListener('click', () => void this.model.buildIndex(sae, model));
        parts.push(build);
      }
      this.node.replaceChildren(...parts, this.tester.node, this.onText);
    }
  }
}
