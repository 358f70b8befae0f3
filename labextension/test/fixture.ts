/** Real server payloads (written by tests/contract/test_fixtures.py from the default model). */
import { readFileSync } from 'fs';
import { join } from 'path';

export const FIXTURES = join(__dirname, 'fixtures');

export interface Fixture {
  text: string;
  context: string;
  msgpack: Uint8Array;
  json: string;
}

export function fixture(name: string): Fixture {
  const meta = JSON.parse(readFileSync(join(FIXTURES, `${name}.request.json`), 'utf-8'));
  return {
    text: meta.text,
    context: meta.context,
    msgpack: new Uint8Array(readFileSync(join(FIXTURES, `${name}.msgpack`))),
    json: readFileSync(join(FIXTURES, `${name}.json`), 'utf-8')
  };
}
