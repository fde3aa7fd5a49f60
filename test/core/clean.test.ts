import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import { type AuditRecord, defaultAuditLog, readAudit } from '../../src/core/audit.js';
import { AUDIT_BATCH, type CleanContext, type CleanOptions, cleanPipeline, REPORT_SAMPLE } from '../../src/core/clean.js';
import { UsageError } from '../../src/core/errors.js';
import type { FileSystem } from '../../src/core/fs.js';
import { LockTimeoutError } from '../../src/core/lock.js';
import { createProcessTable } from '../../src/core/process-table.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { changedAtMtimeFs } from '../support/ctime.js';
import { deadPids } from '../support/dead-pids.js';
import { age, dateKey, exists, put } from '../support/disk.js';
import { snapshot, treeOf } from '../support/file-tree.js';
import { useLiveWriter } from '../support/live-process.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { removeTempDir } from '../support/temp-dir.js';
import { makeTempLayout } from '../support/temp-layout.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const FINAL = 'refunds_settled_{date}.csv';

let root: string;
let outDir: string;
let stagingDir: string;

beforeEach(async () => {
  ({ root, outDir, stagingDir } = await makeTempLayout('crashdiag-clean-'));
});
afterEach(() => removeTempDir(root));

function settingsFor(flags: Parameters<typeof resolveSettings>[0] = {}): PipelineSettings {
  return resolveSettings({ outDir, stagingDir, final: FINAL, ...flags }, 'refunds', {}, root);
}

/** The janitor judges against the real clock only: files are aged by setting their times back. */
function janitorContext(): CleanContext {
  return {
    // Orphans are aged with utimes; this disk reports them as last changed then.
    fs: changedAtMtimeFs(fsp),
    processes: createProcessTable(),
    wallClock: () => Date.now(),
    sleep: (ms) => sleep(ms),
    user: 'janitor-test',
    ...realLockRuntime(),
  };
}

function options(overrides: Partial<CleanOptions> = {}): CleanOptions {
  return {
    olderThanMs: DAY,
    dryRun: false,
    auditLog: defaultAuditLog(stagingDir),
    lockTimeoutMs: 10_000,
    ...overrides,
  };
}

const staged = (name: string) => join(stagingDir, name);

