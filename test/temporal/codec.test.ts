import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultPayloadConverter } from '@temporalio/client';
import { AesGcmPayloadCodec, CodecError } from '../../src/pipeline/destinations/temporal-codec.js';
import { codecOf } from '../../src/pipeline/destinations/temporal.js';
import { pythonWithCryptography, skipReason } from './harness.js';

type Payload = { metadata?: Record<string, Uint8Array> | null; data?: Uint8Array | null };
interface WirePayload {
  metadata: Record<string, string>;
  data: string;
}

const SCRIPT = fileURLToPath(new URL('../../../test/temporal/codec_check.py', import.meta.url));
const toWire = (p: Payload): WirePayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});
const fromWire = (p: WirePayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
  data: new Uint8Array(Buffer.from(p.data, 'base64')),
});
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('utf8');

const key = randomBytes(32).toString('hex');
const keyId = 'hookrelay-test-key';
/** What hookrelay's start call carries: the `{headers, data}` argument through Temporal's default converter. */
const webhook = { headers: { 'content-type': 'application/json', 'webhook-id': 'msg_1' }, data: { order: 1042, note: 'naïve café ☃ 𝄞' } };

const pythonMissing = pythonWithCryptography();

describe('temporal codec: byte compatibility with Python cryptography AESGCM (codec_check.py)', { skip: skipReason(pythonMissing) }, () => {
  before(() => {
    if (pythonMissing) throw new Error(`CI=true and ${pythonMissing}`);
  });

  const python = (request: unknown): { decrypted: WirePayload[]; encrypted: WirePayload[] } => {
    const run = spawnSync('python3', [SCRIPT], { input: JSON.stringify(request), encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 0, `codec_check.py failed: ${run.stderr}`);
    return JSON.parse(run.stdout);
  };

  it('Python decrypts what hookrelay encrypted, to the exact inner payloads, and hookrelay decodes what Python encrypted', async () => {
    const codec = codecOf({ keyId, key });
    const inner: Payload[] = [defaultPayloadConverter.toPayload(webhook) as Payload, defaultPayloadConverter.toPayload(new Uint8Array(randomBytes(300))) as Payload];
    const encrypted = (await codec.encode(inner)) as Payload[];
    for (const p of encrypted) {
      assert.equal(text(p.metadata!.encoding), 'binary/encrypted');
      assert.equal(text(p.metadata!['encryption-key-id']), keyId);
      assert.ok(!text(p.data).includes('café'), 'the encrypted payload holds plaintext');
    }

    const fromPython = python({ key, keyId, decrypt: encrypted.map(toWire), encrypt: inner.map(toWire) });
    // Python parsed the decrypted bytes as a Payload proto and found the same metadata and data.
    assert.deepEqual(fromPython.decrypted, inner.map(toWire));
    assert.deepEqual(defaultPayloadConverter.fromPayload(fromWire(fromPython.decrypted[0])), webhook);

    const decoded = (await codec.decode(fromPython.encrypted.map(fromWire))) as Payload[];
    assert.deepEqual(decoded.map(toWire), inner.map(toWire));
    assert.deepEqual(defaultPayloadConverter.fromPayload(decoded[0]), webhook);
  });
});

describe('temporal codec: decoding', () => {
  it('passes payloads that are not binary/encrypted through untouched', async () => {
    const codec = codecOf({ keyId, key });
    const plain = defaultPayloadConverter.toPayload(webhook) as Payload;
    assert.deepEqual(await codec.decode([plain]), [plain]);
  });

  it('refuses a payload under an unknown key id, naming the id, and reads it once the key is among previousKeys', async () => {
    const oldKey = randomBytes(32).toString('hex');
    const written = await codecOf({ keyId: 'key-2025', key: oldKey }).encode([defaultPayloadConverter.toPayload(webhook) as Payload]);

    await assert.rejects(codecOf({ keyId: 'key-2026', key }).decode(written), (error: Error) => error instanceof CodecError && /unknown encryption key id "key-2025"/.test(error.message));

    const rotated = codecOf({ keyId: 'key-2026', key, previousKeys: { 'key-2025': oldKey } });
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode(written))[0] as Payload), webhook);
    // New payloads are written under the current key only.
    assert.equal(text((await rotated.encode([defaultPayloadConverter.toPayload(1) as Payload]))[0].metadata!['encryption-key-id']), 'key-2026');
  });

  it('refuses a tampered payload and one sealed with another key under the same id', async () => {
    const codec = codecOf({ keyId, key });
    const [sealed] = (await codec.encode([defaultPayloadConverter.toPayload(webhook) as Payload])) as Payload[];
    const tampered = Buffer.from(sealed.data!);
    tampered[20] ^= 1;
    await assert.rejects(codec.decode([{ ...sealed, data: tampered }]), /does not authenticate/);
    const impostor = new AesGcmPayloadCodec(keyId, { [keyId]: randomBytes(32) });
    await assert.rejects(impostor.decode([sealed]), /does not authenticate/);
  });

  it('uses a fresh nonce for every payload', async () => {
    const codec = codecOf({ keyId, key });
    const same = defaultPayloadConverter.toPayload(webhook) as Payload;
    const [a, b] = (await codec.encode([same, same])) as Payload[];
    assert.notDeepEqual(Buffer.from(a.data!).subarray(0, 12), Buffer.from(b.data!).subarray(0, 12));
  });
});
