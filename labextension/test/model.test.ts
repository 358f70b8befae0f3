import { decode } from '@msgpack/msgpack';
import type { EditorView } from '@codemirror/view';

import { LenscopeClient, ModelEntry } from '../src/api/client';
import { chooseModel, LenscopeModel, Run } from '../src/model';
import { readSettings, schemaDefaults } from '../src/settings';
import type { Target } from '../src/target';
import { fixture } from './fixture';
import { readFileSync } from 'fs';
import { join } from 'path';

const settings = readSettings(schemaDefaults(JSON.parse(readFileSync(join(__dirname, '..', 'schema', 'plugin.json'), 'utf-8'))));

function entry(name: string, extra: Partial<ModelEntry> = {}): ModelEntry {
  return { name, aliases: [], default: false, kernel: null, loadable: true, reason: '', repo: null, shape: null, source: 'embedded', state: 'loaded', ...extra };
}

const LISTING = [entry('lenscope-gelu-1l', { default: true }), entry('lenscope-attn-only-1l'), entry('gpt2', { loadable: false, reason: 'not in the cache', state: 'unavailable' })];

describe('choosing the model', () => {
  it('takes the pick, else the setting, else the server default', () => {
    expect(chooseModel('', '', LISTING, 'lenscope-gelu-1l')).toEqual({ name: 'lenscope-gelu-1l', problem: null });
    expect(chooseModel('', 'lenscope-attn-only-1l', LISTING, 'lenscope-gelu-1l').name).toBe('lenscope-attn-only-1l');
    expect(chooseModel('lenscope-gelu-1l', 'lenscope-attn-only-1l', LISTING, 'x').name).toBe('lenscope-gelu-1l');
  });

  it('shows an unknown setting as it is, with the problem, and recovers when it is cleared', () => {
    const bad = chooseModel('', 'gpt-17', LISTING, 'lenscope-gelu-1l');
    expect(bad.name).toBe('gpt-17');
    expect(bad.problem).toMatch(/gpt-17.*settings.*not a model this server knows/);
    expect(chooseModel('', '', LISTING, 'lenscope-gelu-1l')).toEqual({ name: 'lenscope-gelu-1l', problem: null });
  });

  it('says why an unavailable model will not work, and resolves aliases', () => {
    expect(chooseModel('gpt2', '', LISTING, 'x').problem).toBe('gpt2 is unavailable: not in the cache');
    const aliased = [entry('lenscope-gelu-1l', { aliases: ['gelu-1l'] })];
    expect(chooseModel('', 'gelu-1l', aliased, 'x')).toEqual({ name: 'lenscope-gelu-1l', problem: null });
  });
});

/** A server that answers /models and /analyze with a real payload, each analyze after `release()`. */
function fakeServer() {
  const f = fixture('code');
  const seen: { route: string; aborted: () => boolean; body?: unknown }[] = [];
  const waiting: (() => void)[] = [];
  const fetchFn = async (url: string, init: RequestInit): Promise<Response> => {
    const route = url.split('/lenscope/api/')[1];
    const signal = init.signal;
    seen.push({ route, aborted: () => !!signal?.aborted, body: init.body });
    if (route === 'models') {
      return new Response(JSON.stringify({ default: 'lenscope-gelu-1l', models: LISTING }), { headers: { 'Content-Type': 'application/json' } });
    }
    await new Promise<void>((resolve, reject) => {
      waiting.push(resolve);
      signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    });
    return new Response(Buffer.from(f.msgpack), {
      headers: { 'Content-Type': 'application/msgpack', 'Server-Timing': 'total;dur=5.5, worker;dur=4, source;desc="worker"' }
    });
  };
  return { f, seen, release: () => waiting.splice(0).forEach(r => r()), client: new LenscopeClient('http://x/', fetchFn) };
}

function target(text: string, context: string, connected = true): Target {
  const view = { dom: { isConnected: connected } } as Pick<EditorView, 'dom'> as EditorView;
  return { view, from: 0, text, context, path: 'tour.py', cell: null, lines: [1, 2] };
}

