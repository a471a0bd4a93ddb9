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

it("docs/inbound.md lists every source type with the fields the OpenAPI document gives its config", async () => {
  const { app, router } = buildApi({} as ApiContext, { adminToken: 'x'.repeat(20), maxPayloadBytes: 1024, logger: createLogger('silent'), version: '0', readiness: async () => ({ checks: {}, destinations: {} }) });
  const schemas = (router.openapi({ version: '0' }) as { components: { schemas: Record<string, any> } }).components.schemas;
  const all: Record<string, string> = schemas.IngestSourceIn.discriminator.mapping;
  const configOf = (type: string) => schemas[schemas[all[type].split('/').pop()!].properties.config.$ref.split('/').pop()];
  // Broker sources are documented in docs/brokers.md (see the next test).
  const mapping = Object.fromEntries(Object.entries(all).filter(([type]) => configOf(type)['x-hookrelay-broker'] !== true));
  // The settings every source has are documented once, in their own table.
  const shared = Object.keys(configOf('github').properties).filter((name) => Object.keys(mapping).every((type) => name in configOf(type).properties));
  const expected = Object.keys(mapping).map((type) => {
    const config = configOf(type);
    const alias = /^Same as the (\S+) type/.exec(config.description ?? '')?.[1];
    const fields = Object.entries(config.properties as Record<string, { writeOnly?: boolean; default?: unknown }>)
      .filter(([name]) => !shared.includes(name))
      .map(([name, field]) => `\`${name}\`${config.required?.includes(name) ? ' *required*' : ''}${field.writeOnly ? ' *secret*' : ''}${field.default !== undefined ? ` = \`${JSON.stringify(field.default)}\`` : ''}`);
    return `| \`${type}\` | ${alias ? `same as \`${alias}\`` : fields.join(', ')} |`;
  });
  const section = read('docs/inbound.md').split('## Source types')[1].split('\n## ')[0];
  assert.deepEqual(section.split('\n').filter((line) => line.startsWith('| `')), expected);
  const common = read('docs/inbound.md').split('## Source config')[1].split('\n## ')[0];
  assert.deepEqual([...common.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]).sort(), [...shared].sort());
  await app.close();
});

it('docs/brokers.md documents every setting of every broker source', async () => {
  const { app, router } = buildApi({} as ApiContext, { adminToken: 'x'.repeat(20), maxPayloadBytes: 1024, logger: createLogger('silent'), version: '0', readiness: async () => ({ checks: {}, destinations: {} }) });
  const schemas = (router.openapi({ version: '0' }) as { components: { schemas: Record<string, any> } }).components.schemas;
  const mapping: Record<string, string> = schemas.IngestSourceIn.discriminator.mapping;
  const configOf = (type: string) => schemas[schemas[mapping[type].split('/').pop()!].properties.config.$ref.split('/').pop()];
  const brokers = Object.keys(mapping).filter((type) => configOf(type)['x-hookrelay-broker'] === true);
  assert.deepEqual(brokers.sort(), ['kafka', 'nats', 'rabbitmq', 'redis']);
  const section = read('docs/brokers.md').split('## Broker sources')[1].split('\n## ')[0];
  const documented = new Set([...section.matchAll(/^\| (?:`(?:redis|nats|kafka|rabbitmq)` \| )?`([A-Za-z]+)` \|/gm)].map((m) => m[1]));
  // Connection settings are the destinations' (documented with them, named in one sentence of the section).
  const connection = ['address', 'username', 'password', 'user', 'token', 'db', 'vhost', 'tls', 'brokers', 'sasl', 'ssl'];
  for (const type of brokers) {
    for (const name of Object.keys(configOf(type).properties)) {
      if (connection.includes(name)) assert.match(section, new RegExp(`\`${name}\``), `docs/brokers.md does not name ${type}.${name}`);
      else assert.ok(documented.has(name), `docs/brokers.md has no row for ${type}.${name}`);
    }
  }
  await app.close();
});