describe('cleanPipeline on a staging directory of many runs', () => {
  let now: number;
  let pids: number[];
  let outBefore: string[];
  let target: string;

  /** What the fleet holds, and what the janitor must do with each. */
  let doomed: Array<[path: string, bytes: number, run: string]>;
  let spared: string[];

  beforeEach(async () => {
    now = Date.now();
    pids = deadPids(4);
    const [a = 0, b = 0, c = 0, d = 0] = pids;
    doomed = [];
    spared = [];
    const orphan = async (name: string, content: string, ageMs: number, fate: 'delete' | 'keep') => {
      await put(staged(name), content, now, ageMs);
      if (fate === 'delete') doomed.push([staged(name), content.length, name.slice(0, 10)]);
      else spared.push(staged(name));
    };
    // D: a retrying wrapper left one orphan per attempt, all days old.
    await orphan(`2026-04-10.${a}.csv`, 'attempt one', 50 * HOUR, 'delete');
    await orphan(`2026-04-10.${b}.csv`, 'attempt two!', 40 * HOUR, 'delete');
    await orphan(`2026-04-10.${c}.csv`, 'attempt three', 30 * HOUR, 'delete');
    // D-race: published, with an old orphan beside.
    await put(join(outDir, 'refunds_settled_2026-04-11.csv'), 'id,amount\n', now, 24 * HOUR);
    await put(join(outDir, 'refunds_settled_2026-04-11.csv.success'), '', now, 24 * HOUR);
    await orphan(`2026-04-11.${d}.csv`, 'x'.repeat(4096), 25 * HOUR, 'delete');
    // Younger than the threshold: kept whatever the writer.
    await orphan(`2026-04-12.${a}.csv`, 'recent crash', 2 * HOUR, 'keep');
    // Each orphan is judged by its own age: the old one goes, the fresh one stays.
    await orphan(`2026-04-13.${b}.csv`, 'old', 30 * HOUR, 'delete');
    await orphan(`2026-04-13.${c}.csv`, 'new', HOUR, 'keep');
    // A live process that started after the file was last written is a reused PID, not its writer.
    await orphan(`2026-04-09.${process.pid}.csv`, 'reused pid', 3 * DAY, 'delete');
    // A symlink and a directory named like staging files: left for a person, never followed.
    target = join(root, 'precious.csv');
    await put(target, 'do not touch', now, 10 * DAY);
    await fsp.symlink(target, staged(`2026-04-14.${a}.csv`));
    await fsp.mkdir(staged(`2026-04-15.${a}.csv`));
    await put(staged(`2026-04-15.${a}.csv/inside.csv`), 'inside', now, 10 * DAY);
    await age(staged(`2026-04-15.${a}.csv`), now, 10 * DAY);
    spared.push(staged(`2026-04-14.${a}.csv`), staged(`2026-04-15.${a}.csv`));
    // Files no template claims.
    for (const name of [
      'notes.txt',
      `2026-04-16.${a}.csv.partial`,
      '2026-04-16.abc.csv',
      `bad key.${a}.csv`,
      `2026-04-16.${a}.tsv`,
    ]) {
      await put(staged(name), 'unrelated', now, 10 * DAY);
      spared.push(staged(name));
    }
    // The output directory is never the janitor's, even a name that looks staged.
    await put(join(outDir, `2026-04-10.${a}.csv`), 'lookalike', now, 10 * DAY);
    await put(join(outDir, 'refunds_settled_2026-04-10.csv.success'), '', now, 10 * DAY);
    outBefore = await snapshot(outDir);
  });

  it('deletes dead-writer orphans older than the threshold and nothing else', async () => {
    const report = await cleanPipeline(janitorContext(), settingsFor(), options());
    expect(report.removed.map((f) => f.path)).toEqual(doomed.map(([p]) => p).sort());
    for (const [path] of doomed) expect(await exists(path)).toBe(false);
    for (const path of spared) expect(await exists(path)).toBe(true);
    expect(await snapshot(outDir)).toEqual(outBefore);
    expect(await fsp.readFile(target, 'utf8')).toBe('do not touch');
    expect(await fsp.readFile(staged(`2026-04-15.${pids[0]}.csv/inside.csv`), 'utf8')).toBe('inside');
  });

  it('sums files and bytes freed, per run key and in all', async () => {
    const report = await cleanPipeline(janitorContext(), settingsFor(), options());
    const perRun = new Map<string, { run: string; files: number; bytes: number }>();
    for (const [, bytes, run] of doomed) {
      const sum = perRun.get(run) ?? { run, files: 0, bytes: 0 };
      perRun.set(run, { run, files: sum.files + 1, bytes: sum.bytes + bytes });
    }
    expect(report.perRun).toEqual([...perRun.values()].sort((x, y) => (x.run < y.run ? -1 : 1)));
    expect(report.files).toBe(doomed.length);
    expect(report.bytes).toBe(doomed.reduce((n, [, bytes]) => n + bytes, 0));
    expect(report.pipeline).toBe('refunds');
    expect(report.olderThanSeconds).toBe(86_400);
  });

  it('says why it kept each special entry', async () => {
    const report = await cleanPipeline(janitorContext(), settingsFor(), options());
    const [a] = pids;
    const reasons = Object.fromEntries(report.kept.map((k) => [k.path, k.reason]));
    expect(reasons[staged(`2026-04-14.${a}.csv`)]).toMatch(/symlink, not a regular file/);
    expect(reasons[staged(`2026-04-15.${a}.csv`)]).toMatch(/directory, not a regular file/);
    expect(reasons[staged(`2026-04-12.${a}.csv`)]).toBe('younger than the threshold');
    // Unclaimed names are not the janitor's business at all.
    expect(reasons[staged('notes.txt')]).toBeUndefined();
  });

  it('appends one audit line per deletion, after its intent', async () => {
    const report = await cleanPipeline(janitorContext(), settingsFor(), options());
    const all = await readAudit(fsp, defaultAuditLog(stagingDir));
    const records = all.filter((r) => r.op === 'delete');
    expect(records.map((r) => r.path).sort()).toEqual(report.removed.map((f) => f.path));
    expect(all.filter((r) => r.op === 'intent').map((r) => r.path).sort()).toEqual(report.removed.map((f) => f.path));
    for (const record of records) {
      expect(all.findIndex((r) => r.op === 'intent' && r.path === record.path)).toBeLessThan(all.indexOf(record));
      const file = report.removed.find((f) => f.path === record.path);
      expect(record).toMatchObject<Partial<AuditRecord>>({
        op: 'delete',
        pipeline: 'refunds',
        user: 'janitor-test',
        bytes: file?.bytes,
        writerPid: file?.pid,
        run: record.path?.slice(stagingDir.length + 1, stagingDir.length + 11),
      });
    }
  });

  it('with --dry-run changes nothing and lists what would go', async () => {
    const before = await snapshot(root);
    const report = await cleanPipeline(janitorContext(), settingsFor(), options({ dryRun: true }));
    expect(report.dryRun).toBe(true);
    expect(report.removed.map((f) => f.path)).toEqual(doomed.map(([p]) => p).sort());
    expect(report.files).toBe(doomed.length);
    // Not even a lock or an audit log.
    expect(await snapshot(root)).toEqual(before);
  });

  it('refuses a negative threshold before touching anything', async () => {
    const before = await snapshot(root);
    await expect(cleanPipeline(janitorContext(), settingsFor(), options({ olderThanMs: -1 }))).rejects.toThrow(
      UsageError,
    );
    for (const [path] of doomed) expect(await exists(path)).toBe(true);
    expect(await snapshot(root)).toEqual(before);
  });

  it('refuses a missing output directory as a usage error, deleting nothing', async () => {
    const before = await snapshot(stagingDir);
    const missing = settingsFor({ outDir: join(root, 'no-such-out') });
    await expect(cleanPipeline(janitorContext(), missing, options())).rejects.toThrow(UsageError);
    for (const [path] of doomed) expect(await exists(path)).toBe(true);
    expect(await snapshot(stagingDir)).toEqual(before);
  });

  it('refuses a missing staging directory as a usage error', async () => {
    const missing = settingsFor({ stagingDir: join(root, 'no-such-staging') });
    await expect(cleanPipeline(janitorContext(), missing, options())).rejects.toThrow(UsageError);
    for (const [path] of doomed) expect(await exists(path)).toBe(true);
  });

  it('waits for another live janitor, and gives up without deleting anything', async () => {
    await fsp.mkdir(join(stagingDir, '.crashdiag'));
    const holder = {
      pid: process.pid,
      host: hostname(),
      token: 'someone-else',
      since: new Date().toISOString(),
    };
    await fsp.writeFile(join(stagingDir, '.crashdiag', '.clean.lock'), JSON.stringify(holder));
    const before = await snapshot(root);
    await expect(
      cleanPipeline(janitorContext(), settingsFor(), options({ lockTimeoutMs: 300 })),
    ).rejects.toBeInstanceOf(LockTimeoutError);
    for (const [path] of doomed) expect(await exists(path)).toBe(true);
    expect(await snapshot(root)).toEqual(before);
  });
});

