import { isUsageError, UsageError } from '../core/errors.js';
import { EXIT_UNEXPECTED, EXIT_USAGE } from '../core/states.js';
import type { CommandSpec } from './command-specs.js';
import { checkArgs, flagWords } from './arg-check.js';
import { parseFast } from './fast-parse.js';
import { type CliIo, terminalWidth } from './io.js';
import { escapeText, renderErrorJson } from '../render/format.js';

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
      case 'pipelines': {
        const { pipelinesCommand } = await import('./commands/list-pipelines.js');
        return await pipelinesCommand(argv, io);
      }
      case 'runbook': {
        const { runbookCommand } = await import('./commands/runbook.js');
        return await runbookCommand(argv, io);
      }
      case 'completion': {
        const { completionCommand } = await import('./commands/completion.js');
        return await completionCommand(argv, io);
      }
      default:
        throw new UsageError(`Unknown command ${JSON.stringify(command)}.`, 'See crashdiag --help.');
    }
  } catch (error) {
    return reportError(error, io, wantsJson(args));
  }
}

/** --json (or --format json) anywhere among the flags: a script is reading stdout. */
function wantsJson(args: readonly string[]): boolean {
  const words = flagWords(args);
  return words.some(
    (word, i) => word === '--json' || word === '--format=json' || (word === '--format' && words[i + 1] === 'json'),
  );
}

/**
 * The sentence always goes to stderr for the person; under --json, stdout
 * also gets one object saying what failed, so a script parsing stdout never
 * meets an empty stream or a half-written one.
 */
function reportError(error: unknown, io: CliIo, json: boolean): number {
  const usage = isUsageError(error);
  const exitCode = usage ? EXIT_USAGE : EXIT_UNEXPECTED;
  if (usage) {
    // A message may quote a run key, a path or a lock's holder: escaped, none can drive the terminal.
    io.stderr.write(`crashdiag: ${escapeText(error.message)}\n`);
    if (error.hint) io.stderr.write(`  ${escapeText(error.hint)}\n`);
  } else {
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    io.stderr.write(`crashdiag: unexpected error (a bug; nothing was guessed)\n${stack}\n`);
  }
  if (json) {
    io.stdout.write(
      renderErrorJson(exitCode, {
        code: usage ? 'usage' : 'unexpected',
        message: usage ? error.message : `unexpected error: ${error instanceof Error ? error.message : String(error)}`,
        hint: usage ? (error.hint ?? null) : 'A bug in crashdiag; the stack is on stderr.',
      }),
    );
  }
  return exitCode;
}
