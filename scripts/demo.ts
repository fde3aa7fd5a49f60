#!/usr/bin/env node
// npm run demo: crash a real batch job with kill -9 in a temporary workspace
// and show crashdiag naming each state it left, with its real output. Leaves
// nothing behind, even when interrupted.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { generateRefundsCsv } from '../examples/refunds-pipeline/generate-input.js';
import { makeMemoryCage, type MemoryCage } from '../examples/refunds-pipeline/harness/memory-cage.js';
import { runToExit, start } from '../examples/refunds-pipeline/harness/processes.js';
import { siteOf, startS3Server, type S3TestServer } from '../examples/refunds-pipeline/harness/s3rver.js';
import {
  closeS3Clients, createS3Workspace, describeS3, s3Env,
} from '../examples/refunds-pipeline/harness/s3-workspace.js';
import { toolsIn } from '../examples/refunds-pipeline/harness/tools.js';
import {
  createWorkspace,
  makeTempRoot,
  readOutput,
  stagingFilesFor,
  type Workspace,
} from '../examples/refunds-pipeline/harness/workspace.js';
import { finalName, markerName, S3_STAGING_TEMPLATE } from '../examples/refunds-pipeline/names.js';

const KEY = '2026-04-24';
const colour = process.stdout.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
const paint = (code: string, text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text);
const say = (text = '') => process.stdout.write(`${text}\n`);

/** Bundled to dist-dev/demo.js, beside the example pipeline; crashdiag is ../dist/crashdiag.cjs. */
const tools = toolsIn(dirname(fileURLToPath(import.meta.url)));

// Paths in commands are relative to the workspace, which is every child's cwd,
// so the commands and the tool's output read the way they would on a server.
const LAYOUT = ['--out-dir', 'out', '--staging-dir', '_staging', '--final', '\'refunds_settled_{date}.csv\''];
const JOB_ARGS = ['--date', KEY, '--input', 'input.csv', '--out-dir', 'out', '--staging-dir', '_staging'];
const RERUN_ARGS = '--date {date} --input input.csv --out-dir out --staging-dir _staging';

let workspace: Workspace | null = null;
let liveWriter: ChildProcess | null = null;
let cage: MemoryCage | null = null;
let s3server: S3TestServer | null = null;
let stepNumber = 0;

function step(title: string, ...lines: string[]): void {
  stepNumber += 1;
  say();
  say(paint('1;36', `── ${stepNumber}. ${title} ${'─'.repeat(Math.max(4, 72 - title.length))}`));
  for (const line of lines) say(paint('36', line));
}

function note(...lines: string[]): void {
  for (const line of lines) say(paint('2', `   ${line}`));
}

/**
 * Runs a command as shown, its output going straight to this terminal, so the
 * tool's colours, layout and stdout/stderr interleaving are exactly a user's.
 */
async function shown(
  display: string,
  command: 'crashdiag' | 'refunds-pipeline',
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<number | null> {
  const ws = workspace as Workspace;
  say(paint('1', `$ ${display}`));
  const script = command === 'crashdiag' ? tools.crashdiag : tools.pipeline;
  const result = await runToExit(tools.node, [script, ...args], {
    cwd: ws.dir,
    env: childEnv(env),
    inherit: true,
    timeoutMs: 20_000,
  });
  if (result.signal) say(paint('31', `[killed by ${result.signal}: no exit code, no last log line]`));
  else say(paint('2', `[exit code ${result.code}]`));
  return result.code;
}

function diagnose(extra: string[] = []): Promise<number | null> {
  const args = ['diagnose', KEY, ...LAYOUT.map(unquote), ...extra];
  const display = ['crashdiag diagnose', KEY, ...LAYOUT, ...extra.map(quoteIfNeeded)].join(' ');
  return shown(display, 'crashdiag', args);
}

function fixWithRerun(env: NodeJS.ProcessEnv = {}, extra: string[] = []): Promise<number | null> {
  const rerun = `${quoteIfNeeded(tools.node)} ${quoteIfNeeded(tools.pipeline)} ${RERUN_ARGS}`;
  const prefix = Object.entries(env)
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  const display = `${prefix}crashdiag diagnose ${KEY} ${LAYOUT.join(' ')} --fix${extra.map((w) => ` ${w}`).join('')} --rerun 'refunds-pipeline ${RERUN_ARGS}'`;
  const args = ['diagnose', KEY, ...LAYOUT.map(unquote), '--fix', ...extra, '--rerun', rerun];
  return shown(display, 'crashdiag', args, env);
}

function runJob(env: NodeJS.ProcessEnv = {}): Promise<number | null> {
  const prefix = Object.entries(env)
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  return shown(`${prefix}refunds-pipeline ${JOB_ARGS.join(' ')}`, 'refunds-pipeline', JOB_ARGS, env);
}

/** The caller's environment without the job's crash and pacing switches, plus `extra`. */
function childEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.REFUNDS_CRASH_AT;
  delete env.REFUNDS_STEP_DELAY_MS;
  return { ...env, ...extra };
}

