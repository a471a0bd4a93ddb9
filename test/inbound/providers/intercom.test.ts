import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, createSource, getMessage, messageIds, post, refused, tamper } from '../support.js';

// Intercom's SDK (intercom-client, not installed here) has no webhook verifier; requests are signed per Intercom's
// docs: `X-Hub-Signature: sha1=` + hex HMAC-SHA1 of the raw body with the app's client secret.
const signature = (secret: string, body: string) => 'sha1=' + createHmac('sha1', secret).update(body).digest('hex');
const notification = (topic = 'conversation.user.created', id = 'notif_' + randomUUID()) =>
  JSON.stringify({
    type: 'notification_event',
    app_id: 'abc123',
    data: { type: 'notification_event_data', item: { type: 'conversation', id: String(randomBytes(4).readUInt32BE()) } },
    links: {},
    id,
    topic,
    delivery_status: 'pending',
    delivery_attempts: 1,
    delivered_at: 0,
    first_sent_at: Math.floor(Date.now() / 1000),
    created_at: Math.floor(Date.now() / 1000),
    self: null,
  });
const headers = (secret: string, body: string) => ({ 'content-type': 'application/json', 'x-hub-signature': signature(secret, body) });

describe('intercom provider', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await relay.close();
  });

  it('accepts a signed notification with its topic as the event type; refuses a changed byte, a wrong secret or SHA-256', async () => {
    const secret = 'ic-client-secret-' + randomUUID();
    const source = await createSource(relay, 'intercom', { secret });
    const body = notification();
    const id = accepted(await post(source.ingestUrl, body, headers(secret, body)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'conversation.user.created');

    const other = notification();
    assert.match(refused(await post(source.ingestUrl, tamper(other), headers(secret, other))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, other, headers('ic-wrong', other))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, other, { 'content-type': 'application/json' })), /missing X-Hub-Signature header/);
    const sha256 = 'sha256=' + createHmac('sha256', secret).update(other).digest('hex');
    assert.match(refused(await post(source.ingestUrl, other, { 'x-hub-signature': sha256 })), /malformed X-Hub-Signature header: expected sha1=/);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });

  it('accepts the signed ping Intercom sends when a webhook is set up, as a message of topic ping', async () => {
    const secret = 'ic-' + randomUUID();
    const source = await createSource(relay, 'intercom', { secret });
    const body = notification('ping');
    const id = accepted(await post(source.ingestUrl, body, headers(secret, body)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'ping');
  });

  it('accepts a notification signed with one of additionalSecrets', async () => {
    const [current, next] = ['ic-current-' + randomUUID(), 'ic-next-' + randomUUID()];
    const source = await createSource(relay, 'intercom', { secret: current, additionalSecrets: [next] });
    const body = notification();
    accepted(await post(source.ingestUrl, body, headers(next, body)));
    refused(await post(source.ingestUrl, body, headers('ic-retired', body)));
  });

  it('drops a redelivery of the same notification id, even when its delivery counters changed', async () => {
    const secret = 'ic-' + randomUUID();
    const source = await createSource(relay, 'intercom', { secret });
    const notificationId = 'notif_' + randomUUID();
    const body = notification('contact.created', notificationId);
    const first = accepted(await post(source.ingestUrl, body, headers(secret, body)));
    const retry = body.replace('"delivery_attempts":1', '"delivery_attempts":2');
    assert.notEqual(retry, body);
    assert.equal(accepted(await post(source.ingestUrl, retry, headers(secret, retry)), true), first);
    assert.equal((await messageIds(relay, source.appId)).length, 1);
  });
});
