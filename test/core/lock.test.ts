// The per-run fix lock on a real file system, with the real process table:
// waiting, timing out, taking over a dead holder's lock, never a live one's.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
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
  type HeldLock,
  type LockContext,
  type LockHolder,
  heartbeatPeriod,
  LockTimeoutError,
  lockPathFor,
  MAX_LOCK_BYTES,
  STATE_DIR,
  stillHeld,
} from '../../src/core/lock.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { collectOutput, useBuiltBin } from '../support/built-bin.js';
import { deadPid } from '../support/dead-pids.js';
import { deferred } from '../support/deferred.js';
import { exists } from '../support/disk.js';
import { snapshot } from '../support/file-tree.js';
import { startLiveProcess } from '../support/live-process.js';
import { realLockRuntime } from '../support/lock-runtime.js';
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
const agedFs = changedAtMtimeFs(fs);

function contextWith(overrides: Partial<LockContext> = {}): LockContext {
  return {
    fs: agedFs,
    processes,
    wallClock: () => Date.now(),
    sleep: (ms) => sleep(ms),
    staleAfterMs: 15 * 60_000,
    ...realLockRuntime(),
    ...overrides,
  };
}

/**
 * A context whose pauses between looks at a held lock are recorded and cost
 * no time: the clock moves by exactly what the lock asked to sleep. `waits`
 * empty means the lock was had (or refused) at the first look.
 */
function countingWaits(overrides: Partial<LockContext> = {}) {
  const waits: number[] = [];
  let nowMs = Date.now();
  const ctx = contextWith({
    wallClock: () => nowMs,
    sleep: async (ms) => {
      waits.push(ms);
      nowMs += ms;
    },
    ...overrides,
  });
  return { ctx, waits };
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

  it('locks per run key: another key is had at the first look, while the first key stays held', async () => {
    const first = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    const { ctx, waits } = countingWaits();
    const other = await acquireLock(ctx, stagingDir, '2026-04-23', 200);
    expect(waits).toEqual([]);
    expect(other.path).toBe(lockPathFor(stagingDir, '2026-04-23'));
    expect(await stillHeld(fs, first)).toBe(true);
    expect(await stillHeld(fs, other)).toBe(true);
    await other.release();
    await first.release();
  });

  it('makes a second acquirer wait, then time out with LockTimeoutError, while the first holds', async () => {
    const first = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    const { ctx, waits } = countingWaits();
    const error = await acquireLock(ctx, stagingDir, KEY, 300).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    const timeout = error as LockTimeoutError;
    // It looked again between pauses of at most 100 ms, and gave up once the pauses reached --lock-timeout.
    expect(waits.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...waits)).toBeLessThanOrEqual(100);
    expect(waits.reduce((a, b) => a + b, 0)).toBe(300);
    expect(timeout.waitedMs).toBe(300);
    expect(timeout.holder?.token).toBe(first.holder.token);
    expect(timeout.message).toContain(`PID ${process.pid}`);
    // The waiter left the holder's lock alone.
    expect(await stillHeld(fs, first)).toBe(true);
    await first.release();
  });

  it('hands the lock to a waiter only once the holder releases it', async () => {
    const first = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    const events: string[] = [];
    const waiting = deferred();
    const released = deferred();
    // The waiter's pause between looks says "waiting", and ends only once the test has released.
    const ctx = contextWith({
      sleep: async () => {
        events.push('waiting');
        waiting.resolve();
        await released.promise;
      },
    });
    const waiter = acquireLock(ctx, stagingDir, KEY, 5000).then((lock) => {
      events.push('acquired');
      return lock;
    });
    await Promise.race([waiting.promise, waiter]);
    expect(events).toEqual(['waiting']);
    expect(await readLock()).toEqual(first.holder);
    await first.release();
    events.push('released');
    released.resolve();
    const second = await waiter;
    expect(events).toEqual(['waiting', 'released', 'acquired']);
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

    const { ctx, waits } = countingWaits();
    const lock = await acquireLock(ctx, stagingDir, KEY, 5000);
    // At once: a dead holder is not waited for.
    expect(waits).toEqual([]);
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
      const error = await acquireLock(contextWith({ fs: fs }), stagingDir, KEY, 300).catch(
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
    // Each pause is an acquirer that found the lock taken and waits to look again.
    let pauses = 0;
    let released = 0;
    const woken: Array<() => void> = [];
    const wake = () => {
      for (const resolve of woken.splice(0)) resolve();
    };
    const ctx = contextWith({
      sleep: (ms) => {
        pauses++;
        wake();
        return sleep(ms);
      },
    });
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const lock = await acquireLock(ctx, stagingDir, KEY, 10_000);
        holding++;
        most = Math.max(most, holding);
        // Held until another acquirer has run into it (or none is left to): contention, not a guess at a duration.
        const pausesBefore = pauses;
        while (pauses === pausesBefore && released < 7) await new Promise<void>((resolve) => woken.push(resolve));
        expect(await stillHeld(fs, lock)).toBe(true);
        order.push(lock.holder.token);
        holding--;
        await lock.release();
        released++;
        wake();
      }),
    );
    expect(most).toBe(1);
    expect(new Set(order).size).toBe(8);
    expect(await exists(lockPath)).toBe(false);
  });

  it('never removes a lock created after the dead one was judged, even when it reuses its inode number', async () => {
    // B judges the dead lock, then stalls just before claiming it; A takes it
    // over meanwhile and creates its own lock (on ext4, typically in the very
    // inode the dead one just freed). When B goes on, it claims "the dead
    // lock", finds A's in its place instead: it must leave it and wait.
    await plantLock({ pid: deadPid(), token: 'dead' });
    const { promise: atClaim, resolve: reached } = deferred();
    const { promise: gate, resolve: open } = deferred();
    const stalling: FileSystem = {
      ...fs,
      link: async (from, to) => {
        if (String(to).includes('.takeover.')) {
          reached();
          await gate;
        }
        return fs.link(from, to);
      },
    };
    const b = acquireLock(contextWith({ fs: stalling }), stagingDir, KEY, 600).then(
      (lock) => lock,
      (error: unknown) => error,
    );
    await atClaim;
    const a = await acquireLock(contextWith(), stagingDir, KEY, 1000);
    open();
    const outcome = await b;
    expect(await stillHeld(fs, a)).toBe(true);
    expect(outcome).toBeInstanceOf(LockTimeoutError);
    expect((outcome as LockTimeoutError).holder?.token).toBe(a.holder.token);
    await a.release();
    expect(await stateDirEntries()).toEqual([]);
  });
});