function unquote(word: string): string {
  return word.replace(/^'(.*)'$/, '$1');
}

function quoteIfNeeded(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll('\'', `'\\''`)}'`;
}

function showDisk(): void {
  const ws = workspace as Workspace;
  say(paint('2', 'On disk now:'));
  for (const dir of [ws.outDir, ws.stagingDir]) {
    const names = readdirSync(dir).sort();
    if (names.length === 0) say(`  ${relative(ws.dir, dir)}/  (empty)`);
    for (const name of names) {
      const path = join(dir, name);
      const shownPath = relative(ws.dir, path).padEnd(48);
      // crashdiag --fix keeps its audit log beside the staging files it acts on.
      if (statSync(path).isDirectory()) say(`  ${shownPath} (directory: crashdiag's audit log)`);
      else say(`  ${shownPath} ${statSync(path).size} bytes`);
    }
  }
}

async function resetDisk(): Promise<void> {
  const ws = workspace as Workspace;
  for (const dir of [ws.outDir, ws.stagingDir]) {
    for (const name of readdirSync(dir)) await rm(join(dir, name), { recursive: true, force: true });
  }
  note('(out/ and _staging/ emptied: this scenario starts from a day that has not run yet)');
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

function expectExit(got: number | null, want: number, what: string): void {
  if (got !== want) throw new Error(`expected ${what} to exit ${want}, got ${got}`);
}

async function main(): Promise<void> {
  const started = performance.now();
  // The pinned AWS SDK warns under node 20 about its releases after January 2027: known, and noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const root = await makeTempRoot('crashdiag-demo-');
  workspace = await createWorkspace(root);
  const ws = workspace;
  await writeFile(ws.inputPath, generateRefundsCsv({ seed: 'demo', runDate: KEY }));
  const output = join(ws.outDir, finalName(KEY));

  say(paint('1', 'crashdiag demo: crash a real batch job with kill -9, and let crashdiag say what it left'));
  say();
  say(`The job: a refunds settlement for one run date (the run key, here ${KEY}). It reads`);
  say('input.csv, totals the settled refunds per account, writes _staging/<date>.<pid>.csv,');
  say('fsyncs it, renames it to out/refunds_settled_<date>.csv (atomic), then writes the');
  say('.success marker that downstream jobs wait for.');
  say();
  say(`Workspace: ${root} (removed at the end).`);
  say('Below, `refunds-pipeline` is node dist-dev/refunds-pipeline.js and `crashdiag` is');
  say('node dist/crashdiag.cjs from this checkout; every command runs inside the workspace.');

  step('A clean run', 'The job runs to the end. crashdiag reads only the disk: output, marker, staging.');
  expectExit(await runJob(), 0, 'a clean run');
  expectExit(await diagnose(), 0, 'diagnose after a clean run');
  const cleanHash = await sha256(output);
  note(
    `DONE: nothing to do. Re-running would rewrite a correct, published file. sha256 ${cleanHash.slice(0, 16)}…`,
  );

  step(
    'kill -9 in the middle of the write: state D',
    'REFUNDS_CRASH_AT makes the job SIGKILL itself at a named point, like an OOM kill:',
    'no handler runs, nothing is cleaned up, and no log line says so.',
  );
  await resetDisk();
  await runJob({ REFUNDS_CRASH_AT: 'mid-write' });
  showDisk();
  expectExit(await diagnose(), 11, 'diagnose after a mid-write kill');
  note(
    'D: the staging file is a truncated orphan whose writer (the PID in its name) is dead.',
    'Never move it into out/; delete it, then re-run pinned to the same run key.',
  );

  step(
    'Recover with --fix --rerun',
    '--fix performs exactly the safe action for the state it finds, and re-checks after.',
  );
  expectExit(await fixWithRerun(), 0, '--fix --rerun on D');
  showDisk();
  const fixedHash = await sha256(output);
  if (fixedHash !== cleanHash) throw new Error('the re-run output differs from the clean run');
  note(
    `The re-run's output is byte-identical to the clean run's (sha256 ${fixedHash.slice(0, 16)}…): the transform is pure.`,
  );

  step(
    'An orphan beside a published output: state D-race',
    'Run 1 is killed mid-write; before anyone looks, someone re-runs the job by hand and it finishes.',
  );
  await resetDisk();
  await runJob({ REFUNDS_CRASH_AT: 'mid-write' });
  expectExit(await runJob(), 0, 'the manual re-run');
  showDisk();
  expectExit(await diagnose(), 12, 'diagnose with an orphan beside the output');
  note('D-race: delete the orphan only. Another re-run would overwrite a freshly published, correct file.');
  expectExit(await diagnose(['--fix']), 0, '--fix on D-race');

  step(
    'A live writer: state RUNNING',
    'The job is slowed down (REFUNDS_STEP_DELAY_MS) and caught while it writes its staging file.',
    'The first question on call: is this a crash at all?',
  );
  await resetDisk();
  say(paint('1', `$ REFUNDS_STEP_DELAY_MS=400 refunds-pipeline ${JOB_ARGS.join(' ')} &`));
  const slow = start(tools.node, [tools.pipeline, ...JOB_ARGS], {
    cwd: ws.dir,
    env: childEnv({ REFUNDS_STEP_DELAY_MS: '400' }),
    timeoutMs: 20_000,
  });
  liveWriter = slow.child;
  await waitForBytes(ws, slow.finished);
  showDisk();
  expectExit(await diagnose(), 20, 'diagnose while the job runs');
  note('RUNNING: the PID is alive and started before the file was last written. Touch nothing; wait.');
  const finished = await slow.finished;
  liveWriter = null;
  if (finished.code !== 0) throw new Error(`the slow run failed: ${finished.stderr}`);
  note(`A moment later the job finished on its own: ${finished.stdout.trim()}`);

  step(
    'Killed between the rename and the marker: state UNPUBLISHED',
    'The output is in out/, complete (it was renamed), but the .success marker was never written.',
  );
  await resetDisk();
  await runJob({ REFUNDS_CRASH_AT: 'after-rename' });
  showDisk();
  expectExit(await diagnose(), 13, 'diagnose after a kill between rename and marker');
  note(
    `Downstream waits for ${markerName(KEY)}, so for them the day is not published.`,
    'The safe move is a re-run pinned to the same run key:',
  );
  expectExit(await fixWithRerun(), 0, '--fix --rerun on UNPUBLISHED');
  if ((await sha256(output)) !== cleanHash) throw new Error('the re-run output differs from the clean run');
  note('Published again, byte-identical to the clean run.');

  await oomScene(ws);
  await crashLoopScene();
  await s3Scene(root, cleanHash);

  say();
  say(paint('1', 'That is the whole model:'));
  say('  DONE         output + marker, no staging       nothing to do');
  say('  A/B/C        nothing on disk for the run key    re-run, same key');
  say('  D            dead orphan, no output             delete orphan, re-run');
  say('  D-race       dead orphan beside the output      delete orphan, do not re-run');
  say('  RUNNING      the writer is alive                wait');
  say('  UNPUBLISHED  output without its marker          re-run, same key');
  say('  UNKNOWN      anything else                      a person looks');
  say('and the recovery loop around it:');
  say('  RERUN-FAILED the re-run --fix started failed      investigate why (exit 14)');
  say('  CRASH-LOOP   died --max-attempts times            fix the cause, then --retry (exit 15)');
  say('  BLOCKED      a re-run needs a missing input       fix upstream (exit 16)');
  say();
  say(`Demo finished in ${((performance.now() - started) / 1000).toFixed(1)} s; removing ${root}.`);
}

/** A real OOM kill in a memory cgroup, where one can be made; crashdiag names the cause. */
async function oomScene(ws: Workspace): Promise<void> {
  const limitMb = 96;
  step(
    'Killed by the kernel: a real OOM kill, and why it died',
    `The job runs in a memory cgroup limited to ${limitMb} MiB and needs far more (REFUNDS_HOG_MB).`,
    'The kernel\'s OOM killer SIGKILLs it mid-write. crashdiag finds the PID in the kernel log.',
  );
  const made = await makeMemoryCage(`crashdiag-demo-${process.pid}`, limitMb * 1024 * 1024);
  if ('skip' in made) {
    note(`(skipped: ${made.skip})`);
    return;
  }
  cage = made;
  await resetDisk();
  say(paint('1', `$ REFUNDS_HOG_MB=1024 refunds-pipeline ${JOB_ARGS.join(' ')}   # inside ${made.path}`));
  const died = await made.run(tools.node, [tools.pipeline, ...JOB_ARGS], {
    cwd: ws.dir,
    env: childEnv({ REFUNDS_HOG_MB: '1024' }),
    inherit: true,
    timeoutMs: 60_000,
  });
  await made.remove();
  cage = null;
  if (died.signal) say(paint('31', `[killed by ${died.signal}: no exit code, no last log line]`));
  else say(paint('2', `[exit code ${died.code}]`));
  showDisk();
  expectExit(await diagnose(), 11, 'diagnose after an OOM kill');
  note('"Why it died" names oom-kill with the PID in the orphan\'s name, the memory figures and the cgroup.',
    'An OOM kill is deterministic: a re-run on the same worker dies the same way. Fix the limit first.');
}

/** A job that dies the same way every time: crashdiag counts the attempts and stops re-running it. */
async function crashLoopScene(): Promise<void> {
  step(
    'The same crash every time: a crash loop stops after three attempts',
    'A wrapper retries with `crashdiag diagnose --fix --rerun` after each failure. The job dies mid-write',
    'every time (REFUNDS_CRASH_AT stands for an OOM kill on an undersized worker).',
  );
  await resetDisk();
  await runJob({ REFUNDS_CRASH_AT: 'mid-write' });
  note('Attempt 1 died. The wrapper calls crashdiag:');
  expectExit(await fixWithRerun({ REFUNDS_CRASH_AT: 'mid-write' }), 14, 'the first --fix --rerun');
  note('RERUN-FAILED (14): the orphan was cleaned, the re-run (attempt 2) died too. 14 never means "run now".');
  expectExit(await fixWithRerun({ REFUNDS_CRASH_AT: 'mid-write' }), 14, 'the second --fix --rerun');
  note('Attempt 3 died as well. Once more:');
  expectExit(await fixWithRerun({ REFUNDS_CRASH_AT: 'mid-write' }), 15, 'the third --fix --rerun');
  showDisk();
  note(
    'CRASH-LOOP (15): three failed attempts without publishing. --fix cleaned the last orphan (recorded in the',
    'audit log, so the count survives) and did not start the job again. Fix the cause, then say so with --retry:',
  );
  expectExit(await fixWithRerun({}, ['--retry']), 0, '--fix --retry once the cause is fixed');
}

/** The same job with out/ and staging as S3 prefixes, on an S3 server started for the demo. */
async function s3Scene(root: string, cleanHash: string): Promise<void> {
  step(
    'On S3: killed between CopyObject and DeleteObject',
    'S3 has no rename. The job puts a staging object, copies it to the final key, deletes the',
    'staging object, then puts the marker. Here it is killed right after the copy.',
  );
  try {
    s3server = await startS3Server(['data'], tools.s3rverChild);
  } catch (error) {
    note(`(skipped: s3rver did not start: ${(error as Error).message})`);
    return;
  }
  const ws = await createS3Workspace(join(root, 's3'), siteOf(s3server, 'data'), 'refunds', join(root, 'input.csv'));
  const env = (extra: NodeJS.ProcessEnv = {}) => s3Env(ws, childEnv(extra));
  const layout = ['--out-dir', ws.outDir, '--staging-dir', ws.stagingDir, '--final', 'refunds_settled_{date}.csv',
    '--staging', S3_STAGING_TEMPLATE];
  const shownLayout = layout.map(quoteIfNeeded).join(' ');
  const jobArgs = ['--date', KEY, '--input', 'input.csv', '--out-dir', ws.outDir, '--staging-dir', ws.stagingDir];
  const run = async (display: string, script: string, args: string[], extra: NodeJS.ProcessEnv = {}) => {
    say(paint('1', `$ ${display}`));
    const result = await runToExit(tools.node, [script, ...args], {
      cwd: root, env: env(extra), inherit: true, timeoutMs: 20_000,
    });
    if (result.signal) say(paint('31', `[killed by ${result.signal}: no exit code, no last log line]`));
    else say(paint('2', `[exit code ${result.code}]`));
    return result.code;
  };
  const showBucket = async () => {
    say(paint('2', 'In the bucket now:'));
    for (const line of await describeS3(ws.s3 as NonNullable<Workspace['s3']>)) say(line);
  };

  say(paint('1', `$ export AWS_ENDPOINT_URL_S3=${s3server.endpoint} AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER`));
  note('(s3rver on 127.0.0.1: a real S3 HTTP server; crashdiag reads the endpoint the way the AWS SDKs do)');
  await run(`REFUNDS_CRASH_AT=after-copy refunds-pipeline ${jobArgs.join(' ')}`, tools.pipeline, jobArgs, {
    REFUNDS_CRASH_AT: 'after-copy',
  });
  await showBucket();
  note('The staging key carries {host} as well as {pid}: on the host that wrote it, crashdiag can ask',
    'whether that PID is alive. Without {host}, a staging object is judged by its age only.');
  expectExit(
    await run(`crashdiag diagnose ${KEY} ${shownLayout}`, tools.crashdiag, ['diagnose', KEY, ...layout]),
    13,
    'diagnose after a kill between copy and delete',
  );
  note('UNPUBLISHED: the output is complete (a copy is atomic for readers) but unmarked, beside its orphan.',
    'Delete the orphan, then re-run pinned to the same run key:');
  const rerun = [tools.node, tools.pipeline, '--date', '{date}', '--input', 'input.csv', '--out-dir', ws.outDir,
    '--staging-dir', ws.stagingDir].map(quoteIfNeeded).join(' ');
  const shownRerun = `refunds-pipeline --date {date} --input input.csv --out-dir ${ws.outDir} --staging-dir ${ws.stagingDir}`;
  expectExit(
    await run(
      `crashdiag diagnose ${KEY} ${shownLayout} --fix --rerun '${shownRerun}'`,
      tools.crashdiag,
      ['diagnose', KEY, ...layout, '--fix', '--rerun', rerun],
    ),
    0,
    '--fix --rerun on S3',
  );
  await showBucket();
  const output = await readOutput(ws, KEY);
  if (!output || createHash('sha256').update(output).digest('hex') !== cleanHash) {
    throw new Error('the output on S3 differs from the clean local run');
  }
  note(`The lock and the audit log stayed local (${relative(root, join(ws.dir, 'state'))}/crashdiag/, from XDG_STATE_HOME).`,
    'The output on S3 is byte-identical to the clean local run\'s.');
  await closeS3Clients();
  await s3server.stop();
  s3server = null;
}

/** Polls until the job's staging file holds its first bytes: caught in the middle of the write. */
async function waitForBytes(ws: Workspace, ended: Promise<unknown>): Promise<void> {
  let done = false;
  void ended.then(() => {
    done = true;
  });
  while (!done) {
    const files = await stagingFilesFor(ws, KEY);
    const first = files[0];
    if (first && statSync(join(ws.stagingDir, first)).size > 0) return;
    await sleep(10);
  }
  throw new Error('the job ended before it was caught writing');
}

function cleanUp(): void {
  liveWriter?.kill('SIGKILL');
  // The cage's only process is the job, dead by now; a cgroup left behind would outlive the demo.
  // rmdir, not rm -r: a cgroup's control files cannot be unlinked, the directory can be removed.
  if (cage) {
    try {
      rmdirSync(cage.path);
    } catch {
      process.stderr.write(`demo: remove the cgroup ${cage.path} by hand (rmdir)\n`);
    }
  }
  cage = null;
  // Its store must not outlive the demo, even when a signal ends this process right after: remove it
  // now; the child exits on its stop message, or by itself once this process is gone.
  if (s3server) {
    rmSync(s3server.directory, { recursive: true, force: true });
    void s3server.stop().catch(() => {});
  }
  s3server = null;
  if (workspace) rmSync(workspace.dir, { recursive: true, force: true });
  workspace = null;
}

// Ctrl-C must not leave a workspace (or a slowed job) behind: clean up, then
// die of the same signal so the shell sees the usual status.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanUp();
    process.kill(process.pid, signal);
  });
}

main().then(
  () => {
    cleanUp();
  },
  (error: unknown) => {
    cleanUp();
    process.stderr.write(`demo: ${(error as Error).message}\n`);
    process.exitCode = 1;
  },
);
