/**
 * The members of `target` by kind: its methods, and its other properties (own data properties and accessors of its
 * classes), each name once, nearest definition first, up to Object.prototype.
 */
function membersOf(target: object): { methods: string[]; properties: string[] } {
  const methods = new Set<string>();
  const properties = new Set<string>();
  for (let at: object | null = target; at !== null && at !== Object.prototype; at = Object.getPrototypeOf(at)) {
    for (const name of Object.getOwnPropertyNames(at)) {
      if (name === 'constructor' || methods.has(name) || properties.has(name)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(at, name)!;
      if (typeof descriptor.value === 'function') methods.add(name);
      else properties.add(name);
    }
  }
  return { methods: [...methods], properties: [...properties] };
}

/**
 * A plain object standing in front of `target`: each method as `method(name, fn)` makes it, once; every other property
 * of `target` read through. Every store call of the hot paths goes through such layers: a Proxy would run its trap on
 * each call instead. A property assigned to the layer (a diagnostic wrapping a method, a value added to it) shadows
 * `target`'s from then on.
 */
export function layer<T extends object>(target: T, method: (name: string, fn: (...args: unknown[]) => unknown) => unknown): T {
  const out: Record<string, unknown> = {};
  const source = target as Record<string, unknown>;
  const { methods, properties } = membersOf(target);
  for (const name of methods) out[name] = method(name, source[name] as (...args: unknown[]) => unknown);
  for (const name of properties) {
    Object.defineProperty(out, name, {
      get: () => source[name],
      set: (value) => Object.defineProperty(out, name, { value, writable: true, enumerable: true, configurable: true }),
      enumerable: true,
      configurable: true,
    });
  }
  return out as T;
}
