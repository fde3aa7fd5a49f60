import type { Volume } from 'memfs';
import type { FileSystem } from '../../src/core/fs.js';

/**
 * Sets a memfs path's times, its ctime included, as if it was last changed
 * at `ms`: memfs, like a kernel, moves the ctime to the real now on utimes,
 * and fixtures dated in 2026-04 would then read as changed in the future.
 */
export function setTimes(vol: InstanceType<typeof Volume>, path: string, ms: number): void {
  vol.utimesSync(path, ms / 1000, ms / 1000);
  const core = (vol as unknown as { _core: { getLinkOrThrow(path: string): { getNode(): { ctime: Date } } } })._core;
  core.getLinkOrThrow(path).getNode().ctime = new Date(ms);
}

type Stats = Awaited<ReturnType<FileSystem['lstat']>>;

function changedAtMtime<T extends Stats>(stats: T): T {
  if (Number(stats.ctimeMs) <= Number(stats.mtimeMs)) return stats;
  const copy = Object.assign(Object.create(Object.getPrototypeOf(stats) as object) as T, stats);
  return Object.assign(copy, { ctimeMs: stats.mtimeMs, ctime: stats.mtime });
}

/**
 * The real file system, except that lstat, stat and fstat report each file as last
 * changed at its mtime: a disk whose files were written when their mtime says
 * and not touched since. No user can set a ctime back, so tests whose subject
 * is not the ctime (a janitor's threshold, a stale lock) age files with utimes
 * and look through this; tests of the ctime itself never do.
 */
export function changedAtMtimeFs(fs: FileSystem): FileSystem {
  return {
    ...fs,
    lstat: (async (...args: Parameters<FileSystem['lstat']>) =>
      changedAtMtime(await fs.lstat(...args))) as FileSystem['lstat'],
    stat: (async (...args: Parameters<FileSystem['stat']>) =>
      changedAtMtime(await fs.stat(...args))) as FileSystem['stat'],
    // An open file's own fstat too: the lock and the audit log are checked on the open handle.
    open: async (...args: Parameters<FileSystem['open']>) => {
      const handle = await fs.open(...args);
      const fstat = handle.stat.bind(handle);
      return Object.assign(handle, {
        stat: async (...options: Parameters<typeof fstat>) => changedAtMtime(await fstat(...options)),
      });
    },
    ...(fs.lstatSync
      ? { lstatSync: ((...args: Parameters<NonNullable<FileSystem['lstatSync']>>) => {
          const stats = (fs.lstatSync as (...a: unknown[]) => Stats | undefined)(...args);
          return stats === undefined ? stats : changedAtMtime(stats);
        }) as FileSystem['lstatSync'] }
      : {}),
  };
}
