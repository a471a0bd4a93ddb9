import type { DestinationConfig, Endpoint, SigningSecret, Source } from '../domain/types.js';
import { NESTED_SECRET_PATHS, SECRET_FIELDS } from '../inbound/source-config.js';
import { DESTINATION_KINDS } from '../pipeline/destinations/index.js';
import type { SecretRow } from '../store/store.js';
import { isSealed, type SecretBox } from './box.js';

/**
 * Which stored values are secret, and how each is sealed. The fields are the ones the API never returns (a source's
 * `SECRET_FIELDS`, a destination kind's `secretFields`), so "redacted in answers" and "encrypted at rest" cannot
 * drift apart. A signing secret is sealed as its text; any other secret field as its JSON, so arrays and objects
 * (`additionalSecrets`, `encryption`) are sealed whole. Objects are copied, never changed in place: stores cache them.
 */

type Json = Record<string, unknown>;

const destinationPaths = (destination: DestinationConfig): string[][] => (DESTINATION_KINDS.get(destination.type)?.secretFields ?? []).map((p) => p.split('.'));
const SOURCE_PATHS = [...[...SECRET_FIELDS].map((field) => [field]), ...NESTED_SECRET_PATHS.map((path) => path.split('.'))];

/** A copy of `object` with `f` applied to the value at each path that is present (and not null). */
function mapPaths(object: Json, paths: string[][], f: (value: unknown) => unknown): Json {
  let out = object;
  for (const path of paths) out = mapPath(out, path, f);
  return out;
}

function mapPath(object: Json, [head, ...rest]: string[], f: (value: unknown) => unknown): Json {
  const value = object[head];
  if (value === undefined || value === null) return object;
  if (rest.length === 0) return { ...object, [head]: f(value) };
  if (typeof value !== 'object' || Array.isArray(value)) return object;
  return { ...object, [head]: mapPath(value as Json, rest, f) };
}

export class SecretFields {
  constructor(readonly box: SecretBox) {}

  sealSigningSecret(key: string): string {
    return this.box.seal(key);
  }

  sealDestination(destination: DestinationConfig | null): DestinationConfig | null {
    return destination && (mapPaths(destination, destinationPaths(destination), (v) => this.box.seal(JSON.stringify(v))) as DestinationConfig);
  }

  sealSourceConfig(config: Json): Json {
    return mapPaths(config, SOURCE_PATHS, (v) => this.box.seal(JSON.stringify(v)));
  }

  openEndpoint(endpoint: Endpoint): Endpoint {
    const destination = endpoint.destination && (mapPaths(endpoint.destination, destinationPaths(endpoint.destination), this.openJson) as DestinationConfig);
    return { ...endpoint, secrets: endpoint.secrets.map((s) => ({ ...s, key: this.box.open(s.key) })), destination };
  }

  openSource(source: Source): Source {
    return { ...source, config: mapPaths(source.config, SOURCE_PATHS, this.openJson) };
  }

  /** The row with every plain value sealed and every value under an old key re-sealed; null when nothing changes. */
  reseal(row: SecretRow): SecretRow | null {
    let changed = false;
    const again = (value: unknown): unknown => {
      if (typeof value === 'string' && isSealed(value)) {
        if (!this.box.needsReseal(value)) return value;
        changed = true;
        return this.box.seal(this.box.open(value));
      }
      changed = true;
      return this.box.seal(JSON.stringify(value));
    };
    if (row.kind === 'source') {
      const config = mapPaths(row.config, SOURCE_PATHS, again);
      return changed ? { ...row, config } : null;
    }
    const secrets: SigningSecret[] = row.secrets.map((s) => {
      if (!this.box.needsReseal(s.key)) return s;
      changed = true;
      return { ...s, key: this.box.seal(this.box.open(s.key)) };
    });
    const destination = row.destination && (mapPaths(row.destination, destinationPaths(row.destination), again) as DestinationConfig);
    return changed ? { ...row, secrets, destination } : null;
  }

  private readonly openJson = (value: unknown): unknown => (typeof value === 'string' && isSealed(value) ? JSON.parse(this.box.open(value)) : value);
}
