import type { FastifyInstance } from 'fastify';
import { HookrelayError } from '../../domain/errors.js';
import { SVIX_UNSERVED } from './svix-unserved.js';

/**
 * The routes of the Svix v1 API that hookrelay does not serve answer 501 `not_implemented` naming the feature, so a
 * Svix SDK call tells its caller what is missing instead of "no route". They are left out of the OpenAPI document,
 * which lists what hookrelay serves; docs/api.md has the whole table. Authentication still comes first.
 */
export function unservedSvixRoutes(app: FastifyInstance): void {
  for (const [method, path, feature] of SVIX_UNSERVED) {
    app.route({
      method,
      url: path.replace(/\{([a-z_]+)\}/g, ':$1'),
      handler: async () => {
        throw new HookrelayError('not_implemented', `hookrelay does not implement ${feature} (${method} ${path} of the Svix API); see docs/api.md`);
      },
    });
  }
}
