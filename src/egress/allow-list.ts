import { BlockList, isIP } from 'node:net';
import { embeddedIPv4, ipv6Groups, stripZone } from './addresses.js';

const HOST = /^(\*\.)?([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** Networks and host names the operator trusts as delivery targets, whatever the address. */
export class AllowList {
  private readonly networks = new BlockList();
  private readonly hosts = new Set<string>();
  /** `*.example.com` entries, kept as `.example.com`. */
  private readonly suffixes: string[] = [];
  readonly size: number;

  /** Throws with one line per entry that is not a CIDR, an IP address or a host name. */
  constructor(entries: readonly string[]) {
    const problems: string[] = [];
    for (const entry of entries) {
      const problem = this.add(entry.trim().toLowerCase());
      if (problem) problems.push(`${JSON.stringify(entry)} ${problem}`);
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
    this.size = entries.length;
  }

  private add(entry: string): string | null {
    const slash = entry.indexOf('/');
    if (slash !== -1) {
      const address = entry.slice(0, slash);
      const prefix = entry.slice(slash + 1);
      const family = isIP(address);
      if (family === 0) return 'is not a CIDR, an IP address or a host name';
      const max = family === 4 ? 32 : 128;
      if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `is not a CIDR: the prefix length must be 0 to ${max}`;
      this.networks.addSubnet(address, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
      return null;
    }
    const bare = entry.startsWith('[') && entry.endsWith(']') ? entry.slice(1, -1) : entry;
    const family = isIP(bare);
    if (family !== 0) {
      this.networks.addAddress(bare, family === 4 ? 'ipv4' : 'ipv6');
      return null;
    }
    const host = entry.endsWith('.') ? entry.slice(0, -1) : entry;
    // A name whose last label is a number is an IPv4 spelling to URL parsers, never a host name.
    if (!HOST.test(host) || /(^|\.)(\d+|0x[0-9a-f]*)$/.test(host)) return 'is not a CIDR, an IP address or a host name';
    if (host.startsWith('*.')) this.suffixes.push(host.slice(1));
    else this.hosts.add(host);
    return null;
  }

  allowsHost(host: string): boolean {
    if (this.hosts.size === 0 && this.suffixes.length === 0) return false;
    const name = canonicalName(host);
    return this.hosts.has(name) || this.suffixes.some((suffix) => name.endsWith(suffix));
  }

  /** An IPv6 address that stands for an IPv4 one (IPv4-mapped, NAT64…) is allowed if that IPv4 address is. */
  allowsAddress(address: string): boolean {
    if (this.size === 0) return false;
    const text = stripZone(address);
    const family = isIP(text);
    if (family === 4) return this.networks.check(text, 'ipv4');
    if (family !== 6) return false;
    if (this.networks.check(text, 'ipv6')) return true;
    const embedded = embeddedIPv4(ipv6Groups(text)!);
    return embedded !== null && this.networks.check(embedded, 'ipv4');
  }
}

const canonicalName = (host: string) => {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
};
