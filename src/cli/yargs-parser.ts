import yargs, { type Argv, type Options } from 'yargs';
import { UsageError } from '../core/errors.js';
import { COMMANDS, type CommandSpec, EXIT_CODE_HELP, VERSION } from './command-specs.js';

function withOptions(y: Argv, spec: CommandSpec): Argv {
  let built = y;
  if (spec.positional)
    built = built.positional(spec.positional.name, { type: 'string', describe: spec.positional.describe });
  for (const option of spec.options) {
    const config: Options = { type: option.type, describe: option.describe };
    if (option.defaultDescription) config.defaultDescription = option.defaultDescription;
    if (option.group) config.group = option.group;
    if (option.choices) config.choices = [...option.choices];
    if (option.default !== undefined) config.default = option.default;
    if (option.hidden) config.hidden = true;
    built = built.option(option.name, config);
  }
  return spec.epilogue ? built.epilogue(spec.epilogue) : built;
}

/** The full parser: help, version, and yargs' error messages. Loaded only when the fast path declines. */
export async function parseWithYargs(
  args: string[],
  width = 80,
): Promise<{ argv: Record<string, unknown>; output: string }> {
  let parser = yargs(args)
    .scriptName('crashdiag')
    .locale('en')
    .exitProcess(false)
    .strict()
    .help()
    .alias('help', 'h')
    .version(VERSION)
    .alias('version', 'V')
    .wrap(width)
    .usage(
      '$0 <command>\n\nNames the state a crashed staging-rename batch run left on disk, shows the evidence, and prints (or with --fix performs) the one safe recovery action.',
    );
  for (const spec of COMMANDS) {
    const { positional } = spec;
    const usage = positional
      ? `${spec.name} ${positional.optional ? `[${positional.name}]` : `<${positional.name}>`}`
      : spec.name;
    parser = parser.command(usage, spec.describe, (y) => withOptions(y, spec));
  }
  parser = parser
    .demandCommand(1, `Name a command: ${COMMANDS.map((c) => c.name).join(', ')}.`)
    .recommendCommands()
    .epilogue(
      `${EXIT_CODE_HELP}\n\nUnder --json an error is also one JSON object on stdout. crashdiag <command> -h for a command's flags.`,
    )
    .fail((message, error) => {
      if (error) throw error;
      throw new UsageError(message ?? 'Invalid arguments.', 'See crashdiag --help.');
    });
  return new Promise((resolve, reject) => {
    parser.parseAsync(args, {}, (error, parsed, output) => {
      if (error) {
        reject(error);
        return;
      }
      const argv = parsed as Record<string, unknown>;
      // yargs turns a repeated flag into an array; which one was meant is a guess we do not make.
      const command = COMMANDS.find((c) => c.name === (argv._ as unknown[] | undefined)?.[0]);
      const repeated = command?.options.find((o) => !o.repeatable && Array.isArray(argv[o.name]));
      if (repeated) reject(new UsageError(`--${repeated.name} is given more than once; give it once.`));
      else resolve({ argv, output });
    }).catch(reject); // the callback has the error already; without this, its rejection would go unhandled
  });
}
