import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { Svix, Webhook } from 'svix';
import { loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { masterKeyId } from '../../src/secrets/box.js';
import type { SealedStore } from '../../src/secrets/sealed-store.js';
import { startHookrelay, type Hookrelay } from '../../src/server.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { headersOf } from '../api/support.js';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_TOKEN, LOOPBACK } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { runCli, tempDir } from '../process/child.js';

/**
 * Secrets at rest, proven on the bytes: whatever hookrelay writes, the SQLite file (and its WAL) and the PostgreSQL
 * tables must not contain a signing secret, a source secret, a destination credential or an API key in clear — while
 * deliveries keep verifying, providers keep being verified, and master keys rotate.
 */

const KEY_A = Buffer.alloc(32, 0xa1).toString('base64');
const KEY_B = Buffer.alloc(32, 0xb2).toString('base64');
const KEY_C = Buffer.alloc(32, 0xc3).toString('base64');

const S = {
  endpointOld: 'whsec_' + Buffer.from('at-rest-endpoint-secret-one-0001').toString('base64'),
  endpointNew: 'whsec_' + Buffer.from('at-rest-endpoint-secret-two-0002').toString('base64'),
  temporalApiKey: 'temporal-api-key-at-rest-7f3a9c',
  tlsKey: '-----BEGIN PRIVATE KEY-----\nat-rest-private-key-material-5d2e\n-----END PRIVATE KEY-----\n',
  payloadKey: 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
  source: 'github-source-secret-at-rest-61c0',
  sourceExtra: 'github-extra-secret-at-rest-92fd',
};

/** The strings whose presence in clear would be a leak (the PEM by its distinctive middle line). */
const plainOf = (extra: string[] = []) => [S.endpointOld, S.endpointNew, S.endpointOld.slice(6), S.endpointNew.slice(6), S.temporalApiKey, 'at-rest-private-key-material-5d2e', S.payloadKey, S.source, S.sourceExtra, ...extra];

interface Booted extends Hookrelay {
  svix: Svix;
  logs: string[];
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }>;
}

async function boot(db: string, env: Record<string, string> = {}): Promise<Booted> {
  const logs: string[] = [];
  const settings = loadSettings(
    { port: '0', host: '127.0.0.1', db, logLevel: 'trace', retrySchedule: '0,100ms,200ms', shutdownGrace: '2s', allowNetworks: LOOPBACK },
    { HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN, ...env },
  );
  const relay = await startHookrelay({ ...settings, pollMs: 200 }, createLogger('trace', { write: (line: string) => void logs.push(line) }));
  return {
    ...relay,
    logs,
    svix: new Svix(ADMIN_TOKEN, { serverUrl: relay.url }),
    async api(method, path, body) {
      const response = await fetch(relay.url + path, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null, text };
    },
  };
}

interface Fixture {
  appId: string;
  endpointId: string;
  /** The source's ingest token (its URL changes with the port of each start). */
  ingestToken: string;
  apiKey: string;
}

