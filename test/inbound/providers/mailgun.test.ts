import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, verifyDelivery, type IngestResponse } from '../support.js';

/**
 * No Mailgun library that signs or verifies webhooks is installed (mailgun.js has none either), so requests follow
 * Mailgun's "Securing Webhooks" scheme: hex HMAC-SHA256(signing key, timestamp + token), carried in the body.
 */
describe('inbound provider: mailgun', () => {
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

  const signingKey = () => randomBytes(16).toString('hex') + '-' + randomBytes(4).toString('hex');
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const hmacHex = (key: string, text: string) => createHmac('sha256', key).update(text).digest('hex');

  interface Signature {
    timestamp: string;
    token: string;
    signature: string;
    'parent-signature'?: string;
  }
  function signature(key: string, timestamp = nowSeconds(), token = randomBytes(25).toString('hex')): Signature {
    return { timestamp: String(timestamp), token, signature: hmacHex(key, `${timestamp}${token}`) };
  }

  /** A JSON webhook as Mailgun sends it, spaced unusually: hookrelay must not depend on re-serialising it. */
  const webhook = (sig: Signature, event = 'delivered', recipient = 'zoë@example.com') =>
    `{"signature": ${JSON.stringify(sig)},\n "event-data": {"event": "${event}", "id": "${randomBytes(8).toString('hex')}", "timestamp": ${Date.now() / 1000}, "recipient": "${recipient}", "tags": ["café ☕"]}}`;

  const json = { 'content-type': 'application/json' };

  it('accepts a signed JSON webhook, stores it as event-data.event and forwards it unchanged', async () => {
    const key = signingKey();
    const source = await createSource(relay, 'mailgun', { secret: key });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = webhook(signature(key), 'failed');
    const id = accepted(await post(source.ingestUrl, body, json));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'failed');

    const [request] = await receiver.waitFor(1);
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
  });

  it('refuses a changed timestamp or token, a wrong key, and a body without a signature', async () => {
    const key = signingKey();
    const source = await createSource(relay, 'mailgun', { secret: key });
    const sig = signature(key);

    const otherToken = { ...sig, token: sig.token.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) };
    assert.equal(refused(await post(source.ingestUrl, webhook(otherToken), json)), 'no signature matches');
    const otherTime = { ...sig, timestamp: String(Number(sig.timestamp) - 1) };
    assert.equal(refused(await post(source.ingestUrl, webhook(otherTime), json)), 'no signature matches');
    assert.equal(refused(await post(source.ingestUrl, webhook(signature('not-the-key')), json)), 'no signature matches');
    assert.match(refused(await post(source.ingestUrl, '{"event-data":{"event":"delivered"}}', json)), /missing signature/);
    assert.match(refused(await post(source.ingestUrl, webhook({ ...sig, timestamp: 'yesterday' }), json)), /malformed signature timestamp/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('event-data is not signed by Mailgun: a forged body reusing a received token is a duplicate and stores nothing', async () => {
    const key = signingKey();
    const source = await createSource(relay, 'mailgun', { secret: key });
    const sig = signature(key);
    const first = accepted(await post(source.ingestUrl, webhook(sig, 'delivered', 'real@example.com'), json));
    const forged = await post(source.ingestUrl, webhook(sig, 'complained', 'victim@example.com'), json);
    assert.equal(accepted(forged, true), first);
    assert.deepEqual(await messageIds(relay, source.appId), [first]);
    assert.equal((await getMessage(relay, source.appId, first)).eventType, 'delivered');
  });

  it('refuses a timestamp outside the tolerance: one day by default, configurable', async () => {
    const key = signingKey();
    const lenient = await createSource(relay, 'mailgun', { secret: key });
    // Mailgun retries for 8 hours: a 7-hour-old signature is still taken by default.
    accepted(await post(lenient.ingestUrl, webhook(signature(key, nowSeconds() - 7 * 3600)), json));
    assert.match(refused(await post(lenient.ingestUrl, webhook(signature(key, nowSeconds() - 2 * 86_400)), json)), /timestamp is 1728\d\d s old, outside the tolerance of 86400 s/);

    const strict = await createSource(relay, 'mailgun', { secret: key, tolerance: 300 });
    assert.match(refused(await post(strict.ingestUrl, webhook(signature(key, nowSeconds() - 600)), json)), /timestamp is 60\d s old, outside the tolerance of 300 s/);
    assert.match(refused(await post(strict.ingestUrl, webhook(signature(key, nowSeconds() + 600)), json)), /in the future, outside the tolerance of 300 s/);
  });

  it('accepts a request signed with an additionalSecrets entry (rotation), and a subaccount’s parent-signature', async () => {
    const current = signingKey();
    const next = signingKey();
    const source = await createSource(relay, 'mailgun', { secret: current, additionalSecrets: [next] });
    accepted(await post(source.ingestUrl, webhook(signature(next)), json));
    accepted(await post(source.ingestUrl, webhook(signature(current)), json));

    // A subaccount's event: `signature` under the subaccount's key, `parent-signature` under the primary's.
    const primary = signingKey();
    const parentSource = await createSource(relay, 'mailgun', { secret: primary });
    const sub = signature(signingKey());
    const withParent = { ...sub, 'parent-signature': hmacHex(primary, sub.timestamp + sub.token) };
    accepted(await post(parentSource.ingestUrl, webhook(withParent), json));
    assert.equal(refused(await post(parentSource.ingestUrl, webhook(signature(signingKey())), json)), 'no signature matches');
  });

  it('answers a redelivery with the same token as a duplicate of the first message', async () => {
    const key = signingKey();
    const source = await createSource(relay, 'mailgun', { secret: key });
    const body = webhook(signature(key));
    const first = accepted(await post(source.ingestUrl, body, json));
    assert.equal(accepted(await post(source.ingestUrl, body, json), true), first);
    assert.notEqual(accepted(await post(source.ingestUrl, webhook(signature(key)), json)), first);
  });

  it('legacy webhooks: accepts the signature as url-encoded form fields and as multipart/form-data fields', async () => {
    const key = signingKey();
    const source = await createSource(relay, 'mailgun', { secret: key });

    const sig = signature(key);
    const form = new URLSearchParams({ ...sig, event: 'bounced', recipient: 'zoë@example.com', 'message-headers': '[["Subject","Grüße ☕"]]' }).toString();
    const id = accepted(await post(source.ingestUrl, form, { 'content-type': 'application/x-www-form-urlencoded' }));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'bounced');
    refused(await post(source.ingestUrl, form.replace(sig.token, sig.token.slice(1) + '0'), { 'content-type': 'application/x-www-form-urlencoded' }));

    // Routes and legacy hooks with attachments post multipart/form-data; fetch builds the boundary itself.
    async function multipart(fields: Signature & Record<string, string>): Promise<IngestResponse> {
      const data = new FormData();
      for (const [name, value] of Object.entries(fields)) data.append(name, value);
      data.append('attachment-1', new Blob([randomBytes(64)], { type: 'application/octet-stream' }), 'report.bin');
      const response = await fetch(source.ingestUrl, { method: 'POST', body: data });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: JSON.parse(text), text };
    }
    const multi = await multipart({ ...signature(key), event: 'dropped', 'body-plain': 'Grüße\r\n--not-the-boundary\r\n' });
    assert.equal((await getMessage(relay, source.appId, accepted(multi))).eventType, 'dropped');
    assert.equal(refused(await multipart({ ...signature('not-the-key'), event: 'dropped' })), 'no signature matches');
  });
});
