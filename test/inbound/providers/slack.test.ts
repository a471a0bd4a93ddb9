import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { slackProvider } from '../../../src/inbound/providers/slack.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { waitUntil } from '../../helpers/wait.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * No Slack library is installed (`@slack/bolt` is not a devDependency), so requests are signed with node:crypto as
 * Slack documents it (hex HMAC-SHA256 of `v0:<timestamp>:<raw body>`), and the scheme is pinned by the worked
 * example on Slack's "Verifying requests from Slack" page.
 */
describe('inbound provider: slack', () => {
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

  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const sign = (secret: string, timestamp: number | string, body: string) => 'v0=' + createHmac('sha256', secret).update(`v0:${timestamp}:${body}`, 'utf8').digest('hex');
  const headers = (secret: string, body: string, timestamp: number = nowSeconds(), contentType = 'application/json') => ({
    'content-type': contentType,
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': sign(secret, timestamp, body),
    'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
  });
  const eventBody = (eventId = 'Ev' + randomUUID().slice(0, 8).toUpperCase(), text = 'hé <@U1> ☕ 𝄞') =>
    `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","team_id":"T1","api_app_id":"A1","event":{"type":"app_mention","user":"U2","text":"${text}","ts":"1515449522.000016"},` +
    `"type":"event_callback","event_id":"${eventId}","event_time":1515449522}`;

  it("matches Slack's published worked example (signing secret 8f74…, timestamp 1531420618)", () => {
    const body =
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner' +
      '&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
    const verifier = slackProvider.create(slackProvider.config.parse({ secret: '8f742231b10e8888abcd99yyyzzz85a5' }));
    const request = (signature: string) => ({
      method: 'POST',
      url: 'https://example.com/slack/commands',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': '1531420618', 'x-slack-signature': signature },
      body: Buffer.from(body),
    });
    const at = 1531420618 * 1000 + 30_000;
    assert.equal(verifier.verify(request('v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503'), at).kind, 'verified');
    assert.equal(verifier.verify(request('v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b504'), at).kind, 'rejected');
  });

  it('accepts an Events API callback, stores event.type as its event type and forwards without the signature', async () => {
    const secret = randomUUID().replace(/-/g, '');
    const source = await createSource(relay, 'slack', { secret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = eventBody();
    const sent = headers(secret, body);
    const id = accepted(await post(source.ingestUrl, body, sent));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'app_mention');

    const request = (await waitUntil('the forwarded delivery', () => receiver.received.find((r) => r.headers['x-hookrelay-source'] === source.id)))!;
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['x-hookrelay-event-type'], 'app_mention');
    assert.equal(request.headers['x-slack-request-timestamp'], sent['x-slack-request-timestamp']);
    assert.equal(request.headers['x-slack-signature'], undefined);
  });

  it('answers a signed url_verification with its challenge and stores nothing; an unsigned one is refused', async () => {
    const secret = randomUUID().replace(/-/g, '');
    const source = await createSource(relay, 'slack', { secret });
    const challenge = '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P';
    const body = `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"${challenge}","type":"url_verification"}`;

    const answer = await post(source.ingestUrl, body, headers(secret, body));
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(answer.body, { challenge });

    assert.match(refused(await post(source.ingestUrl, body, headers('not-the-secret', body))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json' })), /missing X-Slack-Signature/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('takes the event type of a form-encoded interactivity payload from its type', async () => {
    const secret = randomUUID().replace(/-/g, '');
    const source = await createSource(relay, 'slack', { secret });
    const body = new URLSearchParams({ payload: JSON.stringify({ type: 'block_actions', user: { id: 'U1' }, actions: [{ action_id: 'approve' }] }) }).toString();
    const id = accepted(await post(source.ingestUrl, body, headers(secret, body, nowSeconds(), 'application/x-www-form-urlencoded')));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'block_actions');
  });

  it('refuses a timestamp more than 5 minutes old or ahead, saying it is outside the tolerance, even when correctly signed', async () => {
    const secret = randomUUID().replace(/-/g, '');
    const source = await createSource(relay, 'slack', { secret });
    const body = eventBody();
    const old = refused(await post(source.ingestUrl, body, headers(secret, body, nowSeconds() - 301 - 5)));
    assert.match(old, /old, outside the tolerance of 300 s/);
    const future = refused(await post(source.ingestUrl, body, headers(secret, body, nowSeconds() + 400)));
    assert.match(future, /in the future, outside the tolerance of 300 s/);
    assert.match(refused(await post(source.ingestUrl, body, { ...headers(secret, body), 'x-slack-request-timestamp': 'yesterday' })), /not a unix time/);
    // Four minutes is inside Slack's window.
    accepted(await post(source.ingestUrl, body, headers(secret, body, nowSeconds() - 240)));
  });

  it('refuses a body with one byte changed and a wrong secret', async () => {
    const secret = randomUUID().replace(/-/g, '');
    const source = await createSource(relay, 'slack', { secret });
    const body = eventBody();
    assert.match(refused(await post(source.ingestUrl, tamper(body), headers(secret, body))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, headers('wrong-' + secret, body))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, { ...headers(secret, body), 'x-slack-signature': 'v1=abcd' })), /not a v0= signature/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('accepts a request signed with an additionalSecrets entry (rotation)', async () => {
    const oldSecret = randomUUID().replace(/-/g, '');
    const newSecret = randomUUID().replace(/-/g, '');
    const source = await createSource(relay, 'slack', { secret: newSecret, additionalSecrets: [oldSecret] });
    const body = eventBody();
    accepted(await post(source.ingestUrl, body, headers(oldSecret, body)));
  });

  it("answers Slack's retry of an event (same event_id, X-Slack-Retry-Num) as a duplicate of the first message", async () => {
    const secret = randomUUID().replace(/-/g, '');
    const source = await createSource(relay, 'slack', { secret });
    const body = eventBody('Ev0PV52K21');
    const id = accepted(await post(source.ingestUrl, body, headers(secret, body)));
    const retry = { ...headers(secret, body, nowSeconds() + 1), 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' };
    assert.equal(accepted(await post(source.ingestUrl, body, retry), true), id);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });
});
