/** What differs between the receiver frameworks: dependencies, the entry files, how the tests send a request. */

export const FRAMEWORKS = ['express', 'fastify', 'lambda'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/** Versions the generated project depends on: current majors, known to build together. */
export const DEPENDENCIES: Record<Framework, Record<string, string>> = {
  express: { express: '^5.1.0', standardwebhooks: '^1.0.0' },
  fastify: { fastify: '^5.4.0', standardwebhooks: '^1.0.0' },
  lambda: { standardwebhooks: '^1.0.0' },
};
export const DEV_DEPENDENCIES: Record<Framework, Record<string, string>> = {
  express: { '@types/express': '^5.0.0', '@types/node': '^20.0.0', typescript: '^5.5.0' },
  fastify: { '@types/node': '^20.0.0', typescript: '^5.5.0' },
  lambda: { '@types/aws-lambda': '^8.10.0', '@types/node': '^20.0.0', typescript: '^5.5.0' },
};

/** How each framework's test sends a request to the receiver it builds. */
export const REPLAY: Record<Framework, { imports: string; setup: string; send: string; teardown: string }> = {
  express: {
    imports: `import type { AddressInfo } from 'node:net';\nimport type { Server } from 'node:http';\nimport { createApp } from '../src/app.js';`,
    setup: `  const app = createApp(receiver);\n  const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });\n  const url = \`http://127.0.0.1:\${(server.address() as AddressInfo).port}/webhooks\`;`,
    send: `    const response = await fetch(url, { method: 'POST', headers, body });\n    return { status: response.status };`,
    teardown: `  await new Promise((resolve) => server.close(resolve));`,
  },
  fastify: {
    imports: `import { createApp } from '../src/app.js';`,
    setup: `  const app = createApp(receiver);\n  const url = \`\${await app.listen({ port: 0, host: '127.0.0.1' })}/webhooks\`;`,
    send: `    const response = await fetch(url, { method: 'POST', headers, body });\n    return { status: response.status };`,
    teardown: `  await app.close();`,
  },
  lambda: {
    imports: `import type { APIGatewayProxyEventV2 } from 'aws-lambda';\nimport { createLambdaHandler } from '../src/handler.js';`,
    setup: `  const lambda = createLambdaHandler(receiver);`,
    send: `    const event = { body: Buffer.from(body).toString('base64'), isBase64Encoded: true, headers, requestContext: { http: { method: 'POST' } } } as unknown as APIGatewayProxyEventV2;\n    const result = await lambda(event);\n    return { status: typeof result === 'object' ? (result.statusCode ?? 200) : 200 };`,
    teardown: ``,
  },
};

const EXPRESS_APP = `import express, { type Express } from 'express';
import type { createReceiver } from './receiver.js';

/** POST /webhooks: the raw body (never re-serialised JSON) goes to the signature check. */
export function createApp(receiver: ReturnType<typeof createReceiver>): Express {
  const app = express();
  app.post('/webhooks', express.raw({ type: () => true, limit: '1mb' }), async (request, response, next) => {
    try {
      const body: Buffer = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const answer = await receiver.receive(body, request.headers);
      response.status(answer.status).send(answer.body);
    } catch (error) {
      next(error);
    }
  });
  return app;
}
`;

const FASTIFY_APP = `import Fastify, { type FastifyInstance } from 'fastify';
import type { createReceiver } from './receiver.js';

/** POST /webhooks: every content type is kept as the raw body, for the signature check. */
export function createApp(receiver: ReturnType<typeof createReceiver>): FastifyInstance {
  const app = Fastify({ bodyLimit: 1024 * 1024 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.post('/webhooks', async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const answer = await receiver.receive(body, request.headers);
    return reply.code(answer.status).send(answer.body);
  });
  return app;
}
`;

const serverEntry = (listen: string) => `import { createApp } from './app.js';
import { createReceiver } from './receiver.js';

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error('WEBHOOK_SECRET is not set: use the endpoint\\'s signing secret (whsec_…)');
  process.exit(2);
}
const receiver = createReceiver({ secret });
const app = createApp(receiver);
const port = Number(process.env.PORT ?? 3000);
${listen}
`;

const LAMBDA_HANDLER = `import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { createReceiver } from './receiver.js';

/** The handler for an API Gateway HTTP API or a function URL (payload format 2.0). */
export function createLambdaHandler(receiver: ReturnType<typeof createReceiver>) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyResultV2> => {
    const body = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
    const answer = await receiver.receive(body, event.headers ?? {});
    // Lambda freezes the runtime once the handler returns: queued work runs before the answer leaves.
    await receiver.queue.drain();
    return { statusCode: answer.status, body: answer.body };
  };
}

let receiver: ReturnType<typeof createReceiver> | undefined;

export const handler = (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyResultV2> => {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret) throw new Error('WEBHOOK_SECRET is not set');
  receiver ??= createReceiver({ secret });
  return createLambdaHandler(receiver)(event);
};
`;

export const ENTRY: Record<Framework, Record<string, string>> = {
  express: {
    'src/app.ts': EXPRESS_APP,
    'src/server.ts': serverEntry(`const server = app.listen(port, () => {
  const address = server.address();
  console.log(\`listening on port \${typeof address === 'object' && address ? address.port : port}\`);
});`),
  },
  fastify: {
    'src/app.ts': FASTIFY_APP,
    'src/server.ts': serverEntry(`app.listen({ port, host: process.env.HOST ?? '0.0.0.0' }).then(() => {
  const address = app.server.address();
  console.log(\`listening on port \${typeof address === 'object' && address ? address.port : port}\`);
});`),
  },
  lambda: { 'src/handler.ts': LAMBDA_HANDLER },
};
