import type { CommandResult } from '../core/fix.js';

/** How much of a failed job's stderr the report keeps: enough for a stack trace's head. */
const TAIL_LINES = 20;
const TAIL_BYTES = 16 * 1024;

/**
 * The last lines of a stream, kept while the stream still goes where it was
 * going: a person watching the terminal sees everything as it happens.
 */
export function createTail(lines = TAIL_LINES, bytes = TAIL_BYTES) {
  let kept = '';
  return {
    push(chunk: Buffer | string): void {
      kept += chunk.toString();
      if (kept.length > bytes) kept = kept.slice(-bytes);
    },
    lines(): string[] {
      const all = kept.split('\n');
      if (all.at(-1) === '') all.pop();
      return all.slice(-lines);
    },
  };
}

/** Runs argv directly (no shell), stdin and stdout inherited, stderr teed, and reports how it ended. */
export function runCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  stdoutToStderr: boolean,
): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) return Promise.resolve({ exitStatus: null, signal: null, error: 'empty command' });
  // Loaded when a job is re-run, not at start-up: node:child_process costs a read-only diagnose milliseconds.
  return import('node:child_process').then(({ spawn }) => new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ['inherit', stdoutToStderr ? process.stderr : 'inherit', 'pipe'],
      env: { ...process.env, ...env },
      shell: false,
    });
    const tail = createTail();
    child.stderr?.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      tail.push(chunk);
    });
    child.once('error', (error) => resolve({ exitStatus: null, signal: null, error: error.message }));
    child.once('close', (code, signal) =>
      resolve({
        exitStatus: code,
        signal,
        ...(child.pid === undefined ? {} : { pid: child.pid }),
        stderrTail: tail.lines(),
      }),
    );
  }));
}
