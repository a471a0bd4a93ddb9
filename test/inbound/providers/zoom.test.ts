import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * No Zoom library that signs or verifies webhooks is installed (Zoom's own is @zoom/rivet), so requests follow
 * Zoom's documented scheme: `x-zm-signature: v0=` + hex HMAC-SHA256(Secret Token, `v0:{timestamp}:{body}`), and
 * URL validation answered with `encryptedToken` = hex HMAC-SHA256(Secret Token, plainToken).
 */
describe('inbound provider: zoom', () => {
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

  const secretToken = () => randomBytes(16).toString('base64url');
  const nowSeconds = () => Math.floor(Date.now() / 1000);

  function signed(secret: string, body: string, timestamp = nowSeconds()): Record<string, string> {
    const hex = createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex');
    return {
      'content-type': 'application/json; charset=utf-8',
      'x-zm-request-timestamp': String(timestamp),
      'x-zm-signature': `v0=${hex}`,
      'x-zm-trackingid': 'Webhook_' + randomBytes(8).toString('hex'),
      'user-agent': 'Zoom Marketplace/1.0a',
    };
  }

  const meetingStarted = () =>
    `{"event":"meeting.started","payload":{"account_id":"AAAA","object":{"uuid":"${randomBytes(12).toString('base64')}","id":${Date.now()},"host_id":"h1","topic":"Réunion ☕ 𝄞","type":2,"duration":60.0}},"event_ts":${Date.now()}}`;

  it('accepts a signed event, stores it as its `event`, forwards x-zm-trackingid but not the signature', async () => {
    const secret = secretToken();
    const source = await createSource(relay, 'zoom', { secret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = meetingStarted();
    const headers = signed(secret, body);
    const id = accepted(await post(source.ingestUrl, body, headers));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'meeting.started');

    const [request] = await receiver.waitFor(1);
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['x-zm-trackingid'], headers['x-zm-trackingid']);
    assert.equal(request.headers['x-zm-signature'], undefined);
    assert.ok(!JSON.stringify(request.headers).includes(headers['x-zm-signature'].slice(3)), 'the Zoom signature leaked into a header');
  });

  it('refuses one changed byte, a wrong secret, a changed timestamp header, and missing or malformed headers', async () => {
    const secret = secretToken();
    const source = await createSource(relay, 'zoom', { secret });
    const body = meetingStarted();
    const good = signed(secret, body);

    assert.equal(refused(await post(source.ingestUrl, tamper(body), good)), 'no signature matches');
    assert.equal(refused(await post(source.ingestUrl, body, signed('not-the-secret', body))), 'no signature matches');
    // The timestamp is part of the signed content: moving it breaks the signature.
    assert.equal(refused(await post(source.ingestUrl, body, { ...good, 'x-zm-request-timestamp': String(nowSeconds() + 1) })), 'no signature matches');

    const { 'x-zm-signature': _s, ...noSignature } = good;
    assert.match(refused(await post(source.ingestUrl, body, noSignature)), /missing x-zm-signature header/);
    const { 'x-zm-request-timestamp': _t, ...noTimestamp } = good;
    assert.match(refused(await post(source.ingestUrl, body, noTimestamp)), /missing x-zm-request-timestamp header/);
    assert.match(refused(await post(source.ingestUrl, body, { ...good, 'x-zm-signature': good['x-zm-signature'].slice(3) })), /does not start with "v0="/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('checks the timestamp against a configured tolerance, in both directions; none by default', async () => {
    const secret = secretToken();
    const strict = await createSource(relay, 'zoom', { secret, tolerance: 300 });
    const body = meetingStarted();
    assert.match(refused(await post(strict.ingestUrl, body, signed(secret, body, nowSeconds() - 600))), /timestamp is 60\d s old, outside the tolerance of 300 s/);
    assert.match(refused(await post(strict.ingestUrl, body, signed(secret, body, nowSeconds() + 600))), /in the future, outside the tolerance of 300 s/);
    accepted(await post(strict.ingestUrl, body, signed(secret, body, nowSeconds() - 60)));

    // Zoom documents no window and retries up to 85 minutes later: by default an old, validly signed retry is taken.
    const lenient = await createSource(relay, 'zoom', { secret });
    accepted(await post(lenient.ingestUrl, body, signed(secret, body, nowSeconds() - 85 * 60)));
  });

  it('accepts a request signed with an additionalSecrets entry (rotation)', async () => {
    const current = secretToken();
    const next = secretToken();
    const source = await createSource(relay, 'zoom', { secret: current, additionalSecrets: [next] });
    const body = meetingStarted();
    accepted(await post(source.ingestUrl, body, signed(next, body)));
    const other = meetingStarted();
    accepted(await post(source.ingestUrl, other, signed(current, other)));
  });

  it('answers a retry of the same event (same body, new timestamp) as a duplicate of the first message', async () => {
    const secret = secretToken();
    const source = await createSource(relay, 'zoom', { secret });
    const body = meetingStarted();
    const first = accepted(await post(source.ingestUrl, body, signed(secret, body)));
    assert.equal(accepted(await post(source.ingestUrl, body, signed(secret, body, nowSeconds() - 300)), true), first);
    const again = await post(source.ingestUrl, body, signed(secret, body));
    assert.equal(accepted(again, true), first);
    assert.deepEqual(await messageIds(relay, source.appId), [first]);
  });

  it('answers endpoint.url_validation with plainToken and its HMAC under the secret that signed it, and stores nothing', async () => {
    const current = secretToken();
    const next = secretToken();
    const source = await createSource(relay, 'zoom', { secret: current, additionalSecrets: [next] });
    const plainToken = randomBytes(16).toString('base64url');
    const body = `{"payload":{"plainToken":"${plainToken}"},"event_ts":${Date.now()},"event":"endpoint.url_validation"}`;

    for (const secret of [current, next]) {
      const response = await post(source.ingestUrl, body, signed(secret, body));
      assert.equal(response.status, 200, response.text);
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(response.body, { plainToken, encryptedToken: createHmac('sha256', secret).update(plainToken).digest('hex') });
    }

    // The validation request is signed like any event: an unsigned or wrongly signed one gets no token back.
    const forged = await post(source.ingestUrl, body, signed('attacker', body));
    refused(forged);
    assert.ok(!forged.text.includes(plainToken));
    assert.match(refused(await post(source.ingestUrl, '{"event":"endpoint.url_validation","payload":{}}', signed(current, '{"event":"endpoint.url_validation","payload":{}}'))), /plainToken/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });
});
