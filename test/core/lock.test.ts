// The per-run fix lock on a real file system, with the real process table:
// waiting, timing out, taking over a dead holder's lock, never a live one's.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import type { FileSystem } from '../../src/core/fs.js';
import { changedAtMtimeFs } from '../support/ctime.js';
import {
  acquireLock,
  type LockContext,
  type LockHolder,
  LockTimeoutError,
  lockPathFor,
  STATE_DIR,
  stillHeld,
} from '../../src/core/lock.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { deadPid } from '../support/dead-pids.js';
import { deferred } from '../support/deferred.js';
import { exists } from '../support/disk.js';
import { startLiveProcess } from '../support/live-process.js';
import { HOUR_MS, KEY } from '../support/pipeline-files.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

const processes = createProcessTable();
let root: string;
let stagingDir: string;
let lockPath: string;

beforeEach(async () => {
  root = await makeTempDir('crashdiag-fix-');
  stagingDir = join(root, '_staging');
  await fs.mkdir(stagingDir);
  lockPath = lockPathFor(stagingDir, KEY);
});
afterEach(() => removeTempDir(root));

// Planted locks are aged with utimes; this disk reports them as last changed then.
const agedFs = changedAtMtimeFs(fs as FileSystem);

function contextWith(overrides: Partial<LockContext> = {}): LockContext {
  return {
    fs: agedFs,
    processes,
    clock: () => Date.now(),
    sleep: (ms) => sleep(ms),
    staleAfterMs: 15 * 60_000,
    ...overrides,
  };
}

async function readLock(): Promise<LockHolder> {
  return JSON.parse(await fs.readFile(lockPath, 'utf8')) as LockHolder;
}

/** A lock file as another crashdiag would have left it. */
async function plantLock(holder: Partial<LockHolder>, ageMs = 0): Promise<void> {
  await fs.mkdir(join(stagingDir, STATE_DIR), { recursive: true });
  const full: LockHolder = {
    pid: 1,
    host: hostname(),
    token: 'planted',
    since: new Date().toISOString(),
    ...holder,
  };
  await fs.writeFile(lockPath, JSON.stringify(full));
  if (ageMs > 0) {
    const t = new Date(Date.now() - ageMs);
    await fs.utimes(lockPath, t, t);
  }
}

async function stateDirEntries(): Promise<string[]> {
  return (await fs.readdir(join(stagingDir, STATE_DIR))).sort();
}

