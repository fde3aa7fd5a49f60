import { basename, dirname, join, resolve } from 'node:path';
import { errnoCode } from './errors.js';
import type { FileSystem } from './fs.js';
import { isS3Url, normalS3Dir } from './s3-url.js';

/**
 * What makes a directory itself: its device and inode. A bind mount, a
 * symlink or two NFS paths give one directory several names, and neither
 * path strings, resolve() nor realpath() can see through all of them; only
 * (st_dev, st_ino) can. Kept as text from bigint stats: inode numbers on
 * some file systems do not fit in a double.
 */
export interface DirectoryIdentity {
  readonly dev: string;
  readonly ino: string;
}

/**
 * The identity of the directory `path` names (following symlinks: they name
 * it too); undefined when it is not a directory or cannot be looked at.
 */
export async function directoryIdentity(fs: FileSystem, path: string): Promise<DirectoryIdentity | undefined> {
  // An S3 "directory" is its bucket and prefix: no alias of it can be seen
  // from the client (access-point aliases of one bucket are not detected).
  if (isS3Url(path)) return { dev: 's3', ino: normalS3Dir(path) };
  try {
    const stats = await fs.stat(path, { bigint: true });
    if (!stats.isDirectory()) return undefined;
    return { dev: String(stats.dev), ino: String(stats.ino) };
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    return undefined;
  }
}

export function sameIdentity(a: DirectoryIdentity | undefined, b: DirectoryIdentity | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/**
 * Whether two paths name one directory: the one answer probe, scan, guards,
 * clean and fix all ask. Two paths that cannot be looked at are one directory
 * only when they are the same path.
 */
export async function sameDirectory(fs: FileSystem, a: string, b: string): Promise<boolean> {
  if (isS3Url(a) || isS3Url(b)) return sameIdentity(await directoryIdentity(fs, a), await directoryIdentity(fs, b));
  if (resolve(a) === resolve(b)) return true;
  return sameIdentity(await directoryIdentity(fs, a), await directoryIdentity(fs, b));
}

/**
 * Whether `path` is the directory `ancestor` or lies anywhere beneath it, by
 * identity: each existing directory on the way up from `path` is compared,
 * so a bind mount of `ancestor` elsewhere is seen through.
 */
export async function isWithinDirectory(
  fs: FileSystem,
  path: string,
  ancestor: DirectoryIdentity | undefined,
): Promise<boolean> {
  if (ancestor === undefined) return false;
  for (let at = resolve(path); ; at = dirname(at)) {
    if (sameIdentity(await directoryIdentity(fs, at), ancestor)) return true;
    if (dirname(at) === at) return false;
  }
}

/**
 * The real path a directory has, or would have once created, and the nearest
 * ancestor that exists now (resolved): where it would be created.
 */
export async function resolveToBe(fs: FileSystem, path: string): Promise<{ real: string; existing: string }> {
  const missing: string[] = [];
  for (let at = path; ; at = dirname(at)) {
    try {
      const existing = await fs.realpath(at);
      return { real: join(existing, ...missing.reverse()), existing };
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT' || dirname(at) === at) throw error;
      missing.push(basename(at));
    }
  }
}

/** The real path a directory has, or would have once created: its nearest existing ancestor, resolved. */
export async function realpathToBe(fs: FileSystem, path: string): Promise<string> {
  return (await resolveToBe(fs, path)).real;
}

/**
 * A file's path with its directory resolved to the real path it has (or
 * would have once created), so a file crashdiag writes (audit log, metrics)
 * goes where it was checked, even if a symlink on the way is swung to an
 * output directory meanwhile. A path that cannot be resolved is left as
 * given; writing to it reports why.
 */
export async function pinnedPath(fs: FileSystem, path: string): Promise<string> {
  try {
    return join(await realpathToBe(fs, dirname(resolve(path))), basename(path));
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    return path;
  }
}
