import { spawn } from 'node:child_process';
import type { CommandResult } from '../core/fix.js';

/** Runs argv directly (no shell), stdio inherited, and reports how it ended. */
export function runCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  stdoutToStderr: boolean,
): Promise<CommandResult> {
  const [file, ...args] = argv;
  return new Promise((resolve) => {
    if (!file) {
      resolve({ exitStatus: null, signal: null, error: 'empty command' });
      return;
    }
    const child = spawn(file, args, {
      stdio: ['inherit', stdoutToStderr ? process.stderr : 'inherit', 'inherit'],
      env: { ...process.env, ...env },
      shell: false,
    });
    child.once('error', (error) => resolve({ exitStatus: null, signal: null, error: error.message }));
    child.once('close', (code, signal) => resolve({ exitStatus: code, signal }));
  });
}
