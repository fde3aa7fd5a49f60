import {
  DEFAULT_CONFIG_NAME,
  DEFAULT_FRESH_WITHIN,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_LOCK_TIMEOUT,
  DEFAULT_S3_TIMEOUT,
  DEFAULT_MARKER,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_OLDER_THAN,
  DEFAULT_SINCE,
  DEFAULT_STAGING,
  DEFAULT_STALE_AFTER,
  MAX_S3_TIMEOUT,
} from '../core/defaults.js';
import { EXIT_BACKOFF, EXIT_CODES, STATES } from '../core/states.js';
import { CONFIG_SEARCH_DESCRIPTION } from './pipeline-options.js';

/**
 * Every command and flag, as data: the yargs parser (help, errors) and the
 * fast path that skips loading yargs are both built from this one table.
 */
export interface OptionSpec {
  readonly name: string;
  readonly type: 'string' | 'boolean' | 'number';
  readonly describe: string;
  readonly defaultDescription?: string;
  readonly group?: string;
  readonly choices?: readonly string[];
  readonly default?: number;
  /** May be given more than once; the values are collected in order. */
  readonly repeatable?: boolean;
  /** For scripts (the completion scripts), not for people: left out of help and the man page. */
  readonly hidden?: boolean;
}

export interface CommandSpec {
  readonly name: 'diagnose' | 'scan' | 'clean' | 'history' | 'runbook' | 'pipelines' | 'completion';
  /** The positional argument's name, if the command takes one. */
  readonly positional?: {
    readonly name: string;
    readonly describe: string;
    readonly example: string;
    /** It may be left out. */
    readonly optional?: boolean;
  };
  /** It deletes or moves files: never offered as a guess for a mistyped command. */
  readonly modifiesFiles?: boolean;
  readonly describe: string;
  readonly options: readonly OptionSpec[];
  readonly epilogue?: string;
}

// package.json's version, put in by scripts/build.mjs and vitest.config.ts
// (esbuild and vite `define`): the one place it is written is package.json.
declare const CRASHDIAG_VERSION: string;
export const VERSION: string = CRASHDIAG_VERSION;

export const EXIT_CODE_HELP = `Exit codes:
${STATES.map((s) => `  ${String(EXIT_CODES[s]).padStart(2)}  ${s}`).join('\n')}
  ${EXIT_BACKOFF}  wait: --retry-backoff holds the next re-run (JSON retryAfterSeconds)
   2  usage or configuration error (nothing was read or changed)
   1  unexpected internal error`;

export const CLEAN_EXIT_HELP = `Exit codes:
   0  done: every orphan that was to go is gone
  20  another janitor holds the lock; nothing was changed
  30  some orphans could not be removed (permission denied...): listed with the reason; the rest was done
   2  usage or configuration error, a planted lock or audit log (nothing was changed)
   1  unexpected internal error`;

export const SCAN_EXIT_HELP = `Exit code: the highest state code among the runs shown that are not RUNNING
(0 when all are DONE), so a D is never hidden behind a live writer; 20 only
when RUNNING is the only state besides DONE. Under --all, a pipeline that
cannot be scanned (missing directory, bad setting) is reported on its own and
the others are still scanned; it makes the exit code 2 unless a run's state
code is higher (a crash outranks a configuration problem).`;

const GROUP = 'Pipeline layout:';
const RECOVERY_GROUP = 'Recovery loop:';

