import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseErrorText } from './args.js';
import { apiClient, CliError, CONNECTION_OPTIONS, CONNECTION_USAGE, type Call } from './client.js';

export const SCAFFOLD_USAGE = `Usage:
  hookrelay scaffold receiver --framework express|fastify|lambda [--app <app>] [--out <dir>] [--name <package>] [--update]

Generates a TypeScript webhook receiver project: signatures checked with the official standardwebhooks library (raw
body, timestamp tolerance), idempotency on webhook-id, a fast 2xx with the work queued, one handler per event type
with types generated from the event types' JSON Schemas, and tests replaying the schemas' examples, signed.
The event types are read from the running server; with --app, only those the application's endpoints subscribe to.

  --framework <name>  express, fastify or lambda (AWS Lambda behind API Gateway or a function URL)
  --app <app>         the application (id or uid) the receiver is for
  --out <dir>         where to write the project (default ./<framework>-webhook-receiver); must be empty or absent
  --name <package>    the project's package name (default: the directory's name)
  --update            in an existing project: rewrite the generated files (src/types/, src/events.ts,
                      src/handlers/index.ts, test/samples.ts) and add handlers for new event types; every other
                      file, your handlers included, is kept

${CONNECTION_USAGE}`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  framework: { type: 'string' },
  app: { type: 'string' },
  out: { type: 'string' },
  name: { type: 'string' },
  update: { type: 'boolean' },
} as const;

interface EventTypeOut {
  name: string;
  description: string;
  archived: boolean;
  schemas: Record<string, unknown> | null;
}

/** Files the scaffold owns: rewritten by --update. Everything else is the project's once written. */
const isGenerated = (path: string) => path.startsWith('src/types/') || path === 'src/events.ts' || path === 'src/handlers/index.ts' || path === 'test/samples.ts';

async function listAll<T>(call: Call, path: string): Promise<T[]> {
  const rows: T[] = [];
  let iterator: string | null = null;
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const page: { data: T[]; iterator: string | null; done: boolean } = await call('GET', `${path}${sep}limit=250${iterator ? `&iterator=${encodeURIComponent(iterator)}` : ''}`);
    rows.push(...page.data);
    if (page.done || page.data.length === 0) return rows;
    iterator = page.iterator;
  }
}

/** The event types the receiver handles: all of them, or with --app those its endpoints subscribe to. */
async function eventTypesFor(call: Call, app: string | undefined): Promise<EventTypeOut[]> {
  const all = (await listAll<EventTypeOut>(call, '/api/v1/event-type?with_content=true')).filter((e) => !e.archived);
  if (!app) return all;
  const endpoints = await listAll<{ filterTypes: string[] | null; disabled: boolean }>(call, `/api/v1/app/${encodeURIComponent(app)}/endpoint`);
  const live = endpoints.filter((e) => !e.disabled);
  // An endpoint without an event-type filter receives every event type.
  if (live.length === 0 || live.some((e) => e.filterTypes === null || e.filterTypes.length === 0)) return all;
  const wanted = new Set(live.flatMap((e) => e.filterTypes!));
  return all.filter((e) => wanted.has(e.name));
}

export async function scaffoldCommand(args: string[], out: (text: string) => void): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true }));
  } catch (error) {
    throw new CliError(`${parseErrorText('scaffold', error)}\nRun "hookrelay scaffold help" for the options.`, 2);
  }
  if (positionals.length !== 1 || positionals[0] !== 'receiver') throw new CliError('scaffold: what to generate: "hookrelay scaffold receiver --framework express|fastify|lambda"', 2);
  const { FRAMEWORKS, receiverFiles } = await import('../scaffold/receiver.js');
  const framework = values.framework as string | undefined;
  if (!framework || !(FRAMEWORKS as readonly string[]).includes(framework)) throw new CliError(`scaffold receiver: --framework must be one of ${FRAMEWORKS.join(', ')}`, 2);
  const dir = resolve((values.out as string | undefined) ?? `${framework}-webhook-receiver`);
  const update = values.update === true;
  if (update && !existsSync(join(dir, 'src/events.ts'))) throw new CliError(`scaffold receiver --update: ${dir} holds no generated receiver (no src/events.ts)`, 2);
  if (!update && existsSync(dir) && readdirSync(dir).length > 0) throw new CliError(`scaffold receiver: ${dir} is not empty (pass --update to refresh a generated project)`, 2);
  const name = (values.name as string | undefined) ?? basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
  if (!/^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/.test(name)) throw new CliError(`scaffold receiver: ${JSON.stringify(name)} is not a valid npm package name (pass --name)`, 2);

  const call = apiClient({ server: values.server as string | undefined, token: values.token as string | undefined, db: values.db as string | undefined });
  const app = values.app as string | undefined;
  const eventTypes = await eventTypesFor(call, app);
  if (eventTypes.length === 0) throw new CliError(`scaffold receiver: no event types${app ? ` for the application ${app}` : ''}: create event types (with JSON Schemas and examples) first`, 2);
  const { scaffoldEvents } = await import('../scaffold/event-types.js');
  const events = await scaffoldEvents(eventTypes);
  const files = receiverFiles({ framework: framework as (typeof FRAMEWORKS)[number], name, app: app ?? null, events });
  const kept: string[] = [];
  for (const [path, content] of Object.entries(files)) {
    const target = join(dir, path);
    if (update && !isGenerated(path) && existsSync(target)) {
      kept.push(path);
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
  const examples = events.reduce((n, e) => n + e.examples.length, 0);
  out(`wrote a ${framework} receiver to ${dir}: ${events.length} event type(s) (${events.map((e) => e.name).join(', ')}), ${examples} sample payload(s) for its tests\n`);
  if (update) out(`kept ${kept.length} existing file(s) that are yours (handlers, app, tests, configuration)\n`);
  out(`next: cd ${dir} && npm install && npm test\n`);
  return 0;
}
