/** What "copy" puts on the clipboard: an analysis as TSV, a card as JSON. */
import type { Analysis } from './api/analysis';
import type { NeuronCard } from './api/client';

/** A cell of TSV: tabs and newlines written as \t and \n so rows stay rows. */
function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

function num(x: number): string {
  return Number.isFinite(x) ? String(Math.round(x * 1e4) / 1e4) : '';
}

/**
 * One row per token: its index and text, the log-prob and rank the model gave it, the entropy
 * there, then the top-k predictions after it as `token:logprob` (and B's log-prob in a comparison).
 */
export function analysisTsv(analysis: Analysis, compare?: Analysis | null): string {
  const k = analysis.prediction(0).top.length;
  const head = ['index', 'token', 'logprob', 'rank', 'entropy'];
  if (compare) {
    head.push(`logprob_${compare.model}`);
  }
  for (let j = 1; j <= k; j++) {
    head.push(`next_${j}`);
  }
  const lines = [head.join('\t')];
  for (let i = 0; i < analysis.length; i++) {
    const own = analysis.prediction(i);
    const row = [String(i), cell(analysis.tokens[i].text), num(analysis.logprobOf(i)), own.actual ? String(own.actual.rank) : '', num(own.entropy)];
    if (compare) {
      row.push(num(compare.logprobOf(i)));
    }
    for (const c of analysis.after(i).top) {
      row.push(`${cell(c.token)}:${num(c.logprob)}`);
    }
    lines.push(row.join('\t'));
  }
  return lines.join('\n') + '\n';
}

export function cardJson(card: NeuronCard): string {
  return JSON.stringify(card, null, 2);
}