describe('cleanPipeline and live writers', () => {
  // A file written now is written after the process started: by the rules, it may be its writer's.
  const liveWriter = useLiveWriter();
  let livePid: number;
  beforeAll(() => {
    livePid = liveWriter.pid;
  });

  it('never deletes a live writer\'s file, however far past the threshold it is', async () => {
    const written = Date.now();
    const [dead = 0] = deadPids(1);
    await put(staged(`2026-04-20.${livePid}.csv`), 'still writing', written, 0);
    await put(staged(`2026-04-20.${dead}.csv`), 'crashed', written, 0);
    // The same PID on a file last written before the process started: a reused PID, so dead.
    await put(staged(`2026-04-19.${livePid}.csv`), 'from before', written, 3 * DAY);
    // A zero threshold: every file is past it, so only the writer's verdict keeps one.
    const report = await cleanPipeline(janitorContext(), settingsFor(), options({ olderThanMs: 0 }));
    expect(report.removed.map((f) => f.path)).toEqual([
      staged(`2026-04-19.${livePid}.csv`),
      staged(`2026-04-20.${dead}.csv`),
    ]);
    expect(await exists(staged(`2026-04-20.${livePid}.csv`))).toBe(true);
    const kept = report.kept.find((k) => k.path === staged(`2026-04-20.${livePid}.csv`));
    expect(kept?.reason).toMatch(/^writer alive: PID \d+ is running and started .* before the file's last change/);
  });

  it('attack: keeps a live writer’s file whose mtime was set a day back, and changes nothing', async () => {
    const path = staged(`2026-04-20.${livePid}.csv`);
    await put(path, 'still writing', Date.now(), DAY);
    const before = await treeOf(root);
    // The raw disk: its mtime says a day, its ctime says now.
    const ctx = { ...janitorContext(), fs: fsp as FileSystem };
    const report = await cleanPipeline(ctx, settingsFor(), options({ olderThanMs: HOUR }));
    expect(report.removed).toEqual([]);
    expect(await treeOf(root)).toEqual(before);
    // Two days on, past the threshold by its last change: the live writer still keeps it.
    const later = await cleanPipeline(
      { ...janitorContext(), wallClock: () => Date.now() + 2 * DAY, fs: fsp },
      settingsFor(),
      options(),
    );
    expect(later.removed).toEqual([]);
    expect(later.kept.find((k) => k.path === path)?.reason).toMatch(/writer alive/);
    expect(await treeOf(root)).toEqual(before);
  });

  it('with --no-pid-check judges by age: past --stale-after the PID is not asked about', async () => {
    const written = Date.now();
    // A live PID's file, untouched for two days: with PID checks off (shared storage), only its age counts.
    await put(staged(`2026-04-20.${livePid}.csv`), 'shared storage', written, 2 * DAY);
    const report = await cleanPipeline(
      janitorContext(),
      settingsFor({ pidCheck: false }),
      options(),
    );
    expect(report.removed.map((f) => f.path)).toEqual([staged(`2026-04-20.${livePid}.csv`)]);
  });

  it('with --no-pid-check and a --stale-after longer than the file age keeps it', async () => {
    const now = Date.now();
    await put(staged(`2026-04-20.${livePid}.csv`), 'slow heartbeat', now, 30 * HOUR);
    const report = await cleanPipeline(
      janitorContext(),
      settingsFor({ pidCheck: false, staleAfter: '2d' }),
      options(),
    );
    expect(report.files).toBe(0);
    expect(report.kept[0]?.reason).toMatch(/^writer alive: PID checks are off/);
    expect(await exists(staged(`2026-04-20.${livePid}.csv`))).toBe(true);
  });
});

describe('cleanPipeline when staging and output share a directory', () => {
  it('never deletes an output or a marker, even one named like a staging file', async () => {
    const now = Date.now();
    const [dead = 0] = deadPids(1);
    const shared = settingsFor({ stagingDir: outDir, final: 'refunds_{date}.csv' });
    const file = (name: string) => join(outDir, name);
    await put(file('refunds_2026-04-20.csv'), 'published', now, 5 * DAY);
    await put(file('refunds_2026-04-20.csv.success'), '', now, 5 * DAY);
    await put(file(`2026-04-20.${dead}.csv`), 'orphan', now, 5 * DAY);
    const report = await cleanPipeline(
      janitorContext(),
      shared,
      options({ auditLog: join(root, 'audit.jsonl') }),
    );
    expect(report.removed.map((f) => f.path)).toEqual([file(`2026-04-20.${dead}.csv`)]);
    expect(await exists(file('refunds_2026-04-20.csv'))).toBe(true);
    expect(await exists(file('refunds_2026-04-20.csv.success'))).toBe(true);
  });

  it('keeps a name that is both a staging name and a published output', async () => {
    const now = Date.now();
    const [dead = 0] = deadPids(1);
    // With --final '{date}.csv', 2026-04-20.<pid>.csv is also the output of run key "2026-04-20.<pid>".
    const shared = settingsFor({ stagingDir: outDir, final: '{date}.csv' });
    const output = join(outDir, `2026-04-20.${dead}.csv`);
    await put(output, 'published output of run 2026-04-20.<pid>', now, 5 * DAY);
    await put(`${output}.success`, '', now, 5 * DAY);
    const before = await snapshot(outDir);
    const report = await cleanPipeline(
      janitorContext(),
      shared,
      options({ auditLog: join(root, 'audit.jsonl') }),
    );
    expect(report.removed).toEqual([]);
    expect(report.kept).toEqual([{ path: output, reason: 'a published output or marker' }]);
    // Only the janitor's own lock directory is new.
    expect((await snapshot(outDir)).filter((line) => !line.includes('/.crashdiag'))).toEqual(before);
  });
});

describe('two janitors at once', () => {
  it('delete each orphan exactly once between them, and neither fails', async () => {
    const now = Date.now();
    const pids = deadPids(3);
    const expected: string[] = [];
    for (let day = 1; day <= 30; day++) {
      for (const pid of pids) {
        const name = `2026-03-${String(day).padStart(2, '0')}.${pid}.csv`;
        await put(staged(name), `orphan ${name}`, now, 2 * DAY);
        expected.push(staged(name));
      }
    }
    const [first, second] = await Promise.all([
      cleanPipeline(janitorContext(), settingsFor(), options()),
      cleanPipeline(janitorContext(), settingsFor(), options()),
    ]);
    const removed = [...first.removed, ...second.removed].map((f) => f.path);
    expect(removed.sort()).toEqual(expected.sort());
    expect(new Set(removed).size).toBe(removed.length);
    const records = await readAudit(fsp, defaultAuditLog(stagingDir));
    expect(records.filter((r) => r.op === 'delete').map((r) => r.path).sort()).toEqual(expected.sort());
    expect(await fsp.readdir(stagingDir)).toEqual(['.crashdiag']);
  });
});

describe('cleanPipeline records before it removes', () => {
  /** The file-system calls, in order, with the audit log's writes and syncs seen through its handle. */
  function recording(auditLog: string) {
    const calls: string[] = [];
    const fs: FileSystem = {
      ...(fsp as FileSystem),
      unlink: async (path) => {
        calls.push(`unlink ${String(path)}`);
        return fsp.unlink(path);
      },
      open: (async (path: string, flags?: string | number, mode?: number) => {
        const handle = await fsp.open(path, flags, mode);
        if (path === stagingDir) {
          const sync = handle.sync.bind(handle);
          handle.sync = async () => {
            calls.push('fsync staging');
            return sync();
          };
        }
        if (path !== auditLog) return handle;
        const write = handle.write.bind(handle) as (text: string | Buffer) => Promise<unknown>;
        const sync = handle.sync.bind(handle);
        // The janitor appends its lines as one buffer (AuditLines), other writers as text.
        (handle as { write: unknown }).write = async (text: string | Buffer) => {
          for (const line of String(text).split('\n').filter(Boolean)) {
            const r = JSON.parse(line) as AuditRecord;
            calls.push(`write ${r.op} ${r.path ?? ''}`);
          }
          return write(text);
        };
        handle.sync = async () => {
          calls.push('fsync log');
          return sync();
        };
        return handle;
      }) as FileSystem['open'],
    };
    return { fs, calls };
  }

  async function orphans(count: number): Promise<string[]> {
    const now = Date.now();
    const pids = deadPids(2);
    const paths: string[] = [];
    for (let i = 0; i < count; i++) {
      const path = staged(`${dateKey(Date.parse('2024-01-01'), i >> 1)}.${pids[i % 2]}.csv`);
      await put(path, `orphan ${i}`, now, 2 * DAY);
      paths.push(path);
    }
    return paths.sort();
  }

  it('writes and fsyncs each removal\'s intent before the unlink, and its outcome after (three batches, one written ahead)', async () => {
    const paths = await orphans(2 * AUDIT_BATCH + 100);
    const log = defaultAuditLog(stagingDir);
    const { fs, calls } = recording(log);
    const report = await cleanPipeline({ ...janitorContext(), fs: changedAtMtimeFs(fs) }, settingsFor(), options());
    expect(report.files).toBe(paths.length);
    // Where each call first happens (what calls.indexOf says), found once: 2,148 paths, 6,000 calls.
    const first = new Map<string, number>();
    calls.forEach((call, i) => {
      if (!first.has(call)) first.set(call, i);
    });
    const indexOf = (call: string) => first.get(call) ?? -1;
    const logSyncs = calls.flatMap((call, i) => (call === 'fsync log' ? [i] : []));
    for (const path of paths) {
      const intent = indexOf(`write intent ${path}`);
      const unlink = indexOf(`unlink ${path}`);
      const outcome = indexOf(`write delete ${path}`);
      const synced = logSyncs.find((i) => i >= intent) ?? -1;
      expect({ path, ok: intent >= 0 && synced > intent && unlink > synced && outcome > unlink }).toEqual({
        path,
        ok: true,
      });
    }
    // Batched: one fsync of the log per batch of intents, plus the last outcomes; the staging directory once.
    expect(calls.filter((c) => c === 'fsync log').length).toBeLessThanOrEqual(Math.ceil(paths.length / AUDIT_BATCH) + 1);
    expect(calls.filter((c) => c === 'fsync staging')).toHaveLength(1);
    const lastUnlink = Math.max(...paths.map((path) => indexOf(`unlink ${path}`)));
    expect(calls.lastIndexOf('fsync log')).toBeGreaterThan(lastUnlink);
  });

  it('--audit-log naming a directory: refused before the first deletion, the disk unchanged byte for byte', async () => {
    await orphans(5);
    const somedir = join(root, 'somedir');
    await fsp.mkdir(somedir);
    const before = await snapshot(root);
    const error = await cleanPipeline(janitorContext(), settingsFor(), options({ auditLog: somedir })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain(`The audit log ${somedir} is a directory`);
    expect(await snapshot(root)).toEqual(before);
  });

  it('a hard link planted as its audit log, to a published output: refused, the output unchanged, nothing deleted', async () => {
    await orphans(5);
    const output = join(outDir, 'refunds_settled_2026-01-01.csv');
    await fsp.writeFile(output, 'id,amount\n1,10\n');
    await fsp.mkdir(join(stagingDir, '.crashdiag'));
    await fsp.link(output, defaultAuditLog(stagingDir));
    const before = await snapshot(root);
    const error = await cleanPipeline(janitorContext(), settingsFor(), options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/is a file with 2 hard links/);
    expect(await snapshot(root)).toEqual(before);
  });

  it('an unlink refused midway (EPERM): the file is kept with the reason, its failure audited, the rest done, staging fsynced', async () => {
    const paths = await orphans(6);
    const [, victim] = paths;
    const log = defaultAuditLog(stagingDir);
    const { fs: base, calls } = recording(log);
    const fs: FileSystem = {
      ...base,
      unlink: async (path) => {
        if (path === victim) throw Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' });
        return base.unlink(path);
      },
    };
    const report = await cleanPipeline({ ...janitorContext(), fs: changedAtMtimeFs(fs) }, settingsFor(), options());
    expect(report.removed.map((f) => f.path)).toEqual(paths.filter((p) => p !== victim));
    expect(report.failed).toEqual([{ path: victim, reason: expect.stringMatching(/^could not be removed \(EPERM\)/) }]);
    expect(await exists(victim as string)).toBe(true);
    const records = await readAudit(fsp, log);
    expect(records.filter((r) => r.path === victim).map((r) => r.op)).toEqual(['intent', 'fail']);
    expect(calls).toContain('fsync staging');
  });
});

describe('cleanPipeline when the audit log fills up midway', () => {
  it('removes nothing it could not record: the batch whose intents failed stays, listed as failed, and the janitor stops', async () => {
    const now = Date.now();
    const pids = deadPids(2);
    const paths: string[] = [];
    for (let i = 0; i < AUDIT_BATCH + 44; i++) {
      const path = staged(`${dateKey(Date.parse('2020-01-01'), i >> 1)}.${pids[i % 2]}.csv`);
      await put(path, 'orphan', now, 2 * DAY);
      paths.push(path);
    }
    paths.sort();
    const log = defaultAuditLog(stagingDir);
    const full = auditLogFullAt(log, 2);
    const report = await cleanPipeline({ ...janitorContext(), fs: changedAtMtimeFs(full) }, settingsFor(), options());
    // The first batch (in listing order) went; the second, whose intents failed, stays.
    const removed = report.removed.map((f) => f.path);
    const failed = report.failed.map((f) => f.path);
    expect([removed.length, failed.length]).toEqual([AUDIT_BATCH, 44]);
    expect([...removed, ...failed].sort()).toEqual(paths);
    expect(report.failed[0]?.reason).toBe(
      `not removed: the audit log ${log} could not be written (ENOSPC); the janitor stopped here`,
    );
    for (const path of failed) expect(await exists(path)).toBe(true);
    const records = await readAudit(fsp, log);
    expect(records.filter((r) => r.op === 'intent').map((r) => r.path).sort()).toEqual([...removed].sort());
    expect(await exists(join(stagingDir, '.crashdiag', '.clean.lock'))).toBe(false);
  });
});

/** The real disk, but the audit log's `failing`-th append fails as on a full disk. */
function auditLogFullAt(log: string, failing: number): FileSystem {
  let appends = 0;
  return {
    ...(fsp as FileSystem),
    open: (async (path: string, flags?: string | number, mode?: number) => {
      const handle = await fsp.open(path, flags, mode);
      if (path !== log) return handle;
      const write = handle.write.bind(handle) as (text: string | Buffer) => Promise<unknown>;
      (handle as { write: unknown }).write = async (text: string | Buffer) => {
        if (++appends === failing) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        return write(text);
      };
      return handle;
    }) as FileSystem['open'],
  };
}

describe('cleanPipeline when the disk fills at the very end', () => {
  it('attack: the last outcomes cannot be written (ENOSPC): the files went after their intents; a failure naming the log, no throw', async () => {
    const now = Date.now();
    const [pid] = deadPids(1);
    const paths = [0, 1, 2].map((i) => staged(`${dateKey(Date.parse('2020-01-01'), i)}.${pid}.csv`));
    for (const path of paths) await put(path, 'orphan', now, 2 * DAY);
    const log = defaultAuditLog(stagingDir);
    // The first append is the batch's intents; the second, its outcomes.
    const fullAtTheEnd = auditLogFullAt(log, 2);
    const ctx = { ...janitorContext(), fs: changedAtMtimeFs(fullAtTheEnd) };
    const report = await cleanPipeline(ctx, settingsFor(), options());
    expect(report.removed.map((f) => f.path).sort()).toEqual([...paths].sort());
    for (const path of paths) expect(await exists(path)).toBe(false);
    expect(report.failedCount).toBe(1);
    const reason = expect.stringMatching(/outcomes .* could not be written .*ENOSPC.*intent is on record/) as unknown;
    expect(report.failed).toEqual([{ path: log, reason }]);
    const records = await readAudit(fsp, log);
    expect(records.filter((r) => r.op === 'intent').map((r) => r.path).sort()).toEqual([...paths].sort());
    expect(await exists(join(stagingDir, '.crashdiag', '.clean.lock'))).toBe(false);
  });
});

describe('cleanPipeline keeps totals, not a record per file', () => {
  it('hands each removal to onRemoved and keeps none; kept files are listed up to REPORT_SAMPLE and counted', async () => {
    const now = Date.now();
    const [dead] = deadPids(1);
    const young = REPORT_SAMPLE + 100;
    for (let i = 0; i < young; i++) await put(staged(`${dateKey(Date.parse('2024-01-01'), i)}.${dead}.csv`), 'y', now, HOUR);
    const old: string[] = [];
    for (let i = 0; i < 300; i++) {
      const path = staged(`${dateKey(Date.parse('2020-01-01'), i)}.${dead}.csv`);
      await put(path, 'old', now, 2 * DAY);
      old.push(path);
    }
    const streamed: string[] = [];
    const seen: number[] = [];
    const report = await cleanPipeline(janitorContext(), settingsFor(), options({
      onRemoved: (file) => streamed.push(file.path),
      onEntries: (n) => seen.push(n),
    }));
    expect(streamed.sort()).toEqual(old.sort());
    expect([report.removed.length, report.files, report.bytes]).toEqual([0, 300, 900]);
    expect([report.kept.length, report.keptCount, report.keptYounger]).toEqual([REPORT_SAMPLE, young, young]);
    expect(report.failedCount).toBe(0);
    expect(seen.at(-1)).toBeGreaterThanOrEqual(young + 300);
  });
});

describe('attack: the write carrying a batch\'s intents and the outcomes before it fails midway (ENOSPC)', () => {
  it('every file the report says went has its outcome in the log, or a failure names the log', async () => {
    const now = Date.now();
    const pids = deadPids(2);
    const paths: string[] = [];
    for (let i = 0; i < 2 * AUDIT_BATCH + 44; i++) {
      const path = staged(`${dateKey(Date.parse('2020-01-01'), i >> 1)}.${pids[i % 2]}.csv`);
      await put(path, 'orphan', now, 2 * DAY);
      paths.push(path);
    }
    paths.sort();
    const log = defaultAuditLog(stagingDir);
    // Appends: 1 = batch 1's intents; 2 = batch 2's; 3 = batch 3's with batch 1's outcomes.
    const full = auditLogFullAt(log, 3);
    const report = await cleanPipeline({ ...janitorContext(), fs: changedAtMtimeFs(full) }, settingsFor(), options());
    const removed = report.removed.map((f) => f.path);
    expect(removed).toHaveLength(2 * AUDIT_BATCH);
    for (const path of removed) expect(await exists(path)).toBe(false);
    const failed = report.failed.map((f) => f.path);
    for (const path of failed.filter((p) => p !== log)) expect(await exists(path)).toBe(true);
    const records = await readAudit(fsp, log);
    const intents = new Set(records.filter((r) => r.op === 'intent').map((r) => r.path));
    const deleted = new Set(records.filter((r) => r.op === 'delete').map((r) => r.path));
    for (const path of removed) expect(intents.has(path)).toBe(true);
    const unrecorded = removed.filter((path) => !deleted.has(path));
    // The --json stream and the log agree, or the report says the log lacks outcomes.
    expect({ unrecorded: unrecorded.length, logNamed: failed.includes(log) })
      .toEqual({ unrecorded: 0, logNamed: false });
  });
});

describe('attack: an orphan whose mtime no Date can hold (tmpfs and btrfs keep 64-bit seconds: touch -d @-9000000000000)', () => {
  it('the janitor neither throws nor removes it: kept for a person, the disk unchanged', async () => {
    const [pid] = deadPids(1);
    const path = staged(`${dateKey(Date.parse('2020-01-01'), 0)}.${pid}.csv`);
    await put(path, 'orphan', Date.now(), 2 * DAY);
    const far = -9e15;
    const lying = { ...(fsp as FileSystem) };
    lying.lstat = (async (...args: Parameters<FileSystem['lstat']>) => {
      const stats = await fsp.lstat(...(args as [string]));
      if (String(args[0]).endsWith(`.${pid}.csv`)) Object.assign(stats, { mtimeMs: far, ctimeMs: far });
      return stats;
    }) as FileSystem['lstat'];
    const before = await treeOf(root);
    const report = await cleanPipeline({ ...janitorContext(), fs: lying }, settingsFor(), options());
    expect(report.files).toBe(0);
    expect(report.kept.map((k) => k.path)).toContain(path);
    expect(await treeOf(root)).toEqual(before);
  });
});