describe('taking over a stale lock: exactly one winner', () => {
  /** A file system whose every call yields a seeded-random number of turns first: many interleavings, no sleeps. */
  function shuffling(seed: number): FileSystem {
    let state = seed;
    const turns = () => {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      return state % 16;
    };
    const yieldTurns = async () => {
      for (let n = turns(); n > 0; n--) await new Promise((resolve) => setImmediate(resolve));
    };
    const wrapped: Record<string, unknown> = {};
    for (const [name, call] of Object.entries(fs)) {
      wrapped[name]
        = typeof call === 'function'
          ? async (...args: unknown[]) => {
            await yieldTurns();
            return (call as (...a: unknown[]) => unknown).apply(fs, args);
          }
          : call;
    }
    return wrapped as unknown as FileSystem;
  }

  it('three or more fixers racing over a dead holder’s lock never both believe they hold it (16 racers, 6 rounds)', async () => {
    for (let round = 0; round < 6; round++) {
      await plantLock({ pid: deadPid(), token: `dead-${round}` });
      const log: string[] = [];
      let holding = 0;
      await Promise.all(
        Array.from({ length: 16 }, async (_, racer) => {
          const ctx = contextWith({
            fs: shuffling(round * 100 + racer + 1),
            // The lock's own wait between looks: a turn of the event loop, so the test needs no real time.
            sleep: () => new Promise((resolve) => setImmediate(resolve)),
          });
          const lock = await acquireLock(ctx, stagingDir, KEY, 60_000);
          holding++;
          log.push(`enter ${racer} holding=${holding}`);
          for (let turn = 0; turn < 8; turn++) await new Promise((resolve) => setImmediate(resolve));
          expect(await stillHeld(fs, lock)).toBe(true);
          log.push(`exit ${racer}`);
          holding--;
          await lock.release();
        }),
      );
      // Enter and exit strictly alternate, each racer exactly once.
      expect(log.filter((line) => line.startsWith('enter')).every((line) => line.endsWith('holding=1'))).toBe(true);
      for (let i = 0; i < log.length; i += 2) {
        expect([log[i]?.split(' ')[0], log[i + 1]?.split(' ')[0]]).toEqual(['enter', 'exit']);
        expect(log[i]?.split(' ')[1]).toBe(log[i + 1]?.split(' ')[1]);
      }
      expect(log).toHaveLength(32);
      // Nothing left behind: no lock, no claim, no draft, no stale copy.
      expect(await stateDirEntries()).toEqual([]);
    }
  });

  it('three fixers, one stalled mid-takeover: never two holders at once (the interleaving that broke it)', async () => {
    // B judges the dead lock and stalls at its rename; A comes; B then moves
    // whatever is under the name and stalls before any link back; C comes.
    // Before claims, A took the lock over, B moved A's live lock aside, C
    // created its own in the gap, and A and C both held it.
    await plantLock({ pid: deadPid(), token: 'dead' });
    const rename = { reached: deferred(), gate: deferred() };
    const linkBack = { reached: deferred(), gate: deferred() };
    const stalling: FileSystem = {
      ...fs,
      rename: async (from, to) => {
        rename.reached.resolve();
        await rename.gate.promise;
        return fs.rename(from, to);
      },
      link: async (from, to) => {
        if (String(from).includes('.stale.')) {
          linkBack.reached.resolve();
          await linkBack.gate.promise;
        }
        return fs.link(from, to);
      },
    };
    const holders: string[] = [];
    let most = 0;
    const attempt = (name: string, ctx: LockContext, timeoutMs: number) =>
      acquireLock(ctx, stagingDir, KEY, timeoutMs).then(
        (lock) => {
          holders.push(name);
          most = Math.max(most, holders.length);
          return lock;
        },
        (error: unknown) => error,
      );
    const b = attempt('B', contextWith({ fs: stalling }), 1000);
    await rename.reached.promise;
    const a = await attempt('A', contextWith(), 300);
    rename.gate.resolve();
    await Promise.race([linkBack.reached.promise, b]);
    const c = await attempt('C', contextWith(), 300);
    linkBack.gate.resolve();
    const outcomes = [a, await b, c];
    expect(most).toBe(1);
    expect(holders).toHaveLength(1);
    for (const lock of outcomes) if (!(lock instanceof Error)) await (lock as HeldLock).release();
  });

  it('lets only the claimer remove a stale lock: others wait while its claim is alive', async () => {
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
    const claimer = acquireLock(contextWith({ fs: stalling }), stagingDir, KEY, 5000);
    await atRename;
    // The claimer holds the claim and is about to move the dead lock aside: a second fixer must not.
    const error = await acquireLock(contextWith(), stagingDir, KEY, 200).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((await readLock()).token).toBe('dead');
    open();
    const lock = await claimer;
    expect((await readLock()).token).toBe(lock.holder.token);
    await lock.release();
    expect(await stateDirEntries()).toEqual([]);
  });

  it('recovers a claim left by a claimer that died mid-takeover', async () => {
    await plantLock({ pid: deadPid(), token: 'dead' });
    // A claimer SIGKILLed between its claim and the removal: its claim names the dead lock, held by a dead PID.
    const died: FileSystem = {
      ...fs,
      rename: async () => {
        throw Object.assign(new Error('killed here'), { code: 'EKILLED' });
      },
    };
    const dead = deadPid();
    const killed = await acquireLock(
      contextWith({ fs: died, pid: dead, randomToken: () => 'killed-claimer' }),
      stagingDir,
      KEY,
      1000,
    ).catch((e: unknown) => e);
    expect((killed as Error).message).toBe('killed here');
    // Its finally removed the claim; a real SIGKILL runs no finally: put the claim back as it was.
    const claimText = JSON.stringify({ pid: dead, host: hostname(), token: 'killed-claimer', since: new Date().toISOString() });
    const seen = await fs.lstat(lockPath);
    const id = createHash('sha256').update(`${seen.ino}\n${await fs.readFile(lockPath, 'utf8')}`).digest('hex').slice(0, 16);
    await fs.writeFile(`${lockPath}.takeover.${id}`, claimText);

    const lock = await acquireLock(contextWith(), stagingDir, KEY, 2000);
    expect((await readLock()).token).toBe(lock.holder.token);
    await lock.release();
    expect(await stateDirEntries()).toEqual([]);
  });
});

