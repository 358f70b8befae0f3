/**
 * "Copy as code": for each view that shows numbers, a self-contained Python cell that recomputes
 * them with lenscope's public Python API and prints them: a human-readable table, then one line
 * `LENSCOPE_RESULT <json>` (machine-readable; NaN written as null).
 *
 * Pure: no JupyterLab imports and no runtime imports at all (only types), so the compiled
 * `lib/snippets.js` also runs under plain `node` (the kernel test builds its cells with it).
 * Each function takes the request its view made.
 */
import type { components } from './api/schema';

type S = components['schemas'];
/** A request as a view makes it: the fields with server defaults may be left out; the model is named. */
type Req<T, K extends keyof T> = Partial<T> & Pick<T, K> & { model?: string | null };
export type AnalyzeSnippetRequest = Req<S['AnalyzeRequest'], 'text'>;
export type InterventionSnippetItem = Req<S['InterventionWire'], 'component' | 'layer'>;

/** One character as a Python escape (`\n`, `\x07`, `\u00e9`, `\U0001f600`). */
function escapeChar(ch: string): string {
  switch (ch) {
    case '\\':
      return '\\\\';
    case "'":
      return "\\'";
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
  }
  const cp = ch.codePointAt(0) ?? 0;
  if (cp >= 0x20 && cp < 0x7f) {
    return ch;
  }
  if (cp < 0x100) {
    return '\\x' + cp.toString(16).padStart(2, '0');
  }
  if (cp < 0x10000) {
    return '\\u' + cp.toString(16).padStart(4, '0');
  }
  return '\\U' + cp.toString(16).padStart(8, '0');
}

/**
 * A Python string literal (ASCII only) whose value is exactly `text`, code point by code point
 * (an astral character becomes one `\U` escape, not two surrogates). A text of several lines is
 * written as adjacent literals, one per line, inside parentheses.
 */
export function pyString(text: string, indent = '    '): string {
  const parts: string[] = [];
  let current = '';
  for (const ch of text) {
    current += escapeChar(ch);
    if (ch === '\n') {
      parts.push(current);
      current = '';
    }
  }
  if (current || !parts.length) {
    parts.push(current);
  }
  if (parts.length === 1) {
    return `'${parts[0]}'`;
  }
  return '(\n' + parts.map(p => `${indent}'${p}'`).join('\n') + '\n)';
}

/** A Python literal for a number, a bool, null, a string or a (nested) list. */
export function pyValue(value: unknown): string {
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'number') {
    if (Number.isNaN(value)) {
      return "float('nan')";
    }
    if (!Number.isFinite(value)) {
      return value > 0 ? "float('inf')" : "-float('inf')";
    }
    return String(value);
  }
  if (typeof value === 'string') {
    return pyString(value);
  }
  if (Array.isArray(value)) {
    return '[' + value.map(pyValue).join(', ') + ']';
  }
  throw new Error(`no Python literal for ${typeof value}`);
}

/** The prologue every snippet shares: imports, the model, the printer of the result line. */
function header(doc: string, imports: string[], model: string): string[] {
  return [
    `# ${doc}`,
    '# Made by lenscope\'s "Copy as code": it recomputes what the view shows with lenscope\'s Python API.',
    'import json',
    'import math',
    '',
    'from lenscope import load_model',
    ...imports,
    '',
    '',
    'def _clean(x):',
    '    """NaN and infinities as None, numpy scalars as Python numbers, for the JSON line."""',
    '    if isinstance(x, dict):',
    '        return {str(k): _clean(v) for k, v in x.items()}',
    '    if isinstance(x, (list, tuple)):',
    '        return [_clean(v) for v in x]',
    '    if hasattr(x, "tolist"):',
    '        return _clean(x.tolist())',
    '    if isinstance(x, float) and not math.isfinite(x):',
    '        return None',
    '    return x',
    '',
    '',
    `MODEL = ${pyString(model)}`,
    'model = load_model(MODEL)'
  ];
}

const FOOTER = ['print("LENSCOPE_RESULT " + json.dumps(_clean(result), allow_nan=False))'];

function join(lines: string[]): string {
  return lines.join('\n') + '\n';
}

