import { readFileSync } from 'node:fs';
import { parseCommand, required } from './args.js';
import { apiClient, CliError, CONNECTION_OPTIONS, CONNECTION_USAGE, type Call } from './client.js';
import { printJson, printRecord, printTable, type Column, type Out } from './output.js';

/**
 * `hookrelay app|endpoint|message|attempt …`, `resend`, `recover`: inspect and act on a running server through its API,
 * like the svix CLI. Tables for people, `--json` for programs (the API's own JSON).
 */

export const RESOURCE_USAGE = `Usage:
  hookrelay app list                                        applications
  hookrelay app get <app>
  hookrelay endpoint list <app>
  hookrelay endpoint get <app> <endpoint>
  hookrelay endpoint create <app> --url <url> [--description <text>] [--uid <uid>] [--filter-types <a,b>]
                                  [--secret <whsec_…> | --signing ed25519] [--disabled] [--verification challenge]
                                  [--ordering parallel|fifo|key] [--ordering-on-park skip|hold]
  hookrelay endpoint update <app> <endpoint> [--url <url>] [--description <text>] [--filter-types <a,b>]
                                  [--disabled true|false] [--signing hmac|ed25519] [--verification none|challenge]
                                  [--ordering parallel|fifo|key] [--ordering-on-park skip|hold]
  hookrelay endpoint verify <app> <endpoint>                start the endpoint's registration handshake again; its
                                                            messages are held until it echoes the challenge
  hookrelay endpoint delete <app> <endpoint>
  hookrelay endpoint secret <app> <endpoint>                the signing secret (whsec_…), or an ed25519 endpoint's
                                                            public key (whpk_…)
  hookrelay endpoint rotate-secret <app> <endpoint>         a new signing secret; the old one signs for another day
  hookrelay endpoint encryption-keys <app> <endpoint>       public keys deliveries are encrypted to (newest first)
  hookrelay endpoint add-encryption-key <app> <endpoint> --jwk-file <file>
                                  register a public JWK (RSA >= 2048, EC P-256 or X25519, with a kid); deliveries
                                  are then encrypted to it as a JWE
  hookrelay endpoint delete-encryption-key <app> <endpoint> <kid>
  hookrelay endpoint transformation <app> <endpoint> [--code-file <file.js>] [--enabled true|false] [--remove]
                                  show, set, enable/disable or remove the endpoint's transformation
  hookrelay endpoint simulate <app> <endpoint> --code-file <file.js> --event-type <type> (--data <json> | --data-file <file>)
                                  run a transformation on a sample payload; nothing is saved or sent
  hookrelay message list <app> [--event-types <a,b>]
  hookrelay message get <app> <message>
  hookrelay message send <app> --event-type <type> (--data <json> | --data-file <file>) [--event-id <id>]
                                  [--idempotency-key <key>] [--ordering-key <key>]
  hookrelay attempt list <app> (--endpoint <endpoint> | --message <message>)
  hookrelay attempt get <app> <message> <attempt>
  hookrelay resend <app> <message> <endpoint>               deliver a message to an endpoint again
  hookrelay recover <app> <endpoint> --since <time|duration> [--until <time>]
                                  re-queue the endpoint's failed deliveries of messages created in that window
                                  (a time is ISO 8601; a duration such as 2h or 3d means that long ago)

<app>, <endpoint> and <message> take an id or a uid (a message also its eventId). Lists print up to --limit rows
(default 50, newest first); every command takes --json.

${CONNECTION_USAGE}`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  json: { type: 'boolean' },
  limit: { type: 'string' },
  url: { type: 'string' },
  description: { type: 'string' },
  uid: { type: 'string' },
  'filter-types': { type: 'string' },
  secret: { type: 'string' },
  signing: { type: 'string' },
  ordering: { type: 'string' },
  'ordering-on-park': { type: 'string' },
  'ordering-key': { type: 'string' },
  disabled: { type: 'string' },
  verification: { type: 'string' },
  'event-type': { type: 'string' },
  'event-types': { type: 'string' },
  'event-id': { type: 'string' },
  'idempotency-key': { type: 'string' },
  data: { type: 'string' },
  'data-file': { type: 'string' },
  'jwk-file': { type: 'string' },
  endpoint: { type: 'string' },
  message: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  'code-file': { type: 'string' },
  enabled: { type: 'string' },
  remove: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseCommand<typeof OPTIONS>>['values'];
