import { UsageError } from '../core/errors.js';
import { camelCase, COMMANDS, type CommandSpec, type OptionSpec } from './command-specs.js';
import { suggestCommand, suggestFlag } from './suggest.js';

export const HELP_FLAGS: ReadonlySet<string> = new Set(['-h', '--help']);
export const VERSION_FLAGS: ReadonlySet<string> = new Set(['-V', '--version']);

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function listed(values: readonly string[]): string {
  return values.length <= 1 ? (values[0] ?? '') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

/** The words before `--`: after it everything is an argument, not a flag. */
export function flagWords(args: readonly string[]): readonly string[] {
  const end = args.indexOf('--');
  return end < 0 ? args : args.slice(0, end);
}

function unknownFlag(arg: string, command: CommandSpec | undefined): UsageError {
  const name = arg.replace(/^-+/, '').split('=')[0] ?? '';
  const flags = command
    ? command.options.flatMap((o) => (o.type === 'boolean' ? [o.name, `no-${o.name}`] : [o.name]))
    : [];
  const near = suggestFlag(kebab(name), [...flags, 'help', 'version']);
  const where = command ? `crashdiag ${command.name}` : 'crashdiag';
  const elsewhere = command
    ? COMMANDS.filter((c) => c !== command && c.options.some((o) => o.name === kebab(name))).map((c) => c.name)
    : [];
  const shown = arg.split('=')[0];
  if (elsewhere.length > 0 && !near) {
    return new UsageError(
      `${where} has no ${shown} flag; it goes with ${listed(elsewhere.map((c) => `crashdiag ${c}`))}.`,
      `See ${where} --help.`,
    );
  }
  return new UsageError(
    `${where} has no ${shown} flag.`,
    near ? `Did you mean ${near}? See ${where} --help.` : `See ${where} --help.`,
  );
}

function checkValue(spec: OptionSpec, value: string): void {
  if (spec.choices && !spec.choices.includes(value)) {
    throw new UsageError(`--${spec.name} ${JSON.stringify(value)} is not one of ${listed([...spec.choices])}.`);
  }
  if (spec.type === 'number' && !/^\d+$/.test(value))
    throw new UsageError(`--${spec.name} takes a whole number, not ${JSON.stringify(value)}.`);
}

/**
 * Checks a command line the fast parser declined, before yargs sees it, so
 * each mistake gets one plain sentence with the nearest command or flag and
 * no parser internals ("outDiir", "Invalid values: Argument: ...").
 */
export function checkArgs(args: readonly string[]): void {
  const words = flagWords(args);
  const help = words.some((a) => HELP_FLAGS.has(a));
  const version = words.some((a) => VERSION_FLAGS.has(a));
  const command = commandOf(args, help || version);
  if (!command) return;
  const positionals = checkFlags(args, command, help);
  if (!help && !version) checkPositionals(command, positionals);
}

/** The command the first word names; undefined for a bare --help or --version. */
function commandOf(args: readonly string[], helpOrVersion: boolean): CommandSpec | undefined {
  const [first] = args;
  if (first === undefined) {
    throw new UsageError(
      `Name a command: ${listed(COMMANDS.map((c) => c.name))}.`,
      'crashdiag --help says what each does.',
    );
  }
  if (first.startsWith('-')) {
    if (helpOrVersion) return undefined;
    throw unknownFlag(first, undefined);
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) {
    const hint = suggestCommand(first, COMMANDS);
    throw new UsageError(
      `${JSON.stringify(first)} is not a crashdiag command.`,
      hint ?? `The commands are ${listed(COMMANDS.map((c) => c.name))}; see crashdiag --help.`,
    );
  }
  return command;
}

/** Every flag known to the command, with a value where it takes one; the positionals, in order. */
function checkFlags(args: readonly string[], command: CommandSpec, help: boolean): string[] {
  const options = new Map<string, OptionSpec>();
  for (const option of command.options) {
    options.set(option.name, option);
    options.set(camelCase(option.name), option);
  }
  const positionals: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (HELP_FLAGS.has(arg) || VERSION_FLAGS.has(arg)) continue;
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw unknownFlag(arg, command);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = options.get(name);
    if (!spec) {
      const negated = name.startsWith('no-') ? options.get(name.slice(3)) : undefined;
      if (negated?.type === 'boolean') continue;
      throw unknownFlag(arg, command);
    }
    if (spec.type === 'boolean') continue;
    const next = args[i + 1];
    const value = eq >= 0 ? arg.slice(eq + 1) : next !== undefined && !next.startsWith('-') ? next : undefined;
    if (eq < 0 && value !== undefined) i++;
    if (value !== undefined) checkValue(spec, value);
    else if (!help) throw missingValue(spec, command, next);
  }
  return positionals;
}

function missingValue(spec: OptionSpec, command: CommandSpec, next: string | undefined): UsageError {
  // "--lock-timeout -5s" is a flag with no value followed by a flag "-5s";
  // "needs a value" alone would leave the user staring at the value given.
  if (next !== undefined && next.length > 1 && !next.startsWith('--')) {
    return new UsageError(
      `--${spec.name} needs a value, and ${JSON.stringify(next)} is read as a flag.`,
      `A value that starts with "-" is written --${spec.name}=${next}. See crashdiag ${command.name} --help.`,
    );
  }
  return new UsageError(`--${spec.name} needs a value.`, `See crashdiag ${command.name} --help.`);
}

/** The run key where one is needed, and nothing more. */
function checkPositionals(command: CommandSpec, positionals: readonly string[]): void {
  const { positional } = command;
  if (positional && !positional.optional && positionals.length === 0) {
    throw new UsageError(
      `crashdiag ${command.name} needs a ${positional.name}: ${positional.describe}.`,
      `For example: crashdiag ${command.name} ${positional.example}. See crashdiag ${command.name} --help.`,
    );
  }
  const extra = positionals.slice(positional ? 1 : 0);
  if (extra.length > 0) {
    throw new UsageError(
      `Unexpected argument ${JSON.stringify(extra[0])}: crashdiag ${command.name} takes ${positional ? `one ${positional.name}` : 'no arguments, only flags'}.`,
      `See crashdiag ${command.name} --help.`,
    );
  }
}
