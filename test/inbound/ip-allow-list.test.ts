import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AddressList } from '../../src/inbound/address-list.js';
import { clientAddress } from '../../src/inbound/client-address.js';
import { ipPresets } from '../../src/inbound/ip-presets/index.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { accepted, createSource, messageIds, post } from './support.js';

describe('client address behind trusted proxies', () => {
  const proxies = new AddressList(['10.0.0.0/8', '2001:db8:ffff::/48']);

  it('reads forwarding headers only when the socket peer is a trusted proxy', () => {
    assert.equal(clientAddress('203.0.113.9', { 'x-forwarded-for': '198.51.100.1' }, proxies), '203.0.113.9', 'an untrusted peer cannot claim an address');
    assert.equal(clientAddress('10.1.2.3', { 'x-forwarded-for': '198.51.100.1' }, proxies), '198.51.100.1');
    assert.equal(clientAddress('::ffff:10.1.2.3', { 'x-forwarded-for': '198.51.100.1' }, proxies), '198.51.100.1', 'IPv4-mapped peers are IPv4');
    assert.equal(clientAddress('10.1.2.3', {}, proxies), '10.1.2.3', 'a trusted proxy that names nobody is the client');
    assert.equal(clientAddress('203.0.113.9', {}, new AddressList([])), '203.0.113.9');
  });

  it('walks the chain from the right and stops at the first address that is not a trusted proxy', () => {
    // The client put a fake first entry; the outer proxy appended the address it saw, then the inner one.
    assert.equal(clientAddress('10.0.0.2', { 'x-forwarded-for': '1.2.3.4, 198.51.100.7, 10.0.0.1' }, proxies), '198.51.100.7');
    assert.equal(clientAddress('10.0.0.2', { 'x-forwarded-for': '10.9.9.9, 10.0.0.1' }, proxies), '10.9.9.9', 'every hop trusted: the leftmost');
    assert.equal(clientAddress('10.0.0.2', { 'x-forwarded-for': '198.51.100.7:4711' }, proxies), '198.51.100.7');
    assert.equal(clientAddress('10.0.0.2', { 'x-forwarded-for': 'unknown' }, proxies), null);
  });

  it('prefers RFC 7239 Forwarded, with quoted IPv6 and ports', () => {
    const headers = { forwarded: 'for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"', 'x-forwarded-for': '198.51.100.1' };
    assert.equal(clientAddress('10.0.0.2', headers, proxies), '2001:db8:cafe::17');
    assert.equal(clientAddress('10.0.0.2', { forwarded: 'for="[2001:db8:ffff::1]", for=192.0.2.60' }, proxies), '192.0.2.60');
    assert.equal(clientAddress('10.0.0.2', { forwarded: 'for=_hidden' }, proxies), null);
  });

  it('ships dated presets with their source', () => {
    for (const [name, preset] of ipPresets()) {
      assert.match(preset.retrieved, /^\d{4}-\d{2}-\d{2}$/, name);
      assert.match(preset.source, /^https:\/\//, name);
      assert.ok(preset.ranges.length > 0);
      new AddressList(preset.ranges);
    }
    assert.ok(new AddressList(ipPresets().get('github')!.ranges).has('140.82.115.10'));
  });
});

describe('source IP allow-lists', () => {
  let direct: TestRelay;
  let proxied: TestRelay;
  before(async () => {
    direct = await startRelay();
    // The test client is the "proxy": it connects from loopback and says who the client was.
    proxied = await startRelay({ trustedProxies: '127.0.0.1,::1' });
  });
  after(async () => {
    await direct.close();
    await proxied.close();
  });

  const source = async (relay: TestRelay, config: Record<string, unknown>) => {
    const key = `k_${randomUUID()}`;
    const created = await createSource(relay, 'api-key', { secret: key, ...config });
    const send = (headers: Record<string, string> = {}, method = 'POST') =>
      post(created.ingestUrl, method === 'HEAD' ? null : JSON.stringify({ n: randomUUID() }), { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, method);
    return { ...created, send };
  };

  it('answers 403 to an address outside the list and stores nothing; a listed one is accepted', async () => {
    const open = await source(direct, { allowedIps: ['127.0.0.0/8', '::1'] });
    accepted(await open.send());
    const closed = await source(direct, { allowedIps: ['203.0.113.0/24'] });
    const refused = await closed.send({ 'x-forwarded-for': '203.0.113.5' });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.body.code, 'forbidden');
    assert.match(refused.body.detail, /requests from (127\.0\.0\.1|::1) are not allowed/, 'without trusted proxies the header is ignored');
    assert.equal((await closed.send({}, 'HEAD')).status, 403);
    assert.deepEqual(await messageIds(direct, closed.appId), []);
    // Counted in the source's failures, with the reason.
    const failures = await direct.api('GET', `/ingest/api/v1/source/${closed.id}/verification-failures`);
    assert.equal(failures.status, 200, failures.text);
    assert.equal(JSON.stringify(failures.body).match(/are not allowed by this source/g)?.length, 2, failures.text);
  });

  it('behind a trusted proxy, judges the forwarded client address', async () => {
    const listed = await source(proxied, { allowedIps: ['203.0.113.0/24', '2001:db8::/32'] });
    accepted(await listed.send({ 'x-forwarded-for': '203.0.113.5' }));
    accepted(await listed.send({ forwarded: 'for="[2001:db8::5]:443"' }));
    accepted(await listed.send({ 'x-forwarded-for': '198.51.100.1, 203.0.113.5' }));
    const outside = await listed.send({ 'x-forwarded-for': '198.51.100.1' });
    assert.equal(outside.status, 403);
    assert.match(outside.body.detail, /198\.51\.100\.1/);
    // A proxy that names no client leaves the proxy itself as the client, which is not listed.
    assert.equal((await listed.send()).status, 403);
    assert.equal((await messageIds(proxied, listed.appId)).length, 3);
  });

  it('accepts a provider preset, combined with CIDRs', async () => {
    const github = await source(proxied, { allowedIpPresets: ['github'], allowedIps: ['192.0.2.1'] });
    accepted(await github.send({ 'x-forwarded-for': '140.82.115.10' }));
    accepted(await github.send({ 'x-forwarded-for': '2606:50c0::17' }));
    accepted(await github.send({ 'x-forwarded-for': '192.0.2.1' }));
    assert.equal((await github.send({ 'x-forwarded-for': '192.0.2.2' })).status, 403);
  });

  it('refuses a bad list or an unknown preset with 422 naming the entry', async () => {
    for (const [config, loc] of [
      [{ allowedIps: ['10.0.0.0/33'] }, ['body', 'config', 'allowedIps', 0]],
      [{ allowedIps: ['127.0.0.1', 'example.com'] }, ['body', 'config', 'allowedIps', 1]],
      [{ allowedIpPresets: ['myprovider'] }, ['body', 'config', 'allowedIpPresets', 0]],
    ] as const) {
      const response = await direct.api('POST', '/ingest/api/v1/source', { name: 'bad', type: 'api-key', config: { secret: 'k', ...config } });
      assert.equal(response.status, 422, response.text);
      assert.ok(response.body.detail.some((d: { loc: unknown[] }) => JSON.stringify(d.loc) === JSON.stringify(loc)), response.text);
    }
  });
});
