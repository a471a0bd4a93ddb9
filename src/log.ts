import pino, { type Logger } from 'pino';
import type { Settings } from './config.js';

/** JSON logs on stdout. Secrets and bodies never reach them: the redaction list is the last line of defence. */
export function createLogger(level: Settings['logLevel'], destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'hookrelay' },
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'secret', 'secrets', 'key', 'payload', 'body', 'token', 'adminToken'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