const PIPELINE_OPTIONS: readonly OptionSpec[] = [
  { name: 'out-dir', type: 'string', group: GROUP, describe: 'Directory the job publishes its output into, or s3://BUCKET/PREFIX/ (diagnose)' },
  {
    name: 'staging-dir',
    type: 'string',
    group: GROUP,
    describe: 'Directory the job writes its staging files in, or s3://BUCKET/PREFIX/ (diagnose)',
  },
  {
    name: 'final',
    type: 'string',
    group: GROUP,
    describe: 'Published output name in --out-dir; {date} is the run key (e.g. refunds_settled_{date}.csv)',
  },
  {
    name: 'staging',
    type: 'string',
    group: GROUP,
    describe: 'Staging file name; must hold {date} and {pid}, may hold {host}',
    defaultDescription: DEFAULT_STAGING,
  },
  {
    name: 'marker',
    type: 'string',
    group: GROUP,
    describe:
      'Success marker name in --out-dir ({final} is the output name); --no-marker if the job writes none',
    defaultDescription: DEFAULT_MARKER,
  },
  {
    name: 'fresh-within',
    type: 'string',
    group: GROUP,
    describe: 'A fixed-name output (no {date}) younger than this is the current run\'s',
    defaultDescription: DEFAULT_FRESH_WITHIN,
  },
  {
    name: 'stale-after',
    type: 'string',
    group: GROUP,
    describe: 'A staging file unchanged this long (mtime or ctime) has no live writer by age, and is not the file of a live PID started after its last change',
    defaultDescription: DEFAULT_STALE_AFTER,
  },
  {
    name: 'pid-check',
    type: 'boolean',
    group: GROUP,
    describe: 'Judge writers by PID; --no-pid-check judges by file age only (shared storage, containers)',
    defaultDescription: 'true',
  },
  {
    name: 'now',
    type: 'string',
    group: GROUP,
    describe: 'ISO-8601 time to measure every age against (reading only: refused with --fix and by clean)',
    defaultDescription: 'the real clock',
  },
  {
    name: 'config',
    type: 'string',
    group: GROUP,
    describe: 'Config file with named pipelines',
    defaultDescription: CONFIG_SEARCH_DESCRIPTION,
  },
  {
    name: 'pipeline',
    type: 'string',
    group: GROUP,
    describe: 'Take the layout from this pipeline in the config; flags override it',
  },
];

