import { sign as githubSign } from '@octokit/webhooks-methods';
import assert from 'node:assert/strict';
import { verifyKey } from 'discord-interactions';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { accepted, createSource, getMessage, post, type CreatedSource } from './support.js';

const SECRET = 'a-github-secret';

/** A GitHub delivery of `body`, signed with the official helper. */
async function githubHeaders(body: string, delivery = randomUUID()): Promise<Record<string, string>> {
  return { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': delivery, 'x-hub-signature-256': await githubSign(SECRET, body) };
}

/**
 * Most provider requests are served by the ingest door before Fastify; a URL the router would normalise or decode, a
 * HEAD probe and requests during shutdown go to the Fastify route. Both must answer alike.
 */
describe('ingest door and ingest route answer alike', () => {
  let relay: TestRelay;
  let source: CreatedSource;
  let token: string;
  let origin: string;

  before(async () => {
    relay = await startRelay();
    source = await createSource(relay, 'github', { secret: SECRET, maxBodyBytes: 4096 });
    const url = new URL(source.ingestUrl);
    origin = url.origin;
    token = url.pathname.slice('/ingest/'.length);
  });
  after(() => relay.close());

  // The door takes the plain URL; a trailing slash or an escaped token character is left to the router.
  const urls = () => ({
    door: `${origin}/ingest/${token}`,
    trailingSlash: `${origin}/ingest/${token}/`,
    escaped: `${origin}/ingest/%${token.charCodeAt(0).toString(16).toUpperCase()}${token.slice(1)}`,
  });

  it('stores the same exact bytes and provider headers through either path, and dedupes across them', async () => {
    const delivery = randomUUID();
    const ids: string[] = [];
    for (const [path, url] of Object.entries(urls())) {
      const body = `{"action":"opened","path":"${path}","n":12345678901234567890,"x":1.50}`;
      const response = await post(url, body, await githubHeaders(body));
      const id = accepted(response);
      ids.push(id);
      const stored = (await relay.store.getMessage(source.appId, id))!;
      assert.equal(Buffer.from(stored.payload!).toString('utf8'), body, `${path}: the payload bytes`);
      assert.equal(stored.headers?.['content-type'], 'application/json', path);
      assert.equal(stored.headers?.['x-github-event'], 'issues', path);
      assert.equal((await getMessage(relay, source.appId, id)).eventType, 'issues.opened', path);
    }
    assert.equal(new Set(ids).size, 3);
    const body = '{"action":"closed"}';
    const headers = await githubHeaders(body, delivery);
    const first = accepted(await post(urls().door, body, headers));
    assert.equal(accepted(await post(urls().trailingSlash, body, headers), true), first, 'a repeat through the route is a duplicate of the door’s');
  });

  it('refuses alike: a bad signature, an unknown token, a declared body over the limit', async () => {
    const body = '{"action":"opened"}';
    const bad = { ...(await githubHeaders(body)), 'x-hub-signature-256': 'sha256=' + '0'.repeat(64) };
    const unknown = `${origin}/ingest/${'A'.repeat(token.length)}`;
    const answers = {
      badSignature: [await post(urls().door, body, bad), await post(urls().trailingSlash, body, bad)],
      unknown: [await post(unknown, body, await githubHeaders(body)), await post(`${unknown}/`, body, await githubHeaders(body))],
      tooLarge: [await post(urls().door, 'x'.repeat(5000), await githubHeaders('x'.repeat(5000))), await post(urls().escaped, 'x'.repeat(5000), await githubHeaders('x'.repeat(5000)))],
    };
    const expected = { badSignature: [401, 'verification_failed'], unknown: [404, 'not_found'], tooLarge: [413, 'payload_too_large'] } as const;
    for (const [what, [door, route]] of Object.entries(answers)) {
      const [status, code] = expected[what as keyof typeof expected];
      assert.equal(door.status, status, `${what} through the door: ${door.text}`);
      assert.equal(door.body.code, code, what);
      assert.deepEqual([route.status, route.body], [door.status, door.body], `${what}: the route answers as the door`);
    }
  });

  it('writes provider answers as the route does: a 204 without content headers, JSON declared as UTF-8', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
    const discord = new URL((await createSource(relay, 'discord', { publicKey: key })).ingestUrl);
    const signed = async (body: string) => {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const headers = { 'content-type': 'application/json', 'x-signature-ed25519': sign(null, Buffer.from(timestamp + body), privateKey).toString('hex'), 'x-signature-timestamp': timestamp };
      assert.equal(await verifyKey(body, headers['x-signature-ed25519'], timestamp, key), true, 'what Discord would send');
      return headers;
    };
    const ping = '{"version":1,"application_id":"11","type":0}';
    const pong = '{"type":1,"id":"1","application_id":"11","token":"t","version":1}';
    for (const url of [discord.href, `${discord.href}/`]) {
      const event = await post(url, ping, await signed(ping));
      assert.equal(event.status, 204, `${url}: ${event.text}`);
      assert.equal(event.headers.get('content-type'), null, url);
      assert.equal(event.headers.get('content-length'), null, url);
      const interaction = await post(url, pong, await signed(pong));
      assert.equal(interaction.status, 200, interaction.text);
      assert.equal(interaction.headers.get('content-type'), 'application/json; charset=utf-8', url);
      assert.equal(interaction.text, '{"type":1}');
    }
  });

  it('leaves HEAD probes, other methods and the source API to Fastify', async () => {
    assert.equal((await fetch(urls().door, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${origin}/ingest/${'A'.repeat(token.length)}`, { method: 'HEAD' })).status, 404);
    const deleted = await relay.api('DELETE', `/ingest/${token}`);
    assert.equal(deleted.status, 404, deleted.text);
    assert.match(deleted.body.detail, /no route DELETE/);
    const listed = await relay.api('GET', '/ingest/api/v1/source');
    assert.equal(listed.status, 200, listed.text);
  });
});