function modelOf(request: { model?: string | null }): string {
  if (!request.model) {
    throw new Error('a snippet needs the model name the view used');
  }
  return request.model;
}

/** Python for `analyze(..., top_k=..., top_neurons=...)` with the request's text and context. */
function analyzeLines(request: { text: string; context?: string; top_k?: number; top_neurons?: number }): string[] {
  return [
    `TEXT = ${pyString(request.text)}`,
    `CONTEXT = ${pyString(request.context ?? '')}`,
    `TOP_K = ${request.top_k ?? 10}`,
    `TOP_NEURONS = ${request.top_neurons ?? 10}`
  ];
}

/** The analysis view: per token its log-prob, rank, entropy and the top-k predictions after it. */
export function analysisSnippet(request: AnalyzeSnippetRequest): string {
  return join([
    ...header('The analysis: per token its log-prob and rank, and the top-k predictions after it.', ['from lenscope import analyze'], modelOf(request)),
    ...analyzeLines(request),
    '',
    'r = analyze(model, TEXT, context=CONTEXT, top_k=TOP_K, top_neurons=TOP_NEURONS)',
    'p = r.predictions',
    'tokens = []',
    'print(f"{\'#\':>4}  {\'token\':<16} {\'logprob\':>8} {\'rank\':>6}  top predictions after it")',
    'for i, text in enumerate(r.token_texts):',
    '    after = [[int(t), float(v)] for t, v in zip(p.top_ids[i + 1], p.top_logprobs[i + 1])]',
    '    tokens.append({"index": i, "token": text, "id": int(r.tokens.ids[i]), "logprob": float(p.actual_logprob[i]),',
    '                   "rank": int(p.actual_rank[i]), "entropy": float(p.entropy[i]), "next": after})',
    '    shown = ", ".join(f"{r.strings[t]!r} {v:.2f}" for t, v in after[:3])',
    '    print(f"{i:>4}  {text!r:<16} {float(p.actual_logprob[i]):>8.3f} {int(p.actual_rank[i]):>6}  {shown}")',
    'result = {"kind": "analysis", "model": r.model, "tokens": tokens, "first": [[int(t), float(v)] for t, v in zip(p.top_ids[0], p.top_logprobs[0])]}',
    ...FOOTER
  ]);
}

/** The analysis compared with model B: per token lp(A) − max(lp(B), clamp). */
export function comparisonSnippet(request: AnalyzeSnippetRequest & { model_b: string; clamp: number }): string {
  return join([
    ...header('Two models on the selection: per token lp(A) - max(lp(B), CLAMP).', ['from lenscope import analyze'], modelOf(request)),
    `MODEL_B = ${pyString(request.model_b)}`,
    'model_b = load_model(MODEL_B)',
    ...analyzeLines({ ...request, top_neurons: 0 }),
    `CLAMP = ${pyValue(request.clamp)}`,
    '',
    'a = analyze(model, TEXT, context=CONTEXT, top_k=TOP_K, top_neurons=0)',
    'b = analyze(model_b, TEXT, context=CONTEXT, top_k=TOP_K, top_neurons=0)',
    'assert list(a.tokens.ids) == list(b.tokens.ids), "the two models tokenize this text differently"',
    'tokens = []',
    'print(f"{\'#\':>4}  {\'token\':<16} {\'lp A\':>8} {\'lp B\':>8} {\'A - B\':>8}")',
    'for i, text in enumerate(a.token_texts):',
    '    lp_a, lp_b = float(a.predictions.actual_logprob[i]), float(b.predictions.actual_logprob[i])',
    '    diff = lp_a - max(lp_b, CLAMP)',
    '    tokens.append({"index": i, "token": text, "logprob_a": lp_a, "logprob_b": lp_b, "diff": diff})',
    '    print(f"{i:>4}  {text!r:<16} {lp_a:>8.3f} {lp_b:>8.3f} {diff:>+8.3f}")',
    'result = {"kind": "comparison", "model_a": MODEL, "model_b": MODEL_B, "clamp": CLAMP, "tokens": tokens}',
    ...FOOTER
  ]);
}

