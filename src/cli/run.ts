import { isUsageError, UsageError } from '../core/errors.js';
import { EXIT_UNEXPECTED, EXIT_USAGE } from '../core/states.js';
import type { CommandSpec } from './command-specs.js';
import { checkArgs } from './arg-check.js';
import { parseFast } from './fast-parse.js';
import { type CliIo, terminalWidth } from './io.js';

export { VERSION } from './command-specs.js';

/**
 * The CLI: parses, checks flag combinations before any I/O, dispatches.
 * Returns the exit code; never touches `process`.
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  try {
    let argv = parseFast(args);
    if (!argv) {
      checkArgs(args);
      const { parseWithYargs } = await import('./yargs-parser.js');
      const parsed = await parseWithYargs(args, terminalWidth(io) ?? 80);
      if (parsed.output) {
        io.stdout.write(parsed.output.endsWith('\n') ? parsed.output : `${parsed.output}\n`);
        return 0;
      }
      argv = parsed.argv;
    }
    const command = (argv._ as unknown[])[0] as CommandSpec['name'];
    switch (command) {
      case 'diagnose': {
        const { diagnoseCommand } = await import('./commands/diagnose.js');
        return await diagnoseCommand(argv, io);
      }
      case 'scan': {
        const { scanCommand } = await import('./commands/scan.js');
        return await scanCommand(argv, io);
      }
      case 'clean': {
        const { cleanCommand } = await import('./commands/clean.js');
        return await cleanCommand(argv, io);
      }
      case 'history': {
        const { historyCommand } = await import('./commands/history.js');
        return await historyCommand(argv, io);
      }
      case 'runbook': {
        const { runbookCommand } = await import('./commands/runbook.js');
        return await runbookCommand(argv, io);
      }
      default:
        throw new UsageError(`Unknown command ${JSON.stringify(command)}.`, 'See crashdiag --help.');
    }
  } catch (error) {
    return reportError(error, io);
  }
}

function reportError(error: unknown, io: CliIo): number {
  if (isUsageError(error)) {
    io.stderr.write(`crashdiag: ${error.message}\n`);
    if (error.hint) io.stderr.write(`  ${error.hint}\n`);
    return EXIT_USAGE;
  }
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr.write(`crashdiag: unexpected error (a bug; nothing was guessed)\n${stack}\n`);
  return EXIT_UNEXPECTED;
}