describe('acquireLock', () => {
  it('creates the lock with its holder in it, and release removes it', async () => {
    const lock = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    expect(lock.path).toBe(join(stagingDir, '.crashdiag', `${KEY}.lock`));
    expect(await readLock()).toEqual(lock.holder);
    expect(lock.holder).toMatchObject({ pid: process.pid, host: hostname() });
    expect(await stillHeld(fs, lock)).toBe(true);
    // No draft files left beside it.
    expect(await stateDirEntries()).toEqual([`${KEY}.lock`]);
    await lock.release();
    expect(await exists(lockPath)).toBe(false);
  });

  it('locks per run key: another key is not blocked', async () => {
    const first = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    const other = await acquireLock(contextWith(), stagingDir, '2026-04-23', 200);
    await other.release();
    await first.release();
  });

  it('makes a second acquirer wait, then time out with LockTimeoutError, while the first holds', async () => {
    const first = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    const started = Date.now();
    const error = await acquireLock(contextWith(), stagingDir, KEY, 300).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    const timeout = error as LockTimeoutError;
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(timeout.waitedMs).toBeGreaterThanOrEqual(300);
    expect(timeout.holder?.token).toBe(first.holder.token);
    expect(timeout.message).toContain(`PID ${process.pid}`);
    // The waiter left the holder's lock alone.
    expect(await stillHeld(fs, first)).toBe(true);
    await first.release();
  });

  it('hands the lock to a waiter once the holder releases it', async () => {
    const first = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    const waiter = acquireLock(contextWith(), stagingDir, KEY, 5000);
    await sleep(250);
    const releasedAt = Date.now();
    await first.release();
    const second = await waiter;
    expect(Date.now()).toBeGreaterThanOrEqual(releasedAt);
    expect(await readLock()).toEqual(second.holder);
    await second.release();
  });

  it('takes over a lock left by a SIGKILLed holder', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise((resolve) => child.once('spawn', resolve));
    const pid = child.pid as number;
    await plantLock({ pid, token: 'killed' });
    child.kill('SIGKILL');
    await exited; // reaped: its PID no longer answers

    const started = Date.now();
    const lock = await acquireLock(contextWith(), stagingDir, KEY, 5000);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await readLock()).token).toBe(lock.holder.token);
    // The dead lock was moved aside and removed, not left beside ours.
    expect(await stateDirEntries()).toEqual([`${KEY}.lock`]);
    await lock.release();
  });

  it('never takes over a live holder’s lock, however long it waits', async () => {
    const live = await startLiveProcess();
    try {
      await plantLock({ pid: live.pid, token: 'live' });
      const error = await acquireLock(contextWith(), stagingDir, KEY, 300).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect((await readLock()).token).toBe('live');
    } finally {
      await live.stop();
    }
  });

  it('takes over a lock whose PID was reused by a process started after the lock was last touched', async () => {
    const live = await startLiveProcess();
    try {
      await plantLock({ pid: live.pid, token: 'reused' }, HOUR_MS);
      const lock = await acquireLock(contextWith(), stagingDir, KEY, 2000);
      expect((await readLock()).token).toBe(lock.holder.token);
      await lock.release();
    } finally {
      await live.stop();
    }
  });

  it('attack: a live holder whose lock file mtime was set an hour back is not taken over (its ctime is now)', async () => {
    const live = await startLiveProcess();
    try {
      // The raw disk: the lock's mtime says an hour, its ctime says just now.
      await plantLock({ pid: live.pid, token: 'live-backdated' }, HOUR_MS);
      const before = await fs.readFile(lockPath, 'utf8');
      const error = await acquireLock(contextWith({ fs: fs as FileSystem }), stagingDir, KEY, 300).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(await fs.readFile(lockPath, 'utf8')).toBe(before);
    } finally {
      await live.stop();
    }
  });

  it('judges a lock from another host by its age: fresh means wait', async () => {
    await plantLock({ pid: deadPid(), host: 'some-other-host', token: 'remote' });
    const error = await acquireLock(contextWith(), stagingDir, KEY, 300).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((await readLock()).token).toBe('remote');
  });

  it('judges a lock from another host by its age: older than --stale-after means taken over', async () => {
    await plantLock({ pid: deadPid(), host: 'some-other-host', token: 'remote' }, HOUR_MS);
    const lock = await acquireLock(contextWith(), stagingDir, KEY, 2000);
    expect((await readLock()).token).toBe(lock.holder.token);
    await lock.release();
  });

  it('waits on an unreadable lock while it is young, and takes it over once stale', async () => {
    await fs.mkdir(join(stagingDir, STATE_DIR));
    await fs.writeFile(lockPath, 'not json');
    expect(await acquireLock(contextWith(), stagingDir, KEY, 200).catch((e: unknown) => e)).toBeInstanceOf(
      LockTimeoutError,
    );
    const t = new Date(Date.now() - HOUR_MS);
    await fs.utimes(lockPath, t, t);
    const lock = await acquireLock(contextWith(), stagingDir, KEY, 2000);
    expect((await readLock()).token).toBe(lock.holder.token);
    await lock.release();
  });

  it('lets only one of many acquirers hold the lock at a time, starting from a dead holder’s lock', async () => {
    await plantLock({ pid: deadPid(), token: 'dead' });
    let holding = 0;
    let most = 0;
    const order: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const lock = await acquireLock(contextWith(), stagingDir, KEY, 10_000);
        holding++;
        most = Math.max(most, holding);
        await sleep(15);
        expect(await stillHeld(fs, lock)).toBe(true);
        order.push(lock.holder.token);
        holding--;
        await lock.release();
      }),
    );
    expect(most).toBe(1);
    expect(new Set(order).size).toBe(8);
    expect(await exists(lockPath)).toBe(false);
  });

  it('never removes a lock created after the dead one was judged, even when it reuses its inode number', async () => {
    // B judges the dead lock, then stalls just before moving it aside; A takes
    // it over meanwhile and creates its own lock (on ext4, typically in the
    // very inode the dead one just freed). When B moves "the dead lock" aside
    // it finds A's: it must put it back and wait, not remove it.
    await plantLock({ pid: deadPid(), token: 'dead' });
    const { promise: atRename, resolve: reached } = deferred();
    const { promise: gate, resolve: open } = deferred();
    const stalling: FileSystem = {
      ...fs,
      rename: async (from, to) => {
        reached();
        await gate;
        return fs.rename(from, to);
      },
    };
    const b = acquireLock(contextWith({ fs: stalling }), stagingDir, KEY, 600).then(
      (lock) => lock,
      (error: unknown) => error,
    );
    await atRename;
    const a = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    open();
    const outcome = await b;
    expect(await stillHeld(fs, a)).toBe(true);
    expect(outcome).toBeInstanceOf(LockTimeoutError);
    await a.release();
  });
});

describe('release', () => {
  it('never removes a lock whose token is not ours', async () => {
    const lock = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    // Another fixer took the lock over (judged us dead): its lock now stands under the name.
    await fs.writeFile(lockPath, JSON.stringify({ ...lock.holder, token: 'someone-else' }));
    expect(await stillHeld(fs, lock)).toBe(false);
    await lock.release();
    expect(await exists(lockPath)).toBe(true);
    expect((await readLock()).token).toBe('someone-else');
  });

  it('is harmless when the lock is already gone', async () => {
    const lock = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    await fs.unlink(lockPath);
    await lock.release();
    expect(await exists(lockPath)).toBe(false);
  });
});

describe('the state directory', () => {
  it('is never followed out of staging when it is a symlink: nothing there is touched', async () => {
    const elsewhere = join(root, 'elsewhere');
    await fs.mkdir(elsewhere);
    // Someone else's old lock file of the same name: a takeover would remove it.
    const theirs = join(elsewhere, `${KEY}.lock`);
    await fs.writeFile(theirs, 'not ours');
    const t = new Date(Date.now() - HOUR_MS);
    await fs.utimes(theirs, t, t);
    await fs.symlink(elsewhere, join(stagingDir, STATE_DIR));
    const error = await acquireLock(contextWith(), stagingDir, KEY, 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('is a symlink');
    expect(await fs.readFile(theirs, 'utf8')).toBe('not ours');
    expect(await fs.readdir(elsewhere)).toEqual([`${KEY}.lock`]);
  });

  it('refuses a regular file where the directory should be', async () => {
    await fs.writeFile(join(stagingDir, STATE_DIR), 'a file');
    const error = await acquireLock(contextWith(), stagingDir, KEY, 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect(await fs.readFile(join(stagingDir, STATE_DIR), 'utf8')).toBe('a file');
  });
});