/** The why view: the direct parts of one prediction (`POST attribute`). */
export function attributionSnippet(request: Req<S['AttributeRequest'], 'text' | 'position'>): string {
  return join([
    ...header(
      'Why: the direct parts of the prediction after text token POSITION (direct logit attribution).',
      ['from lenscope import attribute', 'from lenscope.attribution import top_parts'],
      modelOf(request)
    ),
    `TEXT = ${pyString(request.text)}`,
    `CONTEXT = ${pyString(request.context ?? '')}`,
    `POSITION = ${request.position}`,
    `TARGET = ${pyValue(request.target ?? null)}  # None: the token that really came next`,
    `BASELINE = ${pyValue(request.baseline ?? null)}  # a token id: explain logit(TARGET) - logit(BASELINE)`,
    `TOP = ${request.top ?? 10}`,
    '',
    'a = attribute(model, TEXT, POSITION, context=CONTEXT, target=TARGET, baseline=BASELINE)',
    'parts = top_parts(a, TOP)',
    'name = model.tokenizer.decode',
    'what = "logit difference" if a.baseline is not None else "centred logit"',
    'vs = f" vs {name([a.baseline])!r}" if a.baseline is not None else ""',
    'print(f"{what} of {name([a.target])!r}{vs} at token {a.position}: {a.value:+.4f}; sum of parts {a.total():+.4f};"',
    '      f" final LayerNorm scale frozen at {a.ln_scale:.4f}")',
    'print("neurons:", ", ".join(f"L{la}.N{ix} {v:+.3f}" for (la, ix), v in parts["neurons"]))',
    'print("heads:  ", ", ".join(f"L{la}H{h} {v:+.3f}" for (la, h), v in parts["heads"][:6]))',
    'print(f"embed {a.embed:+.3f}, pos_embed {a.pos_embed:+.3f}, constant {a.constant:+.3f},"',
    '      f" attn bias {a.attn_bias.sum():+.3f}, mlp bias {a.mlp_bias.sum():+.3f}")',
    'mlp_total = a.neurons.sum(axis=1) if a.neurons.size else [0.0] * len(a.heads)',
    'result = {',
    '    "kind": "attribution", "model": MODEL, "position": a.position, "target": a.target, "baseline": a.baseline,',
    '    "value": a.value, "total": a.total(), "ln_scale": a.ln_scale, "embed": a.embed, "pos_embed": a.pos_embed,',
    '    "constant": a.constant, "attn_bias": a.attn_bias, "mlp_bias": a.mlp_bias, "heads": a.heads, "mlp_total": mlp_total,',
    '    "top_neurons": [{"layer": la, "index": ix, "value": v} for (la, ix), v in parts["neurons"]],',
    '}',
    ...FOOTER
  ]);
}

/** The attention section: each head's positional share and, for one token, its strongest sources. */
export function attentionSnippet(request: Req<S['AttentionRequest'], 'text'> & { token?: number | null }): string {
  return join([
    ...header(
      'Attention: each head\'s positional share, and where the heads attend from TOKEN (-1: the BOS, -2: the context).',
      ['from lenscope import attend'],
      modelOf(request)
    ),
    `TEXT = ${pyString(request.text)}`,
    `CONTEXT = ${pyString(request.context ?? '')}`,
    `LAYERS = ${pyValue(request.layers ?? null)}  # None: every layer`,
    `K = ${request.k ?? 16}`,
    `TOKEN = ${request.token ?? 0}  # the text token attended from`,
    '',
    'at = attend(model, TEXT, context=CONTEXT, layers=LAYERS, k=K)',
    'rows = {}',
    'for li, layer in enumerate(at.layers):',
    '    for h in range(at.n_heads):',
    '        keep = [(int(s), float(w)) for s, w in zip(at.sources[li, h, TOKEN], at.weights[li, h, TOKEN]) if s != -3]',
    '        rows[f"{layer}.{h}"] = keep',
    '        where = lambda s: {-1: "BOS", -2: "context"}.get(s) or repr(at.token_texts[s])',
    '        top = ", ".join(f"{where(s)} {w:.3f}" for s, w in keep[:4])',
    '        print(f"L{layer}H{h} positional share {float(at.positional_share[li, h]):.3f}; from {at.token_texts[TOKEN]!r}: {top}")',
    'result = {"kind": "attention", "model": MODEL, "layers": at.layers, "token": TOKEN,',
    '          "positional_share": at.positional_share, "rows": rows}',
    ...FOOTER
  ]);
}

