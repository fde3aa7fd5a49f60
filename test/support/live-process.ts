import { type ChildProcess, spawn } from 'node:child_process';

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