const ALL_PIPELINES: OptionSpec = { name: 'all', type: 'boolean', describe: 'Every pipeline in the config' };

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'diagnose',
    positional: { name: 'run-key', describe: 'the run key, usually the run date', example: '2026-04-24' },
    describe: 'Name the state of one run key, its evidence and the safe action',
    options: [
      ...PIPELINE_OPTIONS,
      { name: 'json', type: 'boolean', describe: 'Print one JSON object instead of the human view' },
      {
        name: 'fix',
        type: 'boolean',
        describe: 'MODIFIES FILES: perform the safe action (delete dead orphans, re-run with --rerun)',
      },
      { name: 'dry-run', type: 'boolean', describe: 'With --fix: print the exact plan and change nothing' },
      {
        name: 'rerun',
        type: 'string',
        describe:
          'The job\'s command, {date} standing for the run key; split like a shell would, never run through one',
      },
      {
        name: 'quarantine',
        type: 'string',
        describe: 'With --fix: move orphans into DIR instead of deleting them (forensic evidence)',
      },
      {
        name: 'lock-timeout',
        type: 'string',
        describe: 'With --fix: how long to wait for another fixer of the same run key',
        defaultDescription: DEFAULT_LOCK_TIMEOUT,
      },
      {
        name: 'audit-log',
        type: 'string',
        describe: 'With --fix: where each action is appended as a JSON line',
        defaultDescription: '<staging-dir>/.crashdiag/audit.jsonl; for an s3:// staging prefix, $XDG_STATE_HOME/crashdiag/audit.jsonl',
      },
      {
        name: 'abort-uploads',
        type: 'boolean',
        describe: 'With --fix, S3 only: also abort this run\'s incomplete multipart uploads initiated longer ago than --stale-after',
      },
      {
        name: 'timeout',
        type: 'string',
        describe: `S3 only: bound on each attempt of each request (the SDK retries on top), at most ${MAX_S3_TIMEOUT}`,
        defaultDescription: DEFAULT_S3_TIMEOUT,
      },
      // The recovery loop (issue 10): attempts, crash loop, backoff, inputs.
      {
        name: 'max-attempts',
        type: 'number',
        group: RECOVERY_GROUP,
        describe: 'CRASH-LOOP after this many failed attempts without publishing; --fix then re-runs nothing (0: off)',
        defaultDescription: String(DEFAULT_MAX_ATTEMPTS),
      },
      {
        name: 'retry',
        type: 'boolean',
        group: RECOVERY_GROUP,
        describe: 'With --fix: the cause is fixed; recorded as a reset, allows another --max-attempts',
      },
      {
        name: 'retry-backoff',
        type: 'string',
        group: RECOVERY_GROUP,
        describe: `No re-run sooner than this after the 1st failed attempt, 5x after the 2nd, 25x after the 3rd; until then exit ${EXIT_BACKOFF} (wait)`,
        defaultDescription: 'off',
      },
      {
        name: 'input',
        type: 'string',
        group: RECOVERY_GROUP,
        repeatable: true,
        describe: 'A file the job reads ({date} is the run key), repeat for several: missing, unreadable or empty means BLOCKED, no re-run',
      },
    ],
    epilogue: EXIT_CODE_HELP,
  },
  {
    name: 'scan',
    describe: 'List every run of a pipeline (or --all) with its state, worst first',
    options: [
      ...PIPELINE_OPTIONS,
      ALL_PIPELINES,
      {
        name: 'since',
        type: 'string',
        describe:
          'List runs whose output or marker changed within this window (orphans of any age are always listed)',
        defaultDescription: DEFAULT_SINCE,
      },
      {
        name: 'daily',
        type: 'boolean',
        describe: 'Run keys are dates: show each date in the window up to --until with no output as A/B/C',
      },
      {
        name: 'tz',
        type: 'string',
        describe: 'With --daily: the time zone that decides which date is today (e.g. Europe/Berlin)',
        defaultDescription: 'the local zone ($TZ)',
      },
      {
        name: 'until',
        type: 'string',
        describe: 'With --daily: the last date that should have run by now (YYYY-MM-DD, yesterday or today)',
        defaultDescription: 'yesterday',
      },
      { name: 'problems', type: 'boolean', describe: 'Only runs that are not DONE' },
      {
        name: 'state',
        type: 'string',
        repeatable: true,
        describe: 'Only runs in this state; repeat for several (--state D --state D-race)',
      },
      { name: 'json', type: 'boolean', describe: 'Print JSON instead of a table' },
      { name: 'format', type: 'string', choices: ['table', 'json', 'prom'], describe: 'Output format' },
      {
        name: 'prom-file',
        type: 'string',
        describe:
          'With --format prom: write the metrics to this file atomically (node_exporter textfile collector)',
      },
      {
        name: 'timeout',
        type: 'string',
        describe: 'S3 only: bound on each attempt of each request (the SDK retries on top)',
        defaultDescription: DEFAULT_S3_TIMEOUT,
      },
    ],
    epilogue: SCAN_EXIT_HELP,
  },
  {
    name: 'clean',
    modifiesFiles: true,
    describe: 'MODIFIES FILES: delete dead-writer orphans older than a threshold, for every run key',
    options: [
      ...PIPELINE_OPTIONS,
      ALL_PIPELINES,
      {
        name: 'older-than',
        type: 'string',
        describe: 'Only orphans untouched this long',
        defaultDescription: DEFAULT_OLDER_THAN,
      },
      { name: 'force-short-threshold', type: 'boolean', describe: 'Allow --older-than under 1h' },
      { name: 'dry-run', type: 'boolean', describe: 'List what would be removed; change nothing' },
      { name: 'json', type: 'boolean', describe: 'Print JSON' },
      {
        name: 'audit-log',
        type: 'string',
        describe: 'Where each deletion is appended as JSON lines (its intent before, its outcome after)',
        defaultDescription: '<staging-dir>/.crashdiag/audit.jsonl; for an s3:// staging prefix, $XDG_STATE_HOME/crashdiag/audit.jsonl',
      },
      {
        name: 'lock-timeout',
        type: 'string',
        describe: 'How long to wait for another janitor on the same staging directory',
        defaultDescription: DEFAULT_LOCK_TIMEOUT,
      },
      {
        name: 'timeout',
        type: 'string',
        describe: 'S3 only: bound on each attempt of each request (the SDK retries on top)',
        defaultDescription: DEFAULT_S3_TIMEOUT,
      },
    ],
    epilogue: CLEAN_EXIT_HELP,
  },
  {
    name: 'history',
    describe: 'Show what --fix and clean did, from the audit log',
    options: [
      {
        name: 'pipeline',
        type: 'string',
        describe: 'The pipeline whose audit log to read (from the config)',
      },
      {
        name: 'config',
        type: 'string',
        describe: 'Config file with named pipelines',
        defaultDescription: CONFIG_SEARCH_DESCRIPTION,
      },
      {
        name: 'staging-dir',
        type: 'string',
        describe: 'Read <staging-dir>/.crashdiag/audit.jsonl (an s3:// prefix: $XDG_STATE_HOME/crashdiag/audit.jsonl)',
      },
      { name: 'audit-log', type: 'string', describe: 'Read this audit log' },
      { name: 'run', type: 'string', describe: 'Only this run key' },
      { name: 'limit', type: 'number', describe: 'Show the last N actions', default: DEFAULT_HISTORY_LIMIT },
      { name: 'utc', type: 'boolean', describe: 'Times in UTC instead of the local zone ($TZ)' },
      { name: 'json', type: 'boolean', describe: 'Print JSON instead of a table (times as recorded, UTC)' },
    ],
  },
  {
    name: 'pipelines',
    describe: 'List the config file in use and its pipelines; warn where pipelines share a directory',
    options: [
      {
        name: 'config',
        type: 'string',
        describe: 'Config file with named pipelines',
        defaultDescription: DEFAULT_CONFIG_NAME,
      },
      { name: 'json', type: 'boolean', describe: 'Print JSON' },
    ],
  },
  {
    name: 'runbook',
    positional: {
      name: 'state',
      describe: `A state name (${STATES.join(', ')}) or field-guide`,
      example: 'D',
    },
    describe: 'Print the runbook for a state; with --pipeline or layout flags, with your paths and names filled in',
    options: [...PIPELINE_OPTIONS.filter((o) => !['fresh-within', 'stale-after', 'pid-check', 'now'].includes(o.name)),
      {
        name: 'rerun',
        type: 'string',
        describe: 'The job\'s command, {date} standing for the run key, to fill in for JOB_CMD',
      }],
  },
  {
    name: 'completion',
    positional: {
      name: 'shell',
      describe: 'bash, zsh or fish',
      example: 'bash',
      optional: true,
    },
    describe: 'Print a shell completion script (commands, flags, pipeline names from the config)',
    options: [
      {
        name: 'config',
        type: 'string',
        describe: 'Config file whose pipelines --list-pipelines prints',
        defaultDescription: CONFIG_SEARCH_DESCRIPTION,
      },
      {
        name: 'list-pipelines',
        type: 'boolean',
        hidden: true,
        describe: 'Print the config\'s pipeline names, one a line (what the scripts call)',
      },
    ],
    epilogue: `Load it:
  bash: source <(crashdiag completion bash)   or save it in /etc/bash_completion.d/crashdiag
  zsh:  crashdiag completion zsh > "\${fpath[1]}/_crashdiag"
  fish: crashdiag completion fish > ~/.config/fish/completions/crashdiag.fish
Without a shell named, the one in $SHELL.`,
  },
];

export function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
