import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hubspotProvider } from '../../../src/inbound/providers/hubspot.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { waitUntil } from '../../helpers/wait.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * No HubSpot library is installed (`@hubspot/api-client` is not a devDependency). The v3 scheme is pinned by the
 * test vector of HubSpot's own SDK (HubSpot/hubspot-api-python tests, test_get_signature__v3); other requests are
 * signed with node:crypto as HubSpot documents it: base64 HMAC-SHA256 of method + URI + body + timestamp (ms).
 */
describe('inbound provider: hubspot', () => {
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

  const clientSecret = () => randomUUID();
  const sign = (secret: string, method: string, uri: string, body: string, timestamp: number | string) =>
    createHmac('sha256', secret).update(method + uri + body + timestamp, 'utf8').digest('base64');
  const headers = (secret: string, uri: string, body: string, timestamp: number = Date.now(), method = 'POST') => ({
    'content-type': 'application/json',
    'x-hubspot-signature-v3': sign(secret, method, uri, body, timestamp),
    'x-hubspot-request-timestamp': String(timestamp),
  });
  let nextEventId = 4_100_000_000 + Math.floor(Math.random() * 1e6);
  /** A webhook batch as HubSpot sends it: an array of events; retries raise attemptNumber. */
  const batch = (eventIds: number[], attemptNumber = 0, type = 'contact.creation') =>
    JSON.stringify(
      eventIds.map((eventId, i) => ({
        eventId,
        subscriptionId: 5100001,
        portalId: 12345678,
        appId: 7100001,
        occurredAt: 1790000000000 + i,
        subscriptionType: type,
        attemptNumber,
        objectId: 901 + i,
        changeFlag: 'NEW',
        changeSource: 'FORM',
        note: 'Zoë ☕ 𝄞',
      })),
    );

  it("matches the v3 test vector of HubSpot's Python SDK", () => {
    const verifier = hubspotProvider.create(hubspotProvider.config.parse({ secret: 'yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy' }));
    const request = (signature: string) => ({
      method: 'POST',
      url: 'https://www.example.com/webhook_uri',
      headers: { 'x-hubspot-signature-v3': signature, 'x-hubspot-request-timestamp': '1693657560000' },
      body: Buffer.from("{'example_field':'example_value'}"),
    });
    const at = 1693657560000 + 10_000;
    assert.equal(verifier.verify(request('K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y='), at).kind, 'verified');
    assert.equal(verifier.verify(request('K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y='), at + 300_000).kind, 'rejected');
    assert.equal(verifier.verify(request('K36dawei4A+QBNolUOqo7s91KQDWQ5MXY/QufNYuk/Y='), at).kind, 'rejected');
  });

  it('accepts a signed batch, stores its subscriptionType as the event type and forwards it without the signature', async () => {
    const secret = clientSecret();
    const source = await createSource(relay, 'hubspot', { secret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = batch([nextEventId++, nextEventId++]);
    const sent = headers(secret, source.ingestUrl, body);
    const id = accepted(await post(source.ingestUrl, body, sent));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'contact.creation');

    const request = (await waitUntil('the forwarded delivery', () => receiver.received.find((r) => r.headers['x-hookrelay-source'] === source.id)))!;
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['x-hubspot-request-timestamp'], sent['x-hubspot-request-timestamp']);
    assert.equal(request.headers['x-hubspot-signature-v3'], undefined);
  });

  it('signs the method and the full URI: a POST signature does not verify a PUT; the publicUrl with the decoded query does', async () => {
    const secret = clientSecret();
    const publicUrl = 'https://crm.example.com/hooks/hubspot';
    const source = await createSource(relay, 'hubspot', { secret, publicUrl });
    const body = batch([nextEventId++]);
    const now = Date.now();

    // HubSpot decodes %3A, %2C, … in the URI before signing; the query is the one of the actual request.
    const query = '?portal=12345678&fields=a%3Ab%2Cc&q=x%20y';
    const decoded = `${publicUrl}?portal=12345678&fields=a:b,c&q=x%20y`;
    accepted(await post(source.ingestUrl + query, body, headers(secret, decoded, body, now)));

    const put = batch([nextEventId++]);
    assert.match(refused(await post(source.ingestUrl, put, headers(secret, publicUrl, put, now), 'PUT')), /no signature matches/);
    accepted(await post(source.ingestUrl, put, headers(secret, publicUrl, put, now, 'PUT'), 'PUT'));
  });

  it('refuses a timestamp more than 5 minutes off, saying it is outside the tolerance', async () => {
    const secret = clientSecret();
    const source = await createSource(relay, 'hubspot', { secret });
    const body = batch([nextEventId++]);
    const old = refused(await post(source.ingestUrl, body, headers(secret, source.ingestUrl, body, Date.now() - 6 * 60_000)));
    assert.match(old, /old, outside the tolerance of 300 s/);
    const future = refused(await post(source.ingestUrl, body, headers(secret, source.ingestUrl, body, Date.now() + 6 * 60_000)));
    assert.match(future, /in the future, outside the tolerance of 300 s/);
    // Seconds instead of milliseconds read as 1970: refused as old rather than misread.
    const seconds = Math.floor(Date.now() / 1000);
    assert.match(refused(await post(source.ingestUrl, body, headers(secret, source.ingestUrl, body, seconds))), /old, outside the tolerance/);
  });

  it('refuses a body with one byte changed, a wrong secret and missing headers', async () => {
    const secret = clientSecret();
    const source = await createSource(relay, 'hubspot', { secret });
    const body = batch([nextEventId++]);
    const sent = headers(secret, source.ingestUrl, body);
    assert.match(refused(await post(source.ingestUrl, tamper(body), sent)), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, headers(clientSecret(), source.ingestUrl, body))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'x-hubspot-signature': 'abc' })), /missing X-HubSpot-Signature-v3/);
    const { 'x-hubspot-request-timestamp': _, ...noTimestamp } = sent;
    assert.match(refused(await post(source.ingestUrl, body, noTimestamp)), /missing X-HubSpot-Request-Timestamp/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('accepts a request signed with an additionalSecrets entry (rotation)', async () => {
    const oldSecret = clientSecret();
    const newSecret = clientSecret();
    const source = await createSource(relay, 'hubspot', { secret: newSecret, additionalSecrets: [oldSecret] });
    const body = batch([nextEventId++]);
    accepted(await post(source.ingestUrl, body, headers(oldSecret, source.ingestUrl, body)));
  });

  it('answers a retry of the same events (higher attemptNumber, new signature) as a duplicate of the first message', async () => {
    const secret = clientSecret();
    const source = await createSource(relay, 'hubspot', { secret });
    const ids = [nextEventId++, nextEventId++];
    const first = batch(ids, 0);
    const id = accepted(await post(source.ingestUrl, first, headers(secret, source.ingestUrl, first)));
    const retry = batch(ids, 1);
    assert.notEqual(retry, first);
    assert.equal(accepted(await post(source.ingestUrl, retry, headers(secret, source.ingestUrl, retry, Date.now() + 1000)), true), id);
    // Another event is another message.
    const other = batch([nextEventId++]);
    const otherId = accepted(await post(source.ingestUrl, other, headers(secret, source.ingestUrl, other)));
    assert.deepEqual((await messageIds(relay, source.appId)).sort(), [id, otherId].sort());
  });
});
