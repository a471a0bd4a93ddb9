import type { LookupAddress } from 'node:dns';
import { lookup as systemLookup, Resolver } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { classifyAddress, KIND_NAMES, stripZone } from './addresses.js';
import { AllowList } from './allow-list.js';

/** What a refusal tells the operator to change. */
export const ALLOW_NETWORKS_SETTING = 'HOOKRELAY_ALLOW_NETWORKS / --allow-networks';

/** A delivery target the egress policy refuses; the message names the address and the setting that lifts it. */
export class EgressRefusedError extends Error {
  readonly code = 'EHOOKRELAY_EGRESS_REFUSED';

  constructor(message: string) {
    super(message);
    this.name = 'EgressRefusedError';
  }
}

export interface EgressOptions {
  /** CIDRs, addresses and host names (`*.example.com` too) that may be dialled whatever they resolve to. */
  allowNetworks?: readonly string[];
  /** DNS servers (`ip` or `ip:port`) for delivery look-ups; none: the system resolver (getaddrinfo, /etc/hosts). */
  dnsServers?: readonly string[];
}

/**
 * Decides which addresses outbound deliveries may connect to: public unicast addresses, plus what the operator
 * allow-lists. It is applied to the address actually dialled (the resolved one, at connect time), so a name that
 * resolves differently later (DNS rebinding) is checked again on every new connection.
 */
export class EgressPolicy {
  private readonly allow: AllowList;
  private readonly resolver: Resolver | null;

  /** `options`: kept so that another thread (the delivery thread) can build the same policy. */
  constructor(readonly options: EgressOptions = {}) {
    this.allow = new AllowList(options.allowNetworks ?? []);
    if (options.dnsServers && options.dnsServers.length > 0) {
      checkDnsServers(options.dnsServers);
      this.resolver = new Resolver({ timeout: 2_500, tries: 2 });
      this.resolver.setServers([...options.dnsServers]);
    } else {
      this.resolver = null;
    }
  }

  /** Why `address` is refused, or null. */
  private reason(address: string): string | null {
    if (this.allow.allowsAddress(address)) return null;
    const found = classifyAddress(address);
    if (!found) return null;
    return found.embedded ? `${KIND_NAMES[found.kind]}, as it carries ${found.embedded}` : KIND_NAMES[found.kind];
  }

  /** The refusal for dialling an IP address given literally (a URL like http://10.0.0.5/), or null. */
  refuseLiteral(address: string): string | null {
    const reason = this.reason(address);
    return reason ? `refused: ${stripZone(address)} is ${reason}; allow it with ${ALLOW_NETWORKS_SETTING}` : null;
  }

  /**
   * What can be said without DNS about a URL's host (for failing fast when an endpoint is saved): IP literals in any
   * spelling URL parsers accept, and `localhost` names. Other names are checked when they are dialled.
   */
  refuseHost(host: string): string | null {
    const name = canonicalHost(host);
    if (name === null) return null;
    if (isIP(name)) return this.refuseLiteral(name);
    if ((name === 'localhost' || name.endsWith('.localhost')) && !this.allow.allowsHost(name) && this.reason('127.0.0.1') && this.reason('::1')) {
      return `refused: ${name} is a loopback host name; allow it with ${ALLOW_NETWORKS_SETTING}`;
    }
    return null;
  }

  /** The addresses of `host` that may be dialled; throws EgressRefusedError if it has none. */
  async resolve(host: string, family: 0 | 4 | 6 = 0): Promise<LookupAddress[]> {
    const found = this.resolver ? await this.query(host, family) : await systemLookup(host, { all: true, family });
    if (this.allow.allowsHost(host)) return found;
    const allowed = found.filter((a) => this.reason(a.address) === null);
    if (allowed.length > 0) return allowed;
    const refused = found.map((a) => `${a.address} (${this.reason(a.address)})`).join(', ');
    throw new EgressRefusedError(`refused: ${host} resolves to ${refused}; allow it with ${ALLOW_NETWORKS_SETTING}`);
  }

  /** `lookup` for net/tls.connect: the checked addresses only, in the shape connect asked for. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
    this.resolve(hostname, family).then(
      (addresses) => (options.all ? callback(null, addresses) : callback(null, addresses[0].address, addresses[0].family)),
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };

  private async query(host: string, family: 0 | 4 | 6): Promise<LookupAddress[]> {
    const resolver = this.resolver!;
    const [v4, v6] = await Promise.allSettled([
      family === 6 ? Promise.resolve([]) : resolver.resolve4(host),
      family === 4 ? Promise.resolve([]) : resolver.resolve6(host),
    ]).then((results) => results.map((r) => (r.status === 'fulfilled' ? { addresses: r.value, error: null } : { addresses: [], error: r.reason as NodeJS.ErrnoException })));
    const found = [...v4.addresses.map((address) => ({ address, family: 4 })), ...v6.addresses.map((address) => ({ address, family: 6 }))];
    if (found.length > 0) return found;
    throw v4.error ?? v6.error ?? Object.assign(new Error(`no address found for ${host}`), { code: 'ENOTFOUND', hostname: host });
  }
}

/** Throws with one reason per entry that is not `ip`, `ip:port` or `[ipv6]:port`. */
export function checkDnsServers(entries: readonly string[]): void {
  const problems: string[] = [];
  for (const entry of entries) {
    const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? /^([^:]+):(\d+)$/.exec(entry) ?? [entry, entry, undefined];
    const [, address, port] = match;
    if (isIP(address) === 0) problems.push(`${JSON.stringify(entry)} is not an IP address, ip:port or [ipv6]:port`);
    else if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) problems.push(`${JSON.stringify(entry)}: the port must be 1 to 65535`);
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
}

/**
 * The host as a connection would see it: lower case, IP literals in canonical form (URL parsing turns
 * `2130706433`, `0x7f.1` and `0177.0.0.1` into 127.0.0.1), no brackets, no trailing dot; null if unparseable.
 */
export function canonicalHost(host: string): string | null {
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let hostname: string;
  try {
    hostname = new URL(`http://${bracketed}/`).hostname;
  } catch {
    return null;
  }
  if (hostname.startsWith('[')) return hostname.slice(1, -1);
  return hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
}
