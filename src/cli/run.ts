import yargs, { type Argv } from 'yargs';
import { UsageError } from '../core/errors.js';
import { EXIT_CODES, EXIT_UNEXPECTED, EXIT_USAGE, STATES } from '../core/states.js';
import type { CliIo } from './io.js';
import { withPipelineOptions } from './pipeline-options.js';

export const VERSION = '0.1.0';

const EXIT_CODE_HELP = `Exit codes:
${STATES.map((s) => `  ${String(EXIT_CODES[s]).padStart(2)}  ${s}`).join('\n')}
   2  usage or configuration error (nothing was read or changed)
   1  unexpected internal error`;

type Command = 'diagnose' | 'scan' | 'clean' | 'history' | 'runbook';

function buildParser(args: string[]): Argv {
  return yargs(args)
    .scriptName('crashdiag')
    .locale('en')
    .exitProcess(false)
    .strict()
    .help()
    .version(VERSION)
    .wrap(Math.min(110, 110))
    .usage(
      '$0 <command>\n\nNames the state a crashed staging-rename batch run left on disk, shows the evidence, and prints (or with --fix performs) the one safe recovery action.',
    )
    .command('diagnose <run-key>', 'Name the state of one run key, its evidence and the safe action', (y) =>
      withPipelineOptions(y)
        .positional('run-key', { type: 'string', describe: 'The run key, usually the run date (2026-04-24)' })
        .option('json', { type: 'boolean', describe: 'Print one JSON object instead of the human view' })
        .option('fix', {
          type: 'boolean',
          describe: 'MODIFIES FILES: perform the safe action (delete dead orphans, re-run with --rerun)',
        })
        .option('dry-run', {
          type: 'boolean',
          describe: 'With --fix: print the exact plan and change nothing',
        })
        .option('rerun', {
          type: 'string',
          describe:
            "The job's command, {date} standing for the run key; split like a shell would, never run through one",
        })
        .option('quarantine', {
          type: 'string',
          describe: 'With --fix: move orphans into DIR instead of deleting them (forensic evidence)',
        })
        .option('lock-timeout', {
          type: 'string',
          describe: 'With --fix: how long to wait for another fixer of the same run key',
          defaultDescription: '30s',
        })
        .option('audit-log', {
          type: 'string',
          describe: 'With --fix: where each action is appended as a JSON line',
          defaultDescription: '<staging-dir>/.crashdiag/audit.jsonl',
        })
        .epilogue(EXIT_CODE_HELP),
    )
    .command('scan', 'List every run of a pipeline (or --all) with its state, worst first', (y) =>
      withPipelineOptions(y)
        .option('all', { type: 'boolean', describe: 'Every pipeline in the config' })
        .option('since', {
          type: 'string',
          describe:
            'List runs whose output or marker changed within this window (orphans of any age are always listed)',
          defaultDescription: '7d',
        })
        .option('daily', {
          type: 'boolean',
          describe: 'Run keys are dates: show each date in the window with no output as A/B/C',
        })
        .option('json', { type: 'boolean', describe: 'Print JSON instead of a table' })
        .option('format', { choices: ['table', 'json', 'prom'] as const, describe: 'Output format' })
        .option('prom-file', {
          type: 'string',
          describe:
            'With --format prom: write the metrics to this file atomically (node_exporter textfile collector)',
        })
        .epilogue('Exit code: the highest state code among the runs (0 when every run is DONE).'),
    )
    .command(
      'clean',
      'MODIFIES FILES: delete dead-writer orphans older than a threshold, for every run key',
      (y) =>
        withPipelineOptions(y)
          .option('all', { type: 'boolean', describe: 'Every pipeline in the config' })
          .option('older-than', {
            type: 'string',
            describe: 'Only orphans untouched this long',
            defaultDescription: '24h',
          })
          .option('force-short-threshold', { type: 'boolean', describe: 'Allow --older-than under 1h' })
          .option('dry-run', { type: 'boolean', describe: 'List what would be removed; change nothing' })
          .option('json', { type: 'boolean', describe: 'Print JSON' })
          .option('audit-log', {
            type: 'string',
            describe: 'Where each deletion is appended as a JSON line',
            defaultDescription: '<staging-dir>/.crashdiag/audit.jsonl',
          })
          .option('lock-timeout', {
            type: 'string',
            describe: 'How long to wait for another janitor on the same staging directory',
            defaultDescription: '30s',
          }),
    )
    .command('history', 'Show what --fix and clean did, from the audit log', (y) =>
      y
        .option('pipeline', {
          type: 'string',
          describe: 'The pipeline whose audit log to read (from the config)',
        })
        .option('config', {
          type: 'string',
          describe: 'Config file with named pipelines',
          defaultDescription: 'crashdiag.config.json',
        })
        .option('staging-dir', { type: 'string', describe: 'Read <staging-dir>/.crashdiag/audit.jsonl' })
        .option('audit-log', { type: 'string', describe: 'Read this audit log' })
        .option('run', { type: 'string', describe: 'Only this run key' })
        .option('limit', { type: 'number', describe: 'Show the last N actions', default: 50 })
        .option('json', { type: 'boolean', describe: 'Print JSON instead of a table' }),
    )
    .command(
      'runbook <state>',
      'Print the runbook for a state (DONE, A/B/C, D, D-race, UNPUBLISHED, RUNNING, UNKNOWN)',
      (y) => y.positional('state', { type: 'string', describe: 'A state name, or field-guide' }),
    )
    .demandCommand(1, 'Name a command: diagnose, scan, clean, history, runbook.')
    .recommendCommands()
    .epilogue(EXIT_CODE_HELP)
    .fail((message, error) => {
      if (error) throw error;
      throw new UsageError(message ?? 'Invalid arguments.', 'See crashdiag --help.');
    });
}

/**
 * The CLI: parses, checks flag combinations before any I/O, dispatches.
 * Returns the exit code; never touches `process`.
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  try {
    let helpOutput: string | undefined;
    const parser = buildParser(args);
    const argv = await new Promise<Record<string, unknown>>((resolve, reject) => {
      parser.parseAsync(args, {}, (error, parsed, output) => {
        if (error) reject(error);
        else {
          helpOutput = output;
          resolve(parsed as Record<string, unknown>);
        }
      });
    });
    if (helpOutput) {
      io.stdout.write(helpOutput.endsWith('\n') ? helpOutput : `${helpOutput}\n`);
      return 0;
    }
    const command = (argv._ as unknown[])[0] as Command;
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
  if (error instanceof UsageError) {
    io.stderr.write(`crashdiag: ${error.message}\n`);
    if (error.hint) io.stderr.write(`  ${error.hint}\n`);
    return EXIT_USAGE;
  }
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr.write(`crashdiag: unexpected error (a bug; nothing was guessed)\n${stack}\n`);
  return EXIT_UNEXPECTED;
}
