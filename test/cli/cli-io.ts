import type { CliIo } from '../../src/cli/io.js';
import type { FileSystem } from '../../src/core/fs.js';
import type { ProcessTable } from '../../src/core/process-table.js';
import { ownIdentity } from '../support/identity.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { installedRunbooks } from '../../src/bin/runbook-files.js';

/** A CliIo that records what the CLI writes; fs and processes are the test's. */
export function recordingIo(
  overrides: Partial<CliIo> & { fs?: FileSystem; processes?: ProcessTable } = {},
  stdoutExtra: { isTTY?: boolean; columns?: number } = {},
) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIo = {
    stdout: { write: (chunk: string) => stdout.push(chunk), isTTY: false, ...stdoutExtra },
    stderr: { write: (chunk: string) => stderr.push(chunk), isTTY: false },
    env: { NO_COLOR: '1' },
    cwd: '/',
    fs: {} as FileSystem,
    processes: { hostname: 'batch-01', inspect: () => ({ exists: false }) },
    now: () => Date.parse('2026-04-24T06:08:00Z'),
    sleep: async () => {},
    runCommand: async () => ({ exitStatus: null, signal: null, error: 'no commands run in these tests' }),
    user: 'oncall',
    identity: ownIdentity(),
    ...realLockRuntime(),
    runbooks: installedRunbooks(),
    ...overrides,
  };
  return { io, stdout: () => stdout.join(''), stderr: () => stderr.join('') };
}
