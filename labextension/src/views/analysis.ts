/**
 * The side panel's view of the last analysis: what it is of (model, file, lines), its status,
 * the legend of the colours in use, the tokens in those same colours (focusable: arrow keys move,
 * Enter goes there in the editor), and the neuron the text is coloured by.
 */
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { activationColor, clampedDiff, colorFor, deltaColor, diffColor, surprise } from '../colors';
import { el, fmt, visible } from '../format';
import type { LenscopeModel, Run, Status } from '../model';
import { describeTarget } from '../target';
import { CommandIDs } from '../tokens';
import { saeOf, signedDelta, toWire } from '../interventions';
import { activationLegend, deltaLegend, diffLegend, logprobLegend } from './legend';
import type { SnippetRequest } from '../snippets';
import { copyCodeButton, serverRoot } from './copycode';

/**
 * The snippet of what the analysis view shows: the analysis, the comparison with model B, or the
 * analysis with the enabled interventions (their Δ per token).
 */
export function analysisCode(model: LenscopeModel, run: Run): SnippetRequest {
  const s = model.settings;
  const { analysis, target } = run;
  const request = { model: analysis.model, text: target.text, context: target.context, top_k: analysis.prediction(0).top.length, top_neurons: s.topNeurons };
  if (run.neuron?.kind === 'feature') {
    return { kind: 'unitActivationsSnippet', request: { model: analysis.model, text: target.text, context: target.context, units: [run.neuron.name], sae: run.neuron.sae } };
  }
  if (run.intervened) {
    const sae = saeOf(model.interventions.items);
    return { kind: 'interventionSnippet', request: { ...request, interventions: toWire(model.interventions.items), root: serverRoot(), ...(sae ? { sae } : {}) } };
  }
  if (run.compare) {
    return { kind: 'comparisonSnippet', request: { ...request, model_b: run.compare.analysis.model, clamp: run.compare.clamp } };
  }
  return { kind: 'analysisSnippet', request };
}

/** Colour of token i in a run, exactly as the editor colours it. */
export function runColour(run: Run, i: number, floor: number, scale: Parameters<typeof colorFor>[1], max: number): string {
  if (run.neuron) {
    return activationColor(run.neuron.activations.at(i), max);
  }
  if (run.intervened) {
    return deltaColor(run.intervened.deltas[i], run.intervened.span);
  }
  if (run.compare) {
    return diffColor(clampedDiff(run.analysis.logprobOf(i), run.compare.analysis.logprobOf(i), run.compare.clamp));
  }
  return colorFor(surprise(run.analysis.logprobOf(i), floor), scale);
}

export function neuronMax(run: Run): { max: number; at: number } {
  let max = 0;
  let at = 0;
  if (run.neuron) {
    for (let i = 0; i < run.analysis.length; i++) {
      if (run.neuron.activations.at(i) > max) {
        max = run.neuron.activations.at(i);
        at = i;
      }
    }
  }
  return { max, at };
}

export class AnalysisView extends Widget {
  private readonly heading = el('h3', 'ls-analysis-title');
  private readonly status = el('div', 'ls-status');
  private readonly legendBox = el('div', 'ls-legend-box');
  private readonly neuronBox = el('div', 'ls-neuron');
  private readonly tokensBox = el('div', 'ls-tokens');
  /** the tokens, a panel section of their own (its title: "Tokens (42)") */
  readonly tokens = new Widget();
  private readonly timings = el('div', 'ls-timings ls-muted');
  private readonly copyButton: HTMLButtonElement;
  private runs = 0;
  private timed: Run['analysis'] | null = null;