describe('LenscopeModel.analyze', () => {
  it('emits the run with the server timings from the header, and the status', async () => {
    const server = fakeServer();
    const model = new LenscopeModel(server.client, settings);
    const runs: (Run | null)[] = [];
    const states: string[] = [];
    model.runChanged.connect((_, r) => runs.push(r));
    model.statusChanged.connect((_, s) => states.push(s.kind));
    const pending = model.analyze(target(server.f.text, server.f.context));
    await new Promise(r => setTimeout(r, 0));
    server.release();
    const run = await pending;
    expect(run).not.toBeNull();
    expect(runs).toEqual([run]);
    expect(states).toEqual(['loading', 'ready']);
    expect(run!.analysis.servedFrom).toBe('worker');
    expect(run!.analysis.serverTimings).toEqual({ total: 5.5, worker: 4 });
    expect(run!.analysis.length).toBeGreaterThan(5);
  });

  it('aborts a superseded request: pressing the shortcut again sends one live request', async () => {
    const server = fakeServer();
    const model = new LenscopeModel(server.client, settings);
    await model.refreshModels();
    const first = model.analyze(target(server.f.text, server.f.context));
    const second = model.analyze(target(server.f.text, server.f.context));
    await new Promise(r => setTimeout(r, 0));
    const analyses = server.seen.filter(s => s.route === 'analyze');
    expect(analyses.map(s => s.aborted())).toEqual([true, false]);
    server.release();
    expect(await first).toBeNull();
    expect(await second).not.toBeNull();
    expect(model.status.kind).toBe('ready');
  });

  it('drops an analysis whose editor closed meanwhile, and says so', async () => {
    const server = fakeServer();
    const model = new LenscopeModel(server.client, settings);
    await model.refreshModels();
    const pending = model.analyze(target(server.f.text, server.f.context, false));
    await new Promise(r => setTimeout(r, 0));
    server.release();
    expect(await pending).toBeNull();
    expect(model.run).toBeNull();
    expect(model.status).toMatchObject({ kind: 'error', message: expect.stringMatching(/tour\.py was closed/) });
  });

  it('refuses to send requests to a model the server does not know', async () => {
    const server = fakeServer();
    const model = new LenscopeModel(server.client, { ...settings, defaultModel: 'gpt-17' });
    await model.refreshModels();
    expect(await model.analyze(target('x', ''))).toBeNull();
    expect(server.seen.some(s => s.route === 'analyze')).toBe(false);
    expect(model.status.kind).toBe('error');
    model.settings = { ...settings, defaultModel: '' };
    expect(model.model).toBe('lenscope-gelu-1l');
  });

  it('redraws the run when the settings change (colour scale, floor)', async () => {
    const server = fakeServer();
    const model = new LenscopeModel(server.client, settings);
    await model.refreshModels();
    const pending = model.analyze(target(server.f.text, server.f.context));
    await new Promise(r => setTimeout(r, 0));
    server.release();
    const run = await pending;
    const seen: (Run | null)[] = [];
    model.runChanged.connect((_, r) => seen.push(r));
    model.settings = { ...settings, colorScale: 'viridis' };
    expect(seen).toEqual([run]);
  });

  it('forgets the run when its editor goes, and only then', async () => {
    const server = fakeServer();
    const model = new LenscopeModel(server.client, settings);
    await model.refreshModels();
    const t = target(server.f.text, server.f.context);
    const pending = model.analyze(t);
    await new Promise(r => setTimeout(r, 0));
    server.release();
    await pending;
    model.forget(() => false);
    expect(model.run).not.toBeNull();
    model.forget(x => x === t);
    expect(model.run).toBeNull();
    expect(model.status.kind).toBe('empty');
  });
});

