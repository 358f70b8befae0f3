import { decode } from '@msgpack/msgpack';
import type { EditorView } from '@codemirror/view';
import { readFileSync } from 'fs';
import { join } from 'path';

import { LenscopeClient } from '../src/api/client';
import { UnitActivations, UnitActivationsResponseWire } from '../src/api/units';
import { predicted, scoreLine, scoreOnText } from '../src/hypothesis';
import { componentLabel, componentProblem, Intervention, parseComponent, saeOf, toWire } from '../src/interventions';
import { LenscopeModel } from '../src/model';
import { readSettings, schemaDefaults } from '../src/settings';
import { interventionSnippet, unitActivationsSnippet } from '../src/snippets';
import type { Target } from '../src/target';
import { fixture } from './fixture';

const settings = readSettings(schemaDefaults(JSON.parse(readFileSync(join(__dirname, '..', 'schema', 'plugin.json'), 'utf-8'))));

/** A `POST unit_activations` answer as the server writes it (JSON lists): tokens `ids` over `text` split at `cuts`. */
function unitsWire(ids: number[], cuts: number[], names: string[], values: number[][]): UnitActivationsResponseWire {
  const arr = (dtype: 'int32' | 'float32', shape: number[], data: number[]) => ({ dtype, shape, data }) as unknown as UnitActivationsResponseWire['activations'];
  const n = ids.length;
  const starts = cuts.slice(0, n);
  const ends = cuts.slice(1, n + 1);
  return {
    model: 'm',
    tokens: {
      ids: arr('int32', [n], ids),
      start: arr('int32', [n], starts),
      end: arr('int32', [n], ends),
      start_utf16: arr('int32', [n], starts),
      end_utf16: arr('int32', [n], ends),
      partial: arr('int32', [n], ids.map(() => 0))
    } as unknown as UnitActivationsResponseWire['tokens'],
    units: names.map(name => (name.startsWith('F') ? { name, kind: 'feature', layer: null, index: Number(name.slice(1)) } : { name, kind: 'neuron', layer: 0, index: Number(name.split('N')[1]) })),
    sae: names.some(u => u.startsWith('F')) ? { name: 'sae-a', hook_point: 'blocks.0.mlp.hook_post', d_sae: 2048 } : null,
    activations: arr('float32', [n, names.length], values.flat()),
    timings_ms: {}
  };
}

describe('UnitActivations', () => {
  it('reads one column per unit, in the order asked, and the tokens over the text', () => {
    const a = new UnitActivations(unitsWire([5, 6, 7], [0, 2, 3, 6], ['L0.N3', 'F12'], [[1, 10], [2, 20], [3, 30]]), 'ab cde');
    expect(a.units.map(u => u.name)).toEqual(['L0.N3', 'F12']);
    expect(a.sae).toBe('sae-a');
    expect(a.length).toBe(3);
    expect(Array.from(a.column(1))).toEqual([10, 20, 30]);
    expect(a.at(2, 0)).toBe(3);
    expect(a.texts).toEqual(['ab', ' ', 'cde']);
    expect(Array.from(a.ids)).toEqual([5, 6, 7]);
  });
});

