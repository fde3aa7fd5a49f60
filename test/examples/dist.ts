import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CrashdiagRunner, type Tools, toolsIn } from '../../examples/refunds-pipeline/harness/tools.js';
import { createKernelLogReader } from '../../src/bin/kernel-log-reader.js';
import type { CommandResult } from '../../src/core/fix.js';
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
  crashdiagInProcess(args, process.cwd(), {
    env,
    runCommand: (argv, extra) => runCapturing(argv, { ...env, ...extra }, timeoutMs),
    readKernelLog: createKernelLogReader(),
    statfs: (path) => fsp.statfs(path),
  });

/** The re-run, as the bin's runner starts it (no shell), its output kept out of the test log. */
function runCapturing(argv: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.resolve({ exitStatus: null, signal: null, error: 'empty command' });
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env, shell: false });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
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
        stderrTail: stderr.split('\n').filter(Boolean).slice(-20),
      });
    });
  });
}