type Json = Record<string, any>;

const enc = encodeURIComponent;
const list = (text: string | undefined) => (text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter(Boolean));

const ENDPOINT_COLUMNS: Column<Json>[] = [
  { title: 'id', value: (e) => e.id },
  { title: 'uid', value: (e) => e.uid },
  { title: 'url', value: (e) => e.url },
  { title: 'filter types', value: (e) => e.filterTypes },
  { title: 'disabled', value: (e) => (e.disabled ? 'yes' : 'no') },
  { title: 'circuit', value: (e) => e.circuit?.state },
  { title: 'verification', value: (e) => e.verification?.state },
];
const STATUS = ['succeeded', 'pending', 'failed', 'sending'];
const ATTEMPT_COLUMNS: Column<Json>[] = [
  { title: 'id', value: (a) => a.id },
  { title: 'time', value: (a) => a.timestamp },
  { title: 'message', value: (a) => a.msgId },
  { title: 'endpoint', value: (a) => a.endpointId },
  { title: 'status', value: (a) => STATUS[a.status] ?? a.status },
  { title: 'http', value: (a) => a.responseStatusCode },
  { title: 'ms', value: (a) => a.responseDurationMs },
];

/** The registration handshake's fields of an endpoint record, when it has one. */
function verificationRecord(e: Json): Json {
  const v = e.verification;
  if (!v || v.mode === 'none') return {};
  return { verification: v.state, ...(v.reason ? { verificationReason: v.reason } : {}), ...(v.nextAttemptAt ? { nextVerificationAttempt: v.nextAttemptAt } : {}) };
}

/** `2h`, `30m`, `3d` ago, or an ISO 8601 time; as ISO 8601. */
export function timeArg(flag: string, text: string, now = Date.now()): string {
  const relative = /^(\d+)(s|m|h|d)$/.exec(text);
  if (relative) return new Date(now - Number(relative[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 's']).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at) || !/^\d{4}-\d\d-\d\d/.test(text)) throw new CliError(`${flag} must be an ISO 8601 time (2026-12-01T00:00:00Z) or a duration ago (2h, 3d), not ${JSON.stringify(text)}`, 2);
  return new Date(at).toISOString();
}

function booleanArg(flag: string, text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  if (text === 'true' || text === '') return true;
  if (text === 'false') return false;
  throw new CliError(`${flag} must be true or false, not ${JSON.stringify(text)}`, 2);
}

function codeOf(values: Values): string | undefined {
  if (values['code-file'] === undefined) return undefined;
  try {
    return readFileSync(values['code-file'], 'utf8');
  } catch (error) {
    throw new CliError(`cannot read --code-file ${values['code-file']}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 2);
  }
}

function payloadOf(values: Values): unknown {
  if (values.data !== undefined && values['data-file'] !== undefined) throw new CliError('hookrelay message send: give --data or --data-file, not both', 2);
  let text = values.data;
  if (values['data-file'] !== undefined) {
    try {
      text = readFileSync(values['data-file'], 'utf8');
    } catch (error) {
      throw new CliError(`cannot read --data-file ${values['data-file']}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 2);
    }
  }
  if (text === undefined) throw new CliError(`hookrelay message send: --data (or --data-file) is required\n\n${RESOURCE_USAGE}`, 2);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`the message payload is not valid JSON: ${(error as Error).message}`, 2);
  }
}

async function page(call: Call, path: string, limit: number): Promise<Json[]> {
  const rows: Json[] = [];
  let iterator: string | null = null;
  while (rows.length < limit) {
    const sep = path.includes('?') ? '&' : '?';
    const result: { data: Json[]; iterator: string | null; done: boolean } = await call('GET', `${path}${sep}limit=${Math.min(250, limit - rows.length)}${iterator ? `&iterator=${enc(iterator)}` : ''}`);
    rows.push(...result.data);
    if (result.done || result.data.length === 0) break;
    iterator = result.iterator;
  }
  return rows;
}