describe('features as components', () => {
  const item = (patch: Partial<Intervention>): Intervention => ({ id: 1, component: 'feature', layer: null, index: 12, op: 'zero', value: 0, positions: null, enabled: true, origin: null, sae: 'sae-a', ...patch });

  it('parses F12 as a feature of the SAE given, labels it F12', () => {
    expect(parseComponent(' f12 ', 'sae-a')).toEqual({ component: 'feature', layer: null, index: 12, sae: 'sae-a' });
    expect(componentLabel(parseComponent('F12')!)).toBe('F12');
    expect(parseComponent('F')).toBeNull();
  });

  it('goes on the wire without a layer; the list names its SAE', () => {
    expect(toWire([item({ op: 'scale', value: 0.5 })])).toEqual([{ component: 'feature', layer: null, index: 12, op: 'scale', value: 0.5, positions: null, source: null }]);
    expect(saeOf([item({})])).toBe('sae-a');
    expect(saeOf([item({ enabled: false })])).toBeNull();
    expect(saeOf([item({ component: 'neuron', layer: 0, sae: null })])).toBeNull();
  });

  it('needs an SAE, not a layer', () => {
    const shape = { n_layers: 1, d_mlp: 1024, n_heads: 8 };
    expect(componentProblem({ component: 'feature', layer: null, index: 3, sae: 'sae-a' }, shape)).toBeNull();
    expect(componentProblem({ component: 'feature', layer: null, index: 3, sae: null }, shape)).toMatch(/SAE/);
  });
});

describe('a description as a prediction', () => {
  it('predicts a token pattern where the token is, a pair where both are in order', () => {
    expect(predicted({ pattern_ids: [7] }, [7, 1, 7])).toEqual([true, false, true]);
    expect(predicted({ pattern_ids: [1, 7] }, [7, 1, 7, 7])).toEqual([false, false, true, false]);
    expect(predicted({ pattern_ids: [1, 2, 3] }, [1, 2, 3])).toBeNull();
  });

  it('predicts a token set, with a token among the last k before it, and leaves classes to the server', () => {
    expect(predicted({ kind: 'tokens', pattern_ids: [7, 8] }, [7, 1, 8, 9])).toEqual([true, false, true, false]);
    // 8 with 1 in the 2 tokens before it
    expect(predicted({ kind: 'tokens', pattern_ids: [8], context_id: 1, within: 2 }, [8, 1, 8, 5, 8, 8])).toEqual([false, false, true, false, false, false]);
    expect(predicted({ kind: 'tokens', pattern_ids: [8], context_id: 1, within: 1 }, [1, 8, 2, 1, 5, 8])).toEqual([false, true, false, false, false, false]);
    expect(predicted({ kind: 'class', pattern_ids: [] }, [1])).toBeNull();
    expect(predicted({ kind: 'none', pattern_ids: [3] }, [3])).toBeNull();
  });

  it('scores it as the unit detecting the pattern, against counts made here', () => {
    const values = [0.1, 2, 3, 0, 5];
    const prediction = [false, true, false, true, true];
    const s = scoreOnText(values, 1, prediction);
    // fires: tokens 1, 2, 4; pattern: 1, 3, 4; both: 1, 4
    expect(s).toEqual({ tokens: 5, fires: 3, occurs: 3, both: 2, precision: 2 / 3, recall: 2 / 3 });
    expect(scoreOnText([0, 0], 1, [false, false])).toMatchObject({ precision: null, recall: null });
    expect(scoreLine(s, 1, 'F12')).toContain('Precision P(pattern | fires) 0.67 (2/3), recall P(fires | pattern) 0.67 (2/3)');
  });
});

describe('Copy as code for units and feature interventions', () => {
  it('writes unit_activations with the SAE, and analyze(sae=) with a feature intervention', () => {
    const u = unitActivationsSnippet({ model: 'lenscope-gelu-1l', text: 'x = 1', context: '', units: ['F12'], sae: 'lenscope-gelu-1l-mlp-topk' });
    expect(u).toContain("UNITS = ['F12']");
    expect(u).toContain('unit_activations(model, TEXT, UNITS, sae=sae, context=CONTEXT, model_name=MODEL)');
    const i = interventionSnippet({ model: 'lenscope-gelu-1l', text: 'x = 1', sae: 'lenscope-gelu-1l-mlp-topk', interventions: toWire([{ id: 1, component: 'feature', layer: null, index: 12, op: 'zero', value: 0, positions: null, enabled: true, origin: null }]) });
    expect(i).toContain("Intervention('feature', None, 12, 'zero', 0)");
    expect(i).toContain('sae = load_named_sae(SAE)');
    expect(i).toContain('neuron_means=MEANS, sae=sae)');
  });
});

