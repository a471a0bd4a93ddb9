import { hmacValidator } from '@adyen/api-library';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, createSource, getMessage, messageIds, post, refused } from '../support.js';

// Every item is signed with @adyen/api-library's own hmacValidator.calculateHmac (the code Adyen's Node library
// verifies with), and checked with its validateHMAC before hookrelay sees it.
const validator = new hmacValidator();
const hexKey = () => randomBytes(64).toString('hex').toUpperCase();
const psp = () => String(randomBytes(8).readBigUInt64BE() % 10n ** 16n).padStart(16, '7');

interface Item {
  pspReference: string;
  originalReference?: string;
  merchantAccountCode: string;
  merchantReference: string;
  amount: { value: number; currency: string };
  eventCode: string;
  success: string;
  eventDate: string;
  paymentMethod: string;
  additionalData: Record<string, string>;
}

function item(fields: Partial<Item> = {}): Item {
  return {
    pspReference: psp(),
    merchantAccountCode: 'TestMerchant',
    merchantReference: 'order-' + randomBytes(4).toString('hex'),
    amount: { value: 1130, currency: 'EUR' },
    eventCode: 'AUTHORISATION',
    success: 'true',
    eventDate: '2024-05-01T10:00:00+02:00',
    paymentMethod: 'visa',
    additionalData: {},
    ...fields,
  };
}

/** Signs each item with the key (as Adyen does), returning the notification body Adyen posts. */
function notification(key: string, ...items: Item[]): string {
  for (const i of items) {
    i.additionalData.hmacSignature = validator.calculateHmac(i as any, key);
    assert.equal(validator.validateHMAC(i as any, key), true, 'the Adyen library accepts the item');
  }
  return JSON.stringify({ live: 'false', notificationItems: items.map((i) => ({ NotificationRequestItem: i })) });
}

const json = { 'content-type': 'application/json' };

describe('adyen provider', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await relay.close();
  });

  it('accepts a notification whose items the Adyen library signed, with eventCode as the event type', async () => {
    const key = hexKey();
    const source = await createSource(relay, 'adyen', { secret: key });
    const answer = await post(source.ingestUrl, notification(key, item()), json);
    const id = accepted(answer);
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'AUTHORISATION');
    // Adyen has accepted any 2xx since 2024; the JSON answer is not the legacy "[accepted]" body.
    assert.equal(answer.status, 200);

    // A modification carries originalReference, which is part of the signed string.
    const refund = item({ eventCode: 'REFUND', originalReference: psp(), amount: { value: 500, currency: 'EUR' } });
    const refundId = accepted(await post(source.ingestUrl, notification(key, refund), json));
    assert.equal((await getMessage(relay, source.appId, refundId)).eventType, 'REFUND');
  });

  it('refuses a changed signed field or signature, a wrong key, or a missing signature', async () => {
    const key = hexKey();
    const source = await createSource(relay, 'adyen', { secret: key });
    const body = notification(key, item({ merchantReference: 'order-abc', amount: { value: 1130, currency: 'EUR' } }));
    assert.match(refused(await post(source.ingestUrl, body.replace('"value":1130', '"value":1131'), json)), /no signature matches in notification item 0/);
    assert.match(refused(await post(source.ingestUrl, body.replace('order-abc', 'order-abd'), json)), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body.replace('"success":"true"', '"success":"fals"'), json)), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, notification(hexKey(), item()), json)), /no signature matches/);
    const signature = JSON.parse(body).notificationItems[0].NotificationRequestItem.additionalData.hmacSignature as string;
    const flipped = signature.slice(0, 5) + (signature[5] === 'A' ? 'B' : 'A') + signature.slice(6);
    assert.match(refused(await post(source.ingestUrl, body.replace(signature, flipped), json)), /no signature matches/);

    const unsigned = JSON.stringify({ live: 'false', notificationItems: [{ NotificationRequestItem: item() }] });
    assert.match(refused(await post(source.ingestUrl, unsigned, json)), /item 0 has no additionalData\.hmacSignature/);
    assert.match(refused(await post(source.ingestUrl, '{"live":"false","notificationItems":[]}', json)), /no notificationItems/);
    assert.match(refused(await post(source.ingestUrl, 'pspReference=1&eventCode=AUTHORISATION', { 'content-type': 'application/x-www-form-urlencoded' })), /no notificationItems/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('requires every item of a batch to verify', async () => {
    const key = hexKey();
    const source = await createSource(relay, 'adyen', { secret: key });
    const good = notification(key, item(), item({ eventCode: 'AUTHORISATION' }));
    accepted(await post(source.ingestUrl, good, json));

    const signed = item();
    const forged = item({ eventCode: 'REFUND' });
    notification(key, signed);
    notification(hexKey(), forged);
    const mixed = JSON.stringify({ live: 'false', notificationItems: [{ NotificationRequestItem: signed }, { NotificationRequestItem: forged }] });
    assert.match(refused(await post(source.ingestUrl, mixed, json)), /no signature matches in notification item 1/);
    assert.equal((await messageIds(relay, source.appId)).length, 1);
  });

  it('accepts items signed with a key from additionalSecrets, and refuses a key that is not hex', async () => {
    const [current, next] = [hexKey(), hexKey()];
    const source = await createSource(relay, 'adyen', { secret: current, additionalSecrets: [next] });
    accepted(await post(source.ingestUrl, notification(next, item()), json));
    refused(await post(source.ingestUrl, notification(hexKey(), item()), json));

    const bad = await relay.api('POST', '/ingest/api/v1/source', { name: 'adyen', type: 'adyen', config: { secret: 'not-a-hex-key' } });
    assert.equal(bad.status, 422, bad.text);
    assert.deepEqual(bad.body.detail[0].loc, ['body', 'config', 'secret']);
  });

  it('drops a resent notification (same pspReference and eventCode), but not a changed outcome', async () => {
    const key = hexKey();
    const source = await createSource(relay, 'adyen', { secret: key });
    const reference = psp();
    const failed = item({ pspReference: reference, success: 'false' });
    const first = accepted(await post(source.ingestUrl, notification(key, failed), json));
    // Adyen's retry: the same item, eventDate moved on.
    const resent = item({ pspReference: reference, success: 'false', merchantReference: failed.merchantReference, eventDate: '2024-05-01T10:05:00+02:00' });
    assert.equal(accepted(await post(source.ingestUrl, notification(key, resent), json), true), first);
    // The same pair with another outcome is news, not a duplicate.
    const succeeded = item({ pspReference: reference, success: 'true', merchantReference: failed.merchantReference });
    assert.notEqual(accepted(await post(source.ingestUrl, notification(key, succeeded), json)), first);
    assert.equal((await messageIds(relay, source.appId)).length, 2);
  });

  it('also checks basic auth when the source has a username and password', async () => {
    const key = hexKey();
    const source = await createSource(relay, 'adyen', { secret: key, username: 'adyen-ws', password: 'pw-' + key.slice(0, 12) });
    const auth = (user: string, password: string) => ({ ...json, authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64') });
    accepted(await post(source.ingestUrl, notification(key, item()), auth('adyen-ws', 'pw-' + key.slice(0, 12))));
    assert.match(refused(await post(source.ingestUrl, notification(key, item()), auth('adyen-ws', 'wrong'))), /wrong user name or password/);
    assert.match(refused(await post(source.ingestUrl, notification(key, item()), json)), /missing Basic authorization header/);
  });
});
