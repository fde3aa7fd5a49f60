import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory, resolved: the guards compare realpaths, and so do the tests. */
export async function makeTempDir(prefix: string): Promise<string> {
  return fsp.realpath(await fsp.mkdtemp(join(tmpdir(), prefix)));
}

/** Removes a temporary directory and everything in it; nothing to do when there is none. */
export function removeTempDir(dir: string | undefined): Promise<void> {
  return dir ? fsp.rm(dir, { recursive: true, force: true, maxRetries: 3 }) : Promise.resolve();
}
