import { COMMANDS, camelCase, type CommandSpec, type OptionSpec } from './command-specs.js';

/**
 * Parses the plain, common command lines without loading yargs (which costs
 * more than node's own start-up). Anything it does not fully understand (help,
 * version, an unknown or repeated flag, a value that looks like a flag, a
 * bad number or choice) returns undefined, and yargs parses it instead, with
 * its help and its error messages.
 */
export function parseFast(args: readonly string[]): Record<string, unknown> | undefined {
  const [commandName, ...rest] = args;
  const command = COMMANDS.find((c) => c.name === commandName);
  if (!command) return undefined;
  const options = new Map<string, OptionSpec>(command.options.map((o) => [o.name, o]));
  const parsed: Record<string, unknown> = { _: [command.name] };
  const { set, seen } = optionRecorder(parsed);
  let positional: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (!arg.startsWith('-')) {
      if (positional !== undefined || !command.positional) return undefined;
      positional = arg;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') return undefined;
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const spec = options.get(name);
    if (!spec) {
      const negated = name.startsWith('no-') ? options.get(name.slice(3)) : undefined;
      // --no-marker and --no-pid-check: yargs' boolean negation.
      if (!negated || inline !== undefined || !set(negated, false)) return undefined;
      continue;
    }
    if (spec.type === 'boolean') {
      if (inline !== undefined || !set(spec, true)) return undefined;
      continue;
    }
    const value = inline ?? rest[++i];
    if (value === undefined || (inline === undefined && value.startsWith('-'))) return undefined;
    if (spec.choices && !spec.choices.includes(value)) return undefined;
    if (spec.type === 'number') {
      if (!/^\d+$/.test(value) || !set(spec, Number(value))) return undefined;
    } else if (!set(spec, value)) return undefined;
  }
  return withPositionalAndDefaults(command, parsed, positional, seen);
}

/**
 * Sets an option's value under both its names, as yargs does; false for a
 * second value of an option that takes one (yargs' error message is wanted).
 */
function optionRecorder(parsed: Record<string, unknown>) {
  const seen = new Set<string>();
  const repeated = new Map<string, unknown[]>();
  const set = (spec: OptionSpec, value: unknown): boolean => {
    if (spec.repeatable) {
      // As yargs does: one value alone, several as an array.
      const values = [...(repeated.get(spec.name) ?? []), value];
      repeated.set(spec.name, values);
      seen.add(spec.name);
      parsed[camelCase(spec.name)] = values.length === 1 ? value : values;
      parsed[spec.name] = parsed[camelCase(spec.name)];
      return true;
    }
    if (seen.has(spec.name)) return false;
    seen.add(spec.name);
    parsed[camelCase(spec.name)] = value;
    parsed[spec.name] = value;
    return true;
  };
  return { set, seen: seen as ReadonlySet<string> };
}

/** The parse with the positional and the defaults of options not given; undefined without a required positional. */
function withPositionalAndDefaults(
  command: CommandSpec,
  parsed: Record<string, unknown>,
  positional: string | undefined,
  seen: ReadonlySet<string>,
): Record<string, unknown> | undefined {
  if (command.positional) {
    if (positional === undefined && !command.positional.optional) return undefined;
    if (positional !== undefined) {
      parsed[command.positional.name] = positional;
      parsed[camelCase(command.positional.name)] = positional;
    }
  }
  for (const spec of command.options) {
    if (spec.default !== undefined && !seen.has(spec.name)) parsed[camelCase(spec.name)] = spec.default;
  }
  return parsed;
}