/** Endpoints, a rotated secret, a Temporal destination with every credential, a source and an API key, over the API. */
async function populate(relay: Booted, receiverUrl: string): Promise<Fixture> {
  const ok = async (method: string, path: string, body?: unknown) => {
    const response = await relay.api(method, path, body);
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${response.text}`);
    return response.body;
  };
  const app = await ok('POST', '/api/v1/app', { name: 'at rest' });
  const endpoint = await ok('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiverUrl, secret: S.endpointOld });
  await ok('POST', `/api/v1/app/${app.id}/endpoint/${endpoint.id}/secret/rotate`, { key: S.endpointNew });
  await ok('POST', `/api/v1/app/${app.id}/endpoint`, {
    url: 'http://127.0.0.1:9/unused',
    filterTypes: ['never.sent'],
    destination: {
      type: 'temporal',
      address: '127.0.0.1:7233',
      workflowType: 'Hook',
      taskQueue: 'q',
      apiKey: S.temporalApiKey,
      tls: { clientCert: '-----BEGIN CERTIFICATE-----\nnot secret\n-----END CERTIFICATE-----\n', clientKey: S.tlsKey },
      encryption: { keyId: 'k1', key: S.payloadKey },
    },
  });
  const source = await ok('POST', '/ingest/api/v1/source', { name: 'gh', type: 'github', config: { secret: S.source, additionalSecrets: [S.sourceExtra] } });
  await ok('POST', `/ingest/api/v1/source/${source.id}/endpoint`, { url: receiverUrl });
  const key = await ok('POST', `/api/v1/app/${app.id}/api-key`, { name: 'at rest' });
  return { appId: app.id, endpointId: endpoint.id, ingestToken: source.ingestUrl.split('/').pop(), apiKey: key.key };
}

/** A message signed with both endpoint secrets (the old one is in its grace period) and a GitHub delivery verified with each source secret. */
async function assertSecretsWork(relay: Booted, fixture: Fixture, receiver: Receiver): Promise<void> {
  const message = await relay.svix.message.create(fixture.appId, { eventType: 'at.rest', payload: { n: 1 } });
  const delivery = (await waitUntil('the delivery', () => receiver.received.find((r) => r.headers['webhook-id'] === message.id)))!;
  for (const secret of [S.endpointNew, S.endpointOld]) {
    assert.doesNotThrow(() => new Webhook(secret).verify(delivery.body.toString(), headersOf(delivery)), `not signed with ${secret.slice(0, 12)}…`);
    assert.deepEqual(JSON.parse(delivery.body.toString()), { n: 1 });
  }
  for (const [i, secret] of [S.source, S.sourceExtra, 'not-the-secret'].entries()) {
    const body = JSON.stringify({ action: 'opened', i, at: Date.now() });
    const signature = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
    const response = await fetch(`${relay.url}/ingest/${fixture.ingestToken}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature, 'x-github-event': 'issues', 'x-github-delivery': `d-${Date.now()}-${i}` },
      body,
    });
    assert.equal(response.status, secret === 'not-the-secret' ? 401 : 200, await response.text());
  }
}

/** Which of `secrets` occur in the bytes of these files (missing files are skipped). */
function foundIn(files: string[], secrets: string[]): string[] {
  const contents = files.filter((f) => existsSync(f)).map((f) => readFileSync(f));
  return secrets.filter((secret) => contents.some((bytes) => bytes.includes(Buffer.from(secret))));
}

const dbFiles = (db: string) => [db, `${db}-wal`, `${db}-journal`];

