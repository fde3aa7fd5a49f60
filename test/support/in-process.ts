import { promises as fsp, lstatSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CliIo } from '../../src/cli/io.js';
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

/**
 * `crashdiag ARGS` through run(argv, io), in this process, on the real disk
 * and process table as the test's own user: what the bin would do, without a
 * spawn. `overrides` replace any part of the io (a wrapped fs, a re-run).
 */
export async function crashdiagInProcess(
  args: readonly string[],
  cwd: string,
  overrides: Partial<CliIo> = {},
): Promise<InProcessRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIo = {
    stdout: { write: (chunk: string) => stdout.push(chunk), isTTY: false },
    stderr: { write: (chunk: string) => stderr.push(chunk), isTTY: false },
    env: { NO_COLOR: '1' },
    cwd,
    fs: { ...(fsp as FileSystem), lstatSync },
    processes: createProcessTable(),
    now: () => Date.now(),
    sleep: (ms) => sleep(ms),
    runCommand: async () => ({ exitStatus: null, signal: null, error: 'this test runs no commands' }),
    user: 'tester',
    identity: ownIdentity(),
    ...realLockRuntime(),
    runbooks: installedRunbooks(),
    ...overrides,
  };
  const code = await run([...args], io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}
