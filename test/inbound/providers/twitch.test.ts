import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, createSource, getMessage, messageIds, post, refused, tamper } from '../support.js';

// No Twitch EventSub verifier is installed (@twurple/eventsub-http is not a dependency), so requests are signed per
// Twitch's "Verifying the event message" docs: `sha256=` + hex HMAC-SHA256 of message id + timestamp + raw body.
const subscription = (type = 'channel.follow', status = 'enabled') => ({
  id: randomUUID(),
  status,
  type,
  version: '2',
  cost: 0,
  condition: { broadcaster_user_id: '1337', moderator_user_id: '1337' },
  transport: { method: 'webhook', callback: 'https://example.com/webhooks/callback' },
  created_at: '2019-11-16T10:11:12.634234626Z',
});
const notificationBody = (type = 'channel.follow') =>
  JSON.stringify({ subscription: subscription(type), event: { user_id: randomBytes(4).readUInt32BE().toString(), user_login: 'awesome_user', broadcaster_user_id: '1337', followed_at: new Date().toISOString() } });

/** Twitch's timestamps are RFC 3339 with nanoseconds. */
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/(\.\d{3})Z$/, '$1234567Z');

function headers(secret: string, body: string, messageType = 'notification', id = randomUUID(), timestamp = rfc3339(Date.now()), subscriptionType = 'channel.follow'): Record<string, string> {
  return {
    'content-type': 'application/json',
    'twitch-eventsub-message-id': id,
    'twitch-eventsub-message-retry': '0',
    'twitch-eventsub-message-type': messageType,
    'twitch-eventsub-message-signature': 'sha256=' + createHmac('sha256', secret).update(id + timestamp + body).digest('hex'),
    'twitch-eventsub-message-timestamp': timestamp,
    'twitch-eventsub-subscription-type': subscriptionType,
    'twitch-eventsub-subscription-version': '2',
  };
}

describe('twitch provider', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await relay.close();
  });

  it('accepts a signed notification with subscription.type as the event type; refuses a changed byte, a wrong secret or a missing header', async () => {
    const secret = 'tw-secret-' + randomUUID();
    const source = await createSource(relay, 'twitch', { secret });
    const body = notificationBody();
    const id = accepted(await post(source.ingestUrl, body, headers(secret, body)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'channel.follow');

    const other = notificationBody();
    assert.match(refused(await post(source.ingestUrl, tamper(other), headers(secret, other))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, other, headers('tw-wrong-secret', other))), /no signature matches/);
    // The id and timestamp are signed too.
    const signed = headers(secret, other);
    assert.match(refused(await post(source.ingestUrl, other, { ...signed, 'twitch-eventsub-message-id': randomUUID() })), /no signature matches/);
    const { 'twitch-eventsub-message-signature': _, ...unsigned } = signed;
    assert.match(refused(await post(source.ingestUrl, other, unsigned)), /missing Twitch-Eventsub-Message-Signature header/);
    assert.match(refused(await post(source.ingestUrl, other, { ...signed, 'twitch-eventsub-message-timestamp': '1700000000' })), /malformed Twitch-Eventsub-Message-Timestamp/);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });

  it('refuses a timestamp more than 10 minutes old or ahead, naming which and the tolerance', async () => {
    const secret = 'tw-secret-' + randomUUID();
    const source = await createSource(relay, 'twitch', { secret });
    const body = notificationBody();
    const old = refused(await post(source.ingestUrl, body, headers(secret, body, 'notification', randomUUID(), rfc3339(Date.now() - 11 * 60_000))));
    assert.match(old, /old, outside the tolerance of 600 s/);
    const future = refused(await post(source.ingestUrl, body, headers(secret, body, 'notification', randomUUID(), rfc3339(Date.now() + 11 * 60_000))));
    assert.match(future, /future, outside the tolerance of 600 s/);
    // Nine minutes old is inside Twitch's window; an offset timestamp names the same instant.
    accepted(await post(source.ingestUrl, body, headers(secret, body, 'notification', randomUUID(), rfc3339(Date.now() - 9 * 60_000))));
    const offset = new Date(Date.now() + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, '.5+02:00');
    const later = notificationBody();
    accepted(await post(source.ingestUrl, later, headers(secret, later, 'notification', randomUUID(), offset)));
  });

  it('answers webhook_callback_verification with the raw challenge as text/plain once the signature checks, and stores nothing', async () => {
    const secret = 'tw-secret-' + randomUUID();
    const source = await createSource(relay, 'twitch', { secret });
    const challenge = 'pogchamp-kappa-' + randomUUID();
    const body = JSON.stringify({ challenge, subscription: subscription('channel.follow', 'webhook_callback_verification_pending') });
    const answer = await post(source.ingestUrl, body, headers(secret, body, 'webhook_callback_verification'));
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(answer.text, challenge);

    // A challenge that does not verify is not echoed: a forger cannot subscribe this URL.
    const forged = await post(source.ingestUrl, body, headers('tw-not-the-secret', body, 'webhook_callback_verification'));
    assert.match(refused(forged), /no signature matches/);
    assert.ok(!forged.text.includes(challenge));
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('stores a revocation as a message of event type revocation', async () => {
    const secret = 'tw-secret-' + randomUUID();
    const source = await createSource(relay, 'twitch', { secret });
    const body = JSON.stringify({ subscription: subscription('channel.follow', 'authorization_revoked') });
    const id = accepted(await post(source.ingestUrl, body, headers(secret, body, 'revocation')));
    const message = await getMessage(relay, source.appId, id);
    assert.equal(message.eventType, 'revocation');
    assert.equal(message.payload.subscription.status, 'authorization_revoked');
  });

  it('accepts a notification signed with one of additionalSecrets, and refuses a secret Twitch would not take', async () => {
    const [current, next] = ['tw-current-' + randomUUID(), 'tw-next-' + randomUUID()];
    const source = await createSource(relay, 'twitch', { secret: current, additionalSecrets: [next] });
    const body = notificationBody();
    accepted(await post(source.ingestUrl, body, headers(next, body)));
    refused(await post(source.ingestUrl, body, headers('tw-retired-secret', body)));

    const short = await relay.api('POST', '/ingest/api/v1/source', { name: 'tw', type: 'twitch', config: { secret: 'short' } });
    assert.equal(short.status, 422, short.text);
    assert.deepEqual(short.body.detail[0].loc, ['body', 'config', 'secret']);
  });

  it('drops a retried notification with the same message id', async () => {
    const secret = 'tw-secret-' + randomUUID();
    const source = await createSource(relay, 'twitch', { secret });
    const messageId = randomUUID();
    const body = notificationBody('stream.online');
    const first = accepted(await post(source.ingestUrl, body, headers(secret, body, 'notification', messageId, rfc3339(Date.now()), 'stream.online')));
    assert.equal((await getMessage(relay, source.appId, first)).eventType, 'stream.online');
    // Twitch resends with the same id and body, a new timestamp and signature.
    const retry = headers(secret, body, 'notification', messageId, rfc3339(Date.now() + 1000), 'stream.online');
    assert.equal(accepted(await post(source.ingestUrl, body, { ...retry, 'twitch-eventsub-message-retry': '1' }), true), first);
    assert.equal((await messageIds(relay, source.appId)).length, 1);
  });
});
