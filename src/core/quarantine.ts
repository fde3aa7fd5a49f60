import { constants } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { errnoCode, UsageError } from './errors.js';
import { type FileSystem, fsyncDirectory } from './fs.js';
import { type Boundaries, isInside } from './guards.js';
import { directoryIdentity, isWithinDirectory, resolveToBe, sameIdentity } from './same-directory.js';
import {
  createPermitted,
  type Identity,
  type OwnedMode,
  othersMayReplace,
  othersOwn,
  ownedModeOf,
} from './permission.js';

async function checkOverlap(fs: FileSystem, dir: string, real: string, bounds: Boundaries): Promise<void> {
  // By identity as well as by path: a bind mount or a symlink can put an
  // output directory (this pipeline's or another's) under another name.
  const identity = await directoryIdentity(fs, real);
  const { realOut } = bounds;
  let overlaps = realOut !== undefined && (isInside(real, realOut) || isInside(realOut, real));
  for (const out of bounds.outIdentities) overlaps ||= await isWithinDirectory(fs, real, out);
  if (realOut !== undefined) overlaps ||= await isWithinDirectory(fs, realOut, identity);
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
async function quarantineToBe(fs: FileSystem, dir: string): Promise<{ real: string; existing: string }> {
  try {
    return await resolveToBe(fs, resolve(dir));
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOTDIR')
      throw new UsageError(`--quarantine ${dir} lies under a file, not a directory; nothing was moved.`);
    // A path the user gave that cannot be resolved (EACCES on the way, a symlink loop): theirs to fix, no stack.
    if (!code) throw error;
    throw new UsageError(`--quarantine ${dir} cannot be looked at (${code}); nothing was moved.`);
  }
}

/**
 * Refuses a quarantine directory that someone other than the acting user and
 * root owns, or could swap while files are moved into it: renamed away, a
 * symlink to an output directory put in its place, and orphans would land
 * there. Each existing directory from `real` up to / is held to it; parts
 * still to be created will be the acting user's.
 */
async function refuseReplaceable(fs: FileSystem, dir: string, real: string, who: Identity): Promise<void> {
  for (let at = real; dirname(at) !== at; at = dirname(at)) {
    let entry: OwnedMode;
    try {
      entry = ownedModeOf(await fs.lstat(at));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') continue;
      throw error;
    }
    const parent = dirname(at);
    const names = { dir: parent, entry: at };
    // The quarantine itself: its owner may do as they like with what is moved there.
    const verdict = (at === real ? othersOwn(entry, who, at) : undefined)
      ?? othersMayReplace(ownedModeOf(await fs.lstat(parent)), entry, who, names);
    if (verdict) {
      throw new UsageError(
        `--quarantine ${dir}: ${verdict.by} may replace it while files are moved (${verdict.why}); nothing was moved.`,
        'Use a directory that only you and root can change.',
      );
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
  const { real, existing } = await quarantineToBe(fs, dir);
  await checkOverlap(fs, dir, real, bounds);
  await refuseReplaceable(fs, dir, real, who);
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
  await refuseUnwritable(fs, dir, existing);
  // A directory still to be created will be the acting user's own.
  return existing === real ? access : { mode: constants.S_IFDIR | 0o700, uid: who.uid, gid: who.gid };
}

/**
 * What mode bits cannot show, asked of the kernel: a read-only mount (EROFS),
 * an ACL that denies. Without it, the first move would fail midway (exit 30)
 * where the refusal belongs before anything moves.
 */
async function refuseUnwritable(fs: FileSystem, dir: string, existing: string): Promise<void> {
  try {
    await fs.access(existing, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = errnoCode(error);
    if (!code) throw error;
    throw new UsageError(`--quarantine ${dir} cannot be written (${code}); nothing was moved.`);
  }
}

/**
 * Creates the quarantine directory once every check has passed (so a
 * refused fix leaves none behind), and checks again where it really landed.
 */
export async function prepareQuarantine(
  fs: FileSystem,
  dir: string,
  bounds: Boundaries,
  who: Identity,
): Promise<string> {
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
  await refuseReplaceable(fs, dir, real, who);
  return real;
}

/** The file a move must carry: the one every guard passed (device and inode). */
export interface CheckedFile {
  readonly dev: number;
  readonly ino: number;
}

/** The name no longer holds the checked file (a symlink, another file swapped in): nothing of it may be moved. */
export class NotTheCheckedFile extends Error {
  constructor(readonly path: string) {
    super(`${path} was replaced since it was checked`);
    this.name = 'NotTheCheckedFile';
  }
}

function isChecked(stats: { dev: number; ino: number }, checked: CheckedFile): boolean {
  return stats.dev === checked.dev && stats.ino === checked.ino;
}

/**
 * Puts a copy of `path` into quarantine without ever overwriting: a hard
 * link, or (for a file with other names; across file systems, EXDEV; where
 * the kernel refuses to link another user's file, EPERM) an exclusive copy,
 * fsynced, carrying the original's times so the evidence keeps its age. Either way it must be the
 * checked file: a name swapped since (for a symlink to a published output,
 * a FIFO) is never followed nor read. Returns where it went; the original
 * is still in staging.
 */
export async function placeInQuarantine(
  fs: FileSystem,
  path: string,
  dir: string,
  checked: CheckedFile,
): Promise<string> {
  const name = basename(path);
  // A file with other names (a hard link to a published output, or to a live
  // writer's file) is copied: linked, the evidence would be one more name of
  // that very file, changing with it, and changing it.
  let linking = Number((await fs.lstat(path)).nlink) === 1;
  for (let attempt = 0; ; attempt++) {
    const target = join(dir, attempt === 0 ? name : `${name}.${attempt}`);
    if (linking) {
      try {
        await fs.link(path, target);
        // link(2) does not follow a symlink: what it linked is whatever the name held by then.
        if (isChecked(await fs.lstat(target), checked)) return target;
        await fs.unlink(target);
        throw new NotTheCheckedFile(path);
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'EEXIST') continue;
        if (code !== 'EXDEV' && code !== 'EPERM') throw error;
        linking = false;
      }
    }
    try {
      await copyChecked(fs, path, target, checked);
    } catch (copyError) {
      if (errnoCode(copyError) === 'EEXIST') continue;
      throw copyError;
    }
    return target;
  }
}

// O_NOFOLLOW: a symlink swapped in is never followed; O_NONBLOCK: a FIFO swapped in cannot hang the open.
const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const COPY_CHUNK = 1 << 20;

/**
 * Copies the checked file, read through one descriptor opened without
 * following symlinks and held against the checked identity, to a new file
 * (never an existing one); a copy cut short is removed.
 */
async function copyChecked(fs: FileSystem, path: string, target: string, checked: CheckedFile): Promise<void> {
  let source: Awaited<ReturnType<FileSystem['open']>>;
  try {
    source = await fs.open(path, READ_NO_FOLLOW);
  } catch (error) {
    if (errnoCode(error) === 'ELOOP') throw new NotTheCheckedFile(path);
    throw error;
  }
  try {
    const original = await source.stat();
    if (!original.isFile() || !isChecked(original, checked)) throw new NotTheCheckedFile(path);
    const copy = await fs.open(target, CREATE_EXCLUSIVE, 0o600);
    try {
      const buffer = Buffer.allocUnsafe(COPY_CHUNK);
      let position = 0;
      for (let read = await source.read(buffer, 0, COPY_CHUNK, 0); read.bytesRead > 0;) {
        let done = 0;
        while (done < read.bytesRead) {
          done += (await copy.write(buffer, done, read.bytesRead - done, position + done)).bytesWritten;
        }
        position += read.bytesRead;
        read = await source.read(buffer, 0, COPY_CHUNK, position);
      }
      await copy.chmod(original.mode & 0o777);
      // Seconds as numbers, not Dates: Dates would cut the times to whole milliseconds.
      await copy.utimes(Number(original.atimeMs) / 1000, Number(original.mtimeMs) / 1000);
      await copy.sync();
    } catch (error) {
      await copy.close();
      // Ours, made with O_EXCL a moment ago: a copy cut short (ENOSPC) is no evidence.
      await fs.unlink(target).catch(() => undefined);
      throw error;
    }
    await copy.close();
  } finally {
    await source.close();
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
export async function moveToQuarantine(
  fs: FileSystem,
  path: string,
  dir: string,
  checked: CheckedFile,
): Promise<string> {
  const to = await placeInQuarantine(fs, path, dir, checked);
  try {
    await fsyncDirectory(fs, dir);
    await fs.unlink(path);
  } catch (error) {
    // Gone meanwhile (another fixer, the janitor): the copy is in quarantine, the original out of staging.
    if (errnoCode(error) !== 'ENOENT') throw new OriginalNotRemoved(to, error);
  }
  return to;
}
