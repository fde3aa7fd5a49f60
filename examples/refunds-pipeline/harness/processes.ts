import { type ChildProcess, spawn } from 'node:child_process';

export interface Finished {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the child with SIGKILL this many ms after spawning it. */
  killAfterMs?: number;
  /** Give up (SIGKILL) after this long: a hung child must fail a test, not stall it. */
  timeoutMs?: number;
  /** Pass output straight through instead of capturing it (keeps colours on a TTY). */
  inherit?: boolean;
}

/**
 * Runs a child to its end and resolves only once it has been reaped: until
 * then a killed child is a zombie whose PID still answers kill(pid, 0), and
 * crashdiag would rightly call its writer alive.
 */
export function runToExit(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<Finished> {
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: options.inherit ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
  });
  return finish(child, started, options);
}

/** Starts a child and hands it back with a promise of its reaped end. */
export function start(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): { child: ChildProcess; finished: Promise<Finished> } {
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { child, finished: finish(child, started, options) };
}

function finish(child: ChildProcess, started: number, options: RunOptions): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const timers: NodeJS.Timeout[] = [];
  if (options.killAfterMs !== undefined) {
    timers.push(setTimeout(() => child.kill('SIGKILL'), options.killAfterMs));
  }
  if (options.timeoutMs !== undefined) {
    timers.push(
      setTimeout(() => {
        stderr += `\n[killed: still running after ${options.timeoutMs} ms]`;
        child.kill('SIGKILL');
      }, options.timeoutMs),
    );
  }
  return new Promise((resolve, reject) => {
    child.on('error', (error) => {
      for (const t of timers) clearTimeout(t);
      reject(error);
    });
    // 'close' comes after 'exit' (the child is reaped) and after its pipes
    // are drained, so the captured output is complete.
    child.on('close', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      resolve({ pid: child.pid ?? -1, code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}
