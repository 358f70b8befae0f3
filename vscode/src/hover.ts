/**
 * The hover over an analyzed token, as Markdown: the token's own log-prob and rank, the model's
 * top-k predictions after it with the actual next token marked, and its strongest neurons as
 * chips (command links that open the neuron's card in the panel). Pure.
 */
import { Analysis, clampedDiff, fmt, visible } from './shared';

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
  lines.push(
    `**lenscope** · ${escapeMarkdown(analysis.model)} · token ${i} \`${visible(token.text).replace(/`/g, 'ˋ')}\``,
    '',
    `this token: log-prob **${fmt(own)}**${rank > 0 ? ` · rank **${rank}**` : ' · (first token: no prediction)'}`
  );
  if (opts.compare) {
    const b = opts.compare.analysis;
    const diff = clampedDiff(own, b.logprobOf(i), opts.compare.clamp);
    lines.push('', `vs ${escapeMarkdown(b.model)}: ${fmt(b.logprobOf(i))} · diff **${fmt(diff)}** (B clamped at ${opts.compare.clamp})`);
  }
  const pred = analysis.after(i);
  lines.push('');
  if (pred.actual) {
    lines.push(`next token \`${visible(pred.actual.token).replace(/`/g, 'ˋ')}\`: rank **${pred.actual.rank}** · log-prob **${fmt(pred.actual.logprob)}** · entropy ${fmt(pred.entropy)}`);
  } else {
    lines.push(`after the selection · entropy ${fmt(pred.entropy)}`);
  }
  lines.push('', `| # | top-${pred.top.length} next token | p | log-prob |`, '|--:|:--|--:|--:|');
  pred.top.forEach((c, j) => {
    const mark = pred.actual && c.id === pred.actual.id;
    const tok = `\`${visible(c.token).replace(/`/g, 'ˋ')}\``;
    lines.push(`| ${j + 1} | ${mark ? `**${tok}** ←` : tok} | ${pct(c.prob)} | ${fmt(c.logprob)} |`);
  });
  const neurons = analysis.neurons(i).filter(n => Number.isFinite(n.activation)).slice(0, opts.chips ?? 5);
  if (neurons.length > 0) {
    lines.push('', 'neurons: ' + neurons.map(n => `[L${n.layer}/N${n.index} ${fmt(n.activation)}](${neuronCommandUri(analysis.model, n.layer, n.index)} "open the card of neuron ${n.layer}.${n.index}")`).join(' · '));
  }
  return lines.join('\n');
}
