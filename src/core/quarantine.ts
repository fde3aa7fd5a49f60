import { constants } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { errnoCode, UsageError } from './errors.js';
import { type FileSystem, fsyncDirectory } from './fs.js';
import { type Boundaries, isInside } from './guards.js';
import { directoryIdentity, isWithinDirectory, sameIdentity } from './same-directory.js';
import { createPermitted, type Identity, type OwnedMode } from './permission.js';

async function checkOverlap(fs: FileSystem, dir: string, real: string, bounds: Boundaries): Promise<void> {
  // By identity as well as by path: a bind mount or a symlink can put an
  // output directory (this pipeline's or another's) under another name.
  const identity = await directoryIdentity(fs, real);
  let overlaps = isInside(real, bounds.realOut) || isInside(bounds.realOut, real);
  for (const out of bounds.outIdentities) overlaps ||= await isWithinDirectory(fs, real, out);
  overlaps ||= await isWithinDirectory(fs, bounds.realOut, identity);
  if (overlaps) {
    throw new UsageError(
      `--quarantine ${dir} overlaps the output directory: orphans must never be published.`,
    );
  }
  if (real === bounds.realStaging || sameIdentity(identity, bounds.stagingIdentity))
    throw new UsageError(`--quarantine ${dir} is the staging directory itself.`);
}

/**
 * The real path a directory has, or would have once created, and the
 * nearest ancestor that exists now (resolved): where it would be created.
 */
async function realpathToBe(fs: FileSystem, dir: string, path: string): Promise<{ real: string; existing: string }> {
  const missing: string[] = [];
  for (let at = path; ; at = dirname(at)) {
    try {
      const existing = await fs.realpath(at);
      return { real: join(existing, ...missing.reverse()), existing };
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOTDIR') {
        throw new UsageError(`--quarantine ${dir} lies under a file, not a directory; nothing was moved.`);
      }
      if (code === 'ENOENT' && dirname(at) !== at) {
        missing.push(basename(at));
        continue;
      }
      // A path the user gave that cannot be resolved (EACCES on the way, a symlink loop): theirs to fix, no stack.
      if (!code) throw error;
      throw new UsageError(`--quarantine ${dir} cannot be looked at (${code}); nothing was moved.`);
    }
  }
}

/**
 * Everything about the quarantine directory that can be known before it is
 * created: never the output directory or staging itself, a directory (not a
 * file), and one the acting user may create entries in. Asked by the dry run
 * and the real run alike, before anything moves; a failure is a usage error.
 * Returns the owner and mode every move is checked against.
 */
export async function checkQuarantine(
  fs: FileSystem,
  dir: string,
  bounds: Boundaries,
  who: Identity,
): Promise<OwnedMode> {
  const { real, existing } = await realpathToBe(fs, dir, resolve(dir));
  await checkOverlap(fs, dir, real, bounds);
  const stats = await fs.lstat(existing);
  if (!stats.isDirectory()) {
    const what = existing === real ? 'is' : 'lies under';
    throw new UsageError(`--quarantine ${dir} ${what} a file, not a directory; nothing was moved.`);
  }
  const access = { mode: Number(stats.mode), uid: Number(stats.uid), gid: Number(stats.gid) };
  if (!createPermitted(access, who)) {
    const verb = existing === real ? 'add files to' : `create ${real} in`;
    throw new UsageError(
      `--quarantine ${dir}: uid ${who.uid} may not ${verb} ${existing} (mode ${(access.mode & 0o7777).toString(8)}, owner uid ${access.uid}); nothing was moved.`,
    );
  }
  // A directory still to be created will be the acting user's own.
  return existing === real ? access : { mode: constants.S_IFDIR | 0o700, uid: who.uid, gid: who.gid };
}

/**
 * Creates the quarantine directory once every check has passed (so a
 * refused fix leaves none behind), and checks again where it really landed.
 */
export async function prepareQuarantine(fs: FileSystem, dir: string, bounds: Boundaries): Promise<string> {
  const target = resolve(dir);
  let real: string;
  try {
    await fs.mkdir(target, { recursive: true });
    real = await fs.realpath(target);
  } catch (error) {
    // Changed since it was checked (a dangling symlink, a file put there, permissions): still nothing has moved.
    const code = errnoCode(error);
    if (!code) throw error;
    throw new UsageError(`--quarantine ${dir} cannot be created (${code}); nothing was moved.`);
  }
  await checkOverlap(fs, dir, real, bounds);
  return real;
}

/**
 * Puts a copy of `path` into quarantine without ever overwriting: a hard
 * link, or across file systems (EXDEV; or EPERM where the kernel refuses to
 * link another user's file) an exclusive copy, fsynced, carrying the
 * original's times so the evidence keeps its age. Returns where it went; the
 * original is still in staging.
 */
export async function placeInQuarantine(fs: FileSystem, path: string, dir: string): Promise<string> {
  const name = basename(path);
  for (let attempt = 0; ; attempt++) {
    const target = join(dir, attempt === 0 ? name : `${name}.${attempt}`);
    try {
      await fs.link(path, target);
      return target;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') continue;
      if (code !== 'EXDEV' && code !== 'EPERM') throw error;
    }
    const original = await fs.lstat(path);
    try {
      await fs.copyFile(path, target, constants.COPYFILE_EXCL);
    } catch (copyError) {
      if (errnoCode(copyError) === 'EEXIST') continue;
      throw copyError;
    }
    const copy = await fs.open(target, constants.O_RDWR | constants.O_NOFOLLOW);
    try {
      // Seconds as numbers, not Dates: Dates would cut the times to whole milliseconds.
      await copy.utimes(Number(original.atimeMs) / 1000, Number(original.mtimeMs) / 1000);
      await copy.sync();
    } finally {
      await copy.close();
    }
    return target;
  }
}

/** A move whose copy is in quarantine but whose original could not be removed from staging. */
export class OriginalNotRemoved extends Error {
  constructor(
    readonly to: string,
    override readonly cause: unknown,
  ) {
    super(`copied to ${to}, but the original could not be removed`);
    this.name = 'OriginalNotRemoved';
  }
}

/**
 * Moves a checked file into quarantine: a copy there first, made durable,
 * then the original goes. In that order, a power loss between the two leaves
 * two copies, never none.
 */
export async function moveToQuarantine(fs: FileSystem, path: string, dir: string): Promise<string> {
  const to = await placeInQuarantine(fs, path, dir);
  try {
    await fsyncDirectory(fs, dir);
    await fs.unlink(path);
  } catch (error) {
    // Gone meanwhile (another fixer, the janitor): the copy is in quarantine, the original out of staging.
    if (errnoCode(error) !== 'ENOENT') throw new OriginalNotRemoved(to, error);
  }
  return to;
}
