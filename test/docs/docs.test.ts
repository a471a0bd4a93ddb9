import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { buildApi } from '../../src/api/app.js';
import type { ApiContext } from '../../src/api/context.js';
import { createLogger } from '../../src/log.js';

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

it('docs/api.md lists exactly the routes the server serves', async () => {
  // Routes are only registered here, never called, so no context is needed behind them.
  const { app, router } = buildApi({} as ApiContext, { adminToken: 'x'.repeat(20), maxPayloadBytes: 1024, logger: createLogger('silent'), version: '0', readiness: async () => ({ checks: {}, destinations: {} }) });
  const served = router.specs.map((s) => `${s.method} ${s.url.replace(/:([a-z_]+)/g, '{$1}')}`).sort();
  const documented = [...read('docs/api.md').matchAll(/^\| `([A-Z]+)` \| `([^`]+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
  assert.deepEqual(documented, served);
  await app.close();
});

it('the README names the two set-up commands and every configuration variable', () => {
  const readme = read('README.md');
  assert.match(readme, /npm install && npx hookrelay serve/);
  assert.match(readme, /^npm test$/m);
  const config = read('src/config.ts');
  for (const [, variable] of config.matchAll(/'(HOOKRELAY_[A-Z_]+)'/g)) {
    if (variable === 'HOOKRELAY_RESPONSE_BODY_LIMIT') continue; // documented in docs/api.md
    assert.ok(readme.includes(variable), `README does not mention ${variable}`);
  }
});
