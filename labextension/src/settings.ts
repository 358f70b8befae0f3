/**
 * The user's settings. Their defaults live in one place, `schema/plugin.json`: JupyterLab's
 * settings registry fills every property there into `composite`, and `readSettings` only checks
 * the shapes, so no default is repeated here.
 */
import type { ScaleName } from './colors';

export interface Settings {
  defaultModel: string;
  /** "auto" (the model's shipped SAE), "none", or an SAE's name */
  sae: string;
  topK: number;
  topNeurons: number;
  colorScale: ScaleName;
  logprobFloor: number;
  contextChars: number;
  maxChars: number;
  compareClamp: number;
  compareMinCount: number;
  indexExamples: number;
}

const SCALES: readonly ScaleName[] = ['surprise', 'viridis', 'grayscale'];

/** Settings from the registry's composite (user values over the schema's defaults). */
export function readSettings(composite: Readonly<Record<string, unknown>>): Settings {
  const num = (key: keyof Settings): number => {
    const v = composite[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`lenscope setting ${key} is missing or not a number`);
    }
    return v;
  };
  const scale = composite.colorScale;
  return {
    defaultModel: typeof composite.defaultModel === 'string' ? composite.defaultModel.trim() : '',
    sae: typeof composite.sae === 'string' ? composite.sae.trim() : '',
    topK: num('topK'),
    topNeurons: num('topNeurons'),
    colorScale: SCALES.includes(scale as ScaleName) ? (scale as ScaleName) : 'surprise',
    logprobFloor: num('logprobFloor'),
    contextChars: num('contextChars'),
    maxChars: num('maxChars'),
    compareClamp: num('compareClamp'),
    compareMinCount: num('compareMinCount'),
    indexExamples: num('indexExamples')
  };
}

/** The defaults of a settings schema (what the registry's composite holds with no user values). */
export function schemaDefaults(schema: { properties?: Record<string, { default?: unknown }> }): Record<string, unknown> {
  return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, p]) => [k, p.default]));
}