/** The logit lens section: at one token, each block's residual stream through the final LayerNorm and unembedding. */
export function logitLensSnippet(request: Req<S['LogitLensRequest'], 'text'> & { position: number }): string {
  return join([
    ...header(
      'The logit lens at text token POSITION: the top tokens and the actual next token\'s rank after the embeddings and each block.',
      ['from lenscope import logit_lens'],
      modelOf(request)
    ),
    `TEXT = ${pyString(request.text)}`,
    `CONTEXT = ${pyString(request.context ?? '')}`,
    `POSITION = ${request.position}`,
    `TOP_K = ${request.top_k ?? 5}`,
    '',
    'lens = logit_lens(model, TEXT, context=CONTEXT, top_k=TOP_K, positions=[POSITION])',
    'nxt = int(lens.actual_ids[0])',
    'print(f"at token {POSITION} {lens.token_texts[POSITION]!r}; next: {lens.strings[nxt]!r}" if nxt >= 0 else "the last token: no next token")',
    'rows = []',
    'for r, name in enumerate(lens.rows):',
    '    top = [[int(t), float(v)] for t, v in zip(lens.top_ids[r, 0], lens.top_logprobs[r, 0])]',
    '    rank, lp = int(lens.actual_rank[r, 0]), float(lens.actual_logprob[r, 0])',
    '    rows.append({"name": name, "top": top, "rank": rank, "logprob": lp})',
    '    shown = ", ".join(f"{lens.strings[t]!r} {v:.2f}" for t, v in top)',
    '    print(f"{name:>6}  rank {rank:>6}  log-prob {lp:8.3f}  {shown}")',
    'result = {"kind": "logit_lens", "model": MODEL, "position": POSITION, "next": nxt, "rows": rows}',
    ...FOOTER
  ]);
}

/** The logit lens heatmap: at every text token, the next token's log-prob and rank after the embeddings and each block. */
export function logitLensHeatmapSnippet(request: Req<S['LogitLensRequest'], 'text'>): string {
  return join([
    ...header(
      'The logit lens at every text token: the next token\'s log-prob and rank after the embeddings and each block (rows) per token (columns).',
      ['from lenscope import logit_lens'],
      modelOf(request)
    ),
    `TEXT = ${pyString(request.text)}`,
    `CONTEXT = ${pyString(request.context ?? '')}`,
    `TOP_K = ${request.top_k ?? 5}`,
    '',
    'lens = logit_lens(model, TEXT, context=CONTEXT, top_k=TOP_K)',
    'for r, name in enumerate(lens.rows):',
    '    cells = " ".join(f"{float(v):6.2f}" for v in lens.actual_logprob[r])',
    '    print(f"{name:>6}  {cells}")',
    'result = {"kind": "logit_lens_heatmap", "model": MODEL, "rows": lens.rows, "positions": lens.positions,',
    '          "actual_ids": lens.actual_ids, "actual_logprob": lens.actual_logprob, "actual_rank": lens.actual_rank,',
    '          "top_ids": lens.top_ids}',
    ...FOOTER
  ]);
}

function interventionLine(i: InterventionSnippetItem): string {
  const args = [pyString(i.component), pyValue(i.layer ?? null), pyValue(i.index ?? null), pyString(i.op ?? 'zero'), pyValue(i.value ?? 0)];
  let line = `Intervention(${args.join(', ')}`;
  if (i.positions) {
    line += `, positions=(${i.positions.join(', ')}${i.positions.length === 1 ? ',' : ''})`;
  }
  if (i.source !== null && i.source !== undefined) {
    line += `, source=${pyString(i.source, '        ')}`;
  }
  return line + ')';
}

/**
 * An analysis with interventions: per token the Δ log-prob (intervened − plain). A neuron's
 * `mean` is taken, as the server does, from the model's neuron index when there is one (the
 * workspace's under `root`, else the shipped one), else over the text's tokens.
 */
