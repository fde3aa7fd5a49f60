import type { Deps } from './deps.js';
import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { formatDuration } from './duration.js';
import { errnoCode, UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import { type FileTimes, judgeWriter } from './writer.js';

/** Where crashdiag keeps its own files inside a staging directory. */
export const STATE_DIR = '.crashdiag';

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly token: string;
  readonly since: string;
}

/** The process facts a lock needs, passed in so that tests can drive them without spawning or waiting. */
export type LockRuntime = Pick<Deps, 'pid' | 'randomToken' | 'every'>;

/** A lock waits and judges staleness on the wall clock, never --now. */
export interface LockContext extends LockRuntime, Pick<Deps, 'fs' | 'processes' | 'wallClock' | 'sleep'> {
  /** A lock untouched this long, held from another host, has no live holder. */
  readonly staleAfterMs: number;
}

/** The lock's view of a fixer's or janitor's context: a lock goes stale by the pipeline's --stale-after. */
export function lockContextOf(
  ctx: Omit<LockContext, 'staleAfterMs'>,
  settings: { readonly staleAfterMs: number },
): LockContext {
  const { fs, processes, wallClock, sleep, pid, randomToken, every } = ctx;
  return { fs, processes, wallClock, sleep, pid, randomToken, every, staleAfterMs: settings.staleAfterMs };
}

export interface HeldLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Releases the lock if it is still ours; never removes someone else's. */
  release(): Promise<void>;
}

export class LockTimeoutError extends Error {
  constructor(
    readonly path: string,
    readonly holder: LockHolder | undefined,
    readonly waitedMs: number,
  ) {
    const who = holder
      ? `PID ${holder.pid} on ${holder.host}, since ${holder.since}`
      : 'an unreadable holder';
    super(
      `Another crashdiag --fix holds ${path} (${who}); gave up after waiting ${formatDuration(waitedMs)}.`,
    );
    this.name = 'LockTimeoutError';
  }
}

export function lockPathFor(stagingDir: string, runKey: string): string {
  return join(stagingDir, STATE_DIR, `${runKey}.lock`);
}

// Node's timers take at most 2^31-1 ms; a longer period fires after 1 ms
// (with a TimeoutOverflowWarning), which would touch the lock every millisecond.
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** How often a held lock is touched: well within --stale-after, at most once a second, within a timer's range. */
export function heartbeatPeriod(staleAfterMs: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(1000, staleAfterMs / 3));
}

/** A holder's JSON is under 200 bytes: anything much larger was not written by crashdiag. */
export const MAX_LOCK_BYTES = 4096;

// O_NONBLOCK: a FIFO planted under a lock's name must not block the open (or a
// read) forever, past --lock-timeout. O_NOFOLLOW: nor may a symlink lead the read elsewhere.
const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CREATE_EXCLUSIVE
  = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** One lock file as seen at one moment; `ino` and `text` together identify it. */
