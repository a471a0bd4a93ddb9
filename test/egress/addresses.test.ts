import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, loadSettings } from '../../src/config.js';
import { classifyAddress, type AddressKind } from '../../src/egress/addresses.js';
import { AllowList } from '../../src/egress/allow-list.js';
import { canonicalHost, EgressPolicy, EgressRefusedError } from '../../src/egress/policy.js';
import { startDnsServer } from './support.js';

describe('address classifier', () => {
  const refused: [string, AddressKind][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.5', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.255', 'shared'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.8', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['192.0.2.10', 'documentation'],
    ['203.0.113.7', 'documentation'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fd00:ec2::254', 'metadata'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['100::1', 'reserved'],
    ['::7f00:1', 'reserved'], // IPv4-compatible, deprecated
    ['4000::1', 'reserved'], // outside 2000::/3
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:10.1.2.3', 'private'],
    ['64:ff9b::10.0.0.1', 'private'], // NAT64
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['64:ff9b:1::1', 'private'], // local-use NAT64
    ['2002:7f00:1::1', 'loopback'], // 6to4
    ['2002:c0a8:101::', 'private'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'], // Teredo: client 127.0.0.1, obfuscated
    ['2001:0:a00:1::f7f7:f7f7', 'private'], // Teredo server 10.0.0.1, client 8.8.8.8
    ['2001:10::1', 'reserved'],
  ];
  for (const [address, kind] of refused) {
    it(`${address} is ${kind}`, () => assert.equal(classifyAddress(address)?.kind, kind));
  }

  const embedded: [string, string][] = [
    ['::ffff:7f00:1', '127.0.0.1'],
    ['64:ff9b::a9fe:a9fe', '169.254.169.254'],
    ['2002:c0a8:101::', '192.168.1.1'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', '127.0.0.1'],
  ];
  for (const [address, v4] of embedded) {
    it(`${address} is judged by the IPv4 address it carries, ${v4}`, () => assert.equal(classifyAddress(address)?.embedded, v4));
  }

  for (const address of ['8.8.8.8', '1.1.1.1', '93.184.216.34', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '169.253.0.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1']) {
    it(`${address} is public`, () => assert.equal(classifyAddress(address), null));
  }

  it('an IPv4 address and its IPv4-mapped, NAT64 and 6to4 forms are judged alike (property, 2,000 addresses)', () => {
    const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
    fc.assert(
      fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), ([a, b, c, d]) => {
        const kind = classifyAddress(`${a}.${b}.${c}.${d}`)?.kind ?? null;
        for (const form of [`::ffff:${a}.${b}.${c}.${d}`, `::ffff:${hex(a, b)}:${hex(c, d)}`, `64:ff9b::${hex(a, b)}:${hex(c, d)}`, `2002:${hex(a, b)}:${hex(c, d)}::1`]) {
          assert.equal(classifyAddress(form)?.kind ?? null, kind, form);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('host names as URLs spell them', () => {
  const cases: [string, string | null][] = [
    ['2130706433', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['017700000001', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['[::ffff:127.0.0.1]', '::ffff:7f00:1'],
    ['::FFFF:127.0.0.1', '::ffff:7f00:1'],
    ['LocalHost.', 'localhost'],
    ['Example.COM', 'example.com'],
    ['1.2.3.4.5', null],
  ];
  for (const [host, canonical] of cases) it(`${host} → ${canonical}`, () => assert.equal(canonicalHost(host), canonical));
});

describe('allow-list', () => {
  const allow = new AllowList(['127.0.0.0/8', '::1/128', '10.1.2.3', 'internal.example.com', '*.corp.example', 'fd00::/8']);

  it('allows addresses in its networks, IPv6 forms of allowed IPv4 addresses too', () => {
    for (const address of ['127.0.0.1', '127.9.9.9', '::1', '10.1.2.3', '::ffff:127.0.0.1', '::ffff:a01:203', '64:ff9b::7f00:1', 'fd00:ec2::254']) assert.ok(allow.allowsAddress(address), address);
    for (const address of ['10.1.2.4', '192.168.0.1', '::2', 'fe80::1', '169.254.169.254']) assert.ok(!allow.allowsAddress(address), address);
  });

  it('allows host names exactly, or under a *. suffix, in any case and with a trailing dot', () => {
    for (const host of ['internal.example.com', 'INTERNAL.example.com.', 'a.corp.example', 'b.a.corp.example']) assert.ok(allow.allowsHost(host), host);
    for (const host of ['example.com', 'x.internal.example.com', 'corp.example', 'evilcorp.example']) assert.ok(!allow.allowsHost(host), host);
  });

  it('rejects entries that are neither a CIDR, an address nor a host name, saying which and why', () => {
    const cases: [string, RegExp][] = [
      ['10.0.0.0/33', /"10\.0\.0\.0\/33" is not a CIDR: the prefix length must be 0 to 32/],
      ['::/129', /"::\/129" is not a CIDR: the prefix length must be 0 to 128/],
      ['10.0.0/8', /"10\.0\.0\/8" is not a CIDR, an IP address or a host name/],
      ['10.0.0', /"10\.0\.0" is not a CIDR, an IP address or a host name/],
      ['http://example.com', /is not a CIDR, an IP address or a host name/],
      ['exa mple.com', /is not a CIDR, an IP address or a host name/],
    ];
    for (const [entry, message] of cases) assert.throws(() => new AllowList([entry]), message, entry);
  });

  it('is a startup error naming the setting, and so is a bad DNS server', () => {
    const problems = (flags: Record<string, string>, env: Record<string, string> = {}) => {
      try {
        loadSettings(flags, env);
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems;
      }
      assert.fail('the settings were accepted');
    };
    assert.deepEqual(problems({ allowNetworks: '127.0.0.0/8, 10.0.0.0/33' }), ['--allow-networks (HOOKRELAY_ALLOW_NETWORKS): "10.0.0.0/33" is not a CIDR: the prefix length must be 0 to 32']);
    assert.deepEqual(problems({}, { HOOKRELAY_ALLOW_NETWORKS: 'not a host' }), ['--allow-networks (HOOKRELAY_ALLOW_NETWORKS): "not a host" is not a CIDR, an IP address or a host name']);
    assert.deepEqual(problems({ dnsServers: '127.0.0.1:99999' }), ['--dns-servers (HOOKRELAY_DNS_SERVERS): "127.0.0.1:99999": the port must be 1 to 65535']);
    assert.deepEqual(problems({ dnsServers: 'dns.example' }), ['--dns-servers (HOOKRELAY_DNS_SERVERS): "dns.example" is not an IP address, ip:port or [ipv6]:port']);
    const good = loadSettings({ allowNetworks: ' 127.0.0.0/8 ,::1/128,internal.example.com', dnsServers: '127.0.0.1:5353,[::1]:53' }, {});
    assert.deepEqual(good.allowNetworks, ['127.0.0.0/8', '::1/128', 'internal.example.com']);
    assert.deepEqual(good.dnsServers, ['127.0.0.1:5353', '[::1]:53']);
    assert.deepEqual(loadSettings({}, {}).allowNetworks, []);
  });
});

describe('egress policy', () => {
  const strict = new EgressPolicy();
  const SETTING = 'allow it with HOOKRELAY_ALLOW_NETWORKS / --allow-networks';

  it('refuses internal hosts that need no DNS, with a message naming the address, what it is, and the setting', () => {
    assert.equal(strict.refuseHost('10.0.0.5'), `refused: 10.0.0.5 is a private address; ${SETTING}`);
    assert.equal(strict.refuseHost('0x7f.1'), `refused: 127.0.0.1 is a loopback address; ${SETTING}`);
    assert.equal(strict.refuseHost('[::ffff:169.254.169.254]'), `refused: ::ffff:a9fe:a9fe is a cloud metadata address, as it carries 169.254.169.254; ${SETTING}`);
    assert.equal(strict.refuseHost('localhost'), `refused: localhost is a loopback host name; ${SETTING}`);
    assert.equal(strict.refuseHost('api.localhost.'), `refused: api.localhost is a loopback host name; ${SETTING}`);
    assert.equal(strict.refuseHost('example.com'), null, 'names are not resolved when saved');
    assert.equal(strict.refuseHost('8.8.8.8'), null);
    const allowing = new EgressPolicy({ allowNetworks: ['127.0.0.0/8', '::1/128'] });
    assert.equal(allowing.refuseHost('localhost'), null);
    assert.equal(allowing.refuseHost('2130706433'), null);
    assert.equal(new EgressPolicy({ allowNetworks: ['localhost'] }).refuseHost('localhost'), null);
  });

  it('resolves through the configured DNS servers and keeps only allowed addresses', async () => {
    const dns = await startDnsServer((name, type) => {
      if (name === 'mixed.test') return type === 'A' ? ['10.0.0.1', '93.184.216.34'] : ['::1'];
      if (name === 'inside.test') return type === 'A' ? ['10.0.0.1'] : ['fd00::1'];
      return null;
    });
    try {
      const policy = new EgressPolicy({ dnsServers: [dns.address] });
      assert.deepEqual(await policy.resolve('mixed.test'), [{ address: '93.184.216.34', family: 4 }]);
      await assert.rejects(policy.resolve('inside.test'), (error: unknown) => {
        assert.ok(error instanceof EgressRefusedError);
        assert.equal(error.message, `refused: inside.test resolves to 10.0.0.1 (a private address), fd00::1 (a unique-local address); ${SETTING}`);
        return true;
      });
      await assert.rejects(policy.resolve('missing.test'), { code: 'ENOTFOUND' });
      const trusting = new EgressPolicy({ dnsServers: [dns.address], allowNetworks: ['inside.test'] });
      assert.deepEqual((await trusting.resolve('inside.test')).map((a) => a.address), ['10.0.0.1', 'fd00::1']);
      assert.ok(dns.queries.some((q) => q.name === 'mixed.test' && q.type === 'AAAA'));
    } finally {
      await dns.close();
    }
  });
});