export function interventionSnippet(request: Omit<AnalyzeSnippetRequest, 'interventions'> & { interventions: InterventionSnippetItem[]; root?: string }): string {
  const mean = request.interventions.some(i => i.op === 'mean' && i.component === 'neuron');
  // feature interventions act at their SAE's hook point: analyze takes the SAE
  const sae = request.sae ?? null;
  const means = mean
    ? [
        `ROOT = Path(${pyString(request.root ?? '.')})  # the folder Jupyter serves: its workspace index wins over the shipped one`,
        '',
        '',
        'def index_means(interventions):',
        '    """A mean-ablated neuron\'s mean from the model\'s neuron index, as the server takes it (None: no index)."""',
        '    folders = [ROOT / INDEXES_DIR, Path(lenscope.models.__file__).resolve().parent / "indexes"]',
        '    for folder in folders:',
        '        for path in sorted(p for p in folder.glob("*") if not p.name.startswith(".") and (p / "manifest.json").is_file()):',
        '            try:',
        '                index = open_index(path)',
        '            except Exception:  # a broken index: the server skips it too',
        '                continue',
        '            if index.manifest.get("model") == MODEL:',
        '                wanted = [(i.layer, i.index) for i in interventions if i.component == "neuron" and i.op == "mean"]',
        '                return {(la, ix): float(index.arrays["mean"][neuron_row(index, la, ix)]) for la, ix in wanted}',
        '    return None',
        '',
        '',
        'MEANS = index_means(INTERVENTIONS)'
      ]
    : ['MEANS = None'];
  return join([
    ...header(
      'What if: the analysis re-run with the interventions, and each token\'s change of log-prob.',
      [
        'from lenscope import analyze',
        'from lenscope.interventions import Intervention',
        ...(sae ? ['from lenscope.models.sae_registry import load_named_sae'] : []),
        ...(mean
          ? ['from pathlib import Path', '', 'import lenscope.models', 'from lenscope.defaults import INDEXES_DIR', 'from lenscope.index.card import neuron_row', 'from lenscope.index.store import open_index']
          : [])
      ],
      modelOf(request)
    ),
    ...analyzeLines(request),
    'INTERVENTIONS = [',
    ...request.interventions.map(i => `    ${interventionLine(i)},`),
    ']',
    ...means,
    ...(sae ? [`SAE = ${pyString(sae)}`, 'sae = load_named_sae(SAE)  # the feature interventions are its features'] : ['sae = None']),
    '',
    'plain = analyze(model, TEXT, context=CONTEXT, top_k=TOP_K, top_neurons=TOP_NEURONS)',
    'what_if = analyze(model, TEXT, context=CONTEXT, top_k=TOP_K, top_neurons=TOP_NEURONS, interventions=INTERVENTIONS,',
    '                  neuron_means=MEANS, sae=sae)',
    'print("applied:", ", ".join(i["label"] + (f" (mean from the {i[\'mean_from\']})" if i["mean_from"] else "") for i in what_if.interventions))',
    'tokens = []',
    'print(f"{\'#\':>4}  {\'token\':<16} {\'before\':>8} {\'after\':>8} {\'delta\':>8}")',
    'for i, text in enumerate(plain.token_texts):',
    '    before, after = float(plain.predictions.actual_logprob[i]), float(what_if.predictions.actual_logprob[i])',
    '    tokens.append({"index": i, "token": text, "before": before, "after": after, "delta": after - before})',
    '    print(f"{i:>4}  {text!r:<16} {before:>8.3f} {after:>8.3f} {after - before:>+8.3f}")',
    'result = {"kind": "intervention", "model": MODEL, "applied": what_if.interventions, "tokens": tokens}',
    ...FOOTER
  ]);
}

/**
 * Named units (`L0.N224`, `F12` of an SAE) at every token (`POST unit_activations`):
 * `lenscope.unit_activations`, a table of token × unit.
 */
