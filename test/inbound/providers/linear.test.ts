import { LinearWebhookClient } from '@linear/sdk/webhooks';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, addEndpoint, createSource, getMessage, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * Linear signs with no public signer: requests are signed with node:crypto as Linear documents (hex HMAC-SHA256
 * of the raw body) and each one is first checked with @linear/sdk's own LinearWebhookClient.verify.
 */
describe('inbound provider: linear', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver(() => ({ status: 204 }));
  });
  after(async () => {
    await relay.close();
    await receiver.close();
  });

  const sign = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('hex');

  /** An Issue.create payload as Linear sends it, with odd spacing and non-ASCII text (re-serialising would show). */
  const issueBody = (webhookTimestamp: number, title = 'Fix naïve café ☕ 𝄞') =>
    `{"action":"create","actor":{"id":"u1","name":"Zoë"},"createdAt":"2026-01-02T03:04:05.000Z","data":{"id":"${randomUUID()}","title":"${title}","priority":2.50},` +
    `"url":"https://linear.app/acme/issue/ENG-1","type":"Issue","organizationId":"org-1","webhookTimestamp":${webhookTimestamp},"webhookId":"wh-1"}`;

  function headers(signature: string, delivery = randomUUID(), timestamp = Date.now()): Record<string, string> {
    return {
      'content-type': 'application/json; charset=utf-8',
      'linear-signature': signature,
      'linear-delivery': delivery,
      'linear-event': 'Issue',
      'linear-timestamp': String(timestamp),
      'user-agent': 'Linear-Webhook',
    };
  }

  it('accepts a request @linear/sdk verifies, stores it as Issue.create and forwards its delivery headers, not its signature', async () => {
    const secret = 'lin_wh_' + randomUUID();
    const source = await createSource(relay, 'linear', { secret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = issueBody(Date.now());
    const signature = sign(secret, body);
    assert.equal(new LinearWebhookClient(secret).verify(Buffer.from(body), signature), true);

    const delivery = randomUUID();
    const id = accepted(await post(source.ingestUrl, body, headers(signature, delivery)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'Issue.create');

    const [request] = await receiver.waitFor(1);
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['linear-delivery'], delivery);
    assert.equal(request.headers['linear-event'], 'Issue');
    assert.equal(request.headers['linear-signature'], undefined);
    assert.ok(!JSON.stringify(request.headers).includes(signature), 'the Linear signature leaked into a header');
  });

  it('refuses a body with one byte changed, a wrong secret, and a missing or malformed signature', async () => {
    const secret = 'lin_wh_' + randomUUID();
    const source = await createSource(relay, 'linear', { secret });
    const body = issueBody(Date.now());

    const changed = tamper(body);
    assert.throws(() => new LinearWebhookClient(secret).verify(Buffer.from(changed), sign(secret, body)));
    assert.equal(refused(await post(source.ingestUrl, changed, headers(sign(secret, body)))), 'no signature matches');

    const wrong = sign('lin_wh_other', body);
    assert.throws(() => new LinearWebhookClient(secret).verify(Buffer.from(body), wrong));
    assert.equal(refused(await post(source.ingestUrl, body, headers(wrong))), 'no signature matches');

    const unsigned = headers('x');
    delete unsigned['linear-signature'];
    assert.match(refused(await post(source.ingestUrl, body, unsigned)), /missing Linear-Signature header/);
    assert.match(refused(await post(source.ingestUrl, body, headers('sha256=' + sign(secret, body)))), /malformed Linear-Signature/);
  });

  it('refuses a webhookTimestamp outside ±60 s, even when the unsigned Linear-Timestamp header is fresh', async () => {
    const secret = 'lin_wh_' + randomUUID();
    const source = await createSource(relay, 'linear', { secret });
    const client = new LinearWebhookClient(secret);

    const old = issueBody(Date.now() - 120_000);
    assert.throws(() => client.verify(Buffer.from(old), sign(secret, old)), /timestamp/);
    // A replay of an old signed body with a fresh header: the header is not covered by the signature.
    assert.match(refused(await post(source.ingestUrl, old, headers(sign(secret, old), randomUUID(), Date.now()))), /timestamp is 1[12]\d s old, outside the tolerance of 60 s/);

    const future = issueBody(Date.now() + 120_000);
    assert.throws(() => client.verify(Buffer.from(future), sign(secret, future)), /timestamp/);
    assert.match(refused(await post(source.ingestUrl, future, headers(sign(secret, future)))), /in the future, outside the tolerance of 60 s/);

    // Without webhookTimestamp in the body, the Linear-Timestamp header (milliseconds) is checked instead.
    const noField = '{"action":"remove","type":"Comment","data":{"id":"c1"}}';
    assert.match(refused(await post(source.ingestUrl, noField, headers(sign(secret, noField), randomUUID(), Date.now() - 300_000))), /outside the tolerance of 60 s/);
    const noTimestamp = headers(sign(secret, noField));
    delete noTimestamp['linear-timestamp'];
    assert.match(refused(await post(source.ingestUrl, noField, noTimestamp)), /missing timestamp/);
    const id = accepted(await post(source.ingestUrl, noField, headers(sign(secret, noField))));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'Comment.remove');
  });

  it('takes a configured tolerance: 120 s old is accepted with tolerance 300', async () => {
    const secret = 'lin_wh_' + randomUUID();
    const source = await createSource(relay, 'linear', { secret, tolerance: 300 });
    const body = issueBody(Date.now() - 120_000);
    accepted(await post(source.ingestUrl, body, headers(sign(secret, body))));
  });

  it('accepts a request signed with an additionalSecrets entry (rotation)', async () => {
    const current = 'lin_wh_' + randomUUID();
    const next = 'lin_wh_' + randomUUID();
    const source = await createSource(relay, 'linear', { secret: current, additionalSecrets: [next] });
    const body = issueBody(Date.now());
    assert.equal(new LinearWebhookClient(next).verify(Buffer.from(body), sign(next, body)), true);
    accepted(await post(source.ingestUrl, body, headers(sign(next, body))));
    const other = issueBody(Date.now());
    accepted(await post(source.ingestUrl, other, headers(sign(current, other))));
  });

  it('answers a redelivery with the same Linear-Delivery as a duplicate of the first message', async () => {
    const secret = 'lin_wh_' + randomUUID();
    const source = await createSource(relay, 'linear', { secret });
    const body = issueBody(Date.now());
    const delivery = randomUUID();
    const first = accepted(await post(source.ingestUrl, body, headers(sign(secret, body), delivery)));
    const again = accepted(await post(source.ingestUrl, body, headers(sign(secret, body), delivery)), true);
    assert.equal(again, first);
    // Another delivery of another event is a new message.
    const other = issueBody(Date.now());
    assert.notEqual(accepted(await post(source.ingestUrl, other, headers(sign(secret, other)))), first);
  });
});
