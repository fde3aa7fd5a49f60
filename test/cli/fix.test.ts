// `crashdiag diagnose KEY --fix` on real directories, with real jobs as the
// re-run, real concurrent fixers (the built binary, each in its own process)
// and a real SIGKILL. Every refusal asserts that the files are still there.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateRefundsCsv } from '../../examples/refunds-pipeline/generate-input.js';
import { settleRefundsCsv } from '../../examples/refunds-pipeline/transform.js';
import type { CliIo } from '../../src/cli/io.js';
import { run } from '../../src/cli/run.js';
import { shellJoin } from '../../src/core/command-words.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { collectOutput, copyBuiltBin, type Exited } from '../support/built-bin.js';
import { crashdiagInProcess } from '../support/in-process.js';
import { deadPid } from '../support/dead-pids.js';
import { exists } from '../support/disk.js';
import { treeOf } from '../support/file-tree.js';
import { startLiveProcess } from '../support/live-process.js';
import { finalPathFor, KEY, markerPathFor, plantBystanders, plantOrphans, publish, stagingPathFor, writeAged } from '../support/pipeline-files.js';
import { removeTempDir } from '../support/temp-dir.js';
import { type Layout, makeTempLayout } from '../support/temp-layout.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { hookSync } from '../support/sync-hook.js';
import { installedRunbooks } from '../../src/bin/runbook-files.js';

/**
 * The re-run job: a small staging-rename writer. It logs each invocation (so
 * a test can count re-runs), can fail or hold while a file exists, and
 * prints a line on stdout (which must never reach a --json stream).
 */
const JOB = `
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
const { values: v } = parseArgs({
  options: Object.fromEntries(
    ['date', 'out-dir', 'staging-dir', 'log', 'pid-file', 'hold-while', 'exit'].map((k) => [k, { type: 'string' }]),
  ),
});
const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
if (v.log) appendFileSync(v.log, JSON.stringify({ pid: process.pid, argv: process.argv.slice(2) }) + '\\n');
if (v.exit) {
  process.stderr.write('job: failing on purpose\\n');
  process.exit(Number(v.exit));
}
const staging = join(v['staging-dir'], v.date + '.' + process.pid + '.csv');
const fd = openSync(staging, 'wx');
writeSync(fd, 'rows of ' + v.date + '\\n');
if (v['pid-file']) {
  writeFileSync(v['pid-file'] + '.tmp', String(process.pid));
  renameSync(v['pid-file'] + '.tmp', v['pid-file']);
}
for (const end = Date.now() + 30000; v['hold-while'] && existsSync(v['hold-while']) && Date.now() < end; ) pause(20);
writeSync(fd, 'more rows of ' + v.date + '\\n');
fsyncSync(fd);
closeSync(fd);
const final = join(v['out-dir'], 'report_' + v.date + '.csv');
renameSync(staging, final);
writeFileSync(final + '.success', '');
process.stdout.write('job: published ' + final + '\\n');
`;

const PUBLISHED = `rows of ${KEY}\nmore rows of ${KEY}\n`;

/** Writes its arguments as JSON to $ARGV_FILE: what the re-run received, word for word. */
const ARGV_JOB = `import { writeFileSync } from 'node:fs';
writeFileSync(process.env.ARGV_FILE, JSON.stringify(process.argv.slice(2)));
`;

let shared: string;
let bin: string;
let pipelineBin: string;
let jobScript: string;
let argvScript: string;

beforeAll(async () => {
  // A private copy of the bundle: a rebuild swapping dist/ mid-run must not pull chunks from under us.
  ({ bin, dir: shared } = await copyBuiltBin());
  pipelineBin = join(shared, 'dist-dev', 'refunds-pipeline.js');
  jobScript = join(shared, 'job.mjs');
  argvScript = join(shared, 'argv.mjs');
  await fs.writeFile(jobScript, JOB);
  await fs.writeFile(argvScript, ARGV_JOB);
});
afterAll(() => removeTempDir(shared));

let root: string;
let layout: Layout;
let jobLog: string;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(async () => {
  layout = await makeTempLayout('crashdiag-fix-');
  root = layout.root;
  jobLog = join(root, 'job-log.jsonl');
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await removeTempDir(root);
});

function startCrashdiag(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // 'exit' without waiting for the pipes: a re-run child inherits them and may outlive a killed crashdiag.
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  return { child, finished: collectOutput(child, 40_000), exited };
}

/**
 * crashdiag ARGS through run(argv, io) in this process, its re-runs real processes
 * started as the bin starts them: what the bin does, without a node start-up per test.
 * Where a fixer must be a process of its own (a PID of its own for the lock, a
 * SIGKILL), the tests start the built bin.
 */
async function crashdiag(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Exited> {
  const result = await crashdiagInProcess(args, root, {}, { commandEnv: { ...process.env, ...env } });
  return { ...result, signal: null };
}

/** The built bin in its own process, to its end. */
function crashdiagBin(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Exited> {
  return startCrashdiag(args, env).finished;
}

function layoutFlags(l: Layout = layout): string[] {
  return ['--out-dir', l.outDir, '--staging-dir', l.stagingDir, '--final', 'report_{date}.csv'];
}

interface JobOptions {
  pidFile?: string;
  holdWhile?: string;
  exit?: number;
}

/** The --rerun string for the job, `{date}` where the run key goes. */
function jobRerun(options: JobOptions = {}): string {
  const words = [process.execPath, jobScript, '--date', '{date}', '--out-dir', layout.outDir];
  words.push('--staging-dir', layout.stagingDir, '--log', jobLog);
  if (options.pidFile) words.push('--pid-file', options.pidFile);
  if (options.holdWhile) words.push('--hold-while', options.holdWhile);
  if (options.exit !== undefined) words.push('--exit', String(options.exit));
  // Quoted as a shell would read it ('{date}' included): crashdiag splits it the same way.
  return shellJoin(words);
}

function fix(extra: readonly string[] = []): Promise<Exited> {
  return crashdiag(['diagnose', KEY, ...layoutFlags(), '--fix', ...extra]);
}

/** --fix by the built bin, in a process of its own. */
function fixInOwnProcess(extra: readonly string[] = []): Promise<Exited> {
  return crashdiagBin(['diagnose', KEY, ...layoutFlags(), '--fix', ...extra]);
}

/** Each re-run the job saw: its PID and arguments. */
function jobRuns(): Array<{ pid: number; argv: string[] }> {
  if (!existsSync(jobLog)) return [];
  return readFileSync(jobLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { pid: number; argv: string[] });
}

/** The tree without the paths given (relative to root) and without crashdiag's own state. */
async function treeWithout(paths: readonly string[]) {
  const tree = await treeOf(root);
  for (const path of paths) delete tree[path.startsWith('/') ? path.slice(root.length + 1) : path];
  return tree;
}

function outOf(result: Exited): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Gone from the process table, or a zombie nobody has reaped yet: either way it writes nothing more. */
function isDeadOrZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '');
  } catch {
    return true;
  }
}