export function unitActivationsSnippet(request: Req<S['UnitActivationsRequest'], 'text' | 'units'>): string {
  const sae = request.sae ?? null;
  return join([
    ...header(
      "Units' activations at every token: neurons (L0.N224) and SAE features (F12).",
      ['from lenscope import unit_activations', ...(sae ? ['from lenscope.models.sae_registry import load_named_sae'] : [])],
      modelOf(request)
    ),
    `TEXT = ${pyString(request.text)}`,
    `CONTEXT = ${pyString(request.context ?? '')}`,
    `UNITS = [${request.units.map(u => pyString(u)).join(', ')}]`,
    sae ? `SAE = ${pyString(sae)}` : 'SAE = None',
    '',
    'sae = load_named_sae(SAE) if SAE else None',
    'acts = unit_activations(model, TEXT, UNITS, sae=sae, context=CONTEXT, model_name=MODEL)',
    'print(f"{\'#\':>4}  {\'token\':<16} " + " ".join(f"{u:>9}" for u in acts.names))',
    'tokens = []',
    'for i, text in enumerate(acts.token_texts):',
    '    row = [float(v) for v in acts.activations[i]]',
    '    tokens.append({"index": i, "token": text, "activations": row})',
    '    print(f"{i:>4}  {text!r:<16} " + " ".join(f"{v:>9.3f}" for v in row))',
    'result = {"kind": "unit_activations", "model": MODEL, "sae": SAE, "units": acts.names, "tokens": tokens}',
    ...FOOTER
  ]);
}

/** Activation patching (`POST patch`): the restored share per layer x component x position, and per head. */
export function patchSnippet(request: Req<S['PatchRequest'], 'clean' | 'corrupted' | 'target' | 'baseline'>): string {
  return join([
    ...header(
      'Activation patching: (patched - corrupted) / (clean - corrupted) of logit(TARGET) - logit(BASELINE).',
      ['from lenscope.patching import patch_grid'],
      modelOf(request)
    ),
    `CLEAN = ${pyString(request.clean)}`,
    `CORRUPTED = ${pyString(request.corrupted)}`,
    `TARGET = ${request.target}`,
    `BASELINE = ${request.baseline}`,
    `POSITION = ${pyValue(request.position ?? null)}  # None: the last token`,
    '',
    'g = patch_grid(model, CLEAN, CORRUPTED, target=TARGET, baseline=BASELINE, position=POSITION)',
    'print(f"clean {g.clean_value:+.4f}, corrupted {g.corrupted_value:+.4f} at token {g.position}")',
    'for name, grid in g.restored.items():',
    '    for layer, row in enumerate(grid):',
    '        print(f"{name:>9} L{layer}: " + " ".join(f"{v:+.2f}" for v in row))',
    'for layer, heads in enumerate(g.heads):',
    '    for h, row in enumerate(heads):',
    '        print(f"     L{layer}H{h}: " + " ".join(f"{v:+.2f}" for v in row))',
    'result = {"kind": "patch", "model": MODEL, "position": g.position, "clean_value": g.clean_value,',
    '          "corrupted_value": g.corrupted_value, "restored": g.restored, "heads": g.heads}',
    ...FOOTER
  ]);
}

/**
 * A corpus comparison (`POST compare`): both models over the files, rows ranked by
 * lp(A) − max(lp(B), clamp), A's MLP part per row and the neurons that carry A's advantage.
 * `root` is the folder the paths are relative to (the Jupyter server's root).
 */
