import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, createSource, getMessage, messageIds, post, refused, tamper } from '../support.js';

// No Atlassian library signs or verifies Bitbucket webhooks, so requests are signed per Bitbucket's documented scheme:
// `X-Hub-Signature: sha256=` + hex HMAC-SHA256 of the raw body with the webhook secret.
const signature = (secret: string, body: string) => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
const pushBody = () => JSON.stringify({ push: { changes: [{ new: { name: 'main', type: 'branch' } }] }, repository: { full_name: 'team/repo', uuid: `{${randomUUID()}}` } });

function cloudHeaders(secret: string, body: string, requestUuid = randomUUID()): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-event-key': 'repo:push',
    'x-request-uuid': requestUuid,
    'x-hook-uuid': randomUUID(),
    'x-attempt-number': '1',
    'x-hub-signature': signature(secret, body),
  };
}

describe('bitbucket provider', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await relay.close();
  });

  it('accepts a signed request with X-Event-Key as the event type, and refuses a changed byte, a wrong secret or no signature', async () => {
    const secret = 'bb-' + randomUUID();
    const source = await createSource(relay, 'bitbucket', { secret });
    const body = pushBody();
    const id = accepted(await post(source.ingestUrl, body, cloudHeaders(secret, body)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'repo.push', 'the : of repo:push becomes a . so endpoints can filter on it');

    const other = pushBody();
    assert.match(refused(await post(source.ingestUrl, tamper(other), cloudHeaders(secret, other))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, other, cloudHeaders('bb-wrong', other))), /no signature matches/);
    const { 'x-hub-signature': _, ...unsigned } = cloudHeaders(secret, other);
    assert.match(refused(await post(source.ingestUrl, other, unsigned)), /missing X-Hub-Signature header/);
    // GitHub's SHA-1 form under the same header name is not Bitbucket's scheme.
    const sha1 = 'sha1=' + createHmac('sha1', secret).update(other).digest('hex');
    assert.match(refused(await post(source.ingestUrl, other, { ...unsigned, 'x-hub-signature': sha1 })), /malformed X-Hub-Signature header/);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });

  it('accepts a request signed with one of additionalSecrets', async () => {
    const [current, next] = ['bb-current-' + randomUUID(), 'bb-next-' + randomUUID()];
    const source = await createSource(relay, 'bitbucket', { secret: current, additionalSecrets: [next] });
    for (const secret of [current, next]) {
      const body = pushBody();
      accepted(await post(source.ingestUrl, body, cloudHeaders(secret, body)));
    }
    const body = pushBody();
    refused(await post(source.ingestUrl, body, cloudHeaders('bb-retired', body)));
  });

  it('drops a second delivery with the same X-Request-UUID (Cloud) or X-Request-Id (Data Center)', async () => {
    const secret = 'bb-' + randomUUID();
    const source = await createSource(relay, 'bitbucket', { secret });
    const requestUuid = randomUUID();
    const body = pushBody();
    const first = accepted(await post(source.ingestUrl, body, cloudHeaders(secret, body, requestUuid)));
    // Same delivery id, different bytes: dedupe goes by the id, not by the body.
    const again = pushBody();
    assert.equal(accepted(await post(source.ingestUrl, again, cloudHeaders(secret, again, requestUuid)), true), first);

    const requestId = randomUUID();
    const dc = (b: string) => ({ 'content-type': 'application/json; charset=utf-8', 'x-event-key': 'repo:refs_changed', 'x-request-id': requestId, 'x-hub-signature': signature(secret, b) });
    const dcBody = pushBody();
    const second = accepted(await post(source.ingestUrl, dcBody, dc(dcBody)));
    assert.equal((await getMessage(relay, source.appId, second)).eventType, 'repo.refs_changed');
    const dcAgain = pushBody();
    assert.equal(accepted(await post(source.ingestUrl, dcAgain, dc(dcAgain)), true), second);
    assert.equal((await messageIds(relay, source.appId)).length, 2);
  });
});
