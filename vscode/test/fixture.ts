/** A real analyze response of the default model (the labextension's fixture: tests/contract writes it). */
import { decode } from '@msgpack/msgpack';
import { readFileSync } from 'fs';
import { join } from 'path';

import type { AnalyzeResponseWire } from '../../labextension/src/api/analysis';
import { Analysis } from '../src/shared';

const FIXTURES = join(__dirname, '..', '..', 'labextension', 'test', 'fixtures');

export function analysis(name = 'code', model?: string): Analysis {
  const meta = JSON.parse(readFileSync(join(FIXTURES, `${name}.request.json`), 'utf-8'));
  const wire = decode(new Uint8Array(readFileSync(join(FIXTURES, `${name}.msgpack`)))) as AnalyzeResponseWire;
  return new Analysis(model ? { ...wire, model } : wire, meta.text);
}