  constructor(
    private readonly model: LenscopeModel,
    private readonly commands: CommandRegistry,
    private readonly panelNode: HTMLElement
  ) {
    super();
    this.addClass('ls-analysis');
    this.copyButton = copyCodeButton('this analysis (log-probs, ranks, top-k; a comparison\'s differences; interventions\' Δ)', () =>
      this.model.run ? analysisCode(this.model, this.model.run) : null
    );
    this.copyButton.classList.add('ls-analysis-code');
    this.copyButton.hidden = true;
    this.node.append(this.heading, this.copyButton, this.status, this.legendBox, this.neuronBox, this.timings);
    this.tokens.addClass('ls-tokens-view');
    this.tokens.node.append(this.tokensBox);
    model.statusChanged.connect((_, s) => this.showStatus(s));
    model.runChanged.connect((_, run) => this.showRun(run));
    this.showStatus(model.status);
    this.showRun(model.run);
  }

  private showStatus(state: Status): void {
    this.panelNode.dataset.state = state.kind;
    this.status.replaceChildren();
    this.status.className = `ls-status ls-status-${state.kind}`;
    if (state.kind === 'empty') {
      this.status.append(
        el('p', '', 'Select text in a file or notebook cell and run “lenscope: Analyze selection”'),
        el('p', 'ls-muted', '(command palette, right-click menu, or Alt+Shift+L). With nothing selected, the cell or file is analyzed. Then Alt+Shift+→/← move between tokens and Alt+Shift+K opens the token’s tooltip.')
      );
    } else if (state.kind === 'loading') {
      this.status.append(el('p', 'ls-spinner', state.message));
    } else if (state.kind === 'error') {
      this.status.append(el('p', 'ls-error', state.message), el('p', 'ls-muted', state.hint));
    }
  }

  private showRun(run: Run | null): void {
    this.legendBox.replaceChildren();
    this.neuronBox.replaceChildren();
    this.tokensBox.replaceChildren();
    this.copyButton.hidden = !run;
    this.tokens.title.label = '';
    if (!run) {
      this.timings.textContent = '';
      this.heading.textContent = '';
      return;
    }
    const { analysis } = run;
    const models = run.compare ? `${analysis.model} vs ${run.compare.analysis.model}` : analysis.model;
    this.heading.textContent = `${describeTarget(run.target)} · ${models}`;
    this.heading.title = run.target.path;
    const s = this.model.settings;
    const { max, at } = neuronMax(run);
    if (run.neuron) {
      const { layer, index, kind, name, sae } = run.neuron;
      this.neuronBox.dataset.kind = kind;
      this.neuronBox.dataset.layer = String(layer ?? '');
      this.neuronBox.dataset.index = String(index);
      const back = el('button', 'ls-button ls-back', 'colour by log-prob again');
      back.addEventListener('click', () => void this.model.colourByNeuron(null));
      const open = el('button', 'ls-button', 'open its card');
      open.addEventListener('click', () =>
        void (kind === 'feature' ? this.commands.execute(CommandIDs.openFeature, { model: analysis.model, sae: sae ?? '', index }) : this.commands.execute(CommandIDs.openNeuron, { model: analysis.model, layer: layer ?? 0, index }))
      );
      this.neuronBox.append(
        el('h4', '', kind === 'feature' ? `Text coloured by feature ${name} of ${sae} (${analysis.model})` : `Text coloured by neuron ${name} of ${analysis.model}`),
        el('p', 'ls-muted', `max ${fmt(max)} at “${visible(analysis.tokens[at]?.text ?? '')}”`),
        back,
        open
      );
      this.legendBox.append(activationLegend(`activation of ${name}`, max));
    } else if (run.intervened) {
      const legend = deltaLegend(run.intervened.span);
      legend.dataset.span = String(run.intervened.span);
      this.legendBox.append(legend, el('div', 'ls-muted ls-delta-of', `with ${run.intervened.applied.map(x => x.label).join(', ')} (Interventions below)`));
    } else if (run.compare) {
      this.legendBox.append(diffLegend(analysis.model, run.compare.analysis.model, run.compare.clamp));
    } else {
      this.legendBox.append(logprobLegend(s.colorScale, s.logprobFloor));
    }
    const served = analysis.serverTimings;
    const server = served.total ?? analysis.timings.forward;
    if (run.neuron || run.analysis === this.timed) {
      this.showTokens(run, max);
      return; // a recolouring (neuron, settings): the analysis's timing stays as it was
    }
    this.timed = run.analysis;
    // command to the frame that paints the editor's decorations; this list of (up to thousands
    // of) tokens is built after that, so the text is coloured first
    requestAnimationFrame(() => {
      const clientMs = performance.now() - run.started;
      if (this.model.run === run) {
        this.showTokens(run, max);
      }
      // a cached answer keeps the timings of when it was computed: say so
      const how = analysis.servedFrom === 'cache' ? `from the cache; computed in ${fmt(analysis.timings.forward, 1)} ms` : `forward ${fmt(analysis.timings.forward, 1)} ms${analysis.servedFrom === 'coalesced' ? ', shared with an identical request' : ''}`;
      this.timings.textContent = `server ${fmt(server, 1)} ms (${how}) · command to colours ${fmt(clientMs, 1)} ms`;
      this.panelNode.dataset.serverMs = String(server);
      this.panelNode.dataset.clientMs = String(clientMs);
      this.panelNode.dataset.runs = String(++this.runs);
    });
  }

