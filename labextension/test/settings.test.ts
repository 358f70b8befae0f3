import { readFileSync } from 'fs';
import { join } from 'path';

import { readSettings, schemaDefaults } from '../src/settings';

const schema = JSON.parse(readFileSync(join(__dirname, '..', 'schema', 'plugin.json'), 'utf-8'));

describe('settings', () => {
  it('take every default from schema/plugin.json (one place)', () => {
    const s = readSettings(schemaDefaults(schema));
    expect(s.compareClamp).toBe(-6);
    expect(s.topK).toBe(10);
    expect(s.compareMinCount).toBe(10);
    expect(s.indexExamples).toBe(20);
    expect(s.defaultModel).toBe('');
    // every setting the frontend reads is declared in the schema, with a default
    expect(Object.keys(s).sort()).toEqual(Object.keys(schema.properties).sort());
  });

  it('keep user values over defaults and trim the model name', () => {
    const s = readSettings({ ...schemaDefaults(schema), defaultModel: '  gpt2 ', compareClamp: -4 });
    expect(s.defaultModel).toBe('gpt2');
    expect(s.compareClamp).toBe(-4);
  });

  it('refuse a missing number rather than invent a default', () => {
    const defaults = schemaDefaults(schema);
    delete defaults.topK;
    expect(() => readSettings(defaults)).toThrow(/topK/);
  });
});