interface SeenLock {
  readonly holder?: LockHolder;
  readonly ino: number;
  readonly text: string;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

type StatsLike = Pick<Stats, 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isFIFO' | 'isSocket' | 'size'>;

function whatIs(stats: StatsLike): string {
  if (stats.isSymbolicLink()) return 'a symlink';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (!stats.isFile()) return 'a device file';
  return `a ${Number(stats.size)}-byte file (a lock holds under ${MAX_LOCK_BYTES} bytes)`;
}

const isLockShaped = (stats: StatsLike) => stats.isFile() && Number(stats.size) <= MAX_LOCK_BYTES;

function notALock(path: string, what: string): UsageError {
  return new UsageError(
    `${path} is ${what}, not a lock crashdiag made; nothing was changed.`,
    `If no crashdiag is at work on this staging directory, move it away (mv -- ${path} /some/where/else) and try again.`,
  );
}

function cannotUse(path: string, doing: string, error: unknown): UsageError | undefined {
  const code = errnoCode(error);
  if (!['EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR', 'ENXIO', 'ELOOP'].includes(code ?? '')) return undefined;
  return new UsageError(
    `Cannot ${doing} ${path} (${code}); nothing was changed.`,
    code === 'EACCES' || code === 'EPERM'
      ? 'It belongs to another user: run as that user (or as root), or ask its owner.'
      : 'Look at what is there and move it away if it is not crashdiag\'s.',
  );
}

/**
 * Reads a lock (or a takeover claim) without ever blocking or following:
 * lstat first, so only a small regular file is opened at all; then the open
 * handle itself is checked, so a swap between the two looks is caught too.
 */
async function readLockFile(fs: FileSystem, path: string): Promise<SeenLock | undefined> {
  let handle: FileHandle;
  try {
    const named = await fs.lstat(path);
    if (!isLockShaped(named)) throw notALock(path, whatIs(named));
    handle = await fs.open(path, READ_NO_FOLLOW);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    if (errnoCode(error) === 'ELOOP') throw notALock(path, 'a symlink');
    throw cannotUse(path, 'read', error) ?? error;
  }
  try {
    const stats = await handle.stat();
    if (!isLockShaped(stats)) throw notALock(path, whatIs(stats));
    const buffer = Buffer.alloc(MAX_LOCK_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_LOCK_BYTES) throw notALock(path, whatIs({ ...stats, size: bytesRead }));
    const text = buffer.toString('utf8', 0, bytesRead);
    let holder: LockHolder | undefined;
    try {
      holder = JSON.parse(text) as LockHolder;
    } catch {
      holder = undefined; // not ours to parse (edited by hand?): judged by age below
    }
    return {
      holder,
      ino: Number(stats.ino),
      text,
      mtimeMs: Number(stats.mtimeMs),
      ctimeMs: Number(stats.ctimeMs),
    };
  } finally {
    await handle.close();
  }
}

/** A lock's holder is alive by the same rules as a staging file's writer, judged by the lock file's own last change. */
function holderAlive(ctx: LockContext, holder: LockHolder | undefined, times: FileTimes): boolean {
  const nowMs = ctx.wallClock();
  const rules = { freshWithinMs: 0, staleAfterMs: ctx.staleAfterMs };
  const pidCheck
    = holder && holder.host === ctx.processes.hostname && Number.isSafeInteger(holder.pid)
      ? ({ checked: true, facts: ctx.processes.inspect(holder.pid) } as const)
      : ({ checked: false, why: 'lock held from another host' } as const);
  return judgeWriter({ pid: holder?.pid ?? 0, ...times, pidCheck }, rules, nowMs).writer !== 'dead';
}

/**
 * Creates crashdiag's own directory inside staging, and checks it is one: a
 * symlink there would lead the lock, its takeover (which removes a stale
 * lock file) and the audit log out of the staging directory.
 */
async function openStateDir(fs: FileSystem, dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (error) {
    if (!['EEXIST', 'ENOTDIR'].includes(errnoCode(error) ?? '')) throw cannotUse(dir, 'create', error) ?? error;
  }
  let stats: Awaited<ReturnType<FileSystem['lstat']>>;
  try {
    stats = await fs.lstat(dir);
  } catch (error) {
    // A file on the way up ($XDG_STATE_HOME under a file): ENOTDIR from mkdir, again here.
    throw cannotUse(dir, 'create', error) ?? error;
  }
  if (!stats.isDirectory()) {
    throw new UsageError(
      `${dir} is ${stats.isSymbolicLink() ? 'a symlink' : 'not a directory'}; crashdiag keeps its lock and audit log there and will not follow it out of the staging directory.`,
      'Move it away; crashdiag creates the directory itself.',
    );
  }
}

/**
 * One fixer at a time per staging directory and run key. The lock is a file
 * created whole under its name by link(2), which only one creator can win. A
 * lock whose holder is dead is taken over under a claim (see takeOverStale),
 * so that exactly one of many racers removes it; the racers then compete for
 * the free name by link(2) again.
 */
export async function acquireLock(
  ctx: LockContext,
  stagingDir: string,
  runKey: string,
  timeoutMs: number,
): Promise<HeldLock> {
  return acquireLockAt(ctx, lockPathFor(stagingDir, runKey), timeoutMs);
}

/**
 * The same lock at a path of the caller's: for a staging directory that is
 * not local (an S3 prefix), the lock lives in crashdiag's local state
 * directory (s3-state.ts names it). Its directory is created, and must be one.
 */
export async function acquireLockAt(ctx: LockContext, path: string, timeoutMs: number): Promise<HeldLock> {
  await openStateDir(ctx.fs, dirname(path));
  const holder: LockHolder = {
    pid: ctx.pid,
    host: ctx.processes.hostname,
    token: ctx.randomToken(),
    since: new Date(ctx.wallClock()).toISOString(),
  };
  const started = ctx.wallClock();
  let lastSeen: LockHolder | undefined;
  let lateRetries = 0;
  for (;;) {
    const mine = await tryCreate(ctx, path, holder);
    if (mine) return holdLock(ctx, path, holder, mine);
    const current = await readLockFile(ctx.fs, path);
    if (current) lastSeen = current.holder;
    // Gone between our two looks (released), or a stale one just removed: try again at once.
    const changed
      = !current
        || (!holderAlive(ctx, current.holder, { mtimeMs: current.mtimeMs, ctimeMs: current.ctimeMs })
          && (await takeOverStale(ctx, path, current, holder)));
    const waited = ctx.wallClock() - started;
    // --lock-timeout holds even while the lock keeps changing hands: past it, only a few last tries.
    if (changed && (waited < timeoutMs || ++lateRetries <= 3)) continue;
    if (waited >= timeoutMs) throw new LockTimeoutError(path, lastSeen, waited);
    await ctx.sleep(Math.min(100, Math.max(1, timeoutMs - waited)));
  }
}

function holdLock(ctx: LockContext, path: string, holder: LockHolder, handle: FileHandle): HeldLock {
  // Holders on other hosts are judged by the lock's age: keep it young while
  // we work. Through our own handle: a name swapped under us is never touched.
  const stop = ctx.every(heartbeatPeriod(ctx.staleAfterMs), () => {
    const t = new Date(ctx.wallClock());
    handle.utimes(t, t).catch(() => {});
  });
  return {
    path,
    holder,
    release: async () => {
      stop();
      await handle.close().catch(() => {});
      await releaseLock(ctx.fs, path, holder);
    },
  };
}

/**
 * Creates a lock (or claim) file with its content already in place: written to
 * a private draft, then hard-linked to the name (link fails if the name
 * exists), so no one ever sees one without its holder, even if we are killed
 * midway. Returns the open handle when the name is ours.
 */
async function tryCreate(ctx: LockContext, path: string, holder: LockHolder): Promise<FileHandle | undefined> {
  const draft = `${path}.${holder.pid}.${holder.token}`;
  let handle: FileHandle;
  try {
    handle = await ctx.fs.open(draft, CREATE_EXCLUSIVE, 0o644);
  } catch (error) {
    // A random token names the draft: one that already exists was put there by someone else.
    if (errnoCode(error) === 'EEXIST') {
      throw new UsageError(
        `${draft} already exists, yet crashdiag names its drafts with a fresh random token: something else put it there; nothing was changed.`,
        `Look at it, and move it away if no crashdiag is at work there.`,
      );
    }
    throw cannotUse(draft, 'create', error) ?? error;
  }
  let linked = false;
  try {
    await handle.writeFile(JSON.stringify(holder));
    await handle.sync();
    await ctx.fs.link(draft, path);
    linked = true;
    return handle;
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw cannotUse(path, 'create', error) ?? error;
    return undefined;
  } finally {
    if (!linked) await handle.close();
    await ctx.fs.unlink(draft).catch(() => {});
  }
}

// Each level of a claim on a claim adds 26 characters to a name; three
// levels keep the longest (a 128-character run key) under NAME_MAX.
const MAX_CLAIM_DEPTH = 3;

/** A claim's name says which lock it claims: this lock file, with this content, in this inode. */
function claimPathFor(path: string, judged: SeenLock): string {
  // node:crypto on demand: a read-only diagnose, which loads this module, never takes a lock.
  const id = process.getBuiltinModule('node:crypto').createHash('sha256').update(`${judged.ino}\n${judged.text}`).digest('hex').slice(0, 16);
  return `${path}.takeover.${id}`;
}

const sameLock = (a: SeenLock, b: SeenLock) => a.ino === b.ino && a.text === b.text;

/**
 * Removes a lock judged dead, so that exactly one of many racers does: the
 * remover must first create the claim named after that very lock (O_EXCL by
 * link(2): one winner), then find the lock still in place, unchanged. Only a
 * claim holder ever removes the judged lock, so between that look and the
 * removal nobody can put a new lock under the name. A claim left by a
 * claimer that died is itself judged and removed the same way, one level
 * down. Returns whether anything changed (then the caller looks again at
 * once); false while a live claimer is at work (the caller waits).
 */
async function takeOverStale(
  ctx: LockContext,
  path: string,
  judged: SeenLock,
  me: LockHolder,
  depth = 1,
): Promise<boolean> {
  const claim = claimPathFor(path, judged);
  if (depth > MAX_CLAIM_DEPTH) {
    throw new UsageError(
      `Taking over ${path} failed ${MAX_CLAIM_DEPTH} times over (its claimers died midway); nothing more was changed.`,
      `Find out what kills crashdiag there, then remove the ${STATE_DIR}/*.takeover.* files by hand.`,
    );
  }
  const mine = await tryCreate(ctx, claim, me);
  if (!mine) {
    const other = await readLockFile(ctx.fs, claim);
    if (!other) return true; // its claimer just finished: look again
    if (holderAlive(ctx, other.holder, { mtimeMs: other.mtimeMs, ctimeMs: other.ctimeMs })) return false;
    return takeOverStale(ctx, claim, other, me, depth + 1);
  }
  await mine.close();
  try {
    const current = await readLockFile(ctx.fs, path);
    if (current && sameLock(current, judged)) await removeJudged(ctx, path, judged, me);
    return true;
  } finally {
    await releaseLock(ctx.fs, claim, me);
  }
}

/**
 * Removes the judged lock by renaming it aside and checking what moved. Under
 * the claim only a lock's own holder can still change it (a holder judged dead
 * from another host's clock, say): if what moved is not what was judged, it
 * is linked back.
 */
async function removeJudged(ctx: LockContext, path: string, judged: SeenLock, me: LockHolder): Promise<void> {
  const aside = `${path}.stale.${me.pid}.${me.token}`;
  try {
    await ctx.fs.rename(path, aside);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return; // its holder released it after all
    throw cannotUse(path, 'move aside the stale lock', error) ?? error;
  }
  // The inode number alone does not identify the judged lock: file systems
  // reuse a freed inode at once (ext4 does). Its content (a random token) does.
  const moved = await readLockFile(ctx.fs, aside).catch(() => undefined);
  if (!moved || !sameLock(moved, judged)) {
    try {
      await ctx.fs.link(aside, path);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
  await ctx.fs.unlink(aside).catch(() => {});
}

async function releaseLock(fs: FileSystem, path: string, holder: LockHolder): Promise<void> {
  // Whatever stands under the name now, if it is not our lock it is not ours to remove.
  const current = await readLockFile(fs, path).catch(() => undefined);
  if (current?.holder?.token === holder.token) await fs.unlink(path).catch(() => {});
}

/** Whether a held lock is still ours: checked right before each destructive step. */
export async function stillHeld(fs: FileSystem, lock: HeldLock): Promise<boolean> {
  const current = await readLockFile(fs, lock.path).catch(() => undefined);
  return current?.holder?.token === lock.holder.token;
}
