import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';

export interface LiveProcess {
  readonly pid: number;
  stop(): Promise<void>;
}

/** A process that stays alive until stopped: a writer still at work. */
export async function startLiveProcess(): Promise<LiveProcess> {
  const child: ChildProcess = spawn('sleep', ['120'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the live process has no PID');
  return {
    pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * One live writer for the tests of the calling file or describe block: started
 * before them all, so that a file written by a test is written after it
 * started; stopped after them all. No pause is needed after the 'spawn' event:
 * the process has been forked by then, and the start time the process table
 * reads for it (boot time in whole seconds plus clock ticks, both rounded down)
 * is never later than that.
 */
export function useLiveWriter(): { readonly pid: number } {
  let writer: LiveProcess | undefined;
  beforeAll(async () => {
    writer = await startLiveProcess();
  });
  afterAll(async () => {
    await writer?.stop();
  });
  return {
    get pid() {
      if (writer === undefined) throw new Error('the live writer starts in beforeAll');
      return writer.pid;
    },
  };
}
