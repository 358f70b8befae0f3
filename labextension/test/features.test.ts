import { encode, decode } from '@msgpack/msgpack';
import type { EditorView } from '@codemirror/view';
import { readFileSync } from 'fs';
import { join } from 'path';

import { LenscopeClient } from '../src/api/client';
import { LenscopeModel } from '../src/model';
import { readSettings, schemaDefaults } from '../src/settings';
import type { Target } from '../src/target';
import { fixture } from './fixture';

import { featureLabel, Features, FeaturesWire, SaeEntry } from '../src/api/features';
import { AUTO_SAE, chooseSae, modelSummary, NO_SAE, saesFor, saeSummary } from '../src/saes';

/** A features payload as the server writes it in msgpack: int32 indices (-1 = none), float16 activations, as bytes (the schema types only JSON's lists). */
function wire(index: number[][], activation: number[][]): FeaturesWire {
  const f = index[0].length;
  const half = new Uint16Array(activation.flat().map(toHalf));
  return {
    sae: 'sae-a',
    hook_point: 'blocks.0.mlp.hook_post',
    d_sae: 2048,
    index: { dtype: 'int32', shape: [index.length, f], data: new Uint8Array(new Int32Array(index.flat()).buffer) as unknown as number[] },
    activation: { dtype: 'float16', shape: [activation.length, f], data: new Uint8Array(half.buffer) as unknown as number[] }
  };
}

