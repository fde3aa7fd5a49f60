import { spawnSync } from 'node:child_process';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Dead PIDs made and not yet handed out. */
const made: number[] = [];
const BATCH = 16;

/**
 * One short-lived sh starts BATCH children one after another, each exiting at
 * once and reaped by sh before the next starts; when sh exits, every one of
 * them is gone. A fork of sh is cheap, where each fork of this process (a test
 * worker of 100-200 MB) cost ~3 ms of CPU and blocked it: the suite asked for
 * about 600 dead PIDs.
 */
function makeDeadPids(): void {
  const { stdout, status, error } = spawnSync('sh', ['-c', `for i in $(seq ${BATCH}); do true & echo $!; wait; done`], {
    encoding: 'utf8',
  });
  if (status !== 0) throw new Error(`sh could not make dead PIDs: ${error?.message ?? `exit ${status}`}`);
  made.push(...stdout.split('\n').filter(Boolean).map(Number));
}

/**
 * PIDs of processes that ran, exited and were reaped: really dead, as a crashed
 * writer's are. The kernel may hand them out again later: each is checked as
 * not running when handed out, and a process started after a file was last
 * written cannot be its writer, so a reused PID still reads as dead.
 */
export function deadPids(count: number): number[] {
  const pids = new Set<number>();
  while (pids.size < count) {
    if (made.length === 0) makeDeadPids();
    const pid = made.shift() as number;
    if (Number.isSafeInteger(pid) && pid > 0 && !isRunning(pid)) pids.add(pid);
  }
  return [...pids];
}

export function deadPid(): number {
  return deadPids(1)[0] as number;
}
