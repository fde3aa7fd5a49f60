import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { State } from '../../../src/core/states.js';
import { FINAL_TEMPLATE, S3_STAGING_TEMPLATE, STAGING_TEMPLATE } from '../names.js';
import { readJournal } from '../journal.js';
import { type Finished, type RunOptions, runToExit, start } from './processes.js';
import { s3Env } from './s3-workspace.js';
import type { Workspace } from './workspace.js';

/** crashdiag's exit and output: from its own process, or from run(argv, io) in this one. */
export type CrashdiagResult = Pick<Finished, 'code' | 'stdout' | 'stderr'>;

/**
 * Runs crashdiag with these arguments and this environment (the re-run it
 * starts inherits it). Without one, the harness spawns the built bin.
 */
export type CrashdiagRunner = (
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
) => Promise<CrashdiagResult>;

/** The built binaries a harness drives, as a user would: separate processes. */
export interface Tools {
  node: string;
  crashdiag: string;
  pipeline: string;
  /** The s3rver child (harness/s3rver.ts), run from the source tree: it is not bundled. */
  s3rverChild: string;
  /**
   * The tests run crashdiag in process here: the jobs it diagnoses are still
   * real processes, really SIGKILLed, and a spawn per diagnosis only costs time.
   */
  runCrashdiag?: CrashdiagRunner | undefined;
}

/**
 * The example pipeline is built into dist-dev/ (with the demo and the
 * campaign), the crashdiag bin into dist/ beside it: what the package ships.
 */
export function toolsIn(devDir: string, binDir = resolve(devDir, '..', 'dist')): Tools {
  const tools = {
    node: process.execPath,
    crashdiag: resolve(binDir, 'crashdiag.cjs'),
    pipeline: resolve(devDir, 'refunds-pipeline.js'),
    s3rverChild: resolve(devDir, '..', 'examples', 'refunds-pipeline', 'harness', 's3rver-child.mjs'),
  };
  for (const file of [tools.crashdiag, tools.pipeline]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  }
  return tools;
}

/** The part of `crashdiag diagnose --json` a harness checks. */
export interface DiagnoseReport {
  run: string;
  state: State;
  action: string;
  exitCode: number;
  summary: string;
  final: { path: string; exists: boolean; marker: { path: string; exists: boolean } | null };
  orphans: { path: string; pid: number; bytes: number; writer: string; writerReason: string }[];
  anomalies: { path: string; reason: string }[];
}

const PACING_AND_CRASH_VARS = ['REFUNDS_CRASH_AT', 'REFUNDS_STEP_DELAY_MS', 'REFUNDS_HOG_MB'];

/** The environment without the test-only variables, so a re-run is a plain production run. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  for (const name of PACING_AND_CRASH_VARS) if (!(name in extra)) delete env[name];
  return env;
}

/** cleanEnv, plus what reaches the workspace's S3 site when it has one. */
export function workspaceEnv(ws: Workspace, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return s3Env(ws, cleanEnv(extra));
}

export function pipelineArgs(ws: Workspace, key: string, journal: boolean): string[] {
  const args = [
    '--date',
    key,
    '--input',
    ws.inputPath,
    '--out-dir',
    ws.outDir,
    '--staging-dir',
    ws.stagingDir,
  ];
  return journal ? [...args, '--journal', ws.journalPath] : args;
}

export function runPipelineProcess(
  tools: Tools,
  ws: Workspace,
  key: string,
  options: { env?: NodeJS.ProcessEnv; journal?: boolean } & Omit<RunOptions, 'env'> = {},
): Promise<Finished> {
  const { env = {}, journal = false, ...rest } = options;
  return runToExit(tools.node, [tools.pipeline, ...pipelineArgs(ws, key, journal)], {
    timeoutMs: 20_000,
    ...rest,
    env: workspaceEnv(ws, env),
  });
}

