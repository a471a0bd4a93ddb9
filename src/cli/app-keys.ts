import { parseCommand } from './args.js';
import { apiClient, CliError, CONNECTION_OPTIONS, CONNECTION_USAGE } from './client.js';

/** `hookrelay app-key …`: manage an application's API keys through a running server's API. */

export const APP_KEY_USAGE = `Usage:
  hookrelay app-key create <app id|uid> [--name <name>] [--expires-at <ISO 8601 time>]   prints the key (shown once)
  hookrelay app-key list <app id|uid>
  hookrelay app-key revoke <app id|uid> <key id>

${CONNECTION_USAGE}`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  name: { type: 'string' },
  'expires-at': { type: 'string' },
} as const;

export async function appKeyCommand(args: string[], out: (text: string) => void): Promise<number> {
  const { values, positionals } = parseCommand('app-key', args, OPTIONS, APP_KEY_USAGE);
  const [action, app, keyId] = positionals;
  if (!['create', 'list', 'revoke'].includes(action ?? '')) throw new CliError(`unknown app-key action ${JSON.stringify(action ?? '')}\n${APP_KEY_USAGE}`, 2);
  if (!app) throw new CliError(`hookrelay app-key ${action} needs an application id or uid\n${APP_KEY_USAGE}`, 2);
  const call = apiClient(values);
  const base = `/api/v1/app/${encodeURIComponent(app)}/api-key`;
  const print = (value: unknown) => out(JSON.stringify(value, null, 2) + '\n');

  switch (action) {
    case 'create':
      print(await call('POST', base, { name: values.name, expiresAt: values['expires-at'] }));
      return 0;
    case 'list': {
      const keys: unknown[] = [];
      let iterator: string | null = null;
      for (;;) {
        const page: { data: unknown[]; iterator: string | null; done: boolean } = await call('GET', `${base}?limit=250${iterator ? `&iterator=${encodeURIComponent(iterator)}` : ''}`);
        keys.push(...page.data);
        if (page.done) break;
        iterator = page.iterator;
      }
      print(keys);
      return 0;
    }
    default:
      if (!keyId) throw new CliError(`hookrelay app-key revoke needs the key id\n${APP_KEY_USAGE}`, 2);
      await call('DELETE', `${base}/${encodeURIComponent(keyId)}`);
      out(`revoked ${keyId}\n`);
      return 0;
  }
}
