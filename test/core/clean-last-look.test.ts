import { lstatSync, promises as fsp, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import { type AuditRecord, defaultAuditLog, readAudit } from '../../src/core/audit.js';
import { AUDIT_BATCH, type CleanContext, type CleanOptions, cleanPipeline } from '../../src/core/clean.js';
import type { FileSystem } from '../../src/core/fs.js';
import { createProcessTable } from '../../src/core/process-table.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { changedAtMtimeFs } from '../support/ctime.js';
import { deadPids } from '../support/dead-pids.js';
import { dateKey, exists, put } from '../support/disk.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { useTempLayout } from '../support/temp-layout.js';
import { hookSync } from '../support/sync-hook.js';

// The janitor's last look, right before each unlink, and the write-ahead
// record before it, attacked on both of its paths: the synchronous calls the
// bin hands it (lstatSync, unlinkSync: no promise per file) and promises only.

const DAY = 86_400_000;
const FINAL = 'refunds_settled_{date}.csv';

let root: string;
let outDir: string;
let stagingDir: string;
useTempLayout('crashdiag-clean-last-look-', (made) => {
  ({ root, outDir, stagingDir } = made);
});

function settings(): PipelineSettings {
  return resolveSettings({ outDir, stagingDir, final: FINAL }, 'refunds', {}, root);
}

function options(overrides: Partial<CleanOptions> = {}): CleanOptions {
  const auditLog = defaultAuditLog(stagingDir);
  return { olderThanMs: DAY, dryRun: false, auditLog, lockTimeoutMs: 10_000, ...overrides };
}

function context(fs: FileSystem): CleanContext {
  return {
    fs,
    processes: createProcessTable(),
    wallClock: () => Date.now(),
    sleep: (ms) => sleep(ms),
    user: 'last-look-test',
    ...realLockRuntime(),
  };
}

const staged = (name: string) => join(stagingDir, name);

/** The bin's file system: synchronous lstat and unlink beside the promises. */
const withSyncCalls = (): FileSystem => ({ ...(fsp as FileSystem), lstatSync, unlinkSync });

/** The two file systems the janitor meets: the bin's, and promises alone. */
const KINDS: ReadonlyArray<[string, () => FileSystem]> = [
  ['synchronous lstat and unlink (the bin)', withSyncCalls],
  ['promises only', () => ({ ...(fsp as FileSystem) })],
];

/**
 * `base`, except that `attack` runs once, when the audit log's first fsync
 * starts: every file has been judged by then and none removed, since none may
 * go before its intent is durable.
 */
function attackedWhileIntentsAreSynced(base: FileSystem, attack: () => Promise<void>): FileSystem {
  return hookSync(base, defaultAuditLog(stagingDir), async (nth, sync) => {
    if (nth === 1) await attack();
    return sync();
  });
}

/** Dead writers' orphans of one run key, two days old, in name order. */
async function orphans(count: number, content = (i: number) => `attempt ${i}\n`): Promise<string[]> {
  const pids = deadPids(count);
  const now = Date.now();
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = staged(`2026-04-24.${pids[i]}.csv`);
    await put(path, content(i), now, 2 * DAY);
    paths.push(path);
  }
  return paths.sort();
}

const opsOn = (records: readonly AuditRecord[], path: string) =>
  records.filter((r) => r.path === path).map((r) => r.op);

