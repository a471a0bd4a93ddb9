import { hostname } from 'node:os';
import { parseCommand, required } from './args.js';
import { apiClient, CliError, CONNECTION_OPTIONS, CONNECTION_USAGE, serverOf, tokenOf } from './client.js';
import type { Out } from './output.js';

/**
 * `hookrelay listen`: receives an app's deliveries on a developer's machine. The CLI holds a streaming response open
 * to hookrelay (so hookrelay never needs to reach the machine), forwards each delivery to the local URL with its
 * headers and body unchanged (signed with the session endpoint's secret) and posts the local answer back as the
 * attempt's outcome. The connection is re-opened after a failure; the session's endpoint keeps its retrying deliveries.
 */

export const LISTEN_USAGE = `Usage:
  hookrelay listen --app <id|uid> --forward-to <url> [--session <name>] [--events <type,…>] [--keep] [--json]

Forwards the deliveries of an application to a local URL, through a connection this machine opens to hookrelay.
  --app <id|uid>        the application (an app API key given as --token reaches its own app only)
  --forward-to <url>    where each delivery is POSTed, e.g. http://localhost:3000/hooks
  --session <name>      the session, whose temporary endpoint has uid listen-<name> (default: this host's name);
                        listening again with the same name resumes it, retried deliveries included
  --events <type,…>     only these event types
  --keep                keep the session's endpoint on exit (its deliveries wait, and are retried, until it resumes)
  --json                one JSON line per delivery on stdout

${CONNECTION_USAGE}`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  app: { type: 'string' },
  'forward-to': { type: 'string' },
  session: { type: 'string' },
  events: { type: 'string' },
  keep: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

interface RequestEvent {
  type: 'request';
  id: string;
  messageId: string;
  eventType: string;
  headers: Record<string, string>;
  body: string;
}

/** Kept of the local answer: the attempt stores 20 kB at most anyway. */
const ANSWER_BODY_LIMIT = 64 * 1024;
const LOCAL_TIMEOUT_MS = 30_000;

export async function listenCommand(args: string[], out: Out, err: Out, signal?: AbortSignal): Promise<number> {
  const { values } = parseCommand('listen', args, OPTIONS, LISTEN_USAGE);
  const app = required('listen', values.app, '--app', LISTEN_USAGE);
  const forwardTo = required('listen', values['forward-to'], '--forward-to', LISTEN_USAGE);
  let target: URL;
  try {
    target = new URL(forwardTo);
  } catch {
    throw new CliError(`hookrelay listen: --forward-to ${JSON.stringify(forwardTo)} is not a URL (e.g. http://localhost:3000/hooks)`, 2);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new CliError('hookrelay listen: --forward-to must be an http:// or https:// URL', 2);
  const session = values.session ?? (hostname().replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 64) || 'local');
  const filterTypes = values.events ? values.events.split(',').map((t) => t.trim()).filter(Boolean) : null;
  const server = serverOf(values);
  const token = tokenOf(values.token, values.db ?? process.env.HOOKRELAY_DB ?? './hookrelay.db');
  const call = apiClient(values);
  const path = `/api/v1/app/${encodeURIComponent(app)}/listen`;

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  signal?.addEventListener('abort', onSignal, { once: true });

  const forward = async (event: RequestEvent) => {
    const started = Date.now();
    let answer: { id: string; status?: number; body?: string; error?: string };
    try {
      const response = await fetch(target, { method: 'POST', headers: event.headers, body: Buffer.from(event.body, 'base64'), redirect: 'manual', signal: AbortSignal.timeout(LOCAL_TIMEOUT_MS) });
      const text = await response.text();
      answer = { id: event.id, status: response.status, body: text.slice(0, ANSWER_BODY_LIMIT) };
    } catch (error) {
      const e = error as Error & { cause?: Error };
      answer = { id: event.id, error: e.cause?.message ?? e.message };
    }
    const ms = Date.now() - started;
    if (values.json) out(JSON.stringify({ messageId: event.messageId, eventType: event.eventType, status: answer.status ?? null, error: answer.error ?? null, ms }) + '\n');
    else out(`${new Date(started).toISOString()}  ${event.eventType}  ${event.messageId}  → ${answer.status ?? `failed: ${answer.error}`}  ${ms} ms\n`);
    try {
      await call('POST', `${path}/${encodeURIComponent(session)}/answer`, answer);
    } catch (error) {
      // Too late (the attempt timed out) or the connection moved: the delivery is retried either way.
      err(`hookrelay listen: the answer for ${event.messageId} was not taken: ${(error as Error).message}\n`);
    }
  };

  let delay = 1000;
  let code = 0;
  /** Reconnecting is for a connection that worked: a server never reached is a mistake to report at once. */
  let connected = false;
  try {
    while (!stop.signal.aborted) {
      let ended: 'replaced' | 'ended' | null = null;
      try {
        const response = await fetch(server + path, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ session, filterTypes }),
          signal: stop.signal,
        });
        if (!response.ok) {
          const text = await response.text();
          let detail = text;
          try {
            const json = JSON.parse(text);
            detail = Array.isArray(json.detail) ? json.detail.map((d: { loc: string[]; msg: string }) => `${d.loc.join('.')}: ${d.msg}`).join('; ') : json.detail;
          } catch {}
          if (response.status < 500) throw new CliError(`hookrelay listen: ${response.status} ${detail}`, 2);
          throw new Error(`${response.status} ${detail}`);
        }
        for await (const event of lines(response.body!)) {
          if (event.type === 'ready') {
            delay = 1000;
            connected = true;
            err(`Forwarding deliveries of ${app} to ${target} (session ${event.session}, endpoint ${event.endpointId}).\nSigning secret: ${event.secret}\nCtrl-C to stop.\n`);
          } else if (event.type === 'request') {
            void forward(event as unknown as RequestEvent);
          } else if (event.type === 'replaced' || event.type === 'ended') {
            ended = event.type;
          }
        }
      } catch (error) {
        if (error instanceof CliError) throw error;
        if (stop.signal.aborted) break;
        const e = error as Error & { cause?: Error };
        if (!connected) throw new CliError(`cannot reach hookrelay at ${server}: ${e.cause?.message ?? e.message}`, 1);
        err(`hookrelay listen: connection to ${server} lost (${e.cause?.message ?? e.message}); reconnecting in ${delay / 1000} s\n`);
      }
      if (ended === 'replaced') throw new CliError(`hookrelay listen: another hookrelay listen took over session ${session}`, 1);
      if (ended === 'ended') {
        err(`hookrelay listen: session ${session} was deleted on the server\n`);
        return 0;
      }
      if (stop.signal.aborted) break;
      await sleep(delay, stop.signal);
      delay = Math.min(delay * 2, 30_000);
    }
    if (!values.keep) {
      try {
        await call('DELETE', `${path}/${encodeURIComponent(session)}`);
      } catch (error) {
        err(`hookrelay listen: could not end session ${session}: ${(error as Error).message}\n`);
        code = 1;
      }
    }
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The stream's JSON lines. */
async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<Record<string, any>> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim()) yield JSON.parse(line);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
