/**
 * Pure: which SAE the analysis asks for (`chooseSae`: the picker's choice for this model, else
 * the `sae` setting: "auto" = the model's shipped SAE, "none", or a name), the SAEs a model can
 * use, and what the pickers say about a model or an SAE.
 */
import type { ModelEntry } from './api/client';
import type { SaeEntry } from './api/features';

/** The picker's / setting's value for "no SAE". */
export const NO_SAE = 'none';
/** The setting's value for "the model's shipped SAE, if it has one". */
export const AUTO_SAE = 'auto';

export interface SaeChoice {
  /** the SAE analyze asks for; null: none */
  name: string | null;
  /** why the SAE asked for is not used (unknown, unavailable, of another model); null when fine */
  problem: string | null;
}

/** The SAEs `model` can use: those made for it, then those whose folder does not say (the server checks the width). */
export function saesFor(model: string, saes: readonly SaeEntry[]): SaeEntry[] {
  return [...saes.filter(s => s.model === model), ...saes.filter(s => s.model === null)];
}

/**
 * The SAE for `model`: `pick` (the picker's, this session, for this model) over `setting`.
 * "auto" (or '') is the model's shipped, loadable SAE when there is one, else none. A named SAE
 * the server does not list, cannot load, or that reads another model is not used, with the
 * problem said (the analysis goes on without features).
 */
export function chooseSae(pick: string | undefined, setting: string, saes: readonly SaeEntry[], model: string): SaeChoice {
  const want = (pick ?? setting).trim() || AUTO_SAE;
  if (want === NO_SAE) {
    return { name: null, problem: null };
  }
  if (want === AUTO_SAE) {
    const shipped = saes.find(s => s.shipped && s.loadable && s.model === model);
    return { name: shipped?.name ?? null, problem: null };
  }
  if (!saes.length) {
    return { name: want, problem: null }; // not listed yet
  }
  const where = pick !== undefined ? 'picked' : 'set as sae in the settings';
  const entry = saes.find(s => s.name === want);
  if (!entry) {
    return { name: null, problem: `“${want}” (${where}) is not an SAE this server knows.` };
  }
  if (!entry.loadable) {
    return { name: null, problem: `${entry.name} is unavailable: ${entry.reason}` };
  }
  if (entry.model !== null && entry.model !== model) {
    return { name: null, problem: `${entry.name} reads ${entry.model}, not ${model}: no features.` };
  }
  return { name: entry.name, problem: null };
}

/** What an SAE is, for its option's tooltip: hook point, number of features, k, format. */
export function saeSummary(s: SaeEntry): string {
  if (!s.loadable) {
    return `${s.name}: unavailable: ${s.reason}`;
  }
  const parts = [
    `hook ${s.hook_point ?? '?'}`,
    `${s.d_sae === null ? '?' : s.d_sae.toLocaleString('en-US')} features`,
    s.k === null ? 'no k (not TopK)' : `k=${s.k}`,
    `${s.format ?? '?'} format`
  ];
  if (s.model) {
    parts.push(`of ${s.model}`);
  }
  if (s.shipped) {
    parts.push('shipped');
  }
  return parts.join(' · ');
}

/** What a model is, from its shape: `2 layers · d_model 256 · 1024 neurons/layer · vocab 4096` (null when unknown). */
export function modelSummary(m: Pick<ModelEntry, 'shape'>): string | null {
  const s = m.shape;
  if (!s) {
    return null;
  }
  const neurons = s.d_mlp ? `${s.d_mlp} neurons/layer` : 'no MLP (attention-only)';
  return `${s.n_layers} layer${s.n_layers === 1 ? '' : 's'} · d_model ${s.d_model} · ${neurons} · vocab ${s.d_vocab}`;
}
