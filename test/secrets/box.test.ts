import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadSettings } from '../../src/config.js';
import { masterKeyId, MasterKeyError, SecretBox } from '../../src/secrets/box.js';
import { SecretFields } from '../../src/secrets/fields.js';
import { tempDir } from '../process/child.js';

const A = Buffer.alloc(32, 1);
const B = Buffer.alloc(32, 2);

describe('SecretBox (AES-256-GCM under a master key)', () => {
  it('seals to a self-describing value naming its key, different every time, and opens it again', () => {
    const box = new SecretBox(A);
    const one = box.seal('whsec_abc');
    const two = box.seal('whsec_abc');
    assert.match(one, new RegExp(`^hrenc:v1:${masterKeyId(A)}:[A-Za-z0-9+/]+=*$`));
    assert.notEqual(one, two, 'the same secret sealed twice gave the same ciphertext (IV reuse)');
    assert.ok(!one.includes('whsec_abc'));
    assert.equal(box.open(one), 'whsec_abc');
    assert.equal(box.open(two), 'whsec_abc');
    assert.equal(box.open('whsec_legacy'), 'whsec_legacy', 'a plain value from before encryption at rest must read as it is');
    assert.equal(box.open(box.seal('')), '');
    assert.equal(box.open(box.seal('ü€ '.repeat(1000))), 'ü€ '.repeat(1000));
  });

  it('refuses a tampered value or one whose key is not configured, never returning garbage', () => {
    const sealed = new SecretBox(A).seal('whsec_abc');
    const body = Buffer.from(sealed.split(':')[3], 'base64');
    for (const at of [0, 12, body.length - 1]) {
      const flipped = Buffer.from(body);
      flipped[at] ^= 1;
      const tampered = sealed.slice(0, sealed.lastIndexOf(':') + 1) + flipped.toString('base64');
      assert.throws(() => new SecretBox(A).open(tampered), (e: Error) => e instanceof MasterKeyError && /damaged/.test(e.message));
    }
    // The key id is authenticated too: relabelling a value with another configured key fails.
    const relabelled = sealed.replace(masterKeyId(A), masterKeyId(B));
    assert.throws(() => new SecretBox(B, [A]).open(relabelled), /damaged/);
    assert.throws(() => new SecretBox(B).open(sealed), (e: Error) => e instanceof MasterKeyError && e.message.includes(`sealed with master key ${masterKeyId(A)}, which is not configured`));
  });

  it('opens values under previous keys during a rotation and says which values need re-sealing', () => {
    const old = new SecretBox(A).seal('s1');
    const rotating = new SecretBox(B, [A]);
    assert.equal(rotating.open(old), 's1');
    assert.equal(rotating.needsReseal(old), true);
    assert.equal(rotating.needsReseal('plain'), true);
    assert.equal(rotating.needsReseal(rotating.seal('s2')), false);
    assert.deepEqual(rotating.keyIds, [masterKeyId(B), masterKeyId(A)]);
    assert.notEqual(masterKeyId(A), masterKeyId(B));
  });
});

describe('SecretFields', () => {
  it('re-seals a row with plain and old-key values under the current key, leaving other fields and the input untouched', () => {
    const oldBox = new SecretBox(A);
    const fields = new SecretFields(new SecretBox(B, [A]));
    const row = {
      kind: 'endpoint' as const,
      id: 'ep_1',
      secrets: [
        { key: oldBox.seal('whsec_old'), expiresAt: 5 },
        { key: 'whsec_plain', expiresAt: null },
      ],
      destination: { type: 'temporal', taskQueue: 'q', apiKey: 'plain-api-key', tls: { clientCert: 'CERT', clientKey: oldBox.seal(JSON.stringify('KEY')) } },
    };
    const frozen = JSON.stringify(row);
    const next = fields.reseal(row)!;
    assert.equal(JSON.stringify(row), frozen, 'reseal changed its input');
    assert.ok(next && next.kind === 'endpoint');
    const text = JSON.stringify(next);
    assert.equal((text.match(/hrenc:v1:/g) ?? []).length, 4);
    assert.ok(!text.includes(masterKeyId(A)) && !text.includes('plain-api-key') && !text.includes('whsec_plain'));
    assert.equal(next.destination!.taskQueue, 'q');
    assert.equal((next.destination!.tls as Record<string, unknown>).clientCert, 'CERT');
    assert.equal(fields.reseal(next), null, 'a row already under the current key was rewritten');

    const opened = fields.openEndpoint({ ...(next as any), appId: 'a', uid: null });
    assert.deepEqual(opened.secrets.map((s) => s.key), ['whsec_old', 'whsec_plain']);
    assert.deepEqual(opened.destination, { type: 'temporal', taskQueue: 'q', apiKey: 'plain-api-key', tls: { clientCert: 'CERT', clientKey: 'KEY' } });
  });

  it('seals every secret field of a source config, whatever its JSON type', () => {
    const fields = new SecretFields(new SecretBox(A));
    const config = { secret: 's', additionalSecrets: ['t', 'u'], password: 'p', maxBodyBytes: 10, header: 'x-sig' };
    const sealed = fields.sealSourceConfig(config);
    assert.equal(sealed.maxBodyBytes, 10);
    assert.equal(sealed.header, 'x-sig');
    for (const key of ['secret', 'additionalSecrets', 'password']) assert.match(String(sealed[key]), /^hrenc:v1:/);
    assert.deepEqual(fields.openSource({ config: sealed } as any).config, config);
  });
});

describe('master key settings', () => {
  const env = (extra: Record<string, string>) => ({ HOOKRELAY_ADMIN_TOKEN: 'x'.repeat(20), ...extra });

  it('reads a key from the environment with previous keys, or from a file (current first, then previous)', () => {
    const fromEnv = loadSettings({}, env({ HOOKRELAY_MASTER_KEY: A.toString('base64'), HOOKRELAY_PREVIOUS_MASTER_KEYS: `${B.toString('base64')}` }));
    assert.deepEqual(fromEnv.masterKey, { current: A, previous: [B], from: 'HOOKRELAY_MASTER_KEY' });
    const dir = tempDir();
    try {
      const file = join(dir.dir, 'keys');
      writeFileSync(file, `# rotating\n${B.toString('base64')}\n${A.toString('base64')}\n`);
      assert.deepEqual(loadSettings({ masterKeyFile: file }, env({})).masterKey, { current: B, previous: [A], from: file });
      assert.throws(() => loadSettings({ masterKeyFile: file }, env({ HOOKRELAY_MASTER_KEY: A.toString('base64') })), /either in HOOKRELAY_MASTER_KEY or in a file/);
      writeFileSync(file, 'short\n');
      assert.throws(() => loadSettings({ masterKeyFile: file }, env({})), (e: Error) => e instanceof ConfigError && /--master-key-file.*line 1: must be 32 random bytes/.test(e.message));
      assert.throws(() => loadSettings({ masterKeyFile: join(dir.dir, 'missing') }, env({})), /no such file/);
    } finally {
      dir.remove();
    }
    assert.throws(() => loadSettings({}, env({ HOOKRELAY_PREVIOUS_MASTER_KEYS: `${A.toString('base64')},nope` })), /HOOKRELAY_PREVIOUS_MASTER_KEYS: key 2: must be 32/);
    assert.equal(loadSettings({}, env({})).masterKey, null);
  });
});
