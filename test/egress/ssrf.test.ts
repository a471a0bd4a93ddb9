import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateSecret } from '../../src/signing/standard-webhooks.js';
import type { EndpointInput } from '../../src/store/store.js';
import { rejectsWith } from '../api/support.js';
import { runCli } from '../process/child.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { listenOn, startDnsServer, type DnsServer } from './support.js';

/**
 * SSRF protection with real sockets: receivers on loopback (which stands for "inside"), a real DNS server on
 * loopback that hookrelay is pointed at with --dns-servers, and hookrelay WITHOUT the loopback allow-list the other
 * suites get, unless a test says otherwise.
 */

const SETTING = 'allow it with HOOKRELAY_ALLOW_NETWORKS / --allow-networks';
const STRICT = { allowNetworks: '' };

/** Names the DNS server knows; `rebind.test` answers 127.0.0.2 first and 127.0.0.1 from then on. */
function zone(name: string, type: 'A' | 'AAAA', n: number): string[] | null {
  const a = (...addresses: string[]) => (type === 'A' ? addresses : []);
  const aaaa = (...addresses: string[]) => (type === 'AAAA' ? addresses : []);
  switch (name) {
    case 'loopback.test':
      return a('127.0.0.1');
    case 'metadata.test':
      return a('169.254.169.254');
    case 'v6-loopback.test':
      return aaaa('::1');
    case 'mapped.test':
      return aaaa('::ffff:127.0.0.1');
    case 'rebind.test':
      return a(n === 0 ? '127.0.0.2' : '127.0.0.1');
    case 'mixed.test':
      return a('127.0.0.1', '127.0.0.2');
    default:
      return null;
  }
}

async function attemptsOf(relay: TestRelay, appId: string, endpointId: string) {
  return (await relay.svix.messageAttempt.listByEndpoint(appId, endpointId)).data;
}

/** Waits until the delivery of `msgId` to `endpointId` is parked (status 2: no attempt follows) and returns its attempts. */
async function parked(relay: TestRelay, appId: string, msgId: string, endpointId: string) {
  await waitUntil(`the delivery to ${endpointId} to be parked`, async () => {
    const destinations = await relay.svix.messageAttempt.listAttemptedDestinations(appId, msgId);
    return destinations.data.find((d) => d.id === endpointId)?.status === 2;
  });
  return attemptsOf(relay, appId, endpointId);
}

async function endpoint(relay: TestRelay, appId: string, url: string): Promise<string> {
  const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url });
  assert.equal(created.status, 201, created.text);
  return created.body.id;
}

/** An endpoint stored as it is, past the API's check: one saved before the allow-list was tightened. */
async function storedEndpoint(relay: TestRelay, appId: string, url: string): Promise<string> {
  const input: EndpointInput = { uid: null, url, description: '', version: 1, filterTypes: null, channels: null, filter: null, headers: {}, disabled: false, rateLimit: null, ordering: 'parallel', maxInFlight: 10, metadata: {}, destination: null };
  return (await relay.store.createEndpoint(appId, input, generateSecret(), Date.now())).id;
}

