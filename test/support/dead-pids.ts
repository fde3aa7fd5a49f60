import { spawnSync } from 'node:child_process';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * PIDs of children that ran, exited and were reaped: really dead, as a crashed
 * writer's are. The kernel may hand them out again later; a process started
 * after a file was last written cannot be its writer, so a reused PID still
 * reads as dead.
 */
export function deadPids(count: number): number[] {
  const pids = new Set<number>();
  while (pids.size < count) {
    const { pid } = spawnSync('true');
    if (pid && !isRunning(pid)) pids.add(pid);
  }
  return [...pids];
}

export function deadPid(): number {
  return deadPids(1)[0] as number;
}