describe('LenscopeModel.attribute', () => {
  it('asks for the last analysis (same model, text, context), and a newer call aborts the earlier one', async () => {
    const code = fixture('code');
    const attribution = readFileSync(join(__dirname, 'fixtures', 'attribute.msgpack'));
    const bodies: Record<string, unknown>[] = [];
    const aborted: (() => boolean)[] = [];
    const waiting: (() => void)[] = [];
    const msgpack = { 'Content-Type': 'application/msgpack' };
    const fetchFn = async (url: string, init: RequestInit): Promise<Response> => {
      const route = url.split('/lenscope/api/')[1];
      if (route === 'models') {
        return new Response(JSON.stringify({ default: 'lenscope-gelu-1l', models: LISTING }), { headers: { 'Content-Type': 'application/json' } });
      }
      if (route === 'analyze') {
        return new Response(Buffer.from(code.msgpack), { headers: msgpack });
      }
      bodies.push(decode(init.body as Uint8Array) as Record<string, unknown>);
      const signal = init.signal;
      aborted.push(() => !!signal?.aborted);
      await new Promise<void>((resolve, reject) => {
        waiting.push(resolve);
        signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
      return new Response(Buffer.from(attribution), { headers: msgpack });
    };
    const model = new LenscopeModel(new LenscopeClient('http://x/', fetchFn), settings);
    expect(await model.attribute(5)).toBeNull(); // nothing analyzed yet: no request
    const run = await model.analyze(target(code.text, code.context));
    const first = model.attribute(5);
    await new Promise(r => setTimeout(r, 0));
    const second = model.attribute(5, 1234, 10, 77); // against a baseline: the logit difference
    await new Promise(r => setTimeout(r, 0));
    expect(aborted.map(a => a())).toEqual([true, false]);
    expect(bodies[1]).toEqual({ model: run!.analysis.model, text: code.text, context: code.context, position: 5, target: 1234, top: 10, baseline: 77 });
    waiting.splice(0).forEach(r => r());
    expect(await first).toBeNull();
    const got = await second;
    expect(got!.position).toBe(5);
    expect(got!.topNeurons.length).toBe(10);
  });
});

describe('LenscopeModel interventions', () => {
  const tick = () => new Promise(r => setTimeout(r, 0));

  it('re-runs the same text with the enabled ones, aborts a superseded re-run, keeps the plain analysis', async () => {
    const server = fakeServer();
    const model = new LenscopeModel(server.client, settings);
    const pending = model.analyze(target(server.f.text, server.f.context));
    await tick();
    server.release();
    const run = (await pending)!;
    const runs: (Run | null)[] = [];
    model.runChanged.connect((_, r) => runs.push(r));

    const a = model.addIntervention({ component: 'neuron', layer: 0, index: 5 })!;
    await tick();
    model.addIntervention({ component: 'head', layer: 0, index: 3, op: 'steer', value: 2, origin: 4 });
    await tick();
    const analyzes = server.seen.filter(s => s.route === 'analyze');
    expect(analyzes).toHaveLength(3);
    expect(analyzes[1].aborted()).toBe(true); // the first re-run, superseded
    const body = decode(analyzes[2].body as Uint8Array) as Record<string, unknown>;
    expect(body.text).toBe(server.f.text);
    expect(body.context).toBe(server.f.context);
    expect(body.interventions).toEqual([
      { component: 'neuron', layer: 0, index: 5, op: 'zero', value: 0, positions: null, source: null },
      { component: 'head', layer: 0, index: 3, op: 'steer', value: 2, positions: null, source: null }
    ]);
    expect(model.interventions.loading).toBe(true);
    server.release();
    await tick();
    await tick();
    const shown = model.run!;
    expect(shown.analysis).toBe(run.analysis); // the plain one, untouched
    expect(shown.intervened).toBeTruthy();
    expect(shown.intervened!.deltas.length).toBe(run.analysis.length);
    expect(runs[runs.length - 1]).toBe(shown);
    expect(model.interventions.loading).toBe(false);

    // all off: back to the plain analysis, nothing asked
    model.toggleIntervention(a);
    model.toggleIntervention(model.interventions.items[1].id, false);
    expect(model.run!.intervened).toBeNull();
    expect(server.seen.filter(s => s.route === 'analyze')).toHaveLength(4); // the one for "a off" (aborted)
    model.clearInterventions();
    expect(model.interventions.items).toHaveLength(0);
  });

  it('says why when there is no run or the op is not allowed', () => {
    const model = new LenscopeModel(fakeServer().client, settings);
    expect(model.addIntervention({ component: 'neuron', layer: 0, index: 1 })).toBeNull();
    expect(model.interventions.error).toMatch(/Analyze some text first/);
  });
});
