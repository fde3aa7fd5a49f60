import { spawn } from 'node:child_process';
import { promises as fsp, lstatSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CliIo, OutputStream } from '../../src/cli/io.js';
import { createTail } from '../../src/bin/command-runner.js';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { ownIdentity } from './identity.js';
import { realLockRuntime } from './lock-runtime.js';
import { installedRunbooks } from '../../src/bin/runbook-files.js';

export interface InProcessRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface InProcessOptions {
  /**
   * Run re-run commands for real, as the bin does (no shell, stderr teed, a
   * tail kept), their output going to the captured streams, with this
   * environment under crashdiag's own variables; without it, none is run.
   */
  readonly commandEnv?: NodeJS.ProcessEnv;
  /** A re-run still running after this long is SIGKILLed: a hung job must fail a test, not stall it. */
  readonly commandTimeoutMs?: number;
}

/**
 * `crashdiag ARGS` through run(argv, io), in this process, on the real disk
 * and process table as the test's own user: what the bin would do, without a
 * spawn. `overrides` replace any part of the io (a wrapped fs, a re-run).
 */
export async function crashdiagInProcess(
  args: readonly string[],
  cwd: string,
  overrides: Partial<CliIo> = {},
  options: InProcessOptions = {},
): Promise<InProcessRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const out: OutputStream = { write: (chunk: string) => stdout.push(chunk), isTTY: false };
  const err: OutputStream = { write: (chunk: string) => stderr.push(chunk), isTTY: false };
  const { commandEnv, commandTimeoutMs = 30_000 } = options;
  const io: CliIo = {
    stdout: out,
    stderr: err,
    env: { NO_COLOR: '1' },
    cwd,
    fs: { ...(fsp as FileSystem), lstatSync },
    processes: createProcessTable(),
    now: () => Date.now(),
    sleep: (ms) => sleep(ms),
    runCommand: commandEnv
      ? (argv, env, stdoutToStderr) =>
          runCommandInto(argv, { ...commandEnv, ...env }, stdoutToStderr ? err : out, err, commandTimeoutMs)
      : async () => ({ exitStatus: null, signal: null, error: 'this test runs no commands' }),
    user: 'tester',
    identity: ownIdentity(),
    ...realLockRuntime(),
    runbooks: installedRunbooks(),
    ...overrides,
  };
  const code = await run([...args], io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

/** src/bin/command-runner.ts's runCommand, writing to the given streams instead of this process's. */
function runCommandInto(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  stdout: OutputStream,
  stderr: OutputStream,
  timeoutMs: number,
): ReturnType<CliIo['runCommand']> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.resolve({ exitStatus: null, signal: null, error: 'empty command' });
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env, shell: false });
    const tail = createTail();
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => stdout.write(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.write(chunk);
      tail.push(chunk);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ exitStatus: null, signal: null, error: error.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        exitStatus: code,
        signal,
        ...(child.pid === undefined ? {} : { pid: child.pid }),
        stderrTail: tail.lines(),
      });
    });
  });
}

/** The re-runs a fix started, recorded instead of run. */
export function rerunRecorder() {
  const started: string[][] = [];
  const runCommand: CliIo['runCommand'] = async (words) => {
    started.push([...words]);
    return { exitStatus: 0, signal: null, pid: 1 };
  };
  return { started, runCommand };
}