describe('SSRF protection of outbound deliveries', () => {
  let dns: DnsServer;
  let relay: TestRelay;
  let inside: Receiver;
  let port: number;

  before(async () => {
    dns = await startDnsServer(zone);
    inside = await startReceiver();
    port = Number(new URL(inside.url).port);
    relay = await startRelay({ ...STRICT, dnsServers: dns.address });
  });

  after(async () => {
    await relay?.close();
    await inside?.close();
    await dns?.close();
  });

  it('refuses internal IP literals in every spelling (and localhost) when an endpoint is saved: 422 naming the setting', async () => {
    const app = await relay.svix.application.create({ name: 'literals' });
    const urls: [string, string][] = [
      [`http://127.0.0.1:${port}/webhook`, `refused: 127.0.0.1 is a loopback address; ${SETTING}`],
      [`http://2130706433:${port}/webhook`, `refused: 127.0.0.1 is a loopback address; ${SETTING}`],
      [`http://0x7f.1:${port}/webhook`, `refused: 127.0.0.1 is a loopback address; ${SETTING}`],
      [`http://0177.0.0.1:${port}/webhook`, `refused: 127.0.0.1 is a loopback address; ${SETTING}`],
      [`http://[::1]:${port}/webhook`, `refused: ::1 is a loopback address; ${SETTING}`],
      [`http://[::ffff:127.0.0.1]:${port}/webhook`, `refused: ::ffff:7f00:1 is a loopback address, as it carries 127.0.0.1; ${SETTING}`],
      ['http://169.254.169.254/latest/meta-data/', `refused: 169.254.169.254 is a cloud metadata address; ${SETTING}`],
      ['http://[fd00:ec2::254]/latest/meta-data/', `refused: fd00:ec2::254 is a cloud metadata address; ${SETTING}`],
      ['https://10.0.0.5/hook', `refused: 10.0.0.5 is a private address; ${SETTING}`],
      ['https://100.64.0.1/hook', `refused: 100.64.0.1 is a shared (CGNAT) address; ${SETTING}`],
      ['https://[fe80::1]/hook', `refused: fe80::1 is a link-local address; ${SETTING}`],
      ['http://0.0.0.0/hook', `refused: 0.0.0.0 is an unspecified address; ${SETTING}`],
      ['http://224.0.0.1/hook', `refused: 224.0.0.1 is a multicast address; ${SETTING}`],
      [`http://localhost:${port}/webhook`, `refused: localhost is a loopback host name; ${SETTING}`],
    ];
    for (const [url, msg] of urls) {
      const response = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { url });
      assert.equal(response.status, 422, `${url}: ${response.text}`);
      assert.deepEqual(response.body.detail, [{ loc: ['body', 'url'], msg, type: 'value_error' }], url);
    }
    // The same through the svix SDK, which reports the 422 as a validation error.
    const viaSdk = await rejectsWith(relay.svix.endpoint.create(app.id, { url: 'http://192.168.1.1/hook' }), 422);
    assert.equal(viaSdk.detail[0].msg, `refused: 192.168.1.1 is a private address; ${SETTING}`);
    // Moving an existing endpoint inside is refused too, and changes nothing.
    const id = await endpoint(relay, app.id, 'https://hooks.example.com/in');
    const moved = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${id}`, { url: 'http://169.254.169.254/', secret: null });
    assert.equal(moved.status, 422, moved.text);
    const unchanged = await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${id}`);
    assert.equal(unchanged.body.url, 'https://hooks.example.com/in');
    assert.equal((await relay.api('GET', `/api/v1/app/${app.id}/endpoint`)).body.data.length, 1);
    // A source's forwarding endpoints and a Temporal destination's address are checked alike.
    const source = await relay.api('POST', '/ingest/api/v1/source', { name: 'gh', type: 'github', config: { secret: 'a-github-webhook-secret' } });
    assert.equal(source.status, 201, source.text);
    const forward = await relay.api('POST', `/ingest/api/v1/source/${source.body.id}/endpoint`, { url: `http://[::1]:${port}/` });
    assert.equal(forward.status, 422, forward.text);
    assert.deepEqual(forward.body.detail[0].loc, ['body', 'url']);
    const temporal = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: { type: 'temporal', address: '2130706433:7233', workflowType: 'W', taskQueue: 'q' } });
    assert.equal(temporal.status, 422, temporal.text);
    assert.deepEqual(temporal.body.detail, [{ loc: ['body', 'destination', 'address'], msg: `refused: 127.0.0.1 is a loopback address; ${SETTING}`, type: 'value_error' }]);
  });

  it('saves a host name without resolving it', async () => {
    const app = await relay.svix.application.create({ name: 'names' });
    const asked = dns.queries.length;
    await endpoint(relay, app.id, `http://loopback.test:${port}/webhook`);
    assert.equal(dns.queries.length, asked, 'the API looked the name up');
  });

  it('refuses a name that resolves to 127.0.0.1, 169.254.169.254, ::1 or ::ffff:127.0.0.1 when it connects: one attempt, parked, the error names the setting', async () => {
    const app = await relay.svix.application.create({ name: 'resolved' });
    const targets: [string, string][] = [
      [`http://loopback.test:${port}/webhook`, `refused: loopback.test resolves to 127.0.0.1 (a loopback address); ${SETTING}`],
      ['http://metadata.test/latest/meta-data/', `refused: metadata.test resolves to 169.254.169.254 (a cloud metadata address); ${SETTING}`],
      [`http://v6-loopback.test:${port}/webhook`, `refused: v6-loopback.test resolves to ::1 (a loopback address); ${SETTING}`],
      [`http://mapped.test:${port}/webhook`, `refused: mapped.test resolves to ::ffff:127.0.0.1 (a loopback address, as it carries 127.0.0.1); ${SETTING}`],
    ];
    const ids = await Promise.all(targets.map(([url]) => endpoint(relay, app.id, url)));
    const msg = await relay.svix.message.create(app.id, { eventType: 'ssrf.probe', payload: { steal: 'credentials' } });
    for (const [i, [url, error]] of targets.entries()) {
      const attempts = await parked(relay, app.id, msg.id, ids[i]);
      assert.equal(attempts.length, 1, `${url}: a refusal is not retried`);
      assert.equal(attempts[0].responseStatusCode, 0);
      assert.equal(attempts[0].status, 2);
      assert.equal(attempts[0].response, error);
    }
    assert.ok(dns.queries.some((q) => q.name === 'metadata.test'), 'the name was resolved through --dns-servers');
    assert.equal(inside.received.length, 0, 'a refused delivery reached the receiver');
  });

  it('refuses IP-literal URLs saved before the policy when it connects (numeric spellings, IPv4-mapped IPv6); allow-listed, the same URLs are delivered', async () => {
    const urls = [`http://2130706433:${port}/a`, `http://0x7f.1:${port}/b`, `http://0177.0.0.1:${port}/c`, `http://[::ffff:127.0.0.1]:${port}/d`, `http://[::1]:${port}/e`];
    const app = await relay.svix.application.create({ name: 'stored-literals' });
    const ids = await Promise.all(urls.map((url) => storedEndpoint(relay, app.id, url)));
    const msg = await relay.svix.message.create(app.id, { eventType: 'ssrf.probe', payload: {} });
    for (const id of ids) {
      const attempts = await parked(relay, app.id, msg.id, id);
      assert.equal(attempts.length, 1);
      assert.match(attempts[0].response, new RegExp(`^refused: (127\\.0\\.0\\.1|::ffff:7f00:1|::1) is a loopback address.*; ${SETTING}$`));
    }
    assert.equal(inside.received.length, 0);

    // The control: with loopback allowed, these URLs do reach the receiver, so the refusal above was the policy's.
    const open = await startRelay({ allowNetworks: '127.0.0.0/8' });
    try {
      const openApp = await open.svix.application.create({ name: 'allowed-literals' });
      for (const url of urls.slice(0, 4)) await endpoint(open, openApp.id, url);
      await open.svix.message.create(openApp.id, { eventType: 'ssrf.probe', payload: {} });
      const received = await inside.waitFor(4);
      assert.deepEqual(received.map((r) => r.path).sort(), ['/a', '/b', '/c', '/d']);
    } finally {
      await open.close();
      inside.received.length = 0;
    }
  });

  it('the allow-list lifts the refusal: by network, or by host name', async () => {
    const receiver = await startReceiver();
    const receiverPort = new URL(receiver.url).port;
    const byNetwork = await startRelay({ allowNetworks: '127.0.0.0/8', dnsServers: dns.address });
    const byName = await startRelay({ allowNetworks: 'loopback.test', dnsServers: dns.address });
    try {
      for (const r of [byNetwork, byName]) {
        const app = await r.svix.application.create({ name: 'allowed' });
        await endpoint(r, app.id, `http://loopback.test:${receiverPort}/webhook`);
        await r.svix.message.create(app.id, { eventType: 'allowed', payload: {} });
      }
      await receiver.waitFor(2);
      // Allowing a name allows that name only: another one resolving to loopback is still refused.
      const app = await byName.svix.application.create({ name: 'other-name' });
      const id = await endpoint(byName, app.id, `http://mapped.test:${receiverPort}/webhook`);
      const msg = await byName.svix.message.create(app.id, { eventType: 'refused', payload: {} });
      const attempts = await parked(byName, app.id, msg.id, id);
      assert.match(attempts[0].response, /^refused: mapped\.test resolves to ::ffff:127\.0\.0\.1 \(a loopback address/);
      assert.equal(receiver.received.length, 2);
    } finally {
      await Promise.all([byNetwork.close(), byName.close()]);
      await receiver.close();
    }
  });

  describe('DNS rebinding and redirects (127.0.0.2 allowed, standing for a public address; 127.0.0.1 is inside)', () => {
    let allowing: TestRelay;
    before(async () => {
      allowing = await startRelay({ allowNetworks: '127.0.0.2/32', dnsServers: dns.address });
    });
    after(async () => allowing?.close());

    it('a name that answers an allowed address first and an internal one next is refused on the next connection: the inside never sees a request', async () => {
      const internal = await listenOn('127.0.0.1', 0);
      const outside = await listenOn('127.0.0.2', internal.port, () => ({ status: 500 }));
      try {
        const app = await allowing.svix.application.create({ name: 'rebind' });
        const id = await endpoint(allowing, app.id, `http://rebind.test:${internal.port}/webhook`);
        const msg = await allowing.svix.message.create(app.id, { eventType: 'rebind', payload: {} });
        const attempts = await parked(allowing, app.id, msg.id, id);
        // Newest first: the retry after the 500 resolved again, to 127.0.0.1, and was refused.
        assert.deepEqual(
          attempts.map((a) => [a.responseStatusCode, a.response]),
          [
            [0, `refused: rebind.test resolves to 127.0.0.1 (a loopback address); ${SETTING}`],
            [500, 'answered by 127.0.0.2'],
          ],
        );
        assert.equal(outside.received.length, 1);
        assert.equal(internal.received.length, 0, 'the rebound name reached the inside');
        assert.ok(dns.queries.filter((q) => q.name === 'rebind.test' && q.type === 'A').length >= 2, 'each connection resolved the name again');
      } finally {
        await Promise.all([internal.close(), outside.close()]);
      }
    });

    it('a name with an internal and an allowed address connects to the allowed one only', async () => {
      const internal = await listenOn('127.0.0.1', 0);
      const outside = await listenOn('127.0.0.2', internal.port);
      try {
        const app = await allowing.svix.application.create({ name: 'mixed' });
        await endpoint(allowing, app.id, `http://mixed.test:${internal.port}/webhook`);
        for (let i = 0; i < 3; i++) await allowing.svix.message.create(app.id, { eventType: 'mixed', payload: { i } });
        await waitUntil('three deliveries outside', () => outside.received.length === 3);
        assert.equal(internal.received.length, 0);
      } finally {
        await Promise.all([internal.close(), outside.close()]);
      }
    });

    it('a redirect to the inside is not followed: the 307 is recorded as a failed attempt', async () => {
      const internal = await listenOn('127.0.0.1', 0);
      const outside = await listenOn('127.0.0.2', 0, () => ({ status: 307, headers: { location: internal.url } }));
      try {
        const app = await allowing.svix.application.create({ name: 'redirect' });
        const id = await endpoint(allowing, app.id, outside.url);
        const msg = await allowing.svix.message.create(app.id, { eventType: 'redirect', payload: {} });
        const attempts = await parked(allowing, app.id, msg.id, id);
        assert.deepEqual(new Set(attempts.map((a) => a.responseStatusCode)), new Set([307]));
        assert.equal(outside.received.length, attempts.length);
        assert.equal(internal.received.length, 0);
      } finally {
        await Promise.all([internal.close(), outside.close()]);
      }
    });
  });

  it('a Temporal destination whose address resolves inside is refused before it is dialled, and parked', async () => {
    const app = await relay.svix.application.create({ name: 'temporal' });
    const created = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: { type: 'temporal', address: 'loopback.test:7233', workflowType: 'W', taskQueue: 'q', timeoutMs: 1000 } });
    assert.equal(created.status, 201, created.text);
    const msg = await relay.svix.message.create(app.id, { eventType: 'temporal', payload: {} });
    const attempts = await parked(relay, app.id, msg.id, created.body.id);
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0].response, `refused: loopback.test resolves to 127.0.0.1 (a loopback address); ${SETTING}`);
  });

  it('`hookrelay serve` with a bad allow-list stops at start with exit code 2, naming the setting', async () => {
    const result = await runCli(['serve', '--port', '0', '--db', ':memory:', '--allow-networks', '127.0.0.0/8,10.0.0.0/33']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--allow-networks \(HOOKRELAY_ALLOW_NETWORKS\): "10\.0\.0\.0\/33" is not a CIDR: the prefix length must be 0 to 32/);
  });
});