/** A server: /models, /analyze (a real payload), /unit_activations (the text's tokens, F12 = 0.5 × index). */
function server() {
  const f = fixture('code');
  const seen: { route: string; body: Record<string, unknown> }[] = [];
  let ids: number[] = [];
  const fetchFn = async (url: string, init: RequestInit): Promise<Response> => {
    const route = url.split('/lenscope/api/')[1];
    const body = init.body ? (decode(init.body as Uint8Array) as Record<string, unknown>) : {};
    seen.push({ route, body });
    if (route === 'models') {
      return new Response(JSON.stringify({ default: 'lenscope-gelu-1l', models: [] }), { headers: { 'Content-Type': 'application/json' } });
    }
    if (route === 'unit_activations') {
      const cuts = [...ids.map((_, i) => i), ids.length];
      const wire = unitsWire(ids, cuts, body.units as string[], ids.map((_, i) => [0.5 * i]));
      return new Response(JSON.stringify(wire), { headers: { 'Content-Type': 'application/json' } });
    }
    return new Response(Buffer.from(f.msgpack), { headers: { 'Content-Type': 'application/msgpack' } });
  };
  return { f, seen, setIds: (x: number[]) => (ids = x), client: new LenscopeClient('http://x/', fetchFn) };
}

function target(text: string, context: string): Target {
  const view = { dom: { isConnected: true } } as Pick<EditorView, 'dom'> as EditorView;
  return { view, from: 0, text, context, path: 'tour.py', cell: null, lines: [1, 2] };
}

const tick = () => new Promise(r => setTimeout(r, 0));

describe('a feature from a chip: colour by it, ablate it', () => {
  it('colours the run by the feature from unit_activations and opens its card', async () => {
    const s = server();
    const model = new LenscopeModel(s.client, settings);
    const run = (await model.analyze(target(s.f.text, s.f.context)))!;
    s.setIds(Array.from(run.analysis.ids));
    const asked: unknown[] = [];
    model.featureRequested.connect((_, a) => asked.push(a));
    model.openFeature(12, 'sae-a');
    await tick();
    await tick();
    expect(asked).toEqual([{ model: run.analysis.model, sae: 'sae-a', index: 12 }]);
    const req = s.seen.find(x => x.route === 'unit_activations')!.body;
    expect(req).toMatchObject({ model: run.analysis.model, text: s.f.text, context: s.f.context, units: ['F12'], sae: 'sae-a' });
    const colouring = model.run!.neuron!;
    expect(colouring).toMatchObject({ kind: 'feature', layer: null, index: 12, sae: 'sae-a', name: 'F12' });
    expect(colouring.activations.at(3)).toBe(1.5);
    await model.colourByFeature(null);
    expect(model.run!.neuron).toBeNull();
  });

  it('ablates a feature: analyze re-runs with sae and the feature on the wire; one SAE per list', async () => {
    const s = server();
    const model = new LenscopeModel(s.client, settings);
    await model.analyze(target(s.f.text, s.f.context));
    expect(model.addIntervention({ component: 'feature', layer: null, index: 12, sae: 'sae-a' })).not.toBeNull();
    await tick();
    await tick();
    const rerun = s.seen.filter(x => x.route === 'analyze').pop()!.body;
    expect(rerun.sae).toBe('sae-a');
    expect(rerun.interventions).toEqual([{ component: 'feature', layer: null, index: 12, op: 'zero', value: 0, positions: null, source: null }]);
    expect(model.interventions.items.map(i => componentLabel(i))).toEqual(['F12']);
    expect(model.addIntervention({ component: 'feature', layer: null, index: 3, sae: 'sae-b' })).toBeNull();
    expect(model.interventions.error).toMatch(/one SAE per analysis/);
    expect(model.run!.intervened).toBeTruthy();
  });
});
