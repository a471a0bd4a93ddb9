import type { Endpoint, Source } from '../domain/types.js';
import type { Store } from '../store/store.js';
import { MasterKeyError } from './box.js';
import type { SecretFields } from './fields.js';
import { layer } from '../store/layer.js';

/**
 * Encryption at rest as a layer over any Store: secrets are sealed on their way in and opened on their way out,
 * so both backends store only ciphertext and neither knows about keys.
 *
 * Which methods need the layer is decided by the compiler, not by a list kept by hand: a method whose arguments or
 * result mention a secret-bearing field (`secrets`, `destination`, `config`) must appear in `overrides` below, or
 * this file does not compile. Every other method is passed through untouched. (A bare secret string argument is
 * not detectable this way; `createEndpoint` and `rotateEndpointSecret` are caught by their other types.)
 */

type SecretBearing = 'secrets' | 'destination' | 'config';
type Depth = [never, 0, 1, 2, 3, 4, 5];

/** true when a value of type T may carry a secret-bearing field, looking a few levels deep. */
type Carries<T, D extends number = 5> = [D] extends [never]
  ? false
  : T extends (...args: never[]) => unknown
    ? false
    : T extends Promise<infer U>
      ? Carries<U, D>
      : T extends readonly (infer E)[]
        ? Carries<E, Depth[D]>
        : T extends object
          ? [Extract<keyof T, SecretBearing>] extends [never]
            ? true extends { [K in keyof T]-?: Carries<T[K], Depth[D]> }[keyof T]
              ? true
              : false
            : true
          : false;

type SecretMethods = {
  [K in keyof Store]-?: NonNullable<Store[K]> extends (...args: infer A) => infer R ? (true extends Carries<R> | Carries<A[number]> ? K : never) : never;
}[keyof Store];

export type SealedStore = Store & { readonly inner: Store };

export function sealStore(inner: Store, fields: SecretFields): SealedStore {
  // A claim hands every delivery of one endpoint the same object: open it once.
  const openedEndpoints = new WeakMap<Endpoint, Endpoint>();
  const openEndpoint = (e: Endpoint) => {
    let opened = openedEndpoints.get(e);
    if (!opened) openedEndpoints.set(e, (opened = fields.openEndpoint(e)));
    return opened;
  };
  // SQLite hands back the same cached source while it is unchanged; so does this layer, so callers can keep caching.
  const openedSources = new WeakMap<Source, Source>();
  const openSource = (s: Source | null) => {
    if (s === null) return null;
    let opened = openedSources.get(s);
    if (!opened) openedSources.set(s, (opened = fields.openSource(s)));
    return opened;
  };

  const overrides: Pick<Store, SecretMethods> = {
    listEndpoints: async (appId, page) => {
      const result = await inner.listEndpoints(appId, page);
      return { ...result, data: result.data.map(openEndpoint) };
    },
    createEndpoint: async (appId, input, secret, now) =>
      openEndpoint(await inner.createEndpoint(appId, { ...input, destination: fields.sealDestination(input.destination) }, fields.sealSigningSecret(secret), now)),
    getEndpoint: async (appId, idOrUid) => {
      const endpoint = await inner.getEndpoint(appId, idOrUid);
      return endpoint && openEndpoint(endpoint);
    },
    updateEndpoint: async (appId, id, input, now) => openEndpoint(await inner.updateEndpoint(appId, id, { ...input, destination: fields.sealDestination(input.destination) }, now)),
    rotateEndpointSecret: async (appId, id, secret, previousExpiresAt, now) =>
      openEndpoint(await inner.rotateEndpointSecret(appId, id, fields.sealSigningSecret(secret), previousExpiresAt, now)),
    listDestinationEndpoints: async () => (await inner.listDestinationEndpoints()).map(openEndpoint),
    claimVerifications: async (owner, now, leaseUntil, limit) => (await inner.claimVerifications(owner, now, leaseUntil, limit)).map(openEndpoint),

    listSources: async (page) => {
      const result = await inner.listSources(page);
      return { ...result, data: result.data.map((s) => openSource(s)!) };
    },
    createSource: async (input, token, now) => openSource(await inner.createSource({ ...input, config: fields.sealSourceConfig(input.config) }, token, now))!,
    getSource: async (idOrUid) => openSource(await inner.getSource(idOrUid)),
    getSourceByToken: async (token) => openSource(await inner.getSourceByToken(token)),
    getCachedSourceByToken: (token) => {
      const source = inner.getCachedSourceByToken?.(token);
      return source === undefined ? undefined : openSource(source)!;
    },
    updateSource: async (id, input, now) => openSource(await inner.updateSource(id, { ...input, config: fields.sealSourceConfig(input.config) }, now))!,
    setSourceToken: async (id, token, now) => openSource(await inner.setSourceToken(id, token, now))!,

    listDeliveriesByEndpoint: async (appId, endpointId, filter, page) => {
      const result = await inner.listDeliveriesByEndpoint(appId, endpointId, filter, page);
      return { ...result, data: result.data.map((v) => ({ ...v, endpoint: openEndpoint(v.endpoint) })) };
    },
    listDeliveriesByMessage: async (appId, messageId, page) => {
      const result = await inner.listDeliveriesByMessage(appId, messageId, page);
      return { ...result, data: result.data.map((v) => ({ ...v, endpoint: openEndpoint(v.endpoint) })) };
    },
    // Object.assign, not a spread plus one property: on Node 20 that gives every claimed delivery a map of its own.
    claim: async (request) => (await inner.claim(request)).map((c) => Object.assign({}, c, { endpoint: openEndpoint(c.endpoint) })),

    // Raw on purpose: these exist to read and write the sealed form (src/secrets/reseal.ts).
    scanSecrets: (kind, after, limit) => inner.scanSecrets(kind, after, limit),
    rewriteSecrets: (changes) => inner.rewriteSecrets(changes),
  };

  // Answers replayed for a retried POST are kept sealed too: the answer to creating an API key holds the key.
  const answers: Pick<Store, 'getIdempotentResponse' | 'putIdempotentResponse'> = {
    getIdempotentResponse: async (scope, key, now) => {
      const stored = await inner.getIdempotentResponse(scope, key, now);
      if (!stored) return null;
      try {
        return { ...stored, body: fields.box.open(stored.body, false) };
      } catch (error) {
        // Sealed under a master key since dropped: as if never stored, so the request is simply served again.
        if (error instanceof MasterKeyError) return null;
        throw error;
      }
    },
    putIdempotentResponse: (scope, key, response, expiresAt) => inner.putIdempotentResponse(scope, key, { ...response, body: fields.box.seal(response.body) }, expiresAt),
  };

  // Every other method passed through, bound once; properties assigned to the layer (diagnostics wrap methods) shadow these.
  const sealed = layer(inner, (_name, method) => method.bind(inner)) as SealedStore & Record<string, unknown>;
  return Object.assign(sealed, overrides, answers, { inner });
}
