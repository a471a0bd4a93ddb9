import { InteractionResponseType, InteractionType, verifyKey } from 'discord-interactions';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * discord-interactions only verifies, so requests are signed with node:crypto Ed25519 keys as Discord does
 * (signature over timestamp ‖ body, hex) and each one is first checked with the library's own verifyKey.
 */
describe('inbound provider: discord', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver(() => ({ status: 200 }));
  });
  after(async () => {
    await relay.close();
    await receiver.close();
  });

  interface App {
    privateKey: KeyObject;
    /** The application public key as the developer portal shows it: 32 bytes, hex. */
    publicKey: string;
  }
  function newApp(): App {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return { privateKey, publicKey: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex') };
  }

  const nowSeconds = () => String(Math.floor(Date.now() / 1000));

  function signed(app: App, body: string, timestamp = nowSeconds()): Record<string, string> {
    return {
      'content-type': 'application/json',
      'x-signature-ed25519': sign(null, Buffer.from(timestamp + body), app.privateKey).toString('hex'),
      'x-signature-timestamp': timestamp,
      'user-agent': 'Discord-Interactions/1.0 (+https://discord.com)',
    };
  }

  /** Checks a request with discord-interactions before hookrelay sees it: it is what Discord would send. */
  async function discordAccepts(app: App, body: string, headers: Record<string, string>): Promise<void> {
    assert.equal(await verifyKey(body, headers['x-signature-ed25519'], headers['x-signature-timestamp'], app.publicKey), true);
  }

  /** An interaction is answered with Discord's deferred response once stored; the message id rides in a header. */
  function deferred(response: { status: number; text: string; headers: Headers }, duplicate = false): string {
    assert.equal(response.status, 200, response.text);
    assert.equal(response.text, JSON.stringify({ type: InteractionResponseType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE }));
    assert.equal(response.headers.get('x-hookrelay-duplicate'), String(duplicate));
    const id = response.headers.get('x-hookrelay-message-id') ?? '';
    assert.match(id, /^msg_/);
    return id;
  }

  let snowflakes = 0;
  const command = (id = String((BigInt(Date.now()) << 22n) + BigInt(++snowflakes))) =>
    `{"app_permissions":"442368","application_id":"11","channel_id":"22","data":{"id":"33","name":"café","options":[{"name":"q","type":3,"value":"naïve ☕ 𝄞"}],"type":1},"id":"${id}","token":"${randomBytes(24).toString('base64url')}","type":${InteractionType.APPLICATION_COMMAND},"version":1}`;

  it('accepts an interaction verifyKey accepts, stores it as APPLICATION_COMMAND and forwards it without the signature', async () => {
    const app = newApp();
    const source = await createSource(relay, 'discord', { publicKey: app.publicKey });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = command();
    const headers = signed(app, body);
    await discordAccepts(app, body, headers);
    const id = deferred(await post(source.ingestUrl, body, headers));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'APPLICATION_COMMAND');

    const [request] = await receiver.waitFor(1);
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['x-signature-ed25519'], undefined);
    assert.ok(!JSON.stringify(request.headers).includes(headers['x-signature-ed25519']), 'the Discord signature leaked into a header');
  });

  it('refuses one changed byte, another key, a changed timestamp, and missing or malformed headers, as verifyKey does', async () => {
    const app = newApp();
    const source = await createSource(relay, 'discord', { publicKey: app.publicKey });
    const body = command();
    const good = signed(app, body);

    const changed = tamper(body);
    assert.equal(await verifyKey(changed, good['x-signature-ed25519'], good['x-signature-timestamp'], app.publicKey), false);
    assert.equal(refused(await post(source.ingestUrl, changed, good)), 'no signature matches');

    const stranger = signed(newApp(), body);
    assert.equal(await verifyKey(body, stranger['x-signature-ed25519'], stranger['x-signature-timestamp'], app.publicKey), false);
    assert.equal(refused(await post(source.ingestUrl, body, stranger)), 'no signature matches');

    const moved = { ...good, 'x-signature-timestamp': String(Number(good['x-signature-timestamp']) + 1) };
    assert.equal(refused(await post(source.ingestUrl, body, moved)), 'no signature matches');

    const { 'x-signature-ed25519': _s, ...noSignature } = good;
    assert.match(refused(await post(source.ingestUrl, body, noSignature)), /missing X-Signature-Ed25519 header/);
    const { 'x-signature-timestamp': _t, ...noTimestamp } = good;
    assert.match(refused(await post(source.ingestUrl, body, noTimestamp)), /missing X-Signature-Timestamp header/);
    assert.match(refused(await post(source.ingestUrl, body, { ...good, 'x-signature-ed25519': good['x-signature-ed25519'].slice(2) })), /malformed X-Signature-Ed25519/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('answers a signed PING with {"type":1} and stores nothing; an unsigned PING gets 401 (Discord checks both)', async () => {
    const app = newApp();
    const source = await createSource(relay, 'discord', { publicKey: app.publicKey });
    const ping = `{"application_id":"11","id":"${Date.now()}","token":"t","type":${InteractionType.PING},"user":{"id":"1"},"version":1}`;
    const headers = signed(app, ping);
    await discordAccepts(app, ping, headers);

    const response = await post(source.ingestUrl, ping, headers);
    assert.equal(response.status, 200, response.text);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(response.text, JSON.stringify({ type: InteractionResponseType.PONG }));

    refused(await post(source.ingestUrl, ping, signed(newApp(), ping)));
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('webhook events: answers PING (type 0) with 204 and stores an EVENT under the event type', async () => {
    const app = newApp();
    const source = await createSource(relay, 'discord', { publicKey: app.publicKey });
    const ping = '{"version":1,"application_id":"11","type":0}';
    const response = await post(source.ingestUrl, ping, signed(app, ping));
    assert.equal(response.status, 204, response.text);
    assert.equal(response.text, '');
    assert.deepEqual(await messageIds(relay, source.appId), []);

    const event = `{"version":1,"application_id":"11","type":1,"event":{"type":"APPLICATION_AUTHORIZED","timestamp":"${new Date().toISOString()}","data":{"integration_type":0,"scopes":["applications.commands"],"user":{"id":"1","username":"zoë"}}}}`;
    const headers = signed(app, event);
    await discordAccepts(app, event, headers);
    const id = accepted(await post(source.ingestUrl, event, headers));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'APPLICATION_AUTHORIZED');
  });

  it('accepts a request signed with an additionalPublicKeys entry (a second application, or a new key)', async () => {
    const first = newApp();
    const second = newApp();
    const source = await createSource(relay, 'discord', { publicKey: first.publicKey, additionalPublicKeys: [second.publicKey] });
    const one = command();
    deferred(await post(source.ingestUrl, one, signed(first, one)));
    const two = command();
    deferred(await post(source.ingestUrl, two, signed(second, two)));
  });

  it('answers a redelivered interaction (same id) as a duplicate of the first message', async () => {
    const app = newApp();
    const source = await createSource(relay, 'discord', { publicKey: app.publicKey });
    const body = command();
    const first = deferred(await post(source.ingestUrl, body, signed(app, body)));
    assert.equal(deferred(await post(source.ingestUrl, body, signed(app, body)), true), first);
    assert.deepEqual(await messageIds(relay, source.appId), [first]);
  });

  it('checks X-Signature-Timestamp against a configured tolerance, in both directions', async () => {
    const app = newApp();
    const source = await createSource(relay, 'discord', { publicKey: app.publicKey, tolerance: 300 });
    const old = command();
    const oldHeaders = signed(app, old, String(Math.floor(Date.now() / 1000) - 900));
    await discordAccepts(app, old, oldHeaders);
    assert.match(refused(await post(source.ingestUrl, old, oldHeaders)), /timestamp is 90\d s old, outside the tolerance of 300 s/);
    const future = command();
    assert.match(refused(await post(source.ingestUrl, future, signed(app, future, String(Math.floor(Date.now() / 1000) + 900)))), /in the future, outside the tolerance of 300 s/);
    const fresh = command();
    deferred(await post(source.ingestUrl, fresh, signed(app, fresh)));
  });

  it('refuses a source whose publicKey is not 32 bytes of hex', async () => {
    const response = await relay.api('POST', '/ingest/api/v1/source', { name: 'discord-bad-key', type: 'discord', config: { publicKey: 'not-a-key' } });
    assert.equal(response.status, 422, response.text);
    assert.deepEqual(response.body.detail[0].loc, ['body', 'config', 'publicKey']);
  });
});
