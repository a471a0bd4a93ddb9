import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Why an address is not a public unicast address: what a refusal calls it. */
export type AddressKind =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'unique-local'
  | 'shared'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'reserved';

export const KIND_NAMES: Record<AddressKind, string> = {
  unspecified: 'an unspecified address',
  loopback: 'a loopback address',
  private: 'a private address',
  'link-local': 'a link-local address',
  metadata: 'a cloud metadata address',
  'unique-local': 'a unique-local address',
  shared: 'a shared (CGNAT) address',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
  documentation: 'a documentation address',
  reserved: 'a reserved address',
};

/** Special-purpose ranges (IANA registries), most specific first: the first that matches names the address. */
const RANGES: [AddressKind, string, number][] = [
  ['metadata', '169.254.169.254', 32], // AWS, GCP, Azure, OpenStack, DigitalOcean…
  ['metadata', '169.254.170.2', 32], // AWS ECS task metadata
  ['metadata', '100.100.100.200', 32], // Alibaba Cloud
  ['metadata', '192.0.0.192', 32], // Oracle Cloud
  ['metadata', 'fd00:ec2::254', 128], // AWS over IPv6
  ['broadcast', '255.255.255.255', 32],
  ['unspecified', '0.0.0.0', 8], // "this network": 0.0.0.0 reaches the local host on Linux
  ['private', '10.0.0.0', 8],
  ['shared', '100.64.0.0', 10],
  ['loopback', '127.0.0.0', 8],
  ['link-local', '169.254.0.0', 16],
  ['private', '172.16.0.0', 12],
  ['reserved', '192.0.0.0', 24],
  ['documentation', '192.0.2.0', 24],
  ['reserved', '192.88.99.0', 24], // 6to4 relay anycast, retired
  ['private', '192.168.0.0', 16],
  ['reserved', '198.18.0.0', 15], // benchmarking
  ['documentation', '198.51.100.0', 24],
  ['documentation', '203.0.113.0', 24],
  ['multicast', '224.0.0.0', 4],
  ['reserved', '240.0.0.0', 4],
  ['private', '64:ff9b:1::', 48], // local-use NAT64
  ['reserved', '100::', 64], // discard-only
  ['reserved', '2001::', 23], // IETF protocol assignments (ORCHID, AMT…); Teredo is handled before
  ['documentation', '2001:db8::', 32],
  ['documentation', '3fff::', 20],
  ['unique-local', 'fc00::', 7],
  ['link-local', 'fe80::', 10],
  ['private', 'fec0::', 10], // site-local, deprecated
  ['multicast', 'ff00::', 8],
];

const LISTS: [AddressKind, BlockList][] = (() => {
  const byKind = new Map<AddressKind, BlockList>();
  const order: AddressKind[] = [];
  for (const [kind, network, prefix] of RANGES) {
    if (!byKind.has(kind)) {
      byKind.set(kind, new BlockList());
      order.push(kind);
    }
    byKind.get(kind)!.addSubnet(network, prefix, isIPv4(network) ? 'ipv4' : 'ipv6');
  }
  return order.map((kind) => [kind, byKind.get(kind)!]);
})();

export interface Classification {
  kind: AddressKind;
  /** The IPv4 address an IPv6 one carries (IPv4-mapped, NAT64, 6to4, Teredo) when that is what decided. */
  embedded: string | null;
}

/** Eight 16-bit groups of an IPv6 address (zone id dropped), or null if it is not one. */
export function ipv6Groups(address: string): number[] | null {
  const text = stripZone(address);
  if (!isIPv6(text)) return null;
  let head = text;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    head = text.slice(0, -dotted[1].length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, null];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const l = parse(left);
  const r = right === null ? [] : parse(right);
  const missing = 8 - l.length - r.length - tail.length;
  return [...l, ...new Array<number>(right === null ? 0 : missing).fill(0), ...r, ...tail];
}

const ipv4Of = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;

/**
 * The IPv4 address whose reachability an IPv6 address stands for: IPv4-mapped (::ffff:a.b.c.d), NAT64
 * (64:ff9b::/96), 6to4 (2002::/16) and Teredo's client (2001::/32, obfuscated). Null for any other address.
 */
export function embeddedIPv4(groups: number[]): string | null {
  const zero = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  if (zero(0, 5) && groups[5] === 0xffff) return ipv4Of(groups[6], groups[7]);
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zero(2, 6)) return ipv4Of(groups[6], groups[7]);
  if (groups[0] === 0x2002) return ipv4Of(groups[1], groups[2]);
  if (groups[0] === 0x2001 && groups[1] === 0) return ipv4Of(groups[6] ^ 0xffff, groups[7] ^ 0xffff);
  return null;
}

function classifyIPv4(address: string): AddressKind | null {
  for (const [kind, list] of LISTS) if (list.check(address, 'ipv4')) return kind;
  return null;
}

/**
 * What kind of non-public address this is, or null for a public unicast address (or a string that is no IP
 * address at all: callers pass addresses, never names).
 */
export function classifyAddress(address: string): Classification | null {
  const text = stripZone(address);
  if (isIPv4(text)) {
    const kind = classifyIPv4(text);
    return kind ? { kind, embedded: null } : null;
  }
  const groups = ipv6Groups(text);
  if (!groups) return null;
  if (groups.every((g) => g === 0)) return { kind: 'unspecified', embedded: null };
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return { kind: 'loopback', embedded: null };
  const embedded = embeddedIPv4(groups);
  if (embedded) {
    const kind = classifyIPv4(embedded);
    if (kind) return { kind, embedded };
    // Teredo also carries its server's address; either one being internal is reason enough.
    const teredoServer = groups[0] === 0x2001 && groups[1] === 0 ? ipv4Of(groups[2], groups[3]) : null;
    const serverKind = teredoServer ? classifyIPv4(teredoServer) : null;
    return serverKind ? { kind: serverKind, embedded: teredoServer } : null;
  }
  if (groups.slice(0, 6).every((g) => g === 0)) return { kind: 'reserved', embedded: null }; // IPv4-compatible, deprecated
  for (const [kind, list] of LISTS) if (list.check(text, 'ipv6')) return { kind, embedded: null };
  // Only 2000::/3 is allocated as global unicast.
  if ((groups[0] & 0xe000) !== 0x2000) return { kind: 'reserved', embedded: null };
  return null;
}

export function stripZone(address: string): string {
  const zone = address.indexOf('%');
  return zone === -1 ? address : address.slice(0, zone);
}