describe('a planted lock file', () => {
  const refusal = async (timeoutMs = 2000) => {
    const before = await snapshot(stagingDir);
    const { ctx, waits } = countingWaits();
    const error = await acquireLock(ctx, stagingDir, KEY, timeoutMs).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    // Refused at the first look, not after waiting out --lock-timeout.
    expect(waits).toEqual([]);
    expect(await snapshot(stagingDir)).toEqual(before);
    return (error as Error).message;
  };

  beforeEach(() => fs.mkdir(join(stagingDir, STATE_DIR)));

  it('a FIFO named K.lock: refused at once, never read (the read would block forever)', async () => {
    execFileSync('mkfifo', [lockPath]);
    expect(await refusal()).toBe(
      `${lockPath} is a FIFO (named pipe), not a lock crashdiag made; nothing was changed.`,
    );
  }, 10_000);

  it('a symlink K.lock -> /dev/zero: refused, never followed', async () => {
    await fs.symlink('/dev/zero', lockPath);
    expect(await refusal()).toContain(`${lockPath} is a symlink, not a lock crashdiag made`);
  }, 10_000);

  it('a symlink K.lock -> a stale-looking lock elsewhere: refused, its target untouched', async () => {
    const elsewhere = join(root, 'elsewhere.lock');
    await fs.writeFile(elsewhere, JSON.stringify({ pid: deadPid(), host: hostname(), token: 'x', since: '' }));
    await fs.symlink(elsewhere, lockPath);
    expect(await refusal()).toContain('is a symlink');
    expect(await exists(elsewhere)).toBe(true);
  });

  it('a directory named K.lock: refused in one sentence (not EISDIR with a stack)', async () => {
    await fs.mkdir(lockPath);
    await fs.writeFile(join(lockPath, 'inside'), 'keep');
    expect(await refusal()).toContain(`${lockPath} is a directory, not a lock crashdiag made`);
  });

  it('a large regular file named K.lock: not a lock, refused', async () => {
    await fs.writeFile(lockPath, 'x'.repeat(MAX_LOCK_BYTES + 1));
    expect(await refusal()).toContain(`is a ${MAX_LOCK_BYTES + 1}-byte file`);
  });

  it('a FIFO swapped in after the lstat: caught on the open handle, and the open does not block', async () => {
    await plantLock({ pid: deadPid(), token: 'stale' });
    const fifo = join(root, 'fifo');
    execFileSync('mkfifo', [fifo]);
    let swapped = false;
    const swapping: FileSystem = {
      ...fs,
      open: async (path, flags, mode) => {
        if (path === lockPath && !swapped) {
          swapped = true;
          await fs.rename(fifo, lockPath);
        }
        return fs.open(path, flags, mode);
      },
    };
    const error = await acquireLock(contextWith({ fs: swapping }), stagingDir, KEY, 2000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('is a FIFO');
  }, 10_000);

  it('a FIFO planted under the name of its next draft: refused, never opened for writing, nothing changed', async () => {
    const draft = `${lockPath}.${process.pid}.guessed`;
    execFileSync('mkfifo', [draft]);
    const before = await snapshot(stagingDir);
    const error = await acquireLock(contextWith({ randomToken: () => 'guessed' }), stagingDir, KEY, 2000).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain(`${draft} already exists`);
    expect(await snapshot(stagingDir)).toEqual(before);
  }, 10_000);

  it('a directory planted where the stale lock is moved aside: refused in one sentence, the stale lock left as it was', async () => {
    await plantLock({ pid: deadPid(), token: 'stale' });
    await fs.mkdir(`${lockPath}.stale.${process.pid}.guessed`);
    const before = await snapshot(stagingDir);
    const error = await acquireLock(contextWith({ randomToken: () => 'guessed' }), stagingDir, KEY, 2000).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`Cannot move aside the stale lock ${lockPath} (EISDIR); nothing was changed.`);
    expect(await snapshot(stagingDir)).toEqual(before);
  });

  it('a stale lock it may not move aside (another user’s, sticky directory): one sentence, no stack', async () => {
    await plantLock({ pid: deadPid(), token: 'roots' });
    const denied: FileSystem = {
      ...fs,
      rename: async () => {
        throw Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' });
      },
    };
    const before = await snapshot(stagingDir);
    const error = await acquireLock(contextWith({ fs: denied }), stagingDir, KEY, 2000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(
      `Cannot move aside the stale lock ${lockPath} (EPERM); nothing was changed.`,
    );
    expect(await snapshot(stagingDir)).toEqual(before);
  });
});

describe('the heartbeat', () => {
  it('--stale-after 100d overflows no timer: the period is clamped to 2^31-1 ms, not wrapped to 1 ms', async () => {
    const periods: number[] = [];
    const ctx = contextWith({
      staleAfterMs: 100 * 86_400_000,
      every: (ms) => {
        periods.push(ms);
        return () => {};
      },
    });
    const lock = await acquireLock(ctx, stagingDir, KEY, 1000);
    await lock.release();
    expect(periods).toEqual([2 ** 31 - 1]);
    expect(heartbeatPeriod(15 * 60_000)).toBe(5 * 60_000);
    expect(heartbeatPeriod(1)).toBe(1000);
  });

  it('touches the lock it holds, through its own handle, and stops on release', async () => {
    let beat: (() => void) | undefined;
    let stopped = false;
    const ctx = contextWith({
      every: (_ms, fn) => {
        beat = fn;
        return () => {
          stopped = true;
        };
      },
    });
    const lock = await acquireLock(ctx, stagingDir, KEY, 1000);
    const old = new Date(Date.now() - HOUR_MS);
    await fs.utimes(lockPath, old, old);
    beat?.();
    // The touch is fire-and-forget: wait for it to land, not for time to pass.
    while ((await fs.lstat(lockPath)).mtimeMs === old.getTime()) await new Promise((resolve) => setImmediate(resolve));
    expect((await fs.lstat(lockPath)).mtimeMs).toBeGreaterThan(old.getTime());
    await lock.release();
    expect(stopped).toBe(true);
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

describe('racing fixers as real processes', () => {
  const built = useBuiltBin();

  it('16 crashdiag --fix processes over a dead holder’s lock: one re-run at a time, round after round', async () => {
    const outDir = join(root, 'out');
    await fs.mkdir(outDir);
    const log = join(root, 'holders.log');
    const holderScript = join(root, 'holder.sh');
    // The re-run runs under the lock: it records when it starts and ends, and holds a moment in between.
    // A shell script, not node: the re-runs run one at a time, so their start-ups add up.
    await fs.writeFile(holderScript, 'echo "enter $$" >> "$1"\nsleep 0.02\necho "exit $$" >> "$1"\n');
    for (let round = 0; round < 2; round++) {
      await fs.rm(log, { force: true });
      await plantLock({ pid: deadPid(), token: `dead-${round}` });
      const runs = Array.from({ length: 16 }, () =>
        collectOutput(
          spawn(
            process.execPath,
            [
              built.bin,
              'diagnose',
              KEY,
              '--out-dir',
              outDir,
              '--staging-dir',
              stagingDir,
              '--final',
              'r_{date}.csv',
              '--fix',
              '--lock-timeout',
              '120s',
              '--rerun',
              `/bin/sh ${holderScript} ${log} {date}`,
            ],
            { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
          ),
        ),
      );
      const finished = await Promise.all(runs);
      // Each found A/B/C under the lock, re-ran, and found A/B/C again (the re-run publishes nothing).
      expect(finished.map((f) => f.code)).toEqual(Array.from({ length: 16 }, () => 10));
      const lines = (await fs.readFile(log, 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(32);
      for (let i = 0; i < lines.length; i += 2) {
        const [enter, pid] = (lines[i] ?? '').split(' ');
        expect([enter, lines[i + 1]]).toEqual(['enter', `exit ${pid}`]);
      }
      // No lock, claim, draft or stale copy left: only the audit log of the re-runs.
      expect(await stateDirEntries()).toEqual(['audit.jsonl']);
    }
  }, 120_000);
});