interface FixJson {
  state: string;
  action: string;
  exitCode: number;
  orphans: Array<{ path: string }>;
  fix: {
    dryRun: boolean;
    before: { state: string; action: string; exitCode: number };
    steps: Array<{ path: string; bytes: number; pid: number; result: string; to?: string }>;
    refused: Array<{ path: string; reason: string }>;
    rerun: { argv: string[]; exitStatus: number | null; signal: string | null; error: string | null } | null;
    rerunMissing: boolean;
  };
}

describe('--fix, state by state', () => {
  it('DONE: changes nothing, runs nothing, exits 0', async () => {
    await publish(layout);
    await plantBystanders(layout, { prefixLookAlike: true });
    const before = await treeOf(root);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    expect(result.stdout).toContain('nothing to do');
    expect(await treeOf(root)).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });

  it('A/B/C with --rerun: runs the job pinned to the key, then diagnoses DONE and exits 0', async () => {
    await plantBystanders(layout, { prefixLookAlike: true });
    const before = await treeOf(root);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    expect(jobRuns().map((r) => r.argv.slice(0, 2))).toEqual([['--date', KEY]]);
    expect(await fs.readFile(finalPathFor(layout), 'utf8')).toBe(PUBLISHED);
    expect(await exists(markerPathFor(layout))).toBe(true);
    expect(result.stdout).toMatch(/re-ran: .*job\.mjs --date 2026-04-24 .*\(exit 0\)/);
    expect(result.stdout).toContain('DONE');
    expect(await treeWithout([finalPathFor(layout), markerPathFor(layout), jobLog])).toEqual(before);
  });

  it('A/B/C with the example pipeline as the re-run: publishes the exact bytes of the day', async () => {
    const input = generateRefundsCsv({ seed: 'fix-cli', runDate: KEY, rows: 300 });
    const inputPath = join(root, 'input.csv');
    await fs.writeFile(inputPath, input);
    const rerun = shellJoin([
      process.execPath,
      pipelineBin,
      '--date',
      '{date}',
      '--input',
      inputPath,
      '--out-dir',
      layout.outDir,
      '--staging-dir',
      layout.stagingDir,
    ]);
    const result = await crashdiag([
      'diagnose',
      KEY,
      '--out-dir',
      layout.outDir,
      '--staging-dir',
      layout.stagingDir,
      '--final',
      'refunds_settled_{date}.csv',
      '--fix',
      '--rerun',
      rerun,
    ]);
    expect(result.code, outOf(result)).toBe(0);
    expect(await fs.readFile(join(layout.outDir, `refunds_settled_${KEY}.csv`), 'utf8')).toBe(
      settleRefundsCsv(input, KEY),
    );
    expect(await exists(join(layout.outDir, `refunds_settled_${KEY}.csv.success`))).toBe(true);
    expect((await fs.readdir(layout.stagingDir)).filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it('A/B/C with the re-run from the pipeline’s config: the same, no --rerun flag', async () => {
    await fs.writeFile(
      join(root, 'crashdiag.config.json'),
      JSON.stringify({
        pipelines: {
          reports: {
            outDir: 'out',
            stagingDir: '_staging',
            final: 'report_{date}.csv',
            rerun: jobRerun(),
          },
        },
      }),
    );
    const result = await crashdiag(['diagnose', KEY, '--pipeline', 'reports', '--fix']);
    expect(result.code, outOf(result)).toBe(0);
    expect(jobRuns()).toHaveLength(1);
    expect(await fs.readFile(finalPathFor(layout), 'utf8')).toBe(PUBLISHED);
  });

  it('A/B/C without a command: prints the command to run and exits 10, changing nothing', async () => {
    await plantBystanders(layout, { prefixLookAlike: true });
    const before = await treeOf(root);
    const result = await fix();
    expect(result.code, outOf(result)).toBe(10);
    expect(result.stdout).toContain('a re-run is needed but no command is known');
    expect(result.stdout).toContain(
      `crashdiag diagnose ${KEY} --out-dir ${layout.outDir} --staging-dir ${layout.stagingDir} --final 'report_{date}.csv' --fix --rerun '<command with {date}>'`,
    );
    expect(await treeOf(root)).toEqual(before);
  });

  it('D: deletes the orphans, leaves other keys and look-alikes, re-runs, ends DONE with exit 0', async () => {
    // Two, not three: three dead writers of one key are a crash loop (--max-attempts 3).
    const orphans = await plantOrphans(layout, 2);
    await plantBystanders(layout, { prefixLookAlike: true });
    const bystanders = await treeWithout(orphans);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    for (const path of orphans) {
      expect(await exists(path)).toBe(false);
      expect(result.stdout).toContain(`deleted ${path} (10 B, writer PID ${path.split('.').at(-2)})`);
    }
    expect(jobRuns()).toHaveLength(1);
    expect(await fs.readFile(finalPathFor(layout), 'utf8')).toBe(PUBLISHED);
    expect(await treeWithout([finalPathFor(layout), markerPathFor(layout), jobLog])).toEqual(bystanders);
  });

  it('D without a command: deletes the orphans, then exits 10 (A/B/C: re-run needed)', async () => {
    const orphans = await plantOrphans(layout, 2);
    await plantBystanders(layout, { prefixLookAlike: true });
    const bystanders = await treeWithout(orphans);
    const result = await fix();
    expect(result.code, outOf(result)).toBe(10);
    for (const path of orphans) expect(await exists(path)).toBe(false);
    expect(await treeOf(root)).toEqual(bystanders);
  });

  it('D-race: deletes the orphans, never re-runs, leaves the output and marker byte for byte, exits 0', async () => {
    const orphans = await plantOrphans(layout, 2);
    await publish(layout);
    await plantBystanders(layout, { prefixLookAlike: true });
    const before = await treeWithout(orphans);
    const published = [finalPathFor(layout), markerPathFor(layout)];
    const identities = await Promise.all(published.map((p) => fs.stat(p)));
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    for (const path of orphans) expect(await exists(path)).toBe(false);
    expect(jobRuns()).toEqual([]);
    expect(existsSync(jobLog)).toBe(false);
    const after = await Promise.all(published.map((p) => fs.stat(p)));
    expect(after.map((s) => [s.ino, s.mtimeMs, s.size])).toEqual(
      identities.map((s) => [s.ino, s.mtimeMs, s.size]),
    );
    expect(await treeOf(root)).toEqual(before);
  });

  it('UNPUBLISHED with orphans: deletes the orphans, never the output, re-runs, ends DONE', async () => {
    const orphans = await plantOrphans(layout, 2);
    await fs.writeFile(finalPathFor(layout), 'published before the marker\n');
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    for (const path of orphans) expect(await exists(path)).toBe(false);
    expect(jobRuns()).toHaveLength(1);
    expect(await fs.readFile(finalPathFor(layout), 'utf8')).toBe(PUBLISHED);
    expect(await exists(markerPathFor(layout))).toBe(true);
  });

  it('UNPUBLISHED whose re-run fails: the orphans go, the output stays as it was, exit 14 (RERUN-FAILED)', async () => {
    const orphans = await plantOrphans(layout, 1);
    await fs.writeFile(finalPathFor(layout), 'published before the marker\n');
    const before = await fs.stat(finalPathFor(layout));
    const result = await fix(['--rerun', jobRerun({ exit: 3 })]);
    // 13 would tell a wrapper "re-run now": the tight loop. 14 says a person must look.
    expect(result.code, outOf(result)).toBe(14);
    expect(await exists(orphans[0] as string)).toBe(false);
    const after = await fs.stat(finalPathFor(layout));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(await fs.readFile(finalPathFor(layout), 'utf8')).toBe('published before the marker\n');
  });

  it('RUNNING: a live writer’s file and a dead orphan beside it stay, nothing runs, exit 20', async () => {
    const live = await startLiveProcess();
    cleanups.push(() => live.stop());
    await fs.writeFile(stagingPathFor(layout, live.pid), 'being written');
    await plantOrphans(layout, 1);
    const before = await treeOf(root);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(20);
    expect(result.stdout).toContain('a writer is alive: nothing is touched');
    expect(await treeOf(root)).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });

  it('UNKNOWN (a marker without its output): changes nothing, runs nothing, exit 30', async () => {
    await fs.writeFile(markerPathFor(layout), '');
    await plantOrphans(layout, 1);
    const before = await treeOf(root);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(30);
    expect(await treeOf(root)).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });
});

describe('--fix --dry-run', () => {
  it('prints each path with its bytes and writer, and the re-run; changes nothing; exits with the current state', async () => {
    const orphans = await plantOrphans(layout, 2);
    const before = await treeOf(root, []);
    const rerun = jobRerun();
    const result = await fix(['--dry-run', '--rerun', rerun]);
    expect(result.code, outOf(result)).toBe(11);
    expect(result.stdout).toContain('dry run: nothing is changed');
    for (const path of orphans) {
      expect(result.stdout).toContain(`would remove ${path} (10 B, writer PID ${path.split('.').at(-2)})`);
    }
    const argv = [process.execPath, jobScript, '--date', KEY, '--out-dir', layout.outDir];
    argv.push('--staging-dir', layout.stagingDir, '--log', jobLog);
    expect(result.stdout).toContain(`would re-run: ${shellJoin(argv)}`);
    // Not even crashdiag's own lock or audit directory appears.
    expect(await treeOf(root, [])).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });

  it('--json: the plan as steps marked planned, the re-run with no status', async () => {
    const orphans = await plantOrphans(layout, 1);
    const result = await fix(['--dry-run', '--json', '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(11);
    const report = JSON.parse(result.stdout) as FixJson;
    expect(report.state).toBe('D');
    expect(report.fix.dryRun).toBe(true);
    expect(report.fix.steps).toEqual([
      { path: orphans[0], bytes: 10, pid: Number(orphans[0]?.split('.').at(-2)), result: 'planned' },
    ]);
    expect(report.fix.rerun?.exitStatus).toBeNull();
    expect(await exists(orphans[0] as string)).toBe(true);
  });
});

describe('--fix --quarantine', () => {
  it('moves the orphans with their bytes, never over a file of the same name already there', async () => {
    const [first, second] = (await plantOrphans(layout, 2)) as [string, string];
    const quarantine = join(root, 'quarantine');
    await fs.mkdir(quarantine);
    const clash = join(quarantine, first.slice(layout.stagingDir.length + 1));
    await fs.writeFile(clash, 'earlier evidence');
    const result = await fix(['--quarantine', 'quarantine', '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    expect(await exists(first)).toBe(false);
    expect(await exists(second)).toBe(false);
    expect(await fs.readFile(clash, 'utf8')).toBe('earlier evidence');
    expect(await fs.readFile(`${clash}.1`, 'utf8')).toBe('partial 0\n');
    expect(await fs.readFile(join(quarantine, second.slice(layout.stagingDir.length + 1)), 'utf8')).toBe(
      'partial 1\n',
    );
    expect(result.stdout).toContain(`quarantined ${first}`);
  });

  it('refuses a quarantine directory inside the output directory: exit 2, every file still there', async () => {
    const orphans = await plantOrphans(layout, 2);
    await publish(layout, '2026-04-23');
    const before = await treeOf(root);
    const result = await fix(['--quarantine', join(layout.outDir, 'quarantine'), '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(2);
    expect(result.stderr).toContain('overlaps the output directory');
    for (const path of orphans) expect(await exists(path)).toBe(true);
    expect(await treeOf(root)).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });
});

describe('--fix --json', () => {
  it('reports the state after, the exit code, what was found, done and re-run; the job’s stdout stays out', async () => {
    const orphans = await plantOrphans(layout, 2);
    const result = await fix(['--json', '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    const report = JSON.parse(result.stdout) as FixJson;
    expect(report.state).toBe('DONE');
    expect(report.exitCode).toBe(0);
    expect(report.fix.before).toEqual({ state: 'D', action: 'clean-then-rerun', exitCode: 11 });
    expect(report.fix.steps).toEqual(
      orphans.map((path) => ({ path, bytes: 10, pid: Number(path.split('.').at(-2)), result: 'deleted' })),
    );
    expect(report.fix.refused).toEqual([]);
    const argv = [process.execPath, jobScript, '--date', KEY, '--out-dir', layout.outDir];
    argv.push('--staging-dir', layout.stagingDir, '--log', jobLog);
    expect(report.fix.rerun).toEqual({
      argv,
      exitStatus: 0,
      signal: null,
      error: null,
      startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      durationMs: expect.any(Number),
      pid: expect.any(Number),
      stderrTail: [],
    });
    expect(result.stdout).not.toContain('job: published');
    expect(result.stderr).toContain(`job: published ${finalPathFor(layout)}`);
  });
});

describe('--fix refuses, and every file is still there', () => {
  it('a symlink named like an orphan, pointing outside staging: UNKNOWN, nothing deleted, the target untouched', async () => {
    const outside = join(root, 'outside');
    await fs.mkdir(outside);
    const target = join(outside, 'precious.csv');
    await fs.writeFile(target, 'precious');
    const bait = stagingPathFor(layout, deadPid());
    await fs.symlink(target, bait);
    const orphans = await plantOrphans(layout, 1);
    const before = await treeOf(root);
    const targetBefore = await fs.stat(target);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(30);
    expect(result.stdout).toContain('UNKNOWN');
    expect(await treeOf(root)).toEqual(before);
    expect(await exists(bait)).toBe(true);
    expect(await exists(orphans[0] as string)).toBe(true);
    expect(await fs.readFile(target, 'utf8')).toBe('precious');
    expect((await fs.stat(target)).mtimeMs).toBe(targetBefore.mtimeMs);
    expect(jobRuns()).toEqual([]);
  });

  it('a symlink named like an orphan, pointing at another file in staging: UNKNOWN, both stay', async () => {
    const other = join(layout.stagingDir, `2026-04-23.${deadPid()}.csv`);
    await writeAged(other, 'other key');
    const bait = stagingPathFor(layout, deadPid());
    await fs.symlink(other, bait);
    const before = await treeOf(root);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(30);
    expect(await treeOf(root)).toEqual(before);
  });

  it('a live writer’s file: RUNNING, exit 20, nothing deleted', async () => {
    const live = await startLiveProcess();
    cleanups.push(() => live.stop());
    const path = stagingPathFor(layout, live.pid);
    await fs.writeFile(path, 'being written');
    const before = await treeOf(root);
    const result = await fix();
    expect(result.code, outOf(result)).toBe(20);
    expect(await exists(path)).toBe(true);
    expect(await treeOf(root)).toEqual(before);
  });

  it('names that do not match the staging template for this key: none is deleted', async () => {
    await plantBystanders(layout, { prefixLookAlike: true });
    const before = await treeOf(root);
    const result = await fix();
    expect(result.code, outOf(result)).toBe(10);
    expect(await treeOf(root)).toEqual(before);
  });

  it('a directory named like a staging file: UNKNOWN, exit 30, the directory and its content stay', async () => {
    const dir = stagingPathFor(layout, deadPid());
    await fs.mkdir(dir);
    await fs.writeFile(join(dir, 'inside.csv'), 'inside');
    await plantOrphans(layout, 1);
    const before = await treeOf(root);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(30);
    expect(await treeOf(root)).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });

  it('a staging directory reached through a symlink is fine: its orphans go, the link and all else stay', async () => {
    const link = join(root, 'staging-link');
    await fs.symlink(layout.stagingDir, link);
    const orphans = await plantOrphans(layout, 2);
    await plantBystanders(layout, { prefixLookAlike: true });
    const bystanders = await treeWithout(orphans);
    const result = await crashdiag([
      'diagnose',
      KEY,
      ...layoutFlags({ ...layout, stagingDir: link }),
      '--fix',
    ]);
    expect(result.code, outOf(result)).toBe(10);
    for (const path of orphans) expect(await exists(path)).toBe(false);
    expect(await treeOf(root)).toEqual(bystanders);
    expect(await fs.readlink(link)).toBe(layout.stagingDir);
  });
});

describe('--fix stays inside staging for its own files too', () => {
  it('refuses a .crashdiag symlinked out of staging: exit 2, nothing there or in staging touched', async () => {
    const elsewhere = join(root, 'elsewhere');
    await fs.mkdir(elsewhere);
    await writeAged(join(elsewhere, `${KEY}.lock`), 'someone else’s lock');
    await fs.symlink(elsewhere, join(layout.stagingDir, '.crashdiag'));
    await plantOrphans(layout, 2);
    const before = await treeOf(root, []);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(2);
    expect(result.stderr).toContain('is a symlink');
    expect(await treeOf(root, [])).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });

  it('refuses an audit log that is a symlink planted in staging: its target untouched, every file still there', async () => {
    const victim = join(root, 'victim.txt');
    await fs.writeFile(victim, 'precious\n');
    await fs.mkdir(join(layout.stagingDir, '.crashdiag'));
    await fs.symlink(victim, join(layout.stagingDir, '.crashdiag', 'audit.jsonl'));
    await plantOrphans(layout, 2);
    const before = await treeOf(root, []);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(2);
    expect(result.stderr).toContain('is a symlink');
    expect(await fs.readFile(victim, 'utf8')).toBe('precious\n');
    expect(await treeOf(root, [])).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });

  it('refuses an audit log it cannot write before the first action: exit 2, every file still there', async () => {
    await plantOrphans(layout, 2);
    await fs.writeFile(join(root, 'blocker'), '');
    const before = await treeOf(root);
    const result = await fix(['--audit-log', join(root, 'blocker', 'audit.jsonl'), '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(2);
    expect(result.stderr).toContain('cannot be written');
    expect(await treeOf(root)).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });
});

describe('the re-run', () => {
  it('gets exactly the run key as one argument, each word as written, never through a shell', async () => {
    const key = '2026-04-24_x';
    const argvFile = join(root, 'argv.json');
    const rerun = `${shellJoin([process.execPath, argvScript])} --date {date} 'two words'`;
    const result = await crashdiag(['diagnose', key, ...layoutFlags(), '--fix', '--rerun', rerun], {
      ARGV_FILE: argvFile,
    });
    expect(result.code, outOf(result)).toBe(10);
    expect(JSON.parse(await fs.readFile(argvFile, 'utf8'))).toEqual(['--date', key, 'two words']);
  });

  it('passes shell syntax through as literal arguments: nothing is run by a shell', async () => {
    const argvFile = join(root, 'argv.json');
    const pwned = join(root, 'pwned');
    const rerun = [
      shellJoin([process.execPath, argvScript]),
      '{date}',
      '\';\'',
      shellJoin([`touch ${pwned}-1`]),
      `'$(touch ${pwned}-2)'`,
      `"\\\`touch ${pwned}-3\\\`"`,
      '&&',
      'touch',
      `${pwned}-4`,
      '|',
      '>',
      `${pwned}-5`,
    ].join(' ');
    const result = await crashdiag(['diagnose', KEY, ...layoutFlags(), '--fix', '--rerun', rerun], {
      ARGV_FILE: argvFile,
    });
    expect(result.code, outOf(result)).toBe(10);
    expect(JSON.parse(await fs.readFile(argvFile, 'utf8'))).toEqual([
      KEY,
      ';',
      `touch ${pwned}-1`,
      `$(touch ${pwned}-2)`,
      `\`touch ${pwned}-3\``,
      '&&',
      'touch',
      `${pwned}-4`,
      '|',
      '>',
      `${pwned}-5`,
    ]);
    for (const n of [1, 2, 3, 4, 5]) expect(existsSync(`${pwned}-${n}`)).toBe(false);
  });

  it('that fails is reported with its exit status and stderr, run once, and exits 14, never 10 (“run now”)', async () => {
    const result = await fix(['--rerun', jobRerun({ exit: 3 })]);
    expect(result.code, outOf(result)).toBe(14);
    expect(result.stdout).toContain('RERUN-FAILED');
    // Its stderr streamed to the terminal as it ran, and its last lines are in the report.
    expect(result.stdout).toMatch(/\| job: failing on purpose/);
    expect(jobRuns()).toHaveLength(1);
    expect(result.stdout).toMatch(/re-run failed: .*job\.mjs .*\(exit 3\); not retried/);
    expect(result.stderr).toContain('job: failing on purpose');

    const json = await fix(['--json', '--rerun', jobRerun({ exit: 3 })]);
    expect(json.code, outOf(json)).toBe(14);
    expect(jobRuns()).toHaveLength(2);
    const report = JSON.parse(json.stdout) as FixJson;
    expect(report.fix.rerun?.exitStatus).toBe(3);
    expect(report.state).toBe('RERUN-FAILED');
    expect(report.action).toBe('investigate');
  });

  it('that cannot start is reported, and exits 14 (RERUN-FAILED)', async () => {
    const result = await fix(['--json', '--rerun', `${join(root, 'no-such-job')} {date}`]);
    expect(result.code, outOf(result)).toBe(14);
    const report = JSON.parse(result.stdout) as FixJson;
    expect(report.fix.rerun?.error).toContain('ENOENT');
  });
});

describe('--fix, concurrently', () => {
  async function eightAtOnce(extra: readonly string[]) {
    const orphans = await plantOrphans(layout, 4);
    await plantBystanders(layout, { prefixLookAlike: true });
    const bystanders = await treeWithout(orphans);
    // Four dead writers would be a crash loop; this is about eight fixers, not about attempts.
    // Eight processes, eight PIDs: the lock tells fixers apart by PID.
    const results = await Promise.all(
      Array.from({ length: 8 }, () => fixInOwnProcess(['--max-attempts', '0', ...extra])),
    );
    for (const path of orphans) expect(await exists(path)).toBe(false);
    return { results, bystanders };
  }

  it('8 fixers at once without a command: every orphan gone, everything else present, all exit 10', async () => {
    const { results, bystanders } = await eightAtOnce([]);
    expect(
      results.map((r) => r.code),
      results.map(outOf).join('\n'),
    ).toEqual(Array(8).fill(10));
    expect(await treeOf(root)).toEqual(bystanders);
  });

  it('8 fixers at once with a re-run, after a killed fixer left its lock: one re-run, all exit 0', async () => {
    // The lock of a fixer that was SIGKILLed: the first of the eight takes it over.
    await fs.mkdir(join(layout.stagingDir, '.crashdiag'));
    const hostname = (await import('node:os')).hostname();
    await fs.writeFile(
      join(layout.stagingDir, '.crashdiag', `${KEY}.lock`),
      JSON.stringify({ pid: deadPid(), host: hostname, token: 'killed', since: new Date().toISOString() }),
    );
    const { results, bystanders } = await eightAtOnce(['--rerun', jobRerun()]);
    expect(
      results.map((r) => r.code),
      results.map(outOf).join('\n'),
    ).toEqual(Array(8).fill(0));
    expect(jobRuns()).toHaveLength(1);
    expect(await fs.readFile(finalPathFor(layout), 'utf8')).toBe(PUBLISHED);
    expect(await treeWithout([finalPathFor(layout), markerPathFor(layout), jobLog])).toEqual(bystanders);
    expect(await exists(join(layout.stagingDir, '.crashdiag', `${KEY}.lock`))).toBe(false);
  });

  it('a second fixer gives up after --lock-timeout while the first re-runs: exit 20, nothing changed', async () => {
    const pidFile = join(root, 'job.pid');
    // The first fixer's re-run holds the lock until the test removes this file, however slow the others are.
    const hold = join(root, 'hold');
    await fs.writeFile(hold, '');
    const first = startCrashdiag([
      'diagnose',
      KEY,
      ...layoutFlags(),
      '--fix',
      '--rerun',
      jobRerun({ pidFile, holdWhile: hold }),
    ]);
    // Even if an assertion fails, the first fixer finishes before its directory is removed.
    cleanups.push(async () => {
      await fs.rm(hold, { force: true });
      await first.finished;
    });
    await waitFor('the first fixer’s re-run to start', () => existsSync(pidFile));
    // A dead orphan that appears meanwhile: the second fixer would delete it if it did not wait.
    const [late] = (await plantOrphans(layout, 1)) as [string];
    const second = await fix(['--lock-timeout', '1s', '--rerun', jobRerun()]);
    expect(second.code, outOf(second)).toBe(20);
    // It waited out --lock-timeout (by its own clock), then gave up.
    expect(second.stderr).toMatch(/gave up after waiting [1-9]\d*s\./);
    expect(second.stderr).toContain('Another crashdiag --fix holds');
    expect(second.stderr).toContain('nothing was changed');
    expect(await exists(late)).toBe(true);
    // A gate parsing --json still gets one object saying "wait", and who holds the lock.
    const third = await fix(['--lock-timeout', '1s', '--json', '--rerun', jobRerun()]);
    expect(third.code, outOf(third)).toBe(20);
    expect(JSON.parse(third.stdout)).toMatchObject({
      schemaVersion: 1,
      run: KEY,
      state: 'RUNNING',
      action: 'wait',
      exitCode: 20,
      lock: { path: join(layout.stagingDir, '.crashdiag', `${KEY}.lock`), holder: { pid: first.child.pid } },
    });
    expect(await exists(late)).toBe(true);
    expect(jobRuns()).toHaveLength(1);
    await fs.rm(hold);
    const firstDone = await first.finished;
    // The first publishes; the orphan that appeared under it is its business no more: D-race.
    expect(firstDone.code, outOf(firstDone)).toBe(12);
    expect(await exists(late)).toBe(true);
  });
});

describe('--fix killed midway', () => {
  it('SIGKILLed during its re-run, then run again: converges to DONE, no orphans, no lock in the way', async () => {
    const pidFile = join(root, 'job.pid');
    const hold = join(root, 'hold');
    await fs.writeFile(hold, '');
    // One, and the killed re-run makes two attempts: under --max-attempts 3, the next --fix re-runs.
    await plantOrphans(layout, 1);
    const rerun = jobRerun({ pidFile, holdWhile: hold });
    const first = startCrashdiag(['diagnose', KEY, ...layoutFlags(), '--fix', '--rerun', rerun]);
    // Should an assertion fail midway: release the held job and let both end before the directory goes.
    cleanups.push(async () => {
      await fs.rm(hold, { force: true });
      await first.finished;
    });
    await waitFor('the re-run to be writing its staging file', () => existsSync(pidFile));
    const jobPid = Number(readFileSync(pidFile, 'utf8'));
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    // The job was orphaned by the kill; an OOM killer would take it too.
    process.kill(jobPid, 'SIGKILL');
    await waitFor('the job to die', () => isDeadOrZombie(jobPid));
    await first.finished;
    await fs.rm(hold);

    // What the kill left: the job's half-written staging file and the dead fixer's lock.
    expect(await exists(stagingPathFor(layout, jobPid))).toBe(true);
    expect(await exists(join(layout.stagingDir, '.crashdiag', `${KEY}.lock`))).toBe(true);

    const again = await fix(['--lock-timeout', '5s', '--rerun', rerun]);
    expect(again.code, outOf(again)).toBe(0);
    expect(jobRuns()).toHaveLength(2);
    expect(await fs.readFile(finalPathFor(layout), 'utf8')).toBe(PUBLISHED);
    expect((await fs.readdir(layout.stagingDir)).filter((n) => n !== '.crashdiag')).toEqual([]);
    expect(await exists(join(layout.stagingDir, '.crashdiag', `${KEY}.lock`))).toBe(false);

    const check = await crashdiag(['diagnose', KEY, ...layoutFlags()]);
    expect(check.code, outOf(check)).toBe(0);
  });
});

describe('the audit log', () => {
  interface Line {
    op: string;
    path?: string;
    bytes?: number;
    writerPid?: number;
    time: string;
    user: string;
    host: string;
    command?: string[];
    exitStatus?: number | null;
  }

  const readLines = async (path: string): Promise<Line[]> =>
    (await fs.readFile(path, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);

  it('gets one JSON line per deletion and one for the re-run, in <staging>/.crashdiag/audit.jsonl', async () => {
    const orphans = await plantOrphans(layout, 2);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    const lines = await readLines(join(layout.stagingDir, '.crashdiag', 'audit.jsonl'));
    const hostname = (await import('node:os')).hostname();
    expect(lines.filter((l) => l.op !== 'intent')).toEqual([
      ...orphans.map((path) =>
        expect.objectContaining({
          op: 'delete',
          path,
          bytes: 10,
          writerPid: Number(path.split('.').at(-2)),
          host: hostname,
          user: expect.any(String),
          time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        }),
      ),
      expect.objectContaining({
        op: 'rerun',
        command: [process.execPath, jobScript, '--date', KEY, ...(jobRuns()[0]?.argv.slice(2) ?? [])],
        exitStatus: 0,
        host: hostname,
      }),
    ]);
    expect(lines.every((l) => l.user.length > 0)).toBe(true);
  });

  it('goes to --audit-log FILE instead (relative to the working directory)', async () => {
    await plantOrphans(layout, 1);
    const result = await fix(['--audit-log', 'logs/fix.jsonl', '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(0);
    expect((await readLines(join(root, 'logs', 'fix.jsonl'))).map((l) => l.op)).toEqual(['intent', 'delete', 'rerun']);
    expect(await exists(join(layout.stagingDir, '.crashdiag', 'audit.jsonl'))).toBe(false);
  });
});

describe('--now is for reading only (issue 9, item 4)', () => {
  it.each([
    ['--fix', [] as string[]],
    ['--fix --dry-run', ['--dry-run']],
  ])('attack: %s --now 2030-01-01 on a file written a second ago: exit 2 before any I/O, the disk unchanged', async (_, extra) => {
    // By age alone (--no-pid-check) a file written now is alive; a clock four years on would call it dead.
    const fresh = stagingPathFor(layout, deadPid());
    await writeAged(fresh, 'written a second ago\n', 1000);
    const before = await treeOf(root, []);
    const result = await fix(['--no-pid-check', '--now', '2030-01-01', ...extra, '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(2);
    expect(result.stderr).toMatch(/^crashdiag: --now is for reading only: --fix.* judges every file against the real clock\.\n/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await treeOf(root, [])).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });

  it('--now without --fix still reads', async () => {
    const fresh = stagingPathFor(layout, deadPid());
    await writeAged(fresh, 'written a second ago\n', 1000);
    const result = await crashdiag(['diagnose', KEY, ...layoutFlags(), '--no-pid-check', '--now', '2030-01-01', '--json']);
    expect(result.code, outOf(result)).toBe(11);
    expect(await exists(fresh)).toBe(true);
  });
});

describe('--fix --quarantine that is a regular file (issue 9, item 11)', () => {
  it('attack: exit 2 before anything moves, the disk unchanged byte for byte', async () => {
    await plantOrphans(layout, 2);
    await fs.writeFile(join(root, 'evidence.txt'), 'not a directory\n');
    const before = await treeOf(root);
    const result = await fix(['--quarantine', 'evidence.txt', '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(2);
    expect(result.stderr).toBe(
      `crashdiag: --quarantine ${join(root, 'evidence.txt')} is a file, not a directory; nothing was moved.\n`,
    );
    expect(await treeOf(root)).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });
});

describe('--fix --quarantine onto another file system (issue 9, item 11)', () => {
  it('attack: a real tmpfs: the moved orphan keeps its mtime, the record its mtime and size', async (context) => {
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const mtime = Math.floor(Date.now() / 1000) - 7200;
    await fs.utimes(orphan, mtime, mtime);
    const quarantine = join(root, 'quarantine');
    await fs.mkdir(quarantine);
    const statFile = join(root, 'quarantined-stat.json');
    // In a mount namespace of its own, so the tmpfs vanishes with it; the copy's times are read inside.
    const script = [
      'mount -t tmpfs tmpfs "$Q" || exit 77',
      '"$NODE" "$BIN" diagnose "$KEY" --out-dir "$OUT" --staging-dir "$STG" --final "report_{date}.csv" --fix --quarantine "$Q" --json > "$ROOT/fix.json"',
      'code=$?',
      `"$NODE" -e 'const fs=require("fs");const [q,out]=process.argv.slice(1);const s=fs.readdirSync(q).map((n)=>{const st=fs.statSync(q+"/"+n,{bigint:true});return [n,String(st.mtimeNs),String(st.dev!==fs.statSync(process.env.STG,{bigint:true}).dev)]});fs.writeFileSync(out,JSON.stringify(s))' "$Q" "${statFile}"`,
      'exit $code',
    ].join('\n');
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
      cwd: root,
      env: {
        ...process.env,
        NO_COLOR: '1',
        NODE: process.execPath,
        BIN: bin,
        KEY,
        OUT: layout.outDir,
        STG: layout.stagingDir,
        Q: quarantine,
        ROOT: root,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result = await collectOutput(child, 40_000);
    if (result.code === 77 || (result.code === 1 && result.stderr.includes('unshare'))) {
      context.skip(`no tmpfs mount possible here: ${result.stderr.trim()}`);
    }
    expect(result.code, outOf(result)).toBe(10);
    const report = JSON.parse(await fs.readFile(join(root, 'fix.json'), 'utf8')) as FixJson;
    const to = join(quarantine, orphan.slice(layout.stagingDir.length + 1));
    expect(report.fix.steps.map((s) => [s.result, s.to])).toEqual([['quarantined', to]]);
    const [[name, mtimeNs, otherDevice] = []] = JSON.parse(await fs.readFile(statFile, 'utf8')) as string[][];
    expect(name).toBe(orphan.slice(layout.stagingDir.length + 1));
    expect(otherDevice).toBe('true');
    expect(mtimeNs).toBe(String(BigInt(mtime) * 1_000_000_000n));
    const records = readFileSync(join(layout.stagingDir, '.crashdiag', 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { op: string; mtime?: string; bytes?: number });
    expect(records.find((r) => r.op === 'quarantine')).toMatchObject({
      bytes: 10,
      mtime: new Date(mtime * 1000).toISOString(),
    });
    expect(await exists(orphan)).toBe(false);
  });
});

describe('--fix as an unprivileged user in a shared sticky staging directory (issue 9, item 9)', () => {
  const NOBODY = 65534;

  /** The built bin run as nobody, in no supplementary group: the kernel's permission checks apply. */
  function fixAsNobody(extra: readonly string[] = []): Promise<Exited> {
    const child = spawn(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, bin, 'diagnose', KEY, ...layoutFlags(), '--fix', ...extra],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return collectOutput(child, 40_000);
  }

  /** A 1777 staging directory as /tmp is, nobody able to reach it and the bin; orphans of nobody and of root. */
  async function sharedStaging(): Promise<{ own: string; roots: string }> {
    for (const dir of [shared, root, layout.outDir]) await fs.chmod(dir, 0o755);
    await fs.chmod(layout.stagingDir, 0o1777);
    const [own, roots] = (await plantOrphans(layout, 2)) as [string, string];
    await fs.lchown(own, NOBODY, NOBODY);
    return { own, roots };
  }

  it('attack: one orphan its own, one root’s: refused up front, exit 30, names root’s file, the disk unchanged', async () => {
    const { own, roots } = await sharedStaging();
    const before = await treeOf(root);
    const result = await fixAsNobody();
    expect(result.code, outOf(result)).toBe(30);
    expect(result.stdout).toContain(
      `refused ${roots}: permission denied: its directory is sticky (mode 1777) and uid ${NOBODY} owns neither the file (owner uid 0) nor the directory (owner uid 0)`,
    );
    expect(result.stdout).toContain('nothing was removed');
    expect(result.stderr).not.toMatch(/unexpected error|\n\s+at /);
    expect(await treeOf(root)).toEqual(before);
    expect(await exists(own)).toBe(true);
  });

  it('every orphan its own: removes them all, as nobody', async () => {
    const { own, roots } = await sharedStaging();
    await fs.lchown(roots, NOBODY, NOBODY);
    const result = await fixAsNobody();
    expect(result.code, outOf(result)).toBe(10);
    expect(await exists(own)).toBe(false);
    expect(await exists(roots)).toBe(false);
  });
});

describe('--fix when the disk refuses a removal midway (issue 9, item 9)', () => {
  /** crashdiag in process on the real disk, but unlink of the second staging file fails with EPERM. */
  async function fixInProcess(args: readonly string[]) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const events: string[] = [];
    let unlinks = 0;
    const realFs = { ...fs, lstatSync };
    const io: CliIo = {
      stdout: { write: (chunk: string) => stdout.push(chunk), isTTY: false },
      stderr: { write: (chunk: string) => stderr.push(chunk), isTTY: false },
      env: { NO_COLOR: '1' },
      cwd: root,
      fs: {
        ...hookSync(realFs, layout.stagingDir, async (_nth, sync) => {
          await sync();
          events.push(`fsync ${layout.stagingDir}`);
        }),
        unlink: async (path) => {
          if (String(path).startsWith(`${layout.stagingDir}/${KEY}.`) && ++unlinks === 2) {
            throw Object.assign(new Error(`EPERM: operation not permitted, unlink '${String(path)}'`), {
              code: 'EPERM',
            });
          }
          await fs.unlink(path);
          events.push(`unlink ${String(path)}`);
        },
      },
      processes: createProcessTable(),
      now: () => Date.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      runCommand: async () => ({ exitStatus: 0, signal: null }),
      user: 'oncall',
      identity: { uid: 0, gid: 0, groups: [] },
      ...realLockRuntime(),
      runbooks: installedRunbooks(),
    };
    const code = await run(['diagnose', KEY, ...layoutFlags(), '--fix', ...args], io);
    return { code, stdout: stdout.join(''), stderr: stderr.join(''), events };
  }

  it('attack: EPERM on the second of three: exit 30, one sentence, no stack, both audited, fsynced, JSON lists done and not done', async () => {
    const [first, second, third] = (await plantOrphans(layout, 3)) as [string, string, string];
    const result = await fixInProcess(['--json', '--rerun', jobRerun()]);
    expect(result.code, result.stderr).toBe(30);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as FixJson & { fix: { stopped: string | null } };
    expect(report.state).toBe('UNKNOWN');
    expect(report.fix.steps.map((s) => [s.path, s.result])).toEqual([
      [first, 'deleted'],
      [second, 'failed'],
      [third, 'not-attempted'],
    ]);
    expect(report.fix.stopped).toBe(
      `removing ${second} failed (EPERM); 1 of 3 removed before it, the rest not attempted, nothing was re-run`,
    );
    expect(report.fix.rerun).toBeNull();
    expect(result.events.filter((e) => !e.includes('.crashdiag'))).toEqual([
      `unlink ${first}`,
      `fsync ${layout.stagingDir}`,
    ]);
    const records = readFileSync(join(layout.stagingDir, '.crashdiag', 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { op: string; path?: string; reason?: string });
    // Write-ahead: each removal's intent, then its outcome.
    expect(records.map((r) => [r.op, r.path, r.reason])).toEqual([
      ['intent', first, undefined],
      ['delete', first, undefined],
      ['intent', second, undefined],
      ['fail', second, 'EPERM'],
    ]);
    expect(await exists(second)).toBe(true);
    expect(await exists(third)).toBe(true);
    expect(jobRuns()).toEqual([]);
  });

  it('the human view: the one sentence on stderr, each step on stdout, no stack', async () => {
    const [, second, third] = (await plantOrphans(layout, 3)) as [string, string, string];
    const result = await fixInProcess([]);
    expect(result.code).toBe(30);
    expect(result.stderr.split('\n').filter((l) => l.startsWith('crashdiag: stopped:'))).toEqual([
      `crashdiag: stopped: removing ${second} failed (EPERM); 1 of 3 removed before it, the rest not attempted, nothing was re-run; see the audit log`,
    ]);
    expect(result.stderr).not.toMatch(/unexpected error|\n\s+at /);
    expect(result.stdout).toContain(`could not remove ${second}`);
    expect(result.stdout).toContain(`not attempted ${third}`);
  });
});

describe('the recovery loop, from the command line', () => {
  it('a crash loop: --fix cleans, never runs the job, exits 15 and lists the attempts; --retry allows another round', async () => {
    const orphans = await plantOrphans(layout, 3);
    const result = await fix(['--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(15);
    expect(jobRuns()).toEqual([]);
    for (const path of orphans) expect(await exists(path)).toBe(false);
    expect(result.stdout).toContain('CRASH-LOOP');
    expect(result.stdout).toContain('a crash loop: orphans are removed, nothing is re-run');
    expect(result.stdout).toMatch(/Failed attempts since the last publish or --retry: 3 of 3/);
    expect(result.stdout).toContain('--fix --retry');

    const json = await fix(['--json', '--rerun', jobRerun()]);
    expect(json.code, outOf(json)).toBe(15);
    const report = JSON.parse(json.stdout) as FixJson & { attempts: { count: number; list: unknown[] } };
    expect(report.attempts.count).toBe(3);
    expect(jobRuns()).toEqual([]);

    const retried = await fix(['--retry', '--rerun', jobRerun()]);
    expect(retried.code, outOf(retried)).toBe(0);
    expect(jobRuns()).toHaveLength(1);
  });

  it('--input missing: BLOCKED, exit 16, the job never runs, the input is named', async () => {
    await plantOrphans(layout, 1);
    const input = join(root, 'in', 'refunds_{date}.csv');
    const result = await fix(['--input', input, '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(16);
    expect(jobRuns()).toEqual([]);
    expect(result.stdout).toContain('BLOCKED');
    expect(result.stdout).toContain(join(root, 'in', `refunds_${KEY}.csv`));
    expect(result.stdout).toContain('Fix upstream first');
  });

  it('--input given twice checks both: the second missing is BLOCKED, exit 16, named, the job never runs', async () => {
    await plantOrphans(layout, 1);
    await fs.mkdir(join(root, 'in'));
    await fs.writeFile(join(root, 'in', `refunds_${KEY}.csv`), 'id,amount\n1,10\n');
    const present = join(root, 'in', 'refunds_{date}.csv');
    const missing = join(root, 'in', 'rates_{date}.csv');
    const result = await fix(['--input', present, '--input', missing, '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(16);
    expect(jobRuns()).toEqual([]);
    expect(result.stdout).toContain(join(root, 'in', `rates_${KEY}.csv`));
  });

  it('--retry-backoff: too early, nothing changes, exit 21 and retryAfterSeconds', async () => {
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const before = await treeOf(root);
    const result = await fix(['--json', '--retry-backoff', '2h', '--rerun', jobRerun()]);
    expect(result.code, outOf(result)).toBe(21);
    const report = JSON.parse(result.stdout) as FixJson & { retryAfterSeconds: number };
    // The orphan was written an hour ago (writeAged): about an hour to go.
    expect(report.retryAfterSeconds).toBeGreaterThan(3000);
    expect(report.retryAfterSeconds).toBeLessThanOrEqual(3600);
    expect(await exists(orphan)).toBe(true);
    expect(await treeOf(root)).toEqual(before);
    expect(jobRuns()).toEqual([]);
  });

  it('--retry goes with --fix', async () => {
    const result = await crashdiag(['diagnose', KEY, ...layoutFlags(), '--retry']);
    expect(result.code, outOf(result)).toBe(2);
    expect(result.stderr).toContain('--retry goes with --fix');
  });
});