export function corpusCompareSnippet(request: Req<S['CompareRequest'], 'model_b' | 'paths'> & { root: string; rows?: number }): string {
  return join([
    ...header(
      'A corpus comparison: where model A beats model B, token by token, over files.',
      ['import tempfile', 'from pathlib import Path', '', 'from lenscope.workspace import compare_over, read_corpus'],
      modelOf({ model: request.model_a })
    ),
    `MODEL_B = ${pyString(request.model_b)}`,
    `ROOT = Path(${pyString(request.root)})  # the folder Jupyter serves: the paths are relative to it`,
    `PATHS = ${pyValue(request.paths)}`,
    `CLAMP = ${pyValue(request.clamp ?? -6)}`,
    `MIN_COUNT = ${request.min_count ?? 5}`,
    `ROWS = ${request.rows ?? 20}  # rows printed`,
    '',
    'def load(name):',
    '    return model if name == MODEL else load_model(name)',
    '',
    '',
    'corpus = read_corpus(ROOT, PATHS)',
    '# scans in a fresh folder: everything is computed again (the server reuses its stored ones)',
    'out, rows = compare_over(load, MODEL, MODEL_B, corpus, clamp=CLAMP, min_count=MIN_COUNT, scans_dir=Path(tempfile.mkdtemp()))',
    'print(f"{out[\'files\']} files, {out[\'tokens\']} tokens")',
    'print(f"{\'A - B\':>8} {\'A MLP\':>8}  {\'token\':<16} where")',
    'for row in out["rows"][:ROWS]:',
    '    mlp = row.get("mlp_a")',
    '    mlp = f"{mlp:+8.2f}" if mlp is not None else f"{\'-\':>8}"',
    '    print(f"{row[\'diff\']:>+8.3f} {mlp}  {row[\'token\']!r:<16} {row[\'path\']}:{row[\'line\']}")',
    'for c in out["carriers"][:10]:',
    '    print(f"carrier L{c[\'layer\']}.N{c[\'index\']}: {c[\'total\']:+.2f} over {c[\'rows\']} rows")',
    'result = {"kind": "corpus_compare", "model_a": MODEL, "model_b": MODEL_B, "files": out["files"], "tokens": out["tokens"],',
    '          "rows": out["rows"][:ROWS], "carriers": out["carriers"]}',
    ...FOOTER
  ]);
}

/**
 * A neuron card's numbers that come from the weights, recomputed: the logit effects
 * (`W_out[n] @ W_U`, most boosted and most suppressed tokens) and the inputs (tokens through LN2
 * and `W_in`); the examples and histogram are read from the index.
 */
export function neuronCardSnippet(request: { model: string; layer: number; index: number; top?: number; inputs?: number }): string {
  return join([
    ...header(
      'A neuron card: its logit effects W_out[n] @ W_U and its inputs from the weights.',
      ['from lenscope.circuits import neuron_inputs, vocab_pool'],
      request.model
    ),
    `LAYER, NEURON = ${request.layer}, ${request.index}`,
    `TOP = ${request.top ?? 10}`,
    `INPUTS = ${request.inputs ?? 20}`,
    '',
    'effect = model.W_out.detach().float()[LAYER, NEURON] @ model.W_U.detach().float()',
    'up, down = effect.topk(TOP), effect.topk(TOP, largest=False)',
    'name = model.tokenizer.decode',
    'boosted = [{"id": int(i), "token": name([int(i)]), "value": float(v)} for v, i in zip(up.values, up.indices)]',
    'suppressed = [{"id": int(i), "token": name([int(i)]), "value": float(v)} for v, i in zip(down.values, down.indices)]',
    'inputs = [{"id": i, "token": name([i]), "value": v} for i, v in neuron_inputs(model, LAYER, NEURON, INPUTS, vocab_pool(model, MODEL))]',
    'print(f"L{LAYER}.N{NEURON} raises: " + ", ".join(f"{e[\'token\']!r} {e[\'value\']:+.3f}" for e in boosted))',
    'print(f"L{LAYER}.N{NEURON} lowers: " + ", ".join(f"{e[\'token\']!r} {e[\'value\']:+.3f}" for e in suppressed))',
    'print("inputs (from the weights): " + ", ".join(f"{e[\'token\']!r} {e[\'value\']:+.3f}" for e in inputs))',
    'result = {"kind": "neuron", "model": MODEL, "layer": LAYER, "index": NEURON, "logit_boosted": boosted,',
    '          "logit_suppressed": suppressed, "inputs": inputs}',
    ...FOOTER
  ]);
}

/**
 * An SAE feature card's logit effects: its decoder direction written into the residual stream
 * (through the layer's `W_out` for an MLP hook), then `@ W_U` (`SparseAutoencoder.output_directions`).
 */
