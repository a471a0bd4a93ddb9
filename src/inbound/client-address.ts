import { normalizeAddress, type AddressList } from './address-list.js';

/**
 * The address of the client that sent a request. It is the socket's peer, unless that peer is a proxy listed in
 * `--trusted-proxies`: then the forwarding headers are read from the right (the hop nearest to us) leftwards, and
 * the first address that is not a trusted proxy is the client. `Forwarded` (RFC 7239) is read when present, otherwise
 * `X-Forwarded-For`. Entries a trusted proxy passed on from further left are only as good as that proxy, which is why
 * nothing is read from the headers of a peer that is not trusted: anyone can send them.
 * Returns null when the address cannot be known (an unparsable or obfuscated entry, e.g. `for=unknown`).
 */
export function clientAddress(peer: string | undefined, headers: Record<string, string | string[] | undefined>, trusted: AddressList): string | null {
  const socket = peer === undefined ? null : normalizeAddress(peer);
  if (socket === null) return null;
  if (trusted.size === 0 || !trusted.has(socket)) return socket;
  const forwarded = header(headers.forwarded);
  const hops = forwarded !== undefined ? forwardedFor(forwarded) : (header(headers['x-forwarded-for'])?.split(',') ?? []);
  let client: string | null = socket;
  for (let i = hops.length - 1; i >= 0; i--) {
    client = hopAddress(hops[i]);
    if (client === null || !trusted.has(client)) return client;
  }
  return client;
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(', ') : value);

/** The `for=` values of a `Forwarded` header, one per element, in order. */
function forwardedFor(value: string): string[] {
  const out: string[] = [];
  for (const element of value.split(',')) {
    for (const pair of element.split(';')) {
      const [name, ...rest] = pair.split('=');
      if (name.trim().toLowerCase() === 'for') out.push(rest.join('=').trim().replace(/^"(.*)"$/, '$1'));
    }
  }
  return out;
}

/** One hop: `203.0.113.9`, `203.0.113.9:4711`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`. */
function hopAddress(hop: string): string | null {
  const text = hop.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return normalizeAddress(bracketed[1]);
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(text);
  return normalizeAddress(withPort ? withPort[1] : text);
}