  /** The tokens in the editor's colours: one tab stop, arrows move, Enter goes there in the editor. */
  private showTokens(run: Run, max: number): void {
    const { analysis } = run;
    const s = this.model.settings;
    this.tokens.title.label = `Tokens (${analysis.length}${analysis.windowed ? ', windowed' : ''})`;
    const flow = el('div', 'ls-token-flow');
    flow.setAttribute('role', 'listbox');
    flow.setAttribute('aria-label', 'Analyzed tokens: arrow keys move, Enter goes to the token in the editor');
    analysis.tokens.forEach((t, i) => {
      const span = el('span', 'ls-flow-token', visible(t.text));
      span.dataset.lsToken = String(i);
      span.setAttribute('role', 'option');
      span.tabIndex = i === 0 ? 0 : -1; // one tab stop; arrows move inside
      span.style.backgroundColor = runColour(run, i, s.logprobFloor, s.colorScale, max);
      const rank = analysis.rankOf(i);
      span.title = run.neuron
        ? `activation ${fmt(run.neuron.activations.at(i), 3)}`
        : run.intervened && rank > 0
          ? `Δ log-prob ${signedDelta(run.intervened.deltas[i])} (${fmt(analysis.logprobOf(i))} → ${fmt(run.intervened.analysis.logprobOf(i))})`
          : rank > 0
          ? `log-prob ${fmt(analysis.logprobOf(i))} · rank ${rank}`
          : '';
      if (run.intervened && !run.neuron) {
        span.dataset.delta = String(run.intervened.deltas[i]);
      }
      if (run.neuron) {
        span.dataset.activation = String(run.neuron.activations.at(i));
      }
      flow.append(span);
    });
    flow.addEventListener('click', event => {
      const i = (event.target as HTMLElement).dataset?.lsToken;
      if (i !== undefined) {
        void this.commands.execute(CommandIDs.revealToken, { index: Number(i) });
      }
    });
    flow.addEventListener('keydown', event => moveInList(event, flow, '.ls-flow-token', i => void this.commands.execute(CommandIDs.revealToken, { index: i })));
    this.tokensBox.append(flow);
  }
}

/**
 * Arrow keys, Home and End move the focus within a list of items (one tab stop for the list);
 * Enter acts on the focused item.
 */
export function moveInList(event: KeyboardEvent, list: HTMLElement, selector: string, act: (index: number) => void): void {
  const items = Array.from(list.querySelectorAll<HTMLElement>(selector));
  const current = items.indexOf(document.activeElement as HTMLElement);
  if (current < 0) {
    return;
  }
  const step: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: -items.length, End: items.length };
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    act(current);
    return;
  }
  if (!(event.key in step)) {
    return;
  }
  event.preventDefault();
  const next = Math.max(0, Math.min(items.length - 1, current + step[event.key]));
  items[current].tabIndex = -1;
  items[next].tabIndex = 0;
  items[next].focus();
}
