import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { invalid, notFound } from '../../domain/errors.js';
import { brokerSourceHosts, isBrokerSourceType } from '../../inbound/brokers/config.js';
import type { App, Source } from '../../domain/types.js';
import { redactConfig, validateSourceConfig } from '../../inbound/source-config.js';
import { pascalCase, redactedConfigSchema, sourceTypes, type JsonSchema } from '../../inbound/source-types.js';
import type { ApiKeys } from '../api-keys.js';
import { principalOf, requireAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { presentPage } from '../present.js';
import type { Router } from '../router.js';
import { listOf, metadata, metadataIn, PageQuery, uid } from '../schemas.js';
import { parse } from '../validation.js';
import { endpointRoutes, type EndpointScope } from './endpoints.js';
import { transformationRoutes } from './transformations.js';

const IngestSourceIn = z.strictObject({
  name: z.string().min(1).max(256),
  uid: uid('src').nullish(),
  type: z.string().min(1).max(64),
  config: z.record(z.string(), z.unknown()).default({}),
  metadata: metadataIn.optional(),
});

const IngestSourceOut = z.object({
  id: z.string(),
  uid: z.string().nullable(),
  name: z.string(),
  type: z.string(),
  config: z.record(z.string(), z.unknown()).describe('The config without its secrets'),
  ingestUrl: z.string(),
  appId: z.string().describe('hookrelay extension: the app whose messages this source creates'),
  metadata: z.record(z.string(), z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  consumer: z
    .object({ state: z.enum(['starting', 'running', 'paused', 'error', 'disabled']), error: z.string().nullable(), since: z.string() })
    .nullable()
    .optional()
    .describe('hookrelay extension, broker sources only: the state of this process\'s consumer (error: the broker\'s message; paused: the store is failing)'),
});

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * The OpenAPI shapes of a source, one variant per type (`oneOf` with a discriminator on `type`), so that generated
 * clients see each type's `config` fields; the zod schemas above only say "an object".
 */
function sourceComponents(): Record<string, unknown> {
  const components: Record<string, unknown> = {};
  const inBase = z.toJSONSchema(IngestSourceIn, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const outBase = z.toJSONSchema(IngestSourceOut, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
  const variant = (base: JsonSchema, type: string, config: unknown, configRequired: boolean) => ({
    type: 'object',
    properties: { ...base.properties, type: { type: 'string', enum: [type] }, config },
    required: [...new Set([...(base.required ?? []), 'type', ...(configRequired ? ['config'] : [])])],
    additionalProperties: base.additionalProperties ?? true,
  });
  const inMapping: Record<string, string> = {};
  const outMapping: Record<string, string> = {};
  for (const { type, aliasOf, config, broker } of sourceTypes()) {
    const name = pascalCase(type);
    const description = aliasOf ? `Same as the ${aliasOf} type.` : broker ? `Config of a ${type} broker source: hookrelay consumes it (docs/brokers.md).` : `Config of a ${type} source.`;
    components[`IngestSourceConfig${name}`] = { ...config, description };
    components[`IngestSourceIn${name}`] = variant(inBase, type, ref(`IngestSourceConfig${name}`), (config.required ?? []).length > 0);
    components[`IngestSourceOut${name}`] = variant(outBase, type, { ...redactedConfigSchema(config), description: 'The config without its secrets' }, true);
    inMapping[type] = `#/components/schemas/IngestSourceIn${name}`;
    outMapping[type] = `#/components/schemas/IngestSourceOut${name}`;
  }
  components.IngestSourceIn = { oneOf: Object.values(inMapping).map(($ref) => ({ $ref })), discriminator: { propertyName: 'type', mapping: inMapping } };
  components.IngestSourceOut = { oneOf: Object.values(outMapping).map(($ref) => ({ $ref })), discriminator: { propertyName: 'type', mapping: outMapping } };
  return components;
}

let components: Record<string, unknown> | undefined;
const one = () => ({ body: ref('IngestSourceIn'), response: ref('IngestSourceOut'), components: (components ??= sourceComponents()) });
const page = () => {
  const list = z.toJSONSchema(listOf(z.object({})), { io: 'output' }) as JsonSchema;
  return { response: { ...list, properties: { ...list.properties, data: { type: 'array', items: ref('IngestSourceOut') } } }, components: (components ??= sourceComponents()) };
};

/** The unguessable path segment of an ingest URL. */
const newToken = () => randomBytes(18).toString('base64url');

const baseUrlOf = (request: FastifyRequest) => `${request.protocol}://${request.headers.host ?? request.hostname}`;

function present(source: Source, request: FastifyRequest, ctx?: ApiContext) {
  const consumer = isBrokerSourceType(source.type) ? (ctx?.brokerSources?.stateOf(source.id) ?? null) : undefined;
  return {
    id: source.id,
    uid: source.uid,
    name: source.name,
    type: source.type,
    config: redactConfig(source.config),
    ingestUrl: `${baseUrlOf(request)}/ingest/${source.token}`,
    appId: source.appId,
    metadata: source.metadata,
    createdAt: new Date(source.createdAt).toISOString(),
    updatedAt: new Date(source.updatedAt).toISOString(),
    ...(consumer === undefined ? {} : { consumer: consumer && { state: consumer.state, error: consumer.error, since: new Date(consumer.since).toISOString() } }),
  };
}

/** A broker source's addresses are held to the egress policy when saved (422 naming the setting), as endpoints' are. */
function refuseInternalBroker(ctx: ApiContext, type: string, config: Record<string, unknown>): void {
  if (!isBrokerSourceType(type)) return;
  for (const { field, host } of brokerSourceHosts(type, config)) {
    const refusal = ctx.egress.refuseHost(host);
    if (refusal) throw invalid(['body', 'config', ...field.split('.').map((part) => (/^\d+$/.test(part) ? Number(part) : part))], refusal);
  }
}

/** Starts, restarts or stops the consumer of a broker source that was saved or deleted (a failure waits for the resync). */
async function resyncBrokers(ctx: ApiContext, type: string, request: FastifyRequest): Promise<void> {
  if (!isBrokerSourceType(type) || !ctx.brokerSources) return;
  await ctx.brokerSources.sync().catch((error) => request.log.warn({ err: error }, 'starting the broker source consumer failed'));
}

async function sourceOf(ctx: ApiContext, request: FastifyRequest): Promise<Source> {
  requireAdmin(principalOf(request));
  const id = (request.params as { source_id: string }).source_id;
  const source = await ctx.store.getSource(id);
  if (!source) throw notFound('source', id);
  return source;
}

/** Sources, managed with the same paths and shapes as Svix Ingest (`svix.ingest.source`, `svix.ingest.endpoint`). */
export function sourceRoutes(router: Router, ctx: ApiContext, keys: ApiKeys): void {
  const tag = 'IngestSource';
  const base = '/ingest/api/v1/source';

  router.add({ method: 'GET', url: base, summary: 'List sources', tag, status: 200, query: PageQuery, response: listOf(IngestSourceOut), document: page }, async (request) => {
    requireAdmin(principalOf(request));
    const page = await ctx.store.listSources(parse(PageQuery, request.query, 'query'));
    return presentPage(page, (s) => present(s, request, ctx));
  });

  router.add({ method: 'POST', url: base, summary: 'Create source', tag, status: 201, body: IngestSourceIn, response: IngestSourceOut, document: one }, async (request) => {
    requireAdmin(principalOf(request));
    const body = parse(IngestSourceIn, request.body, 'body');
    const config = validateSourceConfig(body.type, body.config);
    refuseInternalBroker(ctx, body.type, config);
    const source = await ctx.store.createSource({ name: body.name, uid: body.uid ?? null, type: body.type, config, metadata: body.metadata ?? {} }, newToken(), ctx.now());
    if (source.type === 'none' || source.type === 'generic-webhook') request.log.warn({ sourceId: source.id }, 'created a source that accepts requests without verification');
    await resyncBrokers(ctx, source.type, request);
    return present(source, request, ctx);
  });

  router.add({ method: 'GET', url: `${base}/:source_id`, summary: 'Get source', tag, status: 200, response: IngestSourceOut, document: one }, async (request) => {
    return present(await sourceOf(ctx, request), request, ctx);
  });

  router.add({ method: 'PUT', url: `${base}/:source_id`, summary: 'Update source', tag, status: 200, body: IngestSourceIn, response: IngestSourceOut, document: one }, async (request) => {
    const source = await sourceOf(ctx, request);
    const body = parse(IngestSourceIn, request.body, 'body');
    const config = validateSourceConfig(body.type, body.config);
    refuseInternalBroker(ctx, body.type, config);
    const updated = await ctx.store.updateSource(source.id, { name: body.name, uid: body.uid ?? null, type: body.type, config, metadata: body.metadata ?? {} }, ctx.now());
    await resyncBrokers(ctx, isBrokerSourceType(source.type) ? source.type : updated.type, request);
    return present(updated, request, ctx);
  });

  router.add({ method: 'DELETE', url: `${base}/:source_id`, summary: 'Delete source', tag, status: 204 }, async (request) => {
    const source = await sourceOf(ctx, request);
    await ctx.store.deleteSource(source.id);
    keys.forgetApp(source.appId);
    await resyncBrokers(ctx, source.type, request);
  });

  router.add(
    { method: 'POST', url: `${base}/:source_id/token/rotate`, summary: 'Rotate ingest token', tag, status: 200, response: z.object({ ingestUrl: z.string() }) },
    async (request) => {
      const source = await sourceOf(ctx, request);
      const rotated = await ctx.store.setSourceToken(source.id, newToken(), ctx.now());
      return { ingestUrl: present(rotated, request).ingestUrl };
    },
  );

  // hookrelay extension: why recent requests to the ingest URL were refused (in memory, per process; see ingest.ts).
  router.add(
    {
      method: 'GET',
      url: `${base}/:source_id/verification-failures`,
      summary: 'Recent verification failures',
      tag,
      status: 200,
      response: z.object({ data: z.array(z.object({ at: z.string(), reason: z.string() })), total: z.number() }),
    },
    async (request) => {
      const source = await sourceOf(ctx, request);
      const { recent, total } = ctx.ingest.failures.of(source.id);
      return { data: recent.map((f) => ({ at: new Date(f.at).toISOString(), reason: f.reason })), total };
    },
  );

  const sourceEndpoints: EndpointScope = {
    base: `${base}/:source_id/endpoint`,
    tag: 'IngestEndpoint',
    appOf: async (c, request): Promise<App> => {
      const source = await sourceOf(c, request);
      const app = await c.store.getApp(source.appId);
      if (!app) throw notFound('source', source.id);
      return app;
    },
  };
  endpointRoutes(router, ctx, sourceEndpoints);
  transformationRoutes(router, ctx, sourceEndpoints);
}
