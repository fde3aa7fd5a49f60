import { promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultAuditLog } from '../../src/core/audit.js';
import type { CommandResult, FixContext, FixOptions } from '../../src/core/fix.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { ownIdentity } from './identity.js';
import { realLockRuntime } from './lock-runtime.js';
import { publish, settingsFor } from './pipeline-files.js';
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
    wallClock: () => Date.now(),
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

/** The re-run the fix tests plan: pinned to the run key, as --rerun must be. */
export const RERUN = ['job', '--date', '{date}'];

/** The fix's options on a temp layout: a real run, no quarantine, the default audit log. */
export function fixOptions(layout: Layout, overrides: Partial<FixOptions> = {}): FixOptions {
  return {
    dryRun: false,
    quarantineDir: undefined,
    lockTimeoutMs: 5000,
    auditLog: defaultAuditLog(layout.stagingDir),
    ...overrides,
  };
}

/** The layout's pipeline, with RERUN as its re-run command. */
export function settingsWithRerun(layout: Layout, overrides: Partial<PipelineSettings> = {}): PipelineSettings {
  return settingsFor(layout, { rerun: RERUN, ...overrides });
}
