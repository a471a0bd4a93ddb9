import { EventWebhook, EventWebhookHeader } from '@sendgrid/eventwebhook';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * @sendgrid/eventwebhook only verifies, so batches are signed with node:crypto ECDSA P-256 keys as SendGrid does
 * (SHA-256 over timestamp ‖ body, base64 DER) and each one is first checked with the library's verifySignature.
 */
describe('inbound provider: sendgrid', () => {
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

  interface Account {
    privateKey: KeyObject;
    /** The verification key as SendGrid's settings page shows it: base64 DER SubjectPublicKeyInfo. */
    publicKey: string;
    pem: string;
  }
  function newAccount(): Account {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    return { privateKey, publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), pem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
  }

  const nowSeconds = () => String(Math.floor(Date.now() / 1000));
  const SIGNATURE = EventWebhookHeader.SIGNATURE().toLowerCase();
  const TIMESTAMP = EventWebhookHeader.TIMESTAMP().toLowerCase();

  function signed(account: Account, body: string, timestamp = nowSeconds()): Record<string, string> {
    return {
      'content-type': 'application/json',
      [SIGNATURE]: sign('sha256', Buffer.from(timestamp + body), account.privateKey).toString('base64'),
      [TIMESTAMP]: timestamp,
      'user-agent': 'SendGrid Event API',
    };
  }

  function sendgridAccepts(account: Account, body: string, headers: Record<string, string>, key = account.publicKey): boolean {
    const webhook = new EventWebhook();
    return webhook.verifySignature(webhook.convertPublicKeyToECDSA(key), body, headers[SIGNATURE], headers[TIMESTAMP]);
  }

  const event = (kind: string, id = randomBytes(12).toString('base64url')) =>
    `{"email":"zoë@example.com","timestamp":${Math.floor(Date.now() / 1000)},"smtp-id":"<${id}@sendgrid.net>","event":"${kind}","category":["café ☕"],"sg_event_id":"${id}","sg_message_id":"m.${id}"}`;
  // SendGrid's batches are a JSON array, sometimes ending with CRLF: the signature covers those bytes too.
  const batch = (...events: string[]) => `[${events.join(',')}]\r\n`;

  it('accepts a batch @sendgrid/eventwebhook verifies, stores it as the first event’s type, forwards it without the signature', async () => {
    const account = newAccount();
    const source = await createSource(relay, 'sendgrid', { publicKey: account.publicKey });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = batch(event('processed'), event('delivered'));
    const headers = signed(account, body);
    assert.equal(sendgridAccepts(account, body, headers), true);
    const id = accepted(await post(source.ingestUrl, body, headers));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'processed');

    const [request] = await receiver.waitFor(1);
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers[SIGNATURE], undefined);
    assert.ok(!JSON.stringify(request.headers).includes(headers[SIGNATURE]), 'the SendGrid signature leaked into a header');
  });

  it('takes the verification key as PEM as well', async () => {
    const account = newAccount();
    const source = await createSource(relay, 'sendgrid', { publicKey: account.pem });
    const body = batch(event('open'));
    const headers = signed(account, body);
    assert.equal(sendgridAccepts(account, body, headers, account.pem), true);
    const id = accepted(await post(source.ingestUrl, body, headers));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'open');
  });

  it('refuses one changed byte, another key, a changed timestamp, and missing or malformed headers, as the library does', async () => {
    const account = newAccount();
    const source = await createSource(relay, 'sendgrid', { publicKey: account.publicKey });
    const body = batch(event('bounce'));
    const good = signed(account, body);

    const changed = tamper(body);
    assert.equal(sendgridAccepts(account, changed, good), false);
    assert.equal(refused(await post(source.ingestUrl, changed, good)), 'no signature matches');

    const stranger = signed(newAccount(), body);
    assert.equal(sendgridAccepts(account, body, stranger), false);
    assert.equal(refused(await post(source.ingestUrl, body, stranger)), 'no signature matches');

    const moved = { ...good, [TIMESTAMP]: String(Number(good[TIMESTAMP]) - 1) };
    assert.equal(sendgridAccepts(account, body, moved), false);
    assert.equal(refused(await post(source.ingestUrl, body, moved)), 'no signature matches');

    const { [SIGNATURE]: _s, ...noSignature } = good;
    assert.match(refused(await post(source.ingestUrl, body, noSignature)), /missing X-Twilio-Email-Event-Webhook-Signature header/);
    const { [TIMESTAMP]: _t, ...noTimestamp } = good;
    assert.match(refused(await post(source.ingestUrl, body, noTimestamp)), /missing X-Twilio-Email-Event-Webhook-Timestamp header/);
    assert.equal(refused(await post(source.ingestUrl, body, { ...good, [SIGNATURE]: 'bm90IGEgREVSIHNpZ25hdHVyZQ==' })), 'no signature matches');
    assert.match(refused(await post(source.ingestUrl, body, { ...good, [SIGNATURE]: 'not base64 !' })), /malformed X-Twilio-Email-Event-Webhook-Signature/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('checks the timestamp against a configured tolerance, in both directions', async () => {
    const account = newAccount();
    const source = await createSource(relay, 'sendgrid', { publicKey: account.publicKey, tolerance: 600 });
    const old = batch(event('dropped'));
    const oldHeaders = signed(account, old, String(Math.floor(Date.now() / 1000) - 3600));
    assert.equal(sendgridAccepts(account, old, oldHeaders), true);
    assert.match(refused(await post(source.ingestUrl, old, oldHeaders)), /timestamp is 360\d s old, outside the tolerance of 600 s/);
    const future = batch(event('dropped'));
    assert.match(refused(await post(source.ingestUrl, future, signed(account, future, String(Math.floor(Date.now() / 1000) + 3600)))), /in the future, outside the tolerance of 600 s/);
    accepted(await post(source.ingestUrl, old, signed(account, old)));
  });

  it('accepts a batch signed with an additionalPublicKeys entry (rotation)', async () => {
    const current = newAccount();
    const next = newAccount();
    const source = await createSource(relay, 'sendgrid', { publicKey: current.publicKey, additionalPublicKeys: [next.pem] });
    const one = batch(event('click'));
    accepted(await post(source.ingestUrl, one, signed(next, one)));
    const two = batch(event('click'));
    accepted(await post(source.ingestUrl, two, signed(current, two)));
  });

  it('drops a resent batch as a duplicate by sg_event_id, but not another batch that merely starts with the same event', async () => {
    const account = newAccount();
    const source = await createSource(relay, 'sendgrid', { publicKey: account.publicKey });

    const single = event('delivered');
    const first = accepted(await post(source.ingestUrl, batch(single), signed(account, batch(single))));
    // Same event, re-serialised without the CRLF and re-signed later: still the same sg_event_id.
    const resent = `[${single}]`;
    assert.equal(accepted(await post(source.ingestUrl, resent, signed(account, resent)), true), first);

    const a = event('processed');
    const b = event('delivered');
    const pair = accepted(await post(source.ingestUrl, batch(a, b), signed(account, batch(a, b))));
    assert.equal(accepted(await post(source.ingestUrl, batch(a, b), signed(account, batch(a, b))), true), pair);
    // A batch that starts with the same events but carries one more is new: taking it for a duplicate would lose `open`.
    const longer = batch(a, b, event('open'));
    assert.notEqual(accepted(await post(source.ingestUrl, longer, signed(account, longer))), pair);
    assert.equal((await messageIds(relay, source.appId)).length, 3);
  });

  it('refuses a source whose publicKey is not a P-256 public key', async () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    for (const publicKey of ['not a key', p384]) {
      const response = await relay.api('POST', '/ingest/api/v1/source', { name: 'sendgrid-bad-key', type: 'sendgrid', config: { publicKey } });
      assert.equal(response.status, 422, response.text);
      assert.deepEqual(response.body.detail[0].loc, ['body', 'config', 'publicKey']);
    }
  });
});