describe('secrets at rest', () => {
  const receivers: Receiver[] = [];
  const dirs: { remove(): void }[] = [];
  const running: Hookrelay[] = [];
  after(async () => {
    for (const relay of running) await relay.close().catch(() => undefined);
    for (const receiver of receivers) await receiver.close();
    for (const dir of dirs) dir.remove();
  });
  const receiver = async () => {
    const r = await startReceiver();
    receivers.push(r);
    return r;
  };
  const workspace = () => {
    const dir = tempDir();
    dirs.push(dir);
    return { dir: dir.dir, db: join(dir.dir, 'relay.db') };
  };
  const start = async (db: string, env: Record<string, string> = {}) => {
    const relay = await boot(db, env);
    running.push(relay);
    return relay;
  };

  it('SQLite: neither the database file nor its WAL holds a secret in clear, while everything signs and verifies; answers and logs show none', async () => {
    const { dir, db } = workspace();
    const hooks = await receiver();
    const relay = await start(db);
    const keyFile = join(dir, 'relay.master-key');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'the generated master key file is readable by others');
    const fixture = await populate(relay, hooks.url);
    await assertSecretsWork(relay, fixture, hooks);
    const secrets = plainOf([fixture.apiKey]);
    assert.deepEqual(foundIn(dbFiles(db), secrets), [], 'plaintext secrets in the database files while serving');

    // Only the secret route returns a signing secret; lists and gets of endpoints and sources return none.
    const answers = [
      await relay.api('GET', `/api/v1/app/${fixture.appId}/endpoint`),
      await relay.api('GET', `/api/v1/app/${fixture.appId}/endpoint/${fixture.endpointId}`),
      await relay.api('GET', '/ingest/api/v1/source'),
      await relay.api('GET', `/api/v1/app/${fixture.appId}/api-key`),
    ];
    const sourceId = answers[2].body.data[0].id;
    answers.push(await relay.api('GET', `/ingest/api/v1/source/${sourceId}`));
    for (const answer of answers) assert.deepEqual(secrets.filter((s) => answer.text.includes(s)), [], `an answer shows a secret: ${answer.text}`);
    assert.equal((await relay.api('GET', `/api/v1/app/${fixture.appId}/endpoint/${fixture.endpointId}/secret`)).body.key, S.endpointNew);
    assert.deepEqual(secrets.filter((s) => relay.logs.some((line) => line.includes(s))), [], 'a secret was logged');
    assert.ok(!relay.logs.some((line) => line.includes(KEY_A) || line.includes(readFileSync(keyFile, 'utf8').trim())), 'the master key was logged');

    await relay.close();
    assert.deepEqual(foundIn(dbFiles(db), secrets), [], 'plaintext secrets in the database files after shutdown');
    // The generated key is kept and reused: a restart reads what the first run sealed.
    const keyText = readFileSync(keyFile, 'utf8');
    const again = await start(db);
    assert.equal(readFileSync(keyFile, 'utf8'), keyText);
    await assertSecretsWork(again, fixture, hooks);
    await again.close();
  });

  it('PostgreSQL: no table holds a secret in clear', { skip: skipWithoutPostgres() }, async () => {
    const database = await freshDatabase();
    try {
      const hooks = await receiver();
      const relay = await start(database.url, { HOOKRELAY_MASTER_KEY: KEY_A });
      const fixture = await populate(relay, hooks.url);
      await assertSecretsWork(relay, fixture, hooks);
      await relay.close();
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      let dump = '';
      try {
        const tables = (await client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows.map((r) => r.tablename as string);
        assert.ok(tables.includes('endpoint') && tables.includes('source') && tables.includes('api_key'), tables.join());
        for (const table of tables) dump += (await client.query(`SELECT string_agg(t::text, E'\\n') AS rows FROM "${table}" t`)).rows[0].rows ?? '';
      } finally {
        await client.end();
      }
      assert.match(dump, /hrenc:v1:/, 'no sealed values in the tables at all');
      assert.deepEqual(plainOf([fixture.apiKey]).filter((s) => dump.includes(s)), [], 'plaintext secrets in PostgreSQL tables');
    } finally {
      await database.drop();
    }
  });

  it('PostgreSQL without a master key refuses to start, naming the setting', { skip: skipWithoutPostgres() }, async () => {
    const database = await freshDatabase();
    try {
      await assert.rejects(boot(database.url), /HOOKRELAY_MASTER_KEY.*PostgreSQL database needs a master key/);
    } finally {
      await database.drop();
    }
  });

  it('upgrade: a database written before encryption at rest is sealed on start, with no copy left in the file, and a second start changes nothing', async () => {
    const { db } = workspace();
    const hooks = await receiver();
    // What an older hookrelay left: the same rows, secrets in clear.
    const old = new SqliteStore({ path: db });
    const app = await old.createApp({ name: 'legacy', uid: null, rateLimit: null, metadata: {} }, Date.now());
    const endpointInput = { uid: null, url: hooks.url, description: '', version: 1, filterTypes: null, channels: null, filter: null, headers: {}, disabled: false, rateLimit: null, ordering: 'parallel' as const, maxInFlight: 8, metadata: {}, destination: null };
    const endpoint = await old.createEndpoint(app.id, endpointInput, S.endpointOld, Date.now());
    await old.rotateEndpointSecret(app.id, endpoint.id, S.endpointNew, Date.now() + 3_600_000, Date.now());
    await old.createEndpoint(
      app.id,
      { ...endpointInput, filterTypes: ['never.sent'], destination: { type: 'temporal', address: '127.0.0.1:7233', workflowType: 'W', taskQueue: 'q', apiKey: S.temporalApiKey, tls: { clientKey: S.tlsKey }, encryption: { keyId: 'k', key: S.payloadKey } } },
      S.endpointOld,
      Date.now(),
    );
    const source = await old.createSource({ name: 'gh', uid: null, type: 'github', config: { secret: S.source, additionalSecrets: [S.sourceExtra], allowSha1: false }, metadata: {} }, 'legacy-token', Date.now());
    await old.createEndpoint(source.appId, endpointInput, S.endpointOld, Date.now());
    await old.close();
    assert.ok(foundIn([db], plainOf()).length >= 5, 'the legacy database should hold plaintext secrets to begin with');

    const relay = await start(db);
    assert.ok(relay.logs.some((line) => line.includes('encrypted stored secrets under the current master key')), 'the upgrade was not logged');
    assert.deepEqual(foundIn(dbFiles(db), plainOf()), [], 'plaintext left in the database after the upgrade');
    await assertSecretsWork(relay, { appId: app.id, endpointId: endpoint.id, ingestToken: 'legacy-token', apiKey: '' }, hooks);
    const sealedRows = await (relay.store as SealedStore).inner.scanSecrets('endpoint', '', 100);
    await relay.close();

    const again = await start(db);
    assert.ok(!again.logs.some((line) => line.includes('encrypted stored secrets')), 'a second start rewrote secrets again');
    assert.deepEqual(await (again.store as SealedStore).inner.scanSecrets('endpoint', '', 100), sealedRows);
    await again.close();
  });

  it('rotation: A → B on start (A previous), B → C with `hookrelay reencrypt`; then only the newest key is needed and an old one alone is refused', async () => {
    const { db } = workspace();
    const hooks = await receiver();
    const withA = await start(db, { HOOKRELAY_MASTER_KEY: KEY_A });
    const fixture = await populate(withA, hooks.url);
    await withA.close();
    assert.equal(existsSync(db.replace(/\.db$/, '.master-key')), false, 'a key file was generated although a key was configured');

    const keyIdsOf = async (relay: Booted) => {
      const inner = (relay.store as SealedStore).inner;
      const rows = [...(await inner.scanSecrets('endpoint', '', 100)), ...(await inner.scanSecrets('source', '', 100))];
      return new Set(JSON.stringify(rows).match(/hrenc:v1:[^:]+/g));
    };
    const withB = await start(db, { HOOKRELAY_MASTER_KEY: KEY_B, HOOKRELAY_PREVIOUS_MASTER_KEYS: KEY_A });
    assert.deepEqual(await keyIdsOf(withB), new Set([`hrenc:v1:${masterKeyId(Buffer.from(KEY_B, 'base64'))}`]));
    await assertSecretsWork(withB, fixture, hooks);
    await withB.close();

    const onlyB = await start(db, { HOOKRELAY_MASTER_KEY: KEY_B });
    await assertSecretsWork(onlyB, fixture, hooks);
    await onlyB.close();

    const reencrypt = await runCli(['reencrypt', '--db', db], { env: { HOOKRELAY_MASTER_KEY: KEY_C, HOOKRELAY_PREVIOUS_MASTER_KEYS: `${KEY_A},${KEY_B}` } });
    assert.equal(reencrypt.code, 0, reencrypt.stderr);
    assert.match(reencrypt.stdout, new RegExp(`re-encrypted [1-9]\\d* under master key ${masterKeyId(Buffer.from(KEY_C, 'base64'))}`));

    const onlyC = await start(db, { HOOKRELAY_MASTER_KEY: KEY_C });
    assert.deepEqual(await keyIdsOf(onlyC), new Set([`hrenc:v1:${masterKeyId(Buffer.from(KEY_C, 'base64'))}`]));
    await assertSecretsWork(onlyC, fixture, hooks);
    await onlyC.close();

    await assert.rejects(boot(db, { HOOKRELAY_MASTER_KEY: KEY_B }), new RegExp(`sealed with master key ${masterKeyId(Buffer.from(KEY_C, 'base64'))}, which is not configured`));
  });

  it('a wrong or lost master key stops the start with a clear error (exit 2 from the CLI), and a lost key file is not silently replaced', async () => {
    const { dir, db } = workspace();
    const hooks = await receiver();
    const first = await start(db);
    await populate(first, hooks.url);
    await first.close();
    const keyFile = join(dir, 'relay.master-key');
    const generatedId = masterKeyId(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64'));

    await assert.rejects(boot(db, { HOOKRELAY_MASTER_KEY: KEY_C }), (error: Error) => {
      assert.equal(error.name, 'MasterKeyError');
      assert.match(error.message, new RegExp(`sealed with master key ${generatedId}, which is not configured`));
      return true;
    });
    const cli = await runCli(['serve', '--port', '0', '--db', db], { env: { HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN, HOOKRELAY_MASTER_KEY: KEY_C } });
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /cannot read the stored secrets: .*not configured/);
    assert.doesNotMatch(cli.stderr, /^\s{4}at /m);

    rmSync(keyFile);
    await assert.rejects(boot(db), new RegExp(`sealed with master key ${generatedId}`));
    assert.equal(existsSync(keyFile), false, 'a fresh key file was left in place of the lost one');

    const badKey = await runCli(['serve', '--port', '0', '--db', db], { env: { HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN, HOOKRELAY_MASTER_KEY: 'c2hvcnQ=' } });
    assert.equal(badKey.code, 2);
    assert.match(badKey.stderr, /HOOKRELAY_MASTER_KEY: must be 32 random bytes in base64/);
  });
});