export function featureCardSnippet(request: { model: string; sae: string; index: number; top?: number }): string {
  return join([
    ...header(
      'An SAE feature card: the logit effects of its decoder direction (-> W_out -> W_U), from the weights.',
      ['from lenscope.models.sae_registry import load_named_sae'],
      request.model
    ),
    `SAE = ${pyString(request.sae)}`,
    `FEATURE = ${request.index}`,
    `TOP = ${request.top ?? 10}`,
    '',
    'sae = load_named_sae(SAE)',
    'directions = sae.output_directions(model)  # [d_sae, d_model]: each decoder direction in the residual stream',
    'if directions is None:',
    '    raise SystemExit(f"{SAE} reads {sae.hook_point}: no linear path to the logits")',
    'effect = directions[FEATURE].float().cpu() @ model.W_U.detach().float().cpu()',
    'up, down = effect.topk(TOP), effect.topk(TOP, largest=False)',
    'name = model.tokenizer.decode',
    'boosted = [{"id": int(i), "token": name([int(i)]), "value": float(v)} for v, i in zip(up.values, up.indices)]',
    'suppressed = [{"id": int(i), "token": name([int(i)]), "value": float(v)} for v, i in zip(down.values, down.indices)]',
    'print(f"F{FEATURE} of {SAE} ({sae.hook_point}, {sae.d_sae} features)")',
    'print("raises: " + ", ".join(f"{e[\'token\']!r} {e[\'value\']:+.3f}" for e in boosted))',
    'print("lowers: " + ", ".join(f"{e[\'token\']!r} {e[\'value\']:+.3f}" for e in suppressed))',
    'result = {"kind": "feature", "model": MODEL, "sae": SAE, "index": FEATURE, "hook_point": sae.hook_point,',
    '          "logit_boosted": boosted, "logit_suppressed": suppressed}',
    ...FOOTER
  ]);
}

/** A head card: copying score, positive share, OV and QK top token pairs (`lenscope.circuits.head_circuits`). */
export function headCardSnippet(request: { model: string; layer: number; head: number; top?: number }): string {
  return join([
    ...header('A head from its weights: OV and QK token pairs over the 1,000 most frequent tokens, copying score.', ['from lenscope.circuits import head_circuits, vocab_pool'], request.model),
    `LAYER, HEAD = ${request.layer}, ${request.head}`,
    `TOP = ${request.top ?? 20}`,
    '',
    'c = head_circuits(model, LAYER, HEAD, TOP, vocab_pool(model, MODEL))  # vocab_pool(model, MODEL, "all"): every token',
    'whole = head_circuits(model, LAYER, HEAD, 1)  # the copying score over the whole vocabulary',
    'name = model.tokenizer.decode',
    '',
    '',
    'def pairs(rows):',
    '    return [{"source": i, "target": j, "value": v} for i, j, v in rows]',
    '',
    '',
    'print(f"L{LAYER}.H{HEAD}: copying score {c.copying_score:+.3f} on frequent tokens, {whole.copying_score:+.3f} on all")',
    'for title, rows in (("OV raises", c.ov_top), ("OV lowers", c.ov_bottom), ("QK", c.qk_top)):',
    '    print(title + ": " + ", ".join(f"{name([i])!r} -> {name([j])!r} {v:+.2f}" for i, j, v in rows[:8]))',
    'result = {"kind": "head", "model": MODEL, "layer": LAYER, "head": HEAD, "copying_score": whole.copying_score,',
    '          "positive_share": whole.positive_share, "copying_score_frequent": c.copying_score,',
    '          "ov_top": pairs(c.ov_top), "ov_bottom": pairs(c.ov_bottom),',
    '          "qk_top": pairs(c.qk_top)}',
    ...FOOTER
  ]);
}

/** Every snippet by its function's name (what a "Copy as code" button says it copied, `data-snippet`). */
export const SNIPPETS = {
  analysisSnippet,
  comparisonSnippet,
  attributionSnippet,
  attentionSnippet,
  logitLensSnippet,
  logitLensHeatmapSnippet,
  interventionSnippet,
  unitActivationsSnippet,
  patchSnippet,
  corpusCompareSnippet,
  neuronCardSnippet,
  featureCardSnippet,
  headCardSnippet
};

/** A snippet to make: which function, with the request its view made. */
export type SnippetRequest = { [K in keyof typeof SNIPPETS]: { kind: K; request: Parameters<(typeof SNIPPETS)[K]>[0] } }[keyof typeof SNIPPETS];

/** The Python cell for a snippet request. */
export function snippetCode(s: SnippetRequest): string {
  return (SNIPPETS[s.kind] as (request: unknown) => string)(s.request);
}
