import type { Store } from '../store/store.js';
import type { OperationalWebhooks } from './events.js';

/**
 * The API's view of the store, telling the operational webhooks about every endpoint created, changed or deleted
 * through it (apps' endpoints and sources' endpoints alike), after the change is committed. Everything else passes
 * through untouched.
 */
export function reportEndpointChanges(store: Store, events: OperationalWebhooks): Store {
  const overrides: Partial<Store> = {
    async createEndpoint(appId, input, secret, now) {
      const endpoint = await store.createEndpoint(appId, input, secret, now);
      events.endpointChanged('endpoint.created', endpoint);
      return endpoint;
    },
    async updateEndpoint(appId, id, input, now) {
      const before = await store.getEndpoint(appId, id);
      const after = await store.updateEndpoint(appId, id, input, now);
      events.endpointChanged('endpoint.updated', after);
      if (before && !before.disabled && after.disabled) events.endpointDisabled(after, 'manual', after.disabledReason, null);
      if (before && before.disabled && !after.disabled) events.endpointChanged('endpoint.enabled', after);
      return after;
    },
    async deleteEndpoint(appId, id) {
      const before = await store.getEndpoint(appId, id);
      await store.deleteEndpoint(appId, id);
      if (before) events.endpointChanged('endpoint.deleted', before);
    },
  };
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property) {
      if (property in overrides) return overrides[property as keyof Store];
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      let fn = bound.get(property);
      if (!fn) bound.set(property, (fn = value.bind(target)));
      return fn;
    },
  });
}
