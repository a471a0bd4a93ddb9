import { parseCommand } from './args.js';
import { apiClient, CliError, CONNECTION_OPTIONS, CONNECTION_USAGE } from './client.js';

export { CliError } from './client.js';

/** `hookrelay source …`: manage inbound sources through a running server's API. */

export const SOURCE_USAGE = `Usage:
  hookrelay source create --type <type> --name <name> [--uid <uid>] [--config <json>] [--secret <secret>]
  hookrelay source list
  hookrelay source types [<type>] [--json]   every source type's config fields, and which are secret
  hookrelay source get <id|uid>
  hookrelay source delete <id|uid>
  hookrelay source rotate-token <id|uid>
  hookrelay source add-endpoint <id|uid> --url <url> | --destination <json> [--filter <json>]

${CONNECTION_USAGE}`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  type: { type: 'string' },
  name: { type: 'string' },
  uid: { type: 'string' },
  config: { type: 'string' },
  secret: { type: 'string' },
  url: { type: 'string' },
  destination: { type: 'string' },
  filter: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function sourceCommand(args: string[], out: (text: string) => void): Promise<number> {
  const { values, positionals } = parseCommand('source', args, OPTIONS, SOURCE_USAGE);
  const [action, target] = positionals;
  if (action === 'types') {
    const { sourceTypesCommand } = await import('./source-types.js');
    return sourceTypesCommand(values, target, out);
  }
  const call = apiClient(values);
  const needTarget = () => {
    if (!target) throw new CliError(`hookrelay source ${action} needs a source id or uid\n${SOURCE_USAGE}`, 2);
    return encodeURIComponent(target);
  };
  const print = (value: unknown) => out(JSON.stringify(value, null, 2) + '\n');

  switch (action) {
    case 'create': {
      if (!values.type || !values.name) throw new CliError(`hookrelay source create needs --type and --name\n${SOURCE_USAGE}`, 2);
      let config: Record<string, unknown> = {};
      if (values.config) {
        try {
          config = JSON.parse(values.config);
        } catch (error) {
          throw new CliError(`--config is not valid JSON: ${(error as Error).message}`, 2);
        }
      }
      if (values.secret) config.secret = values.secret;
      const source = await call('POST', '/ingest/api/v1/source', { name: values.name, uid: values.uid, type: values.type, config });
      print(source);
      return 0;
    }
    case 'list':
      print((await call('GET', '/ingest/api/v1/source?limit=250')).data);
      return 0;
    case 'get':
      print(await call('GET', `/ingest/api/v1/source/${needTarget()}`));
      return 0;
    case 'delete':
      await call('DELETE', `/ingest/api/v1/source/${needTarget()}`);
      out(`deleted ${target}\n`);
      return 0;
    case 'rotate-token':
      print(await call('POST', `/ingest/api/v1/source/${needTarget()}/token/rotate`));
      return 0;
    case 'add-endpoint': {
      const id = needTarget();
      if (!values.url && !values.destination) throw new CliError(`hookrelay source add-endpoint needs --url or --destination\n${SOURCE_USAGE}`, 2);
      const destination = jsonOption('destination', values.destination);
      // A content filter (docs/routing.md): only the requests it matches are forwarded to this endpoint.
      const filter = jsonOption('filter', values.filter);
      const endpoint = await call('POST', `/ingest/api/v1/source/${id}/endpoint`, { url: values.url, destination, filter });
      const secret = await call('GET', `/ingest/api/v1/source/${id}/endpoint/${encodeURIComponent(endpoint.id)}/secret`);
      print({ ...endpoint, secret: secret.key });
      return 0;
    }
    default:
      throw new CliError(`unknown source action ${JSON.stringify(action ?? '')}\n${SOURCE_USAGE}`, 2);
  }
}

function jsonOption(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`--${name} is not valid JSON: ${(error as Error).message}`, 2);
  }
}
