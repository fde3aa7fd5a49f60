import { promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandResult, FixContext } from '../../src/core/fix.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { ownIdentity } from './identity.js';
import { realLockRuntime } from './lock-runtime.js';
import { publish } from './pipeline-files.js';
import type { Layout } from './temp-layout.js';

export interface FixHarness {
  readonly ctx: FixContext;
  readonly commands: Array<{ argv: readonly string[]; env: Readonly<Record<string, string>> }>;
  readonly progress: string[];
}

/**
 * A fix context on the real file system and process table, recording the
 * commands it runs and the progress lines it prints. The re-run, by default,
 * publishes the run's output and marker the way the job would.
 */
export function fixHarness(
  layout: Layout,
  overrides: Partial<FixContext> & { rerun?: (argv: readonly string[]) => Promise<CommandResult> } = {},
): FixHarness {
  const commands: FixHarness['commands'] = [];
  const progress: string[] = [];
  const { rerun, ...rest } = overrides;
  const ctx: FixContext = {
    fs,
    processes: createProcessTable(),
    clock: () => Date.now(),
    sleep: (ms) => sleep(ms),
    runCommand: async (argv, env) => {
      commands.push({ argv, env });
      if (rerun) return rerun(argv);
      await publish(layout);
      return { exitStatus: 0, signal: null };
    },
    user: 'tester',
    identity: ownIdentity(),
    ...realLockRuntime(),
    progress: (line) => progress.push(line),
    ...rest,
  };
  return { ctx, commands, progress };
}
