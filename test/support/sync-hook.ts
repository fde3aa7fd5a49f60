import type { FileSystem } from '../../src/core/fs.js';

/**
 * `base`, with every fsync of the file or directory at `path` going through
 * `onSync`: its count from 1, across every handle opened on `path`, and the
 * real fsync, which `onSync` calls when it pleases (or fails instead). How a
 * test makes something happen while the audit log's intents are made durable,
 * or records when the staging directory is synced.
 */
export function hookSync(
  base: FileSystem,
  path: string,
  onSync: (nth: number, sync: () => Promise<void>) => Promise<void>,
): FileSystem {
  let syncs = 0;
  return {
    ...base,
    open: async (...args: Parameters<FileSystem['open']>) => {
      const handle = await base.open(...args);
      if (args[0] !== path) return handle;
      const sync = handle.sync.bind(handle);
      handle.sync = () => onSync(++syncs, sync);
      return handle;
    },
  };
}
