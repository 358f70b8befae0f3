/**
 * The hover over an analyzed token, as Markdown: the token's own log-prob and rank, the model's
 * top-k predictions after it with the actual next token marked, and its strongest neurons as
 * chips (command links that open the neuron's card in the panel, and ◐ that colours the text by
 * that neuron). Pure.
 */
import { Analysis, clampedDiff, fmt, visible } from './shared';
import { colourCommandUri } from './units';

export const OPEN_NEURON = 'lenscope.openNeuron';

/** Escape Markdown (and HTML) in untrusted token text; whitespace made visible first. */
export function escapeMarkdown(text: string): string {
  return visible(text).replace(/[\\`*_{}[\]()#+\-.!|<>~&]/g, ch => (ch === '<' ? '&lt;' : ch === '>' ? '&gt;' : ch === '&' ? '&amp;' : `\\${ch}`));
}

/** The command URI a neuron chip links to (arguments are JSON, URI-encoded). */
export function neuronCommandUri(model: string, layer: number, index: number): string {
  return `command:${OPEN_NEURON}?${encodeURIComponent(JSON.stringify([{ model, layer, index }]))}`;
}

function pct(p: number): string {
  return Number.isFinite(p) ? `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%` : '—';
}

export interface HoverOptions {
  /** the comparison's model B on the same text, when there is one */
  compare?: { analysis: Analysis; clamp: number } | null;
  /** how many neuron chips (default 5) */
  chips?: number;
}

/** The hover's Markdown for token i of the analysis. */
export function hoverMarkdown(analysis: Analysis, i: number, opts: HoverOptions = {}): string {
  const lines: string[] = [];
  const token = analysis.tokens[i];
  const own = analysis.logprobOf(i);
  const rank = analysis.rankOf(i);
  const code = (t: string): string => `\`${visible(t).replace(/`/g, 'ˋ')}\``;
  // one paragraph, hard line breaks: the hover stays short enough to show the whole table
  const head = [
    `**lenscope** · ${escapeMarkdown(analysis.model)} · token ${i} ${code(token.text)}`,
    `this token: log-prob **${fmt(own)}**${rank > 0 ? ` · rank **${rank}**` : ' · (first token: no prediction)'}`
  ];
  if (opts.compare) {
    const b = opts.compare.analysis;
    const diff = clampedDiff(own, b.logprobOf(i), opts.compare.clamp);
    head.push(`vs ${escapeMarkdown(b.model)}: ${fmt(b.logprobOf(i))} · diff **${fmt(diff)}** (B clamped at ${opts.compare.clamp})`);
  }
  const pred = analysis.after(i);
  head.push(
    pred.actual
      ? `next token ${code(pred.actual.token)}: rank **${pred.actual.rank}** · log-prob **${fmt(pred.actual.logprob)}** · entropy ${fmt(pred.entropy)}`
      : `after the selection · entropy ${fmt(pred.entropy)}`
  );
  lines.push(head.join('  \n'));
  // two columns of five: the whole top-10 fits in the hover without scrolling
  const half = Math.ceil(pred.top.length / 2);
  const cell = (j: number): string => {
    const c = pred.top[j];
    if (!c) {
      return ' | | | ';
    }
    const tok = code(c.token);
    const mark = pred.actual && c.id === pred.actual.id;
    return ` ${j + 1} | ${mark ? `**${tok}** ←` : tok} | ${pct(c.prob)} | ${fmt(c.logprob)} `;
  };
  lines.push('', `| # | top-${pred.top.length} next token | p | log-prob | # | | p | log-prob |`, '|--:|:--|--:|--:|--:|:--|--:|--:|');
  for (let r = 0; r < half; r++) {
    lines.push(`|${cell(r)}|${cell(r + half)}|`);
  }
  const neurons = analysis.neurons(i).filter(n => Number.isFinite(n.activation)).slice(0, opts.chips ?? 5);
  if (neurons.length > 0) {
    const chip = (n: { layer: number; index: number; activation: number }): string => {
      const unit = `L${n.layer}.N${n.index}`;
      const card = `[L${n.layer}.N${n.index} ${fmt(n.activation)}](${neuronCommandUri(analysis.model, n.layer, n.index)} "open the card of neuron ${n.layer}.${n.index}")`;
      return `${card} [◐](${colourCommandUri(unit, analysis.model)} "colour the text by ${unit}")`;
    };
    lines.push('', 'neurons: ' + neurons.map(chip).join(' · '));
  }
  return lines.join('\n');
}