/**
 * Runs the job with its journal and, unless `killAtMs` is undefined, SIGKILLs
 * it `killAtMs` after its first journal line appears (0: at once, before
 * that). The S3 mode spends a few hundred ms loading the SDK before its first
 * step; timed from the spawn, most random kills would land there. Resolves
 * once the child is reaped, with the time from its first line to its exit.
 */
export async function runJournaledJob(
  tools: Tools,
  ws: Workspace,
  key: string,
  env: NodeJS.ProcessEnv,
  killAtMs?: number,
): Promise<Finished & { sinceStartMs: number | null }> {
  const run = start(tools.node, [tools.pipeline, ...pipelineArgs(ws, key, true)], {
    env: workspaceEnv(ws, env),
    timeoutMs: 20_000,
  });
  let ended = false;
  void run.finished.then(() => {
    ended = true;
  }, () => {});
  let timer: NodeJS.Timeout | undefined;
  let startedAt: number | null = null;
  if (killAtMs === 0) {
    run.child.kill('SIGKILL');
  } else {
    // The signal is the journal's first line; a poll of a file the job writes, not a guess at its timing.
    while (!ended && (await readJournal(ws.journalPath)).length === 0) await sleep(2);
    if (!ended) {
      startedAt = performance.now();
      if (killAtMs !== undefined) timer = setTimeout(() => run.child.kill('SIGKILL'), killAtMs);
    }
  }
  const finished = await run.finished;
  clearTimeout(timer);
  return { ...finished, sinceStartMs: startedAt === null ? null : performance.now() - startedAt };
}

/** crashdiag's flags for this pipeline's layout. */
export function layoutFlags(ws: Workspace): string[] {
  return [
    '--out-dir',
    ws.outDir,
    '--staging-dir',
    ws.stagingDir,
    '--final',
    FINAL_TEMPLATE,
    '--staging',
    ws.s3 ? S3_STAGING_TEMPLATE : STAGING_TEMPLATE,
  ];
}

/** The re-run command crashdiag --fix runs, `{date}` standing for the run key; quoted for its word splitter. */
export function rerunCommand(tools: Tools, ws: Workspace): string {
  const words = [tools.node, tools.pipeline, '--date', '{date}', '--input', ws.inputPath];
  return [...words, '--out-dir', ws.outDir, '--staging-dir', ws.stagingDir].map(shellQuote).join(' ');
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./{}-]+$/.test(word) ? word : `'${word.replaceAll('\'', `'\\''`)}'`;
}

/** crashdiag ARGS, through the tools' runner, or the built bin in its own process. */
export function runCrashdiag(
  tools: Tools,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<CrashdiagResult> {
  const env = cleanEnv(options.env);
  if (tools.runCrashdiag) return tools.runCrashdiag(args, env, options.timeoutMs);
  return runToExit(tools.node, [tools.crashdiag, ...args], { env, timeoutMs: options.timeoutMs });
}

export async function diagnose(
  tools: Tools,
  ws: Workspace,
  key: string,
): Promise<{ finished: CrashdiagResult; report: DiagnoseReport | null }> {
  const finished = await runCrashdiag(tools, ['diagnose', key, ...layoutFlags(ws), '--json'], {
    env: s3Env(ws, {}),
    timeoutMs: 20_000,
  });
  let report: DiagnoseReport | null = null;
  try {
    report = JSON.parse(finished.stdout) as DiagnoseReport;
  } catch {
    // reported by the caller, with stdout and stderr
  }
  return { finished, report };
}

export function fix(tools: Tools, ws: Workspace, key: string): Promise<CrashdiagResult> {
  return runCrashdiag(tools, ['diagnose', key, ...layoutFlags(ws), '--fix', '--rerun', rerunCommand(tools, ws)], {
    env: s3Env(ws, {}),
    timeoutMs: 30_000,
  });
}

export function distDirFrom(repoRoot: string): string {
  return join(repoRoot, 'dist-dev');
}
