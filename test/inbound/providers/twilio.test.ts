import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import twilio from 'twilio';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { waitUntil } from '../../helpers/wait.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * Requests are signed with the official `twilio` package (getExpectedTwilioSignature, getExpectedBodyHash) and each
 * one is first checked with its own validateRequest / validateRequestWithBody, so hookrelay is held to exactly what
 * twilio-node accepts.
 */
describe('inbound provider: twilio', () => {
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

  const authToken = () => randomBytes(16).toString('hex');
  const FORM = 'application/x-www-form-urlencoded';

  /** An incoming-SMS webhook's parameters, with a repeated key and characters form encoding must keep. */
  const smsParams = (body = 'Привет ☕ 𝄞 & = + 100%') => ({
    AccountSid: 'AC' + randomBytes(16).toString('hex'),
    MessageSid: 'SM' + randomBytes(16).toString('hex'),
    From: '+14155550100',
    To: '+14155550199',
    Body: body,
    NumMedia: '2',
    MediaUrl: ['https://api.twilio.com/m/2', 'https://api.twilio.com/m/1'],
  });

  function formOf(params: Record<string, string | string[]>): string {
    const form = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) for (const v of Array.isArray(value) ? value : [value]) form.append(key, v);
    return form.toString();
  }

  it('accepts a form-encoded webhook signed by twilio-node and forwards its idempotency token but not its signature', async () => {
    const token = authToken();
    const source = await createSource(relay, 'twilio', { secret: token });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const params = smsParams();
    const signature = twilio.getExpectedTwilioSignature(token, source.ingestUrl, params);
    assert.equal(twilio.validateRequest(token, signature, source.ingestUrl, params), true);

    const body = formOf(params);
    const idempotency = randomUUID();
    const id = accepted(await post(source.ingestUrl, body, { 'content-type': FORM, 'x-twilio-signature': signature, 'i-twilio-idempotency-token': idempotency }));
    // Twilio names no event type: the message takes the source type.
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'twilio');

    const request = (await waitUntil('the forwarded delivery', () => receiver.received.find((r) => r.headers['x-hookrelay-source'] === source.id)))!;
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['i-twilio-idempotency-token'], idempotency);
    assert.equal(request.headers['x-twilio-signature'], undefined);
  });

  it('accepts a JSON body covered by bodySHA256 and refuses it when one byte of the body changes', async () => {
    const token = authToken();
    const source = await createSource(relay, 'twilio', { secret: token });
    const body = `{"specversion":"1.0","type":"com.twilio.messaging.message.delivered","data":{"to":"+14155550199","note":"naïve ☕ 𝄞","price":1.50}}`;
    const url = `${source.ingestUrl}?bodySHA256=${twilio.getExpectedBodyHash(body)}`;
    const signature = twilio.getExpectedTwilioSignature(token, url, {});
    assert.equal(twilio.validateRequestWithBody(token, signature, url, body), true);

    accepted(await post(url, body, { 'content-type': 'application/json', 'x-twilio-signature': signature }));
    assert.equal(twilio.validateRequestWithBody(token, signature, url, tamper(body)), false);
    assert.match(refused(await post(url, tamper(body), { 'content-type': 'application/json', 'x-twilio-signature': signature })), /does not match the bodySHA256/);
  });

  it('refuses a JSON body without a bodySHA256 query parameter (its bytes would not be signed)', async () => {
    const token = authToken();
    const source = await createSource(relay, 'twilio', { secret: token });
    const signature = twilio.getExpectedTwilioSignature(token, source.ingestUrl, {});
    assert.match(refused(await post(source.ingestUrl, '{"a":1}', { 'content-type': 'application/json', 'x-twilio-signature': signature })), /bodySHA256/);
  });

  it("verifies against the source's publicUrl, with and without the default port, as twilio-node does", async () => {
    const token = authToken();
    const publicUrl = 'https://hooks.example.com/twilio/sms';
    const source = await createSource(relay, 'twilio', { secret: token, publicUrl });
    // Twilio sometimes signs with the explicit :443; twilio-node accepts both forms.
    const params = smsParams('port');
    const withPort = twilio.getExpectedTwilioSignature(token, 'https://hooks.example.com:443/twilio/sms', params);
    assert.equal(twilio.validateRequest(token, withPort, publicUrl, params), true);
    accepted(await post(source.ingestUrl, formOf(params), { 'content-type': FORM, 'x-twilio-signature': withPort }));
    const other = smsParams('no port');
    const withoutPort = twilio.getExpectedTwilioSignature(token, publicUrl, other);
    assert.equal(twilio.validateRequest(token, withoutPort, 'https://hooks.example.com:443/twilio/sms', other), true);
    accepted(await post(source.ingestUrl, formOf(other), { 'content-type': FORM, 'x-twilio-signature': withoutPort }));

    // The query of the request Twilio made still counts behind the publicUrl (bodySHA256 differs per request).
    const json = '{"event":"status","note":"☕"}';
    const query = `?bodySHA256=${twilio.getExpectedBodyHash(json)}`;
    const jsonSignature = twilio.getExpectedTwilioSignature(token, publicUrl + query, {});
    assert.equal(twilio.validateRequestWithBody(token, jsonSignature, publicUrl + query, json), true);
    accepted(await post(source.ingestUrl + query, json, { 'content-type': 'application/json', 'x-twilio-signature': jsonSignature }));

    // Signed for the URL hookrelay listens on, which is not the one configured: refused.
    const local = twilio.getExpectedTwilioSignature(token, source.ingestUrl, params);
    assert.match(refused(await post(source.ingestUrl, formOf(params), { 'content-type': FORM, 'x-twilio-signature': local })), /no signature matches/);
  });

  it('refuses a form with one byte changed, a wrong auth token and a missing signature', async () => {
    const token = authToken();
    const source = await createSource(relay, 'twilio', { secret: token });
    const params = smsParams('hello there');
    const body = formOf(params);
    const signature = twilio.getExpectedTwilioSignature(token, source.ingestUrl, params);
    const changed = body.replace('hello', 'hellp');
    assert.equal(changed.length, body.length);
    assert.match(refused(await post(source.ingestUrl, changed, { 'content-type': FORM, 'x-twilio-signature': signature })), /no signature matches/);
    const wrong = twilio.getExpectedTwilioSignature(authToken(), source.ingestUrl, params);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': FORM, 'x-twilio-signature': wrong })), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': FORM })), /missing X-Twilio-Signature/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('accepts a webhook signed with the secondary auth token in additionalSecrets (rotation)', async () => {
    const primary = authToken();
    const secondary = authToken();
    const source = await createSource(relay, 'twilio', { secret: primary, additionalSecrets: [secondary] });
    const params = smsParams();
    const signature = twilio.getExpectedTwilioSignature(secondary, source.ingestUrl, params);
    assert.equal(twilio.validateRequest(secondary, signature, source.ingestUrl, params), true);
    accepted(await post(source.ingestUrl, formOf(params), { 'content-type': FORM, 'x-twilio-signature': signature }));
  });

  it('answers a retry with the same I-Twilio-Idempotency-Token as a duplicate of the first message', async () => {
    const token = authToken();
    const source = await createSource(relay, 'twilio', { secret: token });
    const idempotency = randomUUID();
    const send = (params: Record<string, string | string[]>) =>
      post(source.ingestUrl, formOf(params), {
        'content-type': FORM,
        'x-twilio-signature': twilio.getExpectedTwilioSignature(token, source.ingestUrl, params),
        'i-twilio-idempotency-token': idempotency,
      });
    const id = accepted(await send(smsParams('first')));
    assert.equal(accepted(await send(smsParams('first')), true), id);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });
});