describe.each(KINDS)('the janitor\'s last look, with %s', (_kind, fsOf) => {
  it('attack: a judged file replaced under its name (a new inode) while its intent is fsynced: kept with the new bytes, the skip audited; the rest of its batch goes', async () => {
    const paths = await orphans(5);
    const victim = paths[2] as string;
    // The next attempt of a writer whose PID is reused (containers: always PID 7) writes a file and renames it in.
    const fs = attackedWhileIntentsAreSynced(fsOf(), async () => {
      await fsp.writeFile(`${victim}.tmp`, 'the next attempt, at work\n');
      await fsp.rename(`${victim}.tmp`, victim);
    });
    const report = await cleanPipeline(context(changedAtMtimeFs(fs)), settings(), options());
    expect(await fsp.readFile(victim, 'utf8')).toBe('the next attempt, at work\n');
    expect(report.removed.map((f) => f.path)).toEqual(paths.filter((p) => p !== victim));
    expect(report.kept).toEqual([{ path: victim, reason: 'it was replaced since it was checked' }]);
    for (const path of paths) expect(await exists(path)).toBe(path === victim);
    const records = await readAudit(fsp, defaultAuditLog(stagingDir));
    for (const path of paths)
      expect(opsOn(records, path)).toEqual(path === victim ? ['intent', 'skip'] : ['intent', 'delete']);
  });

  it('attack: a symlink swapped in for a judged file, pointing at a published output: kept, never followed; the output keeps its bytes', async () => {
    const paths = await orphans(3);
    const victim = paths[1] as string;
    const output = join(outDir, 'refunds_settled_2026-04-24.csv');
    await fsp.writeFile(output, 'refund_id,amount\n1,10.00\n');
    const fs = attackedWhileIntentsAreSynced(fsOf(), async () => {
      await fsp.symlink(output, `${victim}.link`);
      await fsp.rename(`${victim}.link`, victim);
    });
    const report = await cleanPipeline(context(changedAtMtimeFs(fs)), settings(), options());
    expect((await fsp.lstat(victim)).isSymbolicLink()).toBe(true);
    expect(await fsp.readlink(victim)).toBe(output);
    expect(await fsp.readFile(output, 'utf8')).toBe('refund_id,amount\n1,10.00\n');
    expect(report.removed.map((f) => f.path)).toEqual(paths.filter((p) => p !== victim));
    expect(report.kept).toEqual([{ path: victim, reason: 'it was replaced since it was checked' }]);
    const records = await readAudit(fsp, defaultAuditLog(stagingDir));
    expect(opsOn(records, victim)).toEqual(['intent', 'skip']);
  });

  it('attack: a judged file rewritten in place, same inode, same size, its mtime set back (cp -p): kept by its ctime', async () => {
    const paths = await orphans(3, () => 'old bytes\n');
    const victim = paths[0] as string;
    const judged = await fsp.lstat(victim);
    // Its ctime must read later than when it was judged: wait for the clock the kernel stamps ctimes with to move.
    const fs = attackedWhileIntentsAreSynced(fsOf(), async () => {
      await untilCtimeAfter(judged.ctimeMs);
      await fsp.writeFile(victim, 'new bytes\n');
      await fsp.utimes(victim, judged.atime, judged.mtime);
    });
    // The real ctimes, not aged ones: the rewrite is seen by its ctime alone. Every file here was written just
    // now, so the threshold is 1 ms (their writers are dead, which decides).
    await untilCtimeAfter(Math.max(...(await Promise.all(paths.map(async (p) => (await fsp.lstat(p)).ctimeMs)))));
    const report = await cleanPipeline(context(fs), settings(), options({ olderThanMs: 1 }));
    expect(await fsp.readFile(victim, 'utf8')).toBe('new bytes\n');
    expect((await fsp.lstat(victim)).mtimeMs).toBe(judged.mtimeMs);
    expect(report.removed.map((f) => f.path)).toEqual(paths.filter((p) => p !== victim));
    expect(report.kept).toEqual([{ path: victim, reason: 'it changed since it was checked: someone is writing it' }]);
  });

  it('attack: a hard link made to a judged file while its intent is fsynced (its bytes kept under another name): the inode changed, so it is kept', async () => {
    const paths = await orphans(3);
    const victim = paths[1] as string;
    const kept = join(root, 'evidence.csv');
    await untilCtimeAfter(Math.max(...(await Promise.all(paths.map(async (p) => (await fsp.lstat(p)).ctimeMs)))));
    const fs = attackedWhileIntentsAreSynced(fsOf(), async () => {
      await untilCtimeAfter((await fsp.lstat(victim)).ctimeMs);
      await fsp.link(victim, kept);
    });
    // The real ctimes: a link moves its inode's ctime and nothing else. Written just now, so 1 ms is old enough.
    const report = await cleanPipeline(context(fs), settings(), options({ olderThanMs: 1 }));
    expect(report.removed.map((f) => f.path)).toEqual(paths.filter((p) => p !== victim));
    expect(report.kept).toEqual([{ path: victim, reason: 'it changed since it was checked: someone is writing it' }]);
    expect((await fsp.lstat(victim)).nlink).toBe(2);
  });

  it('held: a hard link to a published output, planted under an orphan\'s name: only that name goes; the output keeps its name, bytes and inode', async () => {
    const [pid] = deadPids(1);
    const output = join(outDir, 'refunds_settled_2026-04-24.csv');
    const planted = staged(`2026-04-24.${pid}.csv`);
    await put(output, 'refund_id,amount\n1,10.00\n', Date.now(), 2 * DAY);
    await fsp.link(output, planted);
    const before = await fsp.lstat(output);
    // Aged as if linked two days ago: the janitor judges the name an orphan and removes it.
    const report = await cleanPipeline(context(changedAtMtimeFs(fsOf())), settings(), options());
    expect(report.removed.map((f) => f.path)).toEqual([planted]);
    expect(await exists(planted)).toBe(false);
    const after = await fsp.lstat(output);
    expect([after.ino, after.size, after.nlink]).toEqual([before.ino, before.size, 1]);
    expect(await fsp.readFile(output, 'utf8')).toBe('refund_id,amount\n1,10.00\n');
  });

  it('attack: every unlink comes after the fsync holding its intent has completed (three batches, one written ahead, the fsyncs slowed)', async () => {
    const count = 2 * AUDIT_BATCH + 100;
    const pids = deadPids(2);
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      await put(staged(`${dateKey(Date.parse('2024-01-01'), i >> 1)}.${pids[i % 2]}.csv`), `orphan ${i}`, now, 2 * DAY);
    }
    const log = defaultAuditLog(stagingDir);
    /** Intents written to the log and not yet fsynced; intents durable. */
    const written = new Set<string>();
    const durable = new Set<string>();
    const early: string[] = [];
    let unlinks = 0;
    const base = fsOf();
    const intentsIn = (text: string | Buffer) =>
      String(text).split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditRecord)
        .filter((r) => r.op === 'intent').map((r) => r.path as string);
    const checked = (path: string) => {
      // The janitor's own lock goes the same way; only orphans are written ahead.
      if (!path.endsWith('.csv')) return;
      unlinks++;
      if (!durable.has(path)) early.push(path);
    };
    const fs: FileSystem = {
      ...base,
      ...(base.unlinkSync
        ? { unlinkSync: ((path: string) => {
            checked(path);
            (base.unlinkSync as (p: string) => void)(path);
          }) as FileSystem['unlinkSync'] }
        : {}),
      unlink: async (path) => {
        checked(String(path));
        return base.unlink(path);
      },
      open: async (...args: Parameters<FileSystem['open']>) => {
        const handle = await base.open(...args);
        if (args[0] !== log) return handle;
        const write = handle.write.bind(handle) as (text: string | Buffer) => Promise<unknown>;
        const sync = handle.sync.bind(handle);
        (handle as { write: unknown }).write = async (text: string | Buffer) => {
          for (const path of intentsIn(text)) written.add(path);
          return write(text);
        };
        handle.sync = async () => {
          const covered = [...written];
          written.clear();
          // A slow disk: the journal commit takes its time, and the janitor must wait for it, not for its start.
          await sleep(20);
          await sync();
          for (const path of covered) durable.add(path);
        };
        return handle;
      },
    };
    const report = await cleanPipeline(context(changedAtMtimeFs(fs)), settings(), options());
    expect(report.files).toBe(count);
    expect(unlinks).toBe(count);
    expect(early).toEqual([]);
  });
});

/** Waits, polling the kernel's own clock through a probe file, until a ctime stamped now would be later than `ms`. */
async function untilCtimeAfter(ms: number): Promise<void> {
  const probe = join(root, '.ctime-probe');
  for (;;) {
    await fsp.writeFile(probe, '');
    if ((await fsp.lstat(probe)).ctimeMs > ms) return;
    await sleep(1);
  }
}

describe('the janitor reads its audit log back as it wrote it', () => {
  it('each record on disk after a run parses, intents before outcomes, with the synchronous calls', async () => {
    const paths = await orphans(4);
    const report = await cleanPipeline(context(changedAtMtimeFs(withSyncCalls())), settings(), options());
    expect(report.removed.map((f) => f.path)).toEqual(paths);
    const text = readFileSync(defaultAuditLog(stagingDir), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const records = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditRecord);
    for (const path of paths) expect(opsOn(records, path)).toEqual(['intent', 'delete']);
  });
});
