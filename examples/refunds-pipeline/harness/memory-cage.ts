import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Finished, runToExit, type RunOptions } from './processes.js';

/**
 * A memory cgroup for one run: a job that allocates more than the limit is
 * killed by the kernel's OOM killer, exactly as on a worker with too little
 * memory. cgroup v1 (`memory.limit_in_bytes`) or v2 (`memory.max`).
 */
export interface MemoryCage {
  readonly path: string;
  readonly version: 1 | 2;
  /** Runs argv inside the cage: the child joins it before exec, so not one page is allocated outside. */
  run(command: string, args: readonly string[], options?: RunOptions): Promise<Finished>;
  /** Removes the cgroup (its processes must have exited). */
  remove(): Promise<void>;
}

const V1_ROOT = '/sys/fs/cgroup/memory';
const V2_ROOT = '/sys/fs/cgroup';

async function writable(path: string): Promise<boolean> {
  try {
    await access(path, 2);
    return true;
  } catch {
    return false;
  }
}

async function tryWrite(path: string, value: string): Promise<void> {
  try {
    await writeFile(path, value);
  } catch {
    // Optional knobs (swap, swappiness) are absent on some kernels; the limit itself is not optional.
  }
}

/** Makes a cage, or says why none can be made here (not root, no memory controller, ...). */
export async function makeMemoryCage(name: string, limitBytes: number): Promise<MemoryCage | { skip: string }> {
  let version: 1 | 2;
  let path: string;
  if (await writable(join(V1_ROOT, 'cgroup.procs'))) {
    version = 1;
    path = join(V1_ROOT, name);
  } else if ((await readFile(join(V2_ROOT, 'cgroup.controllers'), 'utf8').catch(() => '')).includes('memory')
    && (await writable(join(V2_ROOT, 'cgroup.procs')))) {
    version = 2;
    path = join(V2_ROOT, name);
  } else {
    return { skip: `no writable memory cgroup (tried ${V1_ROOT} and ${V2_ROOT}); run as root on a host with the memory controller` };
  }
  try {
    await mkdir(path);
  } catch (error) {
    return { skip: `cannot create the cgroup ${path}: ${(error as Error).message}` };
  }
  try {
    if (version === 1) {
      await writeFile(join(path, 'memory.limit_in_bytes'), String(limitBytes));
      // With swap, the job would page instead of dying: cap memory+swap too.
      await tryWrite(join(path, 'memory.memsw.limit_in_bytes'), String(limitBytes));
      await tryWrite(join(path, 'memory.swappiness'), '0');
    } else {
      await writeFile(join(path, 'memory.max'), String(limitBytes));
      await tryWrite(join(path, 'memory.swap.max'), '0');
    }
  } catch (error) {
    await rmdir(path).catch(() => {});
    return { skip: `cannot set the memory limit of ${path}: ${(error as Error).message}` };
  }
  const procs = join(path, 'cgroup.procs');
  return {
    path,
    version,
    run: (command, args, options = {}) =>
      // The shell moves itself into the cage, then execs the job: same PID, caged from its first page.
      runToExit('/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', procs, command, ...args], options),
    remove: async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(path);
          return;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') return;
          // EBUSY for a moment while the kernel finishes tearing down the killed task.
          if (code !== 'EBUSY' || attempt >= 100) throw error;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    },
  };
}
