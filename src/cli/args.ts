import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './client.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `parseArgs` with errors a person can act on: the flag that is unknown or lacks its value, and the command's usage,
 * never the parser's own text.
 */
export function parseCommand<O extends Options>(command: string, args: string[], options: O, usage: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new CliError(`${parseErrorText(command, error)}\n\n${usage}`, 2);
  }
}

/** What was wrong with the arguments of `hookrelay <command>`, in our words. */
export function parseErrorText(command: string, error: unknown): string {
  const err = error as Error & { code?: string };
  const flag = /'(-{1,2}[^'\s]+)/.exec(err.message)?.[1];
  const positional = /argument '([^']*)'/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) return `hookrelay ${command} has no option ${flag}`;
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) return `hookrelay ${command}: ${flag} needs a value`;
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && positional !== undefined) return `hookrelay ${command} takes no argument ${JSON.stringify(positional)} (options start with --)`;
  return `hookrelay ${command}: the arguments could not be read`;
}

export function required(command: string, value: string | undefined, flag: string, usage: string): string {
  if (value === undefined || value === '') throw new CliError(`hookrelay ${command}: ${flag} is required\n\n${usage}`, 2);
  return value;
}