/** Runs `hookrelay <resource> …`; `progress` gets the lines a long operation prints while it runs (stderr). */
export async function resourceCommand(resource: string, args: string[], out: Out, progress: Out = () => undefined): Promise<number> {
  const { values, positionals } = parseCommand(resource, args, OPTIONS, RESOURCE_USAGE);
  const [first, ...rest] = positionals;
  const action = resource === 'resend' || resource === 'recover' ? resource : first;
  const ids = resource === 'resend' || resource === 'recover' ? positionals : rest;
  const command = resource === action ? resource : `${resource} ${action ?? ''}`.trim();
  const need = (i: number, what: string) => {
    const id = ids[i];
    if (!id) throw new CliError(`hookrelay ${command} needs the ${what}\n\n${RESOURCE_USAGE}`, 2);
    return enc(id);
  };
  const limitText = values.limit ?? '50';
  if (!/^\d+$/.test(limitText) || Number(limitText) < 1) throw new CliError(`--limit must be a whole number of at least 1, not ${JSON.stringify(limitText)}`, 2);
  const limit = Number(limitText);
  const call = apiClient(values);
  const show = (value: Json, record: () => void) => (values.json ? printJson(out, value) : record());
  const showList = (rows: Json[], columns: Column<Json>[]) => (values.json ? printJson(out, rows) : printTable(out, rows, columns));

  switch (`${resource} ${resource === action ? '' : (action ?? '')}`.trim()) {
    case 'app list':
      showList(await page(call, '/api/v1/app', limit), [
        { title: 'id', value: (a) => a.id },
        { title: 'uid', value: (a) => a.uid },
        { title: 'name', value: (a) => a.name },
        { title: 'created', value: (a) => a.createdAt },
      ]);
      return 0;
    case 'app get': {
      const app = await call('GET', `/api/v1/app/${need(0, 'application id or uid')}`);
      show(app, () => printRecord(out, { id: app.id, uid: app.uid, name: app.name, rateLimit: app.rateLimit, metadata: app.metadata, created: app.createdAt, updated: app.updatedAt }));
      return 0;
    }
    case 'endpoint list':
      showList(await page(call, `/api/v1/app/${need(0, 'application id or uid')}/endpoint`, limit), ENDPOINT_COLUMNS);
      return 0;
    case 'endpoint get': {
      const e = await call('GET', `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}`);
      show(e, () => printRecord(out, { id: e.id, uid: e.uid, url: e.url, description: e.description, filterTypes: e.filterTypes, disabled: e.disabled, disabledReason: e.disabledReason, circuit: e.circuit?.state, signing: e.signing, ...(e.publicKey ? { publicKey: e.publicKey } : {}), ordering: e.ordering, ...(e.ordering === 'key' ? { orderingOnPark: e.orderingOnPark } : {}), ...verificationRecord(e), created: e.createdAt, updated: e.updatedAt }));
      return 0;
    }
    case 'endpoint create': {
      const app = need(0, 'application id or uid');
      const body = {
        url: required(command, values.url, '--url', RESOURCE_USAGE),
        description: values.description,
        uid: values.uid,
        filterTypes: list(values['filter-types']),
        secret: values.secret,
        signing: values.signing,
        disabled: booleanArg('--disabled', values.disabled),
        verification: values.verification,
        ordering: values.ordering,
        orderingOnPark: values['ordering-on-park'],
      };
      const e = await call('POST', `/api/v1/app/${app}/endpoint`, body);
      show(e, () => printRecord(out, { created: e.id, uid: e.uid, url: e.url, ...(e.publicKey ? { publicKey: e.publicKey } : {}), ...verificationRecord(e) }));
      return 0;
    }
    case 'endpoint update': {
      const body = {
        url: values.url,
        description: values.description,
        filterTypes: list(values['filter-types']),
        disabled: booleanArg('--disabled', values.disabled),
        signing: values.signing,
        verification: values.verification,
        ordering: values.ordering,
        orderingOnPark: values['ordering-on-park'],
      };
      if (Object.values(body).every((v) => v === undefined)) {
        throw new CliError(`hookrelay endpoint update: give at least one of --url, --description, --filter-types, --disabled, --signing, --verification, --ordering, --ordering-on-park\n\n${RESOURCE_USAGE}`, 2);
      }
      const e = await call('PATCH', `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}`, body);
      show(e, () => printRecord(out, { updated: e.id, url: e.url, filterTypes: e.filterTypes, disabled: e.disabled, signing: e.signing, ...(e.publicKey ? { publicKey: e.publicKey } : {}), ordering: e.ordering, ...verificationRecord(e) }));
      return 0;
    }
    case 'endpoint verify': {
      const e = await call('POST', `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}/verification`);
      show(e, () => out(`verification of ${e.id} started again (${e.verification.state}); its messages are delivered once ${e.url} echoes the challenge\n`));
      return 0;
    }
    case 'endpoint delete': {
      const endpoint = need(1, 'endpoint id or uid');
      await call('DELETE', `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${endpoint}`);
      show({ deleted: ids[1] }, () => out(`deleted ${ids[1]}\n`));
      return 0;
    }
    case 'endpoint secret': {
      const secret = await call('GET', `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}/secret`);
      show(secret, () => out(`${secret.key}\n`));
      return 0;
    }
    case 'endpoint transformation': {
      const base = `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}/transformation`;
      const code = codeOf(values);
      const enabled = booleanArg('--enabled', values.enabled);
      if (values.remove && code !== undefined) throw new CliError('hookrelay endpoint transformation: give --code-file or --remove, not both', 2);
      if (values.remove || code !== undefined || enabled !== undefined) {
        await call('PATCH', base, { ...(values.remove ? { code: null, enabled: false } : {}), ...(code !== undefined ? { code } : {}), ...(enabled !== undefined ? { enabled } : {}) });
      }
      const t = await call('GET', base);
      show(t, () => out(`enabled: ${t.enabled ? 'yes' : 'no'}; updated: ${t.updatedAt ?? 'never'}\n${t.code ?? '(no code)'}\n`));
      return 0;
    }
    case 'endpoint simulate': {
      const base = `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}/transformation/simulate`;
      const code = codeOf(values);
      if (code === undefined) throw new CliError(`hookrelay endpoint simulate: --code-file is required\n\n${RESOURCE_USAGE}`, 2);
      const result = await call('POST', base, { code, eventType: required(command, values['event-type'], '--event-type', RESOURCE_USAGE), payload: payloadOf(values) });
      show(result, () => out(result.cancel ? 'canceled: nothing would be sent\n' : `${result.method} ${result.url}\n${Object.entries(result.headers ?? {}).map(([k, v]) => `${k}: ${v}\n`).join('')}\n${result.payload}\n`));
      return 0;
    }
    case 'endpoint rotate-secret': {
      const base = `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}/secret`;
      await call('POST', `${base}/rotate`, {});
      const secret = await call('GET', base);
      show(secret, () => out(`${secret.key}\n(the previous ${secret.key.startsWith('whpk_') ? 'key' : 'secret'} keeps signing for 24 hours)\n`));
      return 0;
    }
    case 'endpoint encryption-keys': {
      const keys = await call('GET', `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}/encryption-key`);
      showList(keys.data, [
        { title: 'kid', value: (k) => k.kid },
        { title: 'alg', value: (k) => k.alg },
        { title: 'current', value: (k) => k.current },
        { title: 'created', value: (k) => k.createdAt },
      ]);
      return 0;
    }
    case 'endpoint add-encryption-key': {
      const path = `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}/encryption-key`;
      const file = required(command, values['jwk-file'], '--jwk-file', RESOURCE_USAGE);
      let jwk: unknown;
      try {
        jwk = JSON.parse(readFileSync(file, 'utf8'));
      } catch (error) {
        throw new CliError(`cannot read a JWK from --jwk-file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 2);
      }
      const key = await call('POST', path, jwk);
      show(key, () => printRecord(out, { added: key.kid, alg: key.alg, current: key.current }));
      return 0;
    }
    case 'endpoint delete-encryption-key': {
      const kid = need(2, 'key id (kid)');
      await call('DELETE', `/api/v1/app/${need(0, 'application id or uid')}/endpoint/${need(1, 'endpoint id or uid')}/encryption-key/${kid}`);
      show({ deleted: ids[2] }, () => out(`deleted ${ids[2]}\n`));
      return 0;
    }
    case 'message list': {
      const types = values['event-types'] ? `?event_types=${enc(values['event-types'])}` : '';
      showList(await page(call, `/api/v1/app/${need(0, 'application id or uid')}/msg${types}`, limit), [
        { title: 'id', value: (m) => m.id },
        { title: 'event type', value: (m) => m.eventType },
        { title: 'event id', value: (m) => m.eventId },
        { title: 'time', value: (m) => m.timestamp },
      ]);
      return 0;
    }
    case 'message get': {
      const m = await call('GET', `/api/v1/app/${need(0, 'application id or uid')}/msg/${need(1, 'message id or eventId')}`);
      show(m, () => printRecord(out, { id: m.id, eventType: m.eventType, eventId: m.eventId, channels: m.channels, time: m.timestamp, payload: m.payload }));
      return 0;
    }
    case 'message send': {
      const app = need(0, 'application id or uid');
      const body = { eventType: required(command, values['event-type'], '--event-type', RESOURCE_USAGE), eventId: values['event-id'], orderingKey: values['ordering-key'], payload: payloadOf(values) };
      const headers = values['idempotency-key'] ? { 'idempotency-key': values['idempotency-key'] } : undefined;
      const m = await call('POST', `/api/v1/app/${app}/msg`, body, headers);
      show(m, () => out(`accepted ${m.id}\n`));
      return 0;
    }
    case 'attempt list': {
      const app = need(0, 'application id or uid');
      if ((values.endpoint === undefined) === (values.message === undefined)) throw new CliError(`hookrelay attempt list needs --endpoint or --message (one of them)\n\n${RESOURCE_USAGE}`, 2);
      const path = values.endpoint !== undefined ? `/api/v1/app/${app}/attempt/endpoint/${enc(values.endpoint)}` : `/api/v1/app/${app}/attempt/msg/${enc(values.message!)}`;
      showList(await page(call, path, limit), ATTEMPT_COLUMNS);
      return 0;
    }
    case 'attempt get': {
      const a = await call('GET', `/api/v1/app/${need(0, 'application id or uid')}/msg/${need(1, 'message id')}/attempt/${need(2, 'attempt id')}`);
      show(a, () => printRecord(out, { id: a.id, message: a.msgId, endpoint: a.endpointId, url: a.url, status: STATUS[a.status] ?? a.status, http: a.responseStatusCode, ms: a.responseDurationMs, time: a.timestamp, trigger: a.triggerType === 1 ? 'manual' : 'scheduled', response: a.response }));
      return 0;
    }
    case 'resend': {
      const [app, message, endpoint] = [need(0, 'application id or uid'), need(1, 'message id or eventId'), need(2, 'endpoint id or uid')];
      await call('POST', `/api/v1/app/${app}/msg/${message}/endpoint/${endpoint}/resend`);
      show({ resent: ids[1], endpoint: ids[2] }, () => out(`resending ${ids[1]} to ${ids[2]}\n`));
      return 0;
    }
    case 'recover': {
      const [app, endpoint] = [need(0, 'application id or uid'), need(1, 'endpoint id or uid')];
      const since = timeArg('--since', required('recover', values.since, '--since', RESOURCE_USAGE));
      const until = values.until === undefined ? undefined : timeArg('--until', values.until);
      progress(`recovering failed deliveries to ${ids[1]} of messages since ${since}${until ? ` until ${until}` : ''}…\n`);
      const result = await call('POST', `/api/v1/app/${app}/endpoint/${endpoint}/recover`, { since, until });
      show(result, () => out(`re-queued ${result.recovered} failed ${result.recovered === 1 ? 'delivery' : 'deliveries'}; they are delivered again now\n`));
      return 0;
    }
    default:
      throw new CliError(`unknown command "hookrelay ${`${resource} ${first ?? ''}`.trim()}"\n\n${RESOURCE_USAGE}`, 2);
  }
}
