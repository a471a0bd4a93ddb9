import pino, { type Logger } from 'pino';
import type { Settings } from './config.js';

/**
 * Logs on stdout: JSON lines with ISO timestamps (the default), or one coloured line per record for a terminal
 * (`--log-format pretty`). Secrets and bodies never reach them: the redaction list is the last line of defence.
 *
 * A log write that fails (stdout closed by whoever read it: EPIPE; a full disk: ENOSPC) drops the line and never stops
 * the process: the pipeline does not depend on anyone reading its logs.
 */
export function createLogger(level: Settings['logLevel'], destination?: pino.DestinationStream, format: Settings['logFormat'] = 'json'): Logger {
  const sink = destination ?? stdoutSink();
  return pino(
    {
      level,
      base: { service: 'hookrelay' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'secret', 'secrets', 'key', 'payload', 'body', 'token', 'adminToken'],
        censor: '[redacted]',
      },
    },
    format === 'pretty' ? prettySink(sink, colours(destination)) : sink,
  );
}

function stdoutSink(): pino.DestinationStream {
  const sink = pino.destination({ dest: 1, sync: true });
  // Without a listener, sonic-boom's 'error' event would be an uncaught exception.
  sink.on('error', () => undefined);
  return sink;
}

const colours = (destination: pino.DestinationStream | undefined) => destination === undefined && process.stdout.isTTY === true && !process.env.NO_COLOR;

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};
const OMITTED = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname', 'component']);

/** `2026-12-06T05:14:56.123Z WARN  dispatcher: attempt failed messageId=msg_… status=500 error="…"` */
export function prettyLine(json: string, colour: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json);
  } catch {
    return json;
  }
  const [name, code] = LEVELS[record.level as number] ?? [String(record.level), ''];
  const paint = (text: string, c: string) => (colour ? `${c}${text}\x1b[0m` : text);
  const fields: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (OMITTED.has(key) || value === undefined) continue;
    const shown = key === 'err' && value && typeof value === 'object' ? (value as { message?: string }).message ?? JSON.stringify(value) : value;
    const text = typeof shown === 'string' ? (/^[\w.:/@+-]*$/.test(shown) && shown !== '' ? shown : JSON.stringify(shown)) : JSON.stringify(shown);
    fields.push(`${paint(key, '\x1b[90m')}=${text}`);
  }
  const component = typeof record.component === 'string' ? `${record.component}: ` : '';
  return `${record.time ?? ''} ${paint(name, code)} ${component}${record.msg ?? ''}${fields.length ? ' ' + fields.join(' ') : ''}\n`;
}

function prettySink(sink: pino.DestinationStream, colour: boolean): pino.DestinationStream {
  return { write: (line: string) => sink.write(prettyLine(line, colour)) };
}
