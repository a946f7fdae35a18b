import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TfvlmError } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** One `tfvlm` subcommand: its usage text, its options (node:util parseArgs) and what it does. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: Options;
  allowPositionals?: boolean;
  run(args: ParsedArgs): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

export function parseCommandArgs(cmd: Command, argv: string[]): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...cmd.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: cmd.allowPositionals ?? false,
      strict: true,
    });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (e) {
    throw new TfvlmError(`tfvlm ${cmd.name}: ${(e as Error).message}\n\n${cmd.usage}`);
  }
}

/**
 * Parses argv for one command and runs it: --help prints its usage; a TfvlmError is printed as
 * `tfvlm <name>: <message>` on stderr with exit code 1, anything else is thrown. Returns the exit code.
 */
export async function runCommand(cmd: Command, argv: string[]): Promise<number> {
  try {
    const args = parseCommandArgs(cmd, argv);
    if (args.values.help) {
      process.stdout.write(cmd.usage + '\n');
      return 0;
    }
    return await cmd.run(args);
  } catch (e) {
    if (e instanceof TfvlmError) {
      // Messages thrown here often name the command already; print the prefix once.
      const prefix = `tfvlm ${cmd.name}: `;
      process.stderr.write(`${prefix}${e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/** A required string option, with an error naming it. */
export function requireString(args: ParsedArgs, name: string, cmd: string): string {
  const v = args.values[name];
  if (typeof v !== 'string' || v.length === 0) throw new TfvlmError(`tfvlm ${cmd}: --${name} is required`);
  return v;
}

export function optionalNumber(args: ParsedArgs, name: string, cmd: string): number | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n)) {
    throw new TfvlmError(`tfvlm ${cmd}: --${name} must be a number, got '${String(v)}'`);
  }
  return n;
}