/** float to IEEE half (normal numbers and 0; enough for test values). */
function toHalf(x: number): number {
  if (x === 0) {
    return 0;
  }
  const f32 = new Float32Array([x]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = ((bits >>> 23) & 0xff) - 127 + 15;
  const frac = (bits >>> 13) & 0x3ff;
  return sign | (exp << 10) | frac;
}

const entry = (patch: Partial<SaeEntry>): SaeEntry => ({
  name: 'lenscope-gelu-1l-mlp-topk',
  model: 'lenscope-gelu-1l',
  hook_point: 'blocks.0.mlp.hook_post',
  d_in: 512,
  d_sae: 2048,
  k: 32,
  format: 'sparsify',
  loadable: true,
  reason: '',
  shipped: true,
  ...patch
});

describe('an analysis’ features', () => {
  // token 0: F7 1.5, F3 0.5; token 1: F3 2.0, none; token 2: nothing fires
  const features = new Features(wire([[7, 3], [3, -1], [-1, -1]], [[1.5, 0.5], [2, 0], [0, 0]]));

  it('reads rows per token, dropping -1 (no feature)', () => {
    expect(features.perToken).toBe(2);
    expect(features.rows).toBe(3);
    expect(features.at(0)).toEqual([{ index: 7, activation: 1.5 }, { index: 3, activation: 0.5 }]);
    expect(features.at(1)).toEqual([{ index: 3, activation: 2 }]);
    expect(features.at(2)).toEqual([]);
  });

  it('gives a feature’s activation where it is in a token’s top list, else null (not known, not zero)', () => {
    expect(features.activationOf(0, 3)).toBe(0.5);
    expect(features.activationOf(2, 3)).toBeNull();
    expect(features.column(3)).toEqual([0.5, 2, null]);
    expect(features.column(99)).toEqual([null, null, null]);
  });

  it('ranks the selection’s features by their maximum, with where and how often', () => {
    expect(features.strongest()).toEqual([
      { index: 3, max: 2, at: 1, count: 2 },
      { index: 7, max: 1.5, at: 0, count: 1 }
    ]);
    expect(features.strongest(1)).toHaveLength(1);
  });

  it('decodes the same from JSON lists and from msgpack bytes', () => {
    const json = new Features({
      sae: 'sae-a',
      hook_point: 'h',
      d_sae: 10,
      index: { dtype: 'int32', shape: [2, 1], data: [4, -1] },
      activation: { dtype: 'float16', shape: [2, 1], data: [0.25, 0] }
    });
    expect(json.at(0)).toEqual([{ index: 4, activation: 0.25 }]);
    const round = new Features(decode(encode(wire([[4], [-1]], [[0.25], [0]]))) as FeaturesWire);
    expect(round.at(0)).toEqual(json.at(0));
    expect(round.at(1)).toEqual([]);
  });

  it('labels a feature F123', () => {
    expect(featureLabel(123)).toBe('F123');
  });
});

describe('the SAE choice', () => {
  const shipped = entry({});
  const other = entry({ name: 'mine', shipped: false, d_sae: 512 });
  const free = entry({ name: 'no-model', model: null, shipped: false });
  const broken = entry({ name: 'broken', loadable: false, reason: 'cfg.json is missing' });
  const twoLayer = entry({ name: 'gelu-2l-sae', model: 'lenscope-gelu-2l', shipped: true });
  const saes = [shipped, other, free, broken, twoLayer];

  it('auto: the model’s shipped SAE, or none when it has none', () => {
    expect(chooseSae(undefined, AUTO_SAE, saes, 'lenscope-gelu-1l')).toEqual({ name: shipped.name, problem: null });
    expect(chooseSae(undefined, '', saes, 'lenscope-gelu-2l')).toEqual({ name: 'gelu-2l-sae', problem: null });
    expect(chooseSae(undefined, AUTO_SAE, saes, 'lenscope-attn-only-1l')).toEqual({ name: null, problem: null });
  });

  it('the pick (per model, this session) over the setting', () => {
    expect(chooseSae(NO_SAE, AUTO_SAE, saes, 'lenscope-gelu-1l')).toEqual({ name: null, problem: null });
    expect(chooseSae('mine', NO_SAE, saes, 'lenscope-gelu-1l')).toEqual({ name: 'mine', problem: null });
    expect(chooseSae(undefined, 'mine', saes, 'lenscope-gelu-1l')).toEqual({ name: 'mine', problem: null });
    expect(chooseSae(undefined, 'no-model', saes, 'lenscope-gelu-2l')).toEqual({ name: 'no-model', problem: null });
  });

  it('an unknown, unavailable or other model’s SAE is not used, and says why', () => {
    expect(chooseSae(undefined, 'typo', saes, 'lenscope-gelu-1l')).toEqual({ name: null, problem: '“typo” (set as sae in the settings) is not an SAE this server knows.' });
    expect(chooseSae('typo', AUTO_SAE, saes, 'lenscope-gelu-1l').problem).toMatch(/picked/);
    expect(chooseSae(undefined, 'broken', saes, 'lenscope-gelu-1l')).toEqual({ name: null, problem: 'broken is unavailable: cfg.json is missing' });
    expect(chooseSae(undefined, 'mine', saes, 'lenscope-gelu-2l').problem).toBe('mine reads lenscope-gelu-1l, not lenscope-gelu-2l: no features.');
    // before the listing comes: the name as it is
    expect(chooseSae(undefined, 'mine', [], 'x')).toEqual({ name: 'mine', problem: null });
  });

  it('lists a model’s SAEs (its own, then those whose folder does not say)', () => {
    expect(saesFor('lenscope-gelu-1l', saes).map(s => s.name)).toEqual([shipped.name, 'mine', 'broken', 'no-model']);
    expect(saesFor('lenscope-gelu-2l', saes).map(s => s.name)).toEqual(['gelu-2l-sae', 'no-model']);
  });

  it('says what an SAE and a model are', () => {
    expect(saeSummary(shipped)).toBe('hook blocks.0.mlp.hook_post · 2,048 features · k=32 · sparsify format · of lenscope-gelu-1l · shipped');
    expect(saeSummary(entry({ k: null, format: 'saelens', model: null, shipped: false }))).toBe('hook blocks.0.mlp.hook_post · 2,048 features · no k (not TopK) · saelens format');
    expect(saeSummary(broken)).toBe('broken: unavailable: cfg.json is missing');
    expect(modelSummary({ shape: { n_layers: 2, d_model: 256, d_mlp: 1024, d_vocab: 4096, n_ctx: 256, n_heads: 8 } })).toBe('2 layers · d_model 256 · 1024 neurons/layer · vocab 4096');
    expect(modelSummary({ shape: { n_layers: 1, d_model: 256, d_mlp: null, d_vocab: 4096, n_ctx: 256, n_heads: 8 } })).toBe('1 layer · d_model 256 · no MLP (attention-only) · vocab 4096');
    expect(modelSummary({ shape: null })).toBeNull();
  });
});

describe('LenscopeModel with SAEs', () => {
  const settings = readSettings(schemaDefaults(JSON.parse(readFileSync(join(__dirname, '..', 'schema', 'plugin.json'), 'utf-8'))));
  const shape = { n_layers: 1, d_model: 256, d_mlp: 1024, d_vocab: 4096, n_ctx: 256 };
  const model = (name: string) => ({ name, aliases: [], default: false, kernel: null, loadable: true, reason: '', repo: null, shape, source: 'embedded', state: 'loaded' });

  /** A server listing two models and the shipped SAE of one; analyze answers a real payload and records the request. */
  function server() {
    const f = fixture('code');
    const asked: Record<string, unknown>[] = [];
    const fetchFn = async (url: string, init: RequestInit): Promise<Response> => {
      const route = url.split('/lenscope/api/')[1];
      if (route === 'models') {
        const body = { default: 'lenscope-gelu-1l', models: [model('lenscope-gelu-1l'), model('lenscope-gelu-2l')], saes: [entry({})] };
        return new Response(JSON.stringify(body), { headers: { 'Content-Type': 'application/json' } });
      }
      asked.push(decode(init.body as Uint8Array) as Record<string, unknown>);
      return new Response(Buffer.from(f.msgpack), { headers: { 'Content-Type': 'application/msgpack' } });
    };
    return { f, asked, client: new LenscopeClient('http://x/', fetchFn) };
  }

  const target = (text: string, context: string): Target => ({
    view: { dom: { isConnected: true } } as Pick<EditorView, 'dom'> as EditorView,
    from: 0,
    text,
    context,
    path: 'tour.py',
    cell: null,
    lines: [1, 2]
  });

  it('asks for the model’s shipped SAE by default, none once “none” is picked, per model', async () => {
    const s = server();
    const m = new LenscopeModel(s.client, settings);
    await m.refreshModels();
    expect(m.saeChoice).toEqual({ name: 'lenscope-gelu-1l-mlp-topk', problem: null });
    await m.analyze(target(s.f.text, s.f.context));
    expect(s.asked[0].sae).toBe('lenscope-gelu-1l-mlp-topk');
    m.sae = NO_SAE;
    await m.analyze(target(s.f.text, s.f.context));
    expect('sae' in s.asked[1]).toBe(false);
    // another model has its own choice: gelu-2l has no SAE here
    m.model = 'lenscope-gelu-2l';
    expect(m.saeChoice.name).toBeNull();
    m.model = 'lenscope-gelu-1l';
    expect(m.saeChoice.name).toBeNull(); // the pick for gelu-1l holds
  });

  it('opens a feature of the analysis’ SAE', async () => {
    const s = server();
    const m = new LenscopeModel(s.client, settings);
    await m.refreshModels();
    const asked: unknown[] = [];
    m.featureRequested.connect((_, args) => asked.push(args));
    m.openFeature(12);
    m.openFeature(3, 'other-sae', 'lenscope-gelu-2l');
    expect(asked).toEqual([
      { model: 'lenscope-gelu-1l', sae: 'lenscope-gelu-1l-mlp-topk', index: 12 },
      { model: 'lenscope-gelu-2l', sae: 'other-sae', index: 3 }
    ]);
  });
});
