import { promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CrashdiagRunner, type Tools, toolsIn } from '../../examples/refunds-pipeline/harness/tools.js';
import { createKernelLogReader } from '../../src/bin/kernel-log-reader.js';
import { crashdiagInProcess } from '../support/in-process.js';

/** The built binaries: `npm test` builds before it runs vitest. */
export function builtTools(): Tools {
  return toolsIn(fileURLToPath(new URL('../../dist-dev/', import.meta.url)));
}

/**
 * The built pipeline, and crashdiag through run(argv, io) in this process with
 * the bin's own kernel-log reader and statfs: the jobs are still real processes,
 * really killed, and a re-run is still a real process. What the bin itself adds
 * (argv, exit code, a process of its own) crash-steps.test.ts covers by spawning it.
 */
export function builtPipelineInProcessCrashdiag(): Tools {
  return { ...builtTools(), runCrashdiag: crashdiagInThisProcess };
}

const crashdiagInThisProcess: CrashdiagRunner = (args, env, timeoutMs) =>
  crashdiagInProcess(
    args,
    process.cwd(),
    { env, readKernelLog: createKernelLogReader(), statfs: (path) => fsp.statfs(path) },
    { commandEnv: env, commandTimeoutMs: timeoutMs },
  );
