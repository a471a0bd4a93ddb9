import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERRORS } from '../../src/domain/errors.js';

it('docs/errors.md lists exactly the error codes the server can return, with their statuses', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(
    rows.sort(),
    Object.entries(ERRORS)
      .map(([code, { status }]) => [code, status])
      .sort(),
  );
});
