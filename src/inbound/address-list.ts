import { BlockList, isIP } from 'node:net';

/**
 * A set of IP networks (CIDRs) and single addresses, for source allow-lists and trusted proxies. An IPv4-mapped IPv6
 * address (`::ffff:203.0.113.9`, what a dual-stack socket reports for an IPv4 client) is the IPv4 address.
 */
export class AddressList {
  private readonly blocks = new BlockList();
  readonly size: number;

  /** Throws one message naming every entry that is not a CIDR or an IP address. */
  constructor(entries: readonly string[]) {
    const problems: string[] = [];
    for (const entry of entries) {
      const problem = addressEntryProblem(entry);
      if (problem) problems.push(`${JSON.stringify(entry)} ${problem}`);
      else this.add(entry.trim());
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
    this.size = entries.length;
  }

  private add(entry: string): void {
    const [address, prefix] = entry.split('/');
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) this.blocks.addAddress(address, family);
    else this.blocks.addSubnet(address, Number(prefix), family);
  }

  has(address: string): boolean {
    const plain = normalizeAddress(address);
    if (plain === null) return false;
    return this.blocks.check(plain, isIP(plain) === 4 ? 'ipv4' : 'ipv6');
  }
}

/** Why an entry is not a CIDR or an IP address, or null. */
export function addressEntryProblem(entry: string): string | null {
  const [address, prefix, extra] = entry.trim().split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return 'is not a CIDR or an IP address';
  if (prefix === undefined) return null;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `is not a CIDR: the prefix length must be 0 to ${max}`;
  return null;
}

/** An address as compared: IPv4-mapped IPv6 as IPv4, no zone; null when it is not an IP address. */
export function normalizeAddress(address: string): string | null {
  const text = address.trim().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(text);
  const plain = mapped ? mapped[1] : text;
  return isIP(plain) === 0 ? null : plain;
}
