import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { formatDuration } from './duration.js';
import { errnoCode, UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import type { ProcessTable } from './process-table.js';
import { type FileTimes, judgeWriter } from './writer.js';

/** Where crashdiag keeps its own files inside a staging directory. */
export const STATE_DIR = '.crashdiag';

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly token: string;
  readonly since: string;
}

export interface LockContext {
  readonly fs: FileSystem;
  readonly processes: ProcessTable;
  /** The real clock: lock waits and staleness are about now, not --now. */
  readonly clock: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** A lock untouched this long, held from another host, has no live holder. */
  readonly staleAfterMs: number;
}

/** The lock's view of a fixer's or janitor's context: a lock goes stale by the pipeline's --stale-after. */
export function lockContextOf(
  ctx: Pick<LockContext, 'fs' | 'processes' | 'clock' | 'sleep'>,
  settings: { readonly staleAfterMs: number },
): LockContext {
  const { fs, processes, clock, sleep } = ctx;
  return { fs, processes, clock, sleep, staleAfterMs: settings.staleAfterMs };
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

/** One lock file as seen at one moment; `ino` and `text` together identify it. */
interface SeenLock {
  readonly holder?: LockHolder;
  readonly ino: number;
  readonly text: string;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

async function readHolder(fs: FileSystem, path: string): Promise<SeenLock | undefined> {
  try {
    const stats = await fs.lstat(path);
    const text = await fs.readFile(path, 'utf8');
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
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** A lock's holder is alive by the same rules as a staging file's writer, judged by the lock file's own last change. */
function holderAlive(ctx: LockContext, holder: LockHolder | undefined, times: FileTimes): boolean {
  const nowMs = ctx.clock();
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
    if (!['EEXIST', 'ENOTDIR'].includes(errnoCode(error) ?? '')) throw error;
  }
  const stats = await fs.lstat(dir);
  if (!stats.isDirectory()) {
    throw new UsageError(
      `${dir} is ${stats.isSymbolicLink() ? 'a symlink' : 'not a directory'}; crashdiag keeps its lock and audit log there and will not follow it out of the staging directory.`,
      'Move it away; crashdiag creates the directory itself.',
    );
  }
}

/**
 * One fixer at a time per staging directory and run key. The lock is a file
 * created with O_EXCL. A lock whose holder is dead is taken over by renaming
 * it aside and checking that what moved is the very inode judged dead; if a
 * live lock moved instead (another fixer won the race), it is linked back.
 */
export async function acquireLock(
  ctx: LockContext,
  stagingDir: string,
  runKey: string,
  timeoutMs: number,
): Promise<HeldLock> {
  const dir = join(stagingDir, STATE_DIR);
  await openStateDir(ctx.fs, dir);
  const path = lockPathFor(stagingDir, runKey);
  const holder: LockHolder = {
    pid: process.pid,
    host: ctx.processes.hostname,
    token: randomBytes(8).toString('hex'),
    since: new Date(ctx.clock()).toISOString(),
  };
  const started = ctx.clock();
  let lastSeen: LockHolder | undefined;
  for (;;) {
    if (await tryCreate(ctx.fs, path, holder)) {
      // Holders on other hosts are judged by the lock's age: keep it young while we work.
      const beat = setInterval(
        () => {
          const t = new Date(ctx.clock());
          ctx.fs.utimes(path, t, t).catch(() => {});
        },
        Math.max(1000, ctx.staleAfterMs / 3),
      );
      beat.unref?.();
      return {
        path,
        holder,
        release: async () => {
          clearInterval(beat);
          await releaseLock(ctx.fs, path, holder);
        },
      };
    }
    const current = await readHolder(ctx.fs, path);
    if (current) {
      lastSeen = current.holder;
      if (!holderAlive(ctx, current.holder, { mtimeMs: current.mtimeMs, ctimeMs: current.ctimeMs })) {
        await takeOverStale(ctx.fs, path, current);
        continue;
      }
    } else continue;
    const waited = ctx.clock() - started;
    if (waited >= timeoutMs) throw new LockTimeoutError(path, lastSeen, waited);
    await ctx.sleep(Math.min(100, Math.max(1, timeoutMs - waited)));
  }
}

/**
 * Creates the lock with its content already in place: written to a private
 * file, then hard-linked to the lock name (link fails if the name exists), so
 * no one ever sees a lock without a holder, even if we are killed midway.
 */
async function tryCreate(fs: FileSystem, path: string, holder: LockHolder): Promise<boolean> {
  const draft = `${path}.${holder.pid}.${holder.token}`;
  const handle = await fs.open(draft, 'wx');
  try {
    await handle.writeFile(JSON.stringify(holder));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(draft, path);
    return true;
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error;
    return false;
  } finally {
    await fs.unlink(draft).catch(() => {});
  }
}

async function takeOverStale(fs: FileSystem, path: string, judged: SeenLock): Promise<void> {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await fs.rename(path, aside);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return; // someone else cleared it first
    throw error;
  }
  // The inode number alone does not identify the judged lock: file systems
  // reuse a freed inode at once (ext4 does), so a fixer that took the dead lock
  // over first may already hold a new lock in the very same inode. Its content
  // (a fresh random token) tells them apart.
  const moved = await readHolder(fs, aside);
  if (moved && (moved.ino !== judged.ino || moved.text !== judged.text)) {
    // We moved a live lock created after our judgement: put it back, unless yet another lock appeared.
    try {
      await fs.link(aside, path);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
  await fs.unlink(aside).catch(() => {});
}

async function releaseLock(fs: FileSystem, path: string, holder: LockHolder): Promise<void> {
  const current = await readHolder(fs, path);
  if (current?.holder?.token === holder.token) await fs.unlink(path).catch(() => {});
}

/** Whether a held lock is still ours: checked right before each destructive step. */
export async function stillHeld(fs: FileSystem, lock: HeldLock): Promise<boolean> {
  const current = await readHolder(fs, lock.path);
  return current?.holder?.token === lock.holder.token;
}
