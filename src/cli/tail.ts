import { parseCommand } from './args.js';
import { apiClient, CliError, CONNECTION_OPTIONS, CONNECTION_USAGE, type Call } from './client.js';
import type { Out } from './output.js';

/**
 * `hookrelay tail`: follows new messages and attempt outcomes of a running server, polling its API (messages and
 * attempts are listed newest first, and their ids sort by time, so "new" is "id greater than the last one seen").
 * Works against any hookrelay the CLI can reach, and across every process sharing a PostgreSQL database.
 */

export const TAIL_USAGE = `Usage:
  hookrelay tail [--app <app>] [--endpoint <endpoint>] [--interval <seconds>] [--json]

Prints each new message and each attempt as it is recorded, until interrupted (Ctrl-C). Without --app, follows every
application (the list is refreshed every 10 polls). --endpoint keeps the attempts of that endpoint (id or uid) only.
Successful attempts are green, failed ones red (when the output is a terminal and NO_COLOR is unset). --json prints one
object per line: {"kind": "message", …the API's message} or {"kind": "attempt", …the API's attempt}.
It polls: each poll reads one page of messages per application and one page of attempts per endpoint followed.

${CONNECTION_USAGE}`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  app: { type: 'string' },
  endpoint: { type: 'string' },
  interval: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type Json = Record<string, any>;
const enc = encodeURIComponent;
const REFRESH_EVERY = 10;

export async function tailCommand(args: string[], out: Out, signal?: AbortSignal): Promise<number> {
  const { values, positionals } = parseCommand('tail', args, OPTIONS, TAIL_USAGE);
  if (positionals.length > 0) throw new CliError(`hookrelay tail takes no argument ${JSON.stringify(positionals[0])}; did you mean --app ${positionals[0]}?\n\n${TAIL_USAGE}`, 2);
  const seconds = Number(values.interval ?? '1');
  if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600) throw new CliError(`--interval must be a number of seconds from 0.1 to 3600, not ${JSON.stringify(values.interval)}`, 2);
  const call = apiClient(values);
  const colour = !values.json && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const paint = (code: string, text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text);
  const clock = (iso: string) => (iso ?? '').slice(11, 23);

  const apps = new Map<string, Json>();
  const endpoints = new Map<string, Json[]>();
  const messageCursor = new Map<string, string>();
  const attemptCursor = new Map<string, string>();

  const refresh = async () => {
    const found: Json[] = [];
    if (values.app !== undefined) found.push(await call('GET', `/api/v1/app/${enc(values.app)}`));
    else found.push(...(await all(call, '/api/v1/app')));
    for (const app of found) {
      apps.set(app.id, app);
      let list = await all(call, `/api/v1/app/${enc(app.id)}/endpoint`);
      if (values.endpoint !== undefined) list = list.filter((e) => e.id === values.endpoint || e.uid === values.endpoint);
      endpoints.set(app.id, list);
    }
    if (values.endpoint !== undefined && [...endpoints.values()].every((l) => l.length === 0)) {
      throw new CliError(`no endpoint ${JSON.stringify(values.endpoint)}${values.app ? ` in application ${values.app}` : ''}`, 2);
    }
  };

  /** Items of a newest-first list newer than the cursor, oldest first; the first look only sets the cursor. */
  const newer = async (cursors: Map<string, string>, key: string, path: string): Promise<Json[]> => {
    const page: { data: Json[] } = await call('GET', `${path}${path.includes('?') ? '&' : '?'}limit=50`);
    const cursor = cursors.get(key);
    if (page.data.length > 0 && (cursor === undefined || page.data[0].id > cursor)) cursors.set(key, page.data[0].id);
    if (cursor === undefined) {
      if (page.data.length === 0) cursors.set(key, '');
      return [];
    }
    return page.data.filter((item) => item.id > cursor).reverse();
  };

  const printMessage = (app: Json, m: Json) => {
    if (values.json) return out(JSON.stringify({ kind: 'message', appId: app.id, ...m }) + '\n');
    out(`${clock(m.timestamp)}  ${paint('36', 'message')}  ${m.id}  ${m.eventType}${m.eventId ? `  eventId=${m.eventId}` : ''}  app=${app.uid ?? app.id}\n`);
  };
  const printAttempt = (app: Json, a: Json) => {
    if (values.json) return out(JSON.stringify({ kind: 'attempt', appId: app.id, ...a }) + '\n');
    const ok = a.status === 0;
    const mark = paint(ok ? '32' : '31', `${ok ? 'ok  ' : 'FAIL'} ${String(a.responseStatusCode).padStart(3)}`);
    out(`${clock(a.timestamp)}  ${mark}  ${String(a.responseDurationMs ?? '').padStart(5)} ms  ${a.msgId} -> ${a.endpointId}  ${a.url}${a.triggerType === 1 ? '  (manual)' : ''}\n`);
  };

  let polls = 0;
  let failing: string | null = null;
  const stopped = new Promise<void>((resolve) => {
    const stop = () => resolve();
    signal?.addEventListener('abort', stop, { once: true });
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  let stop = false;
  void stopped.then(() => (stop = true));
  while (!stop) {
    try {
      if (polls % REFRESH_EVERY === 0) await refresh();
      for (const app of apps.values()) {
        for (const m of await newer(messageCursor, app.id, `/api/v1/app/${enc(app.id)}/msg`)) printMessage(app, m);
        for (const e of endpoints.get(app.id) ?? []) {
          for (const a of await newer(attemptCursor, e.id, `/api/v1/app/${enc(app.id)}/attempt/endpoint/${enc(e.id)}`)) printAttempt(app, a);
        }
      }
      if (polls === 0) process.stderr.write(`following ${apps.size} ${apps.size === 1 ? 'application' : 'applications'} (Ctrl-C to stop)\n`);
      if (failing !== null) process.stderr.write('reachable again\n');
      failing = null;
    } catch (error) {
      if (error instanceof CliError && error.exitCode === 2 && polls === 0) throw error;
      const message = (error as Error).message;
      if (failing !== message) process.stderr.write(`${message} (retrying)\n`);
      failing = message;
    }
    polls++;
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, seconds * 1000))]);
  }
  return 0;
}

async function all(call: Call, path: string): Promise<Json[]> {
  const rows: Json[] = [];
  let iterator: string | null = null;
  for (;;) {
    const page: { data: Json[]; iterator: string | null; done: boolean } = await call('GET', `${path}?limit=250${iterator ? `&iterator=${enc(iterator)}` : ''}`);
    rows.push(...page.data);
    if (page.done || page.data.length === 0) return rows;
    iterator = page.iterator;
  }
}
