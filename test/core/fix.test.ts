// fixRun in process, on real directories: plan, check all, then act; re-check
// right before each removal; re-run pinned to the key; one fixer at a time.
// The re-run is a recorded fake here (the spawned one is in test/cli/fix.test.ts).
import {
  appendFileSync,
  promises as fs,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { type AuditRecord, defaultAuditLog, readAudit } from '../../src/core/audit.js';
import { UsageError } from '../../src/core/errors.js';
import { type FixOptions, fixRun } from '../../src/core/fix.js';
import type { FileSystem } from '../../src/core/fs.js';
import { LockTimeoutError, lockPathFor } from '../../src/core/lock.js';
import { createProcessTable, type ProcessTable } from '../../src/core/process-table.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { deadPids } from '../support/dead-pids.js';
import { exists } from '../support/disk.js';
import { treeOf } from '../support/file-tree.js';
import { fixHarness, fixOptions, settingsWithRerun } from '../support/fix-harness.js';
import { NOBODY } from '../support/identity.js';
import { startLiveProcess } from '../support/live-process.js';
import { finalPathFor, KEY, plantBystanders, plantOrphans, publish, settingsFor, stagingPathFor } from '../support/pipeline-files.js';
import { deferred } from '../support/deferred.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';
import { hookSync } from '../support/sync-hook.js';

let root: string;
let layout: Layout;

useTempLayout('crashdiag-fix-', (made) => {
  layout = made;
  root = made.root;
});

const options = (overrides: Partial<FixOptions> = {}): FixOptions => fixOptions(layout, overrides);
const withRerun = (overrides: Partial<PipelineSettings> = {}): PipelineSettings => settingsWithRerun(layout, overrides);

async function audit(): Promise<AuditRecord[]> {
  return readAudit(fs, defaultAuditLog(layout.stagingDir));
}

/** The outcomes, without the intents written ahead of each removal (their order is tested in audit.test.ts). */
async function outcomes(): Promise<AuditRecord[]> {
  return (await audit()).filter((r) => r.op !== 'intent');
}

describe('fixRun: the safe action per state', () => {
  it('D: deletes only this key’s dead orphans, re-runs pinned to the key, ends DONE', async () => {
    // Two, not three: three dead writers of one key are a crash loop (--max-attempts 3).
    const orphans = await plantOrphans(layout, 2);
    await plantBystanders(layout);
    const bystanders = await treeOf(root);
    for (const path of orphans) delete bystanders[path.slice(root.length + 1)];

    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options());

    expect(report.before.state).toBe('D');
    expect(report.refused).toEqual([]);
    expect(report.steps.map((s) => [s.path, s.result])).toEqual(orphans.map((p) => [p, 'deleted']));
    for (const path of orphans) expect(await exists(path)).toBe(false);
    const after = await treeOf(root);
    for (const [rel, identity] of Object.entries(bystanders)) {
      if (rel.startsWith('out/report_2026-04-24')) continue; // published by the re-run
      expect(after[rel], rel).toEqual(identity);
    }
    expect(commands).toEqual([{ argv: ['job', '--date', KEY], env: { CRASHDIAG_RUN_KEY: KEY } }]);
    expect(report.rerun).toEqual({
      argv: ['job', '--date', KEY],
      result: { exitStatus: 0, signal: null },
      startedAt: expect.any(String),
      durationMs: expect.any(Number),
    });
    expect(report.after.state).toBe('DONE');
    expect(report.exitCode).toBe(0);
    // The lock is released.
    expect(await exists(lockPathFor(layout.stagingDir, KEY))).toBe(false);
  });

  it('D without a command: deletes the orphans, plans no re-run, exits with the new state (A/B/C)', async () => {
    const orphans = await plantOrphans(layout, 1);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, settingsFor(layout), KEY, options());
    expect(await exists(orphans[0] as string)).toBe(false);
    expect(commands).toEqual([]);
    expect(report.plan.rerunMissing).toBe(true);
    expect(report.after.state).toBe('A/B/C');
    expect(report.exitCode).toBe(10);
  });

  it('D-race: deletes the orphans, never re-runs, leaves the output and marker as they were', async () => {
    const orphans = await plantOrphans(layout, 2);
    await publish(layout);
    const published = await treeOf(layout.outDir);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.before.state).toBe('D-race');
    for (const path of orphans) expect(await exists(path)).toBe(false);
    expect(commands).toEqual([]);
    expect(report.rerun).toBeNull();
    expect(await treeOf(layout.outDir)).toEqual(published);
    expect(report.exitCode).toBe(0);
  });

  it('DONE: does nothing', async () => {
    await publish(layout);
    const before = await treeOf(root);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.steps).toEqual([]);
    expect(commands).toEqual([]);
    expect(await treeOf(root)).toEqual(before);
    expect(report.exitCode).toBe(0);
  });

  it('RUNNING: touches neither the live writer’s file nor a dead orphan beside it, and does not re-run', async () => {
    const live = await startLiveProcess();
    try {
      await fs.writeFile(stagingPathFor(layout, live.pid), 'being written');
      await plantOrphans(layout, 1);
      const before = await treeOf(root);
      const { ctx, commands } = fixHarness(layout);
      const report = await fixRun(ctx, withRerun(), KEY, options());
      expect(report.before.state).toBe('RUNNING');
      expect(await treeOf(root)).toEqual(before);
      expect(commands).toEqual([]);
      expect(report.exitCode).toBe(20);
    } finally {
      await live.stop();
    }
  });

  it('UNKNOWN: a symlink where an orphan should be: nothing is removed or re-run', async () => {
    const target = join(root, 'precious.csv');
    await fs.writeFile(target, 'precious');
    await fs.symlink(target, stagingPathFor(layout, deadPids(1)[0] as number));
    await plantOrphans(layout, 1);
    const before = await treeOf(root);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.before.state).toBe('UNKNOWN');
    expect(await treeOf(root)).toEqual(before);
    expect(commands).toEqual([]);
    expect(report.exitCode).toBe(30);
  });

  it('a failed re-run is reported with its status, run once, and exits 14 (RERUN-FAILED), not 10 (“run now”)', async () => {
    const { ctx, commands } = fixHarness(layout, { rerun: async () => ({ exitStatus: 3, signal: null }) });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(commands).toHaveLength(1);
    expect(report.rerun?.result).toEqual({ exitStatus: 3, signal: null });
    expect(report.after.state).toBe('RERUN-FAILED');
    expect(report.after.action).toBe('investigate');
    expect(report.exitCode).toBe(14);
  });

  it('a re-run that cannot start is reported with why', async () => {
    const { ctx } = fixHarness(layout, {
      rerun: async () => ({ exitStatus: null, signal: null, error: 'spawn job ENOENT' }),
    });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.rerun?.result?.error).toBe('spawn job ENOENT');
    expect(report.exitCode).toBe(14);
  });
});

describe('fixRun: plan, check all, then act', () => {
  it('removes nothing at all when one path fails its guard, even the ones that passed', async () => {
    const orphans = await plantOrphans(layout, 3);
    const last = orphans[2] as string;
    const lastPid = Number(last.split('.').at(-2));
    // The diagnosis sees every writer dead; by the time the guards look, the
    // last file's PID answers as a live process that started long before it.
    const real = createProcessTable();
    let asked = 0;
    const processes: ProcessTable = {
      hostname: real.hostname,
      inspect: (pid) => {
        if (pid !== lastPid) return real.inspect(pid);
        asked++;
        return asked === 1 ? { exists: false } : { exists: true, startMs: 0 };
      },
    };
    const before = await treeOf(root);
    const { ctx, commands } = fixHarness(layout, { processes });
    const report = await fixRun(ctx, withRerun(), KEY, options());

    expect(report.refused).toEqual([{ path: last, reason: expect.stringContaining('its writer is alive') }]);
    expect(report.steps).toEqual([]);
    expect(await treeOf(root)).toEqual(before);
    expect(commands).toEqual([]);
    expect(report.exitCode).toBe(30);
    // State, action and code agree: a refusal is a case for a person.
    expect(report.after).toMatchObject({ state: 'UNKNOWN', action: 'investigate', exitCode: 30 });
    expect(report.after.anomalies).toContainEqual({
      path: last,
      reason: expect.stringContaining('its writer is alive'),
    });
    expect((await audit()).map((r) => [r.op, r.path])).toEqual([['refuse', last]]);
  });

  /**
   * Runs a fix where, right after the first deletion (the progress line is
   * written synchronously between steps), `meddle` does something to the
   * second orphan with synchronous calls, so it has happened before the
   * second file's re-check.
   */
  async function fixWithMeddling(meddle: (second: string) => void) {
    const [first, second] = (await plantOrphans(layout, 2)) as [string, string];
    let meddled = false;
    const h = fixHarness(layout, {
      progress: (line) => {
        if (!meddled && line.startsWith('deleted')) {
          meddled = true;
          meddle(second);
        }
      },
    });
    const report = await fixRun(h.ctx, withRerun(), KEY, options());
    expect(meddled).toBe(true);
    expect(await exists(first)).toBe(false);
    return { report, first, second, commands: h.commands };
  }

  it('leaves a file alone, and does not re-run, when it grew after the check', async () => {
    const { report, second, commands } = await fixWithMeddling((path) => appendFileSync(path, 'more rows\n'));
    expect(report.steps[1]).toMatchObject({
      path: second,
      result: 'left-alone',
      reason: expect.stringContaining('changed since it was checked'),
    });
    expect(readFileSync(second, 'utf8')).toBe('partial 1\nmore rows\n');
    expect(commands).toEqual([]);
    expect(report.rerun).toBeNull();
    expect(report.after.state).toBe('D');
    expect(report.exitCode).toBe(11);
    expect((await audit()).map((r) => [r.op, r.path, r.reason ?? null])).toEqual([
      ['intent', report.steps[0]?.path, null],
      ['delete', report.steps[0]?.path, null],
      ['intent', second, null],
      ['skip', second, expect.stringContaining('changed since it was checked')],
    ]);
  });

  it('leaves a file alone when it was replaced by another under the same name after the check', async () => {
    const { report, second, commands } = await fixWithMeddling((path) => {
      const stats = statSync(path);
      writeFileSync(`${path}.new`, 'partial 1\n');
      utimesSync(`${path}.new`, stats.atime, stats.mtime);
      renameSync(`${path}.new`, path);
    });
    expect(report.steps[1]).toMatchObject({
      path: second,
      result: 'left-alone',
      reason: 'it was replaced since it was checked',
    });
    expect(await exists(second)).toBe(true);
    expect(commands).toEqual([]);
  });

  it('counts a file someone else removed meanwhile as already gone, and carries on', async () => {
    const { report, second, commands } = await fixWithMeddling((path) => unlinkSync(path));
    expect(report.steps.map((s) => s.result)).toEqual(['deleted', 'already-gone']);
    expect(await exists(second)).toBe(false);
    expect(commands).toHaveLength(1);
    expect(report.exitCode).toBe(0);
  });

  it('stops removing, and does not re-run, once the lock is no longer ours', async () => {
    const lockPath = lockPathFor(layout.stagingDir, KEY);
    const foreign = JSON.stringify({ pid: process.pid, host: 'h', token: 'someone-else', since: '' });
    const { report, second, commands } = await fixWithMeddling(() => writeFileSync(lockPath, foreign));
    expect(report.steps[1]).toMatchObject({
      path: second,
      result: 'left-alone',
      reason: 'the fix lock was lost',
    });
    expect(await exists(second)).toBe(true);
    expect(commands).toEqual([]);
    // Release left the other holder's lock in place.
    expect(readFileSync(lockPath, 'utf8')).toBe(foreign);
  });

  it('fsyncs the staging directory after the removals', async () => {
    const orphans = await plantOrphans(layout, 2);
    const events: string[] = [];
    const recording: FileSystem = {
      ...syncRecorded(events),
      unlink: async (path) => {
        await fs.unlink(path);
        events.push(`unlink ${String(path)}`);
      },
    };
    const { ctx } = fixHarness(layout, { fs: recording });
    await fixRun(ctx, withRerun(), KEY, options());
    const removals = orphans.map((p) => `unlink ${p}`);
    expect(events.filter((e) => !e.includes('.crashdiag'))).toEqual([
      ...removals,
      `fsync ${layout.stagingDir}`,
    ]);
  });
});

describe('fixRun --dry-run', () => {
  it('plans every removal and the re-run, changes nothing and takes no lock', async () => {
    const orphans = await plantOrphans(layout, 2);
    const before = await treeOf(root, []);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options({ dryRun: true }));
    expect(report.dryRun).toBe(true);
    expect(report.steps).toEqual(
      orphans.map((path, i) => ({
        path,
        bytes: `partial ${i}\n`.length,
        pid: Number(path.split('.').at(-2)),
        result: 'planned',
      })),
    );
    expect(report.rerun).toEqual({ argv: ['job', '--date', KEY], result: null });
    expect(commands).toEqual([]);
    expect(await treeOf(root, [])).toEqual(before);
    expect(report.exitCode).toBe(11);
  });
});

describe('fixRun --dry-run --quarantine', () => {
  it('refuses a quarantine directory in the output directory as the real run would, creating nothing', async () => {
    await plantOrphans(layout, 1);
    const before = await treeOf(root, []);
    const { ctx } = fixHarness(layout);
    const error = await fixRun(
      ctx,
      withRerun(),
      KEY,
      options({ dryRun: true, quarantineDir: join(layout.outDir, 'quarantine') }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect(await treeOf(root, [])).toEqual(before);
  });

  it('accepts a quarantine directory elsewhere without creating it', async () => {
    await plantOrphans(layout, 1);
    const { ctx } = fixHarness(layout);
    const quarantine = join(root, 'quarantine');
    const report = await fixRun(ctx, withRerun(), KEY, options({ dryRun: true, quarantineDir: quarantine }));
    expect(report.plan.quarantineDir).toBe(quarantine);
    expect(await exists(quarantine)).toBe(false);
  });
});

describe('fixRun --quarantine', () => {
  it('moves orphans into quarantine with their bytes, never over a file already there', async () => {
    const [first, second] = (await plantOrphans(layout, 2)) as [string, string];
    const quarantine = join(root, 'quarantine');
    await fs.mkdir(quarantine);
    const clash = join(quarantine, basename(first));
    await fs.writeFile(clash, 'earlier evidence');
    const { ctx } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options({ quarantineDir: quarantine }));

    expect(await exists(first)).toBe(false);
    expect(await exists(second)).toBe(false);
    expect(await fs.readFile(clash, 'utf8')).toBe('earlier evidence');
    expect(report.steps.map((s) => [s.result, s.to])).toEqual([
      ['quarantined', `${clash}.1`],
      ['quarantined', join(quarantine, basename(second))],
    ]);
    expect(await fs.readFile(`${clash}.1`, 'utf8')).toBe('partial 0\n');
    expect(await fs.readFile(join(quarantine, basename(second)), 'utf8')).toBe('partial 1\n');
    expect((await audit()).filter((r) => r.op === 'quarantine').map((r) => [r.path, r.to])).toEqual([
      [first, `${clash}.1`],
      [second, join(quarantine, basename(second))],
    ]);
    expect(report.exitCode).toBe(0);
  });

  it.each([
    ['inside the output directory', (l: Layout) => join(l.outDir, 'quarantine')],
    ['the output directory itself', (l: Layout) => l.outDir],
    ['a parent of the output directory', (l: Layout) => l.root],
    ['the staging directory itself', (l: Layout) => l.stagingDir],
    [
      'not yet created, through a symlink into the output directory',
      (l: Layout) => {
        symlinkSync(l.outDir, join(l.root, 'door'));
        return join(l.root, 'door', 'deep', 'quarantine');
      },
    ],
  ])('refuses a quarantine directory %s, before anything moves or is created', async (_, dirOf) => {
    await plantOrphans(layout, 2);
    const quarantineDir = dirOf(layout);
    const before = await treeOf(root, []);
    const { ctx, commands } = fixHarness(layout);
    const error = await fixRun(ctx, withRerun(), KEY, options({ quarantineDir })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    const after = await treeOf(root, []);
    // crashdiag's own lock directory may appear in staging; nothing else may change.
    for (const rel of Object.keys(after)) if (rel.startsWith('_staging/.crashdiag')) delete after[rel];
    expect(after).toEqual(before);
    expect(commands).toEqual([]);
  });
});

describe('fixRun: one fixer at a time', () => {
  it('a second fixer waits for the first, then diagnoses afresh and finds nothing to do', async () => {
    const orphans = await plantOrphans(layout, 2);
    const { promise: rerunGate, resolve: finishRerun } = deferred();
    const { promise: rerunStarted, resolve: startedRerun } = deferred();
    const first = fixHarness(layout, {
      rerun: async () => {
        startedRerun();
        await rerunGate;
        await publish(layout);
        return { exitStatus: 0, signal: null };
      },
    });
    // The second fixer's first pause is its first wait for the lock: it signals, then pauses for real.
    const { promise: secondWaiting, resolve: waiting } = deferred();
    const second = fixHarness(layout, {
      sleep: (ms) => {
        waiting();
        return sleep(ms);
      },
    });
    const firstFix = fixRun(first.ctx, withRerun(), KEY, options());
    await rerunStarted;
    const secondFix = fixRun(second.ctx, withRerun(), KEY, options());
    await secondWaiting;
    finishRerun();
    const [a, b] = await Promise.all([firstFix, secondFix]);
    expect(a.before.state).toBe('D');
    expect(a.exitCode).toBe(0);
    expect(b.before.state).toBe('DONE');
    expect(b.steps).toEqual([]);
    expect(second.commands).toEqual([]);
    for (const path of orphans) expect(await exists(path)).toBe(false);
  });

  it('a second fixer that waits too long gives up with LockTimeoutError and changes nothing', async () => {
    await plantOrphans(layout, 1);
    const { promise: rerunGate, resolve: finishRerun } = deferred();
    const { promise: rerunStarted, resolve: startedRerun } = deferred();
    const first = fixHarness(layout, {
      rerun: async () => {
        startedRerun();
        await rerunGate;
        return { exitStatus: 0, signal: null };
      },
    });
    const firstFix = fixRun(first.ctx, withRerun(), KEY, options());
    await rerunStarted;
    // A dead orphan appears while the first fixer is re-running: the waiter must not touch it.
    const [late] = await plantOrphans(layout, 1);
    const second = fixHarness(layout);
    const error = await fixRun(second.ctx, withRerun(), KEY, options({ lockTimeoutMs: 300 })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(await exists(late as string)).toBe(true);
    expect(second.commands).toEqual([]);
    finishRerun();
    await firstFix;
  });
});

describe('fixRun: the re-run needs the lock too', () => {
  it('does not re-run once the lock is no longer ours', async () => {
    const lockPath = lockPathFor(layout.stagingDir, KEY);
    const foreign = JSON.stringify({ pid: process.pid, host: 'h', token: 'someone-else', since: '' });
    let listed = 0;
    // The lock is lost while the fixer diagnoses under it (another fixer judged it dead and took it).
    const losing: FileSystem = {
      ...fs,
      opendir: (async (path: string, opts?: Parameters<typeof fs.opendir>[1]) => {
        if (path === layout.stagingDir && ++listed === 1) writeFileSync(lockPath, foreign);
        return fs.opendir(path, opts);
      }) as FileSystem['opendir'],
    };
    const { ctx, commands } = fixHarness(layout, { fs: losing });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.before.state).toBe('A/B/C');
    expect(commands).toEqual([]);
    expect(report.rerun).toBeNull();
    expect(report.exitCode).toBe(10);
    expect(readFileSync(lockPath, 'utf8')).toBe(foreign);
    expect((await audit()).map((r) => [r.op, r.reason])).toEqual([
      ['skip', 'the fix lock was lost before the re-run'],
    ]);
  });
});

describe('fixRun: progress', () => {
  it('announces the re-run as a command that can be pasted: each argument quoted as needed', async () => {
    const { ctx, progress } = fixHarness(layout);
    await fixRun(ctx, withRerun({ rerun: ['job', '--date', '{date}', 'two words'] }), KEY, options());
    expect(progress).toContain(`re-running for ${KEY}: job --date ${KEY} 'two words'`);
  });
});

describe('fixRun: an audit log that cannot be written', () => {
  it('stops the fix before its first action, with a usage error', async () => {
    const orphans = await plantOrphans(layout, 2);
    const blocker = join(root, 'not-a-dir');
    await fs.writeFile(blocker, '');
    const before = await treeOf(root);
    const { ctx, commands } = fixHarness(layout);
    const error = await fixRun(
      ctx,
      withRerun(),
      KEY,
      options({ auditLog: join(blocker, 'audit.jsonl') }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('cannot be written');
    for (const path of orphans) expect(await exists(path)).toBe(true);
    expect(await treeOf(root)).toEqual(before);
    expect(commands).toEqual([]);
  });

  it('does not matter when there is nothing to do', async () => {
    await publish(layout);
    const { ctx } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options({ auditLog: '/dev/null/audit.jsonl' }));
    expect(report.exitCode).toBe(0);
  });
});

/**
 * A file system whose unlink of `path`, once done, lets `after` act (another
 * run, a writer) before the fixer takes its next step: deterministic, no timing.
 */
function afterUnlinkOf(path: string, after: () => Promise<void>): FileSystem {
  return {
    ...fs,
    unlink: async (target) => {
      await fs.unlink(target);
      if (target === path) await after();
    },
  };
}

describe('fixRun: the re-run is decided again right before it starts (issue 9, item 5)', () => {
  it('attack: another run publishes while the fix deletes its orphans: no re-run, the output unchanged byte for byte', async () => {
    // Two orphans, not three: three dead attempts are a crash loop, which is never re-run anyway.
    const orphans = await plantOrphans(layout, 2);
    const elsewhere = 'published by another run\n';
    const { ctx, commands } = fixHarness(layout, {
      fs: afterUnlinkOf(orphans[1] as string, () => publish(layout, KEY, elsewhere)),
    });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.before.state).toBe('D');
    expect(report.steps.map((s) => s.result)).toEqual(['deleted', 'deleted']);
    expect(commands).toEqual([]);
    expect(report.rerun).toBeNull();
    expect(report.rerunSkipped).toMatch(/^the run is DONE now: its output and marker were published meanwhile/);
    expect(readFileSync(finalPathFor(layout), 'utf8')).toBe(elsewhere);
    expect(report.after.state).toBe('DONE');
    expect(report.exitCode).toBe(0);
    expect((await outcomes()).map((r) => [r.op, r.reason ?? null])).toEqual([
      ['delete', null],
      ['delete', null],
      ['skip', report.rerunSkipped],
    ]);
  });

  it('attack: a writer starts while the fix deletes its orphans: no second copy beside it, exit 20', async () => {
    const orphans = await plantOrphans(layout, 2);
    const live = await startLiveProcess();
    try {
      const livePath = stagingPathFor(layout, live.pid);
      const { ctx, commands } = fixHarness(layout, {
        fs: afterUnlinkOf(orphans[1] as string, () => fs.writeFile(livePath, 'being written\n')),
      });
      const report = await fixRun(ctx, withRerun(), KEY, options());
      expect(report.before.state).toBe('D');
      expect(commands).toEqual([]);
      expect(report.rerun).toBeNull();
      expect(report.rerunSkipped).toMatch(/^the run is RUNNING now: a writer started meanwhile/);
      expect(readFileSync(livePath, 'utf8')).toBe('being written\n');
      expect(await exists(finalPathFor(layout))).toBe(false);
      expect(report.after.state).toBe('RUNNING');
      expect(report.exitCode).toBe(20);
    } finally {
      await live.stop();
    }
  });

  it('re-runs when the removals left what they should (D, orphans all gone: A/B/C)', async () => {
    await plantOrphans(layout, 2);
    const { ctx, commands, progress } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(commands).toHaveLength(1);
    expect(report.rerunSkipped).toBeNull();
    expect(progress.some((line) => line.startsWith('not re-running'))).toBe(false);
    expect(report.exitCode).toBe(0);
  });
});

describe('fixRun: permission to remove is checked before the first removal (issue 9, item 9)', () => {
  /** A shared 1777 staging directory: the first orphan is nobody's own, the second root's. */
  async function stickyStaging(): Promise<[string, string]> {
    await fs.chmod(layout.stagingDir, 0o1777);
    const [own, roots] = (await plantOrphans(layout, 2)) as [string, string];
    const { atime, mtime } = statSync(own);
    await fs.chown(own, NOBODY.uid, NOBODY.gid);
    await fs.utimes(own, atime, mtime);
    return [own, roots];
  }

  it('attack: another user’s orphan in a sticky staging directory: nothing removed, the refusal names it, exit 30', async () => {
    const [own, roots] = await stickyStaging();
    const before = await treeOf(root);
    const { ctx, commands } = fixHarness(layout, { identity: NOBODY });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.refused).toEqual([
      { path: roots, reason: expect.stringMatching(/^permission denied: its directory is sticky \(mode 1777\) and uid 65534 owns neither the file \(owner uid 0\)/) },
    ]);
    expect(report.steps).toEqual([]);
    expect(await treeOf(root)).toEqual(before);
    expect(await exists(own)).toBe(true);
    expect(commands).toEqual([]);
    expect(report.exitCode).toBe(30);
  });

  it('the same directory, every orphan the acting user’s own: removed', async () => {
    const [own, roots] = await stickyStaging();
    await fs.chown(roots, NOBODY.uid, NOBODY.gid);
    const { ctx } = fixHarness(layout, { identity: NOBODY });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.refused).toEqual([]);
    expect(await exists(own)).toBe(false);
    expect(await exists(roots)).toBe(false);
  });

  it('a quarantine move needs the file to be readable: refused up front, nothing moved', async () => {
    const [own] = await stickyStaging();
    const quarantine = join(root, 'quarantine');
    await fs.mkdir(quarantine, { mode: 0o777 });
    await fs.chmod(quarantine, 0o777);
    await fs.chmod(own, 0o200);
    const before = await treeOf(root);
    const { ctx } = fixHarness(layout, { identity: NOBODY });
    const report = await fixRun(ctx, withRerun(), KEY, options({ quarantineDir: quarantine }));
    expect(report.refused.map((r) => r.path)).toContain(own);
    expect(report.refused.find((r) => r.path === own)?.reason).toMatch(/may not read it/);
    expect(await treeOf(root)).toEqual(before);
  });
});

/** The real fs, but unlink fails with `code` for the nth path it is asked to remove from staging (1-based). */
function unlinkFailsOn(n: number, code: string, events: string[] = []): FileSystem {
  let seen = 0;
  return {
    ...syncRecorded(events),
    unlink: async (path) => {
      if (String(path).startsWith(`${layout.stagingDir}/`) && !String(path).includes('.crashdiag') && ++seen === n) {
        throw Object.assign(new Error(`${code}: operation not permitted, unlink '${String(path)}'`), { code });
      }
      await fs.unlink(path);
      events.push(`unlink ${String(path)}`);
    },
  };
}

/** The real fs, recording in `events` each fsync of the staging directory, once done. */
function syncRecorded(events: string[]): FileSystem {
  return hookSync(fs, layout.stagingDir, async (_nth, sync) => {
    await sync();
    events.push(`fsync ${layout.stagingDir}`);
  });
}

/** The real disk, except that the audit log's `n`th append fails with ENOSPC (a disk filling up midway). */
function auditFullOn(n: number): FileSystem {
  let appends = 0;
  const log = defaultAuditLog(layout.stagingDir);
  return {
    ...fs,
    open: (async (path: string, flags?: string | number, mode?: number) => {
      const handle = await fs.open(path, flags, mode);
      if (path !== log) return handle;
      const write = handle.write.bind(handle) as (text: string) => Promise<unknown>;
      (handle as { write: unknown }).write = async (text: string) => {
        if (++appends === n) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        return write(text);
      };
      return handle;
    }) as FileSystem['open'],
  };
}

describe('fixRun: the audit log fills up midway (issue 9, item 7)', () => {
  it('attack: the outcome cannot be written after an unlink: the removal is reported as done, the fix stops, exit 30, no stack', async () => {
    const [first, second] = (await plantOrphans(layout, 2)) as [string, string];
    // Appends: 1 intent(first), 2 delete(first): the second fails.
    const { ctx, commands } = fixHarness(layout, { fs: auditFullOn(2) });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.steps.map((s) => [s.path, s.result])).toEqual([
      [first, 'deleted'],
      [second, 'not-attempted'],
    ]);
    expect(report.stopped).toMatch(new RegExp(`^${first.replaceAll('.', '\\.')} is deleted, but its outcome could not be recorded \\(the audit log cannot be written: ENOSPC; its intent is on record\\)`));
    expect(await exists(first)).toBe(false);
    expect(await exists(second)).toBe(true);
    // Never a removal without a line: the intent stands for it.
    expect((await audit()).map((r) => [r.op, r.path])).toEqual([['intent', first]]);
    expect(commands).toEqual([]);
    expect(report.exitCode).toBe(30);
  });

  it('attack: the intent cannot be written: that file is not removed, nor any after it, exit 30', async () => {
    const orphans = await plantOrphans(layout, 2);
    const before = await treeOf(root);
    const { ctx, commands } = fixHarness(layout, { fs: auditFullOn(1) });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.steps.map((s) => s.result)).toEqual(['not-attempted', 'not-attempted']);
    expect(report.stopped).toMatch(/^recording the intent to remove .* failed \(the audit log cannot be written: ENOSPC\)/);
    for (const path of orphans) expect(await exists(path)).toBe(true);
    expect(await treeOf(root)).toEqual(before);
    expect(commands).toEqual([]);
    expect(report.exitCode).toBe(30);
  });
});

describe('fixRun: a removal the disk refuses midway (issue 9, item 9)', () => {
  it('attack: EPERM on the second of three: stops, records both, fsyncs, reports done and not done, no re-run', async () => {
    const [first, second, third] = (await plantOrphans(layout, 3)) as [string, string, string];
    const events: string[] = [];
    const { ctx, commands, progress } = fixHarness(layout, { fs: unlinkFailsOn(2, 'EPERM', events) });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.steps.map((s) => [s.path, s.result])).toEqual([
      [first, 'deleted'],
      [second, 'failed'],
      [third, 'not-attempted'],
    ]);
    expect(report.steps[1]?.reason).toBe('EPERM');
    expect(report.stopped).toBe(
      `removing ${second} failed (EPERM); 1 of 3 removed before it, the rest not attempted, nothing was re-run`,
    );
    expect(progress.filter((l) => l.startsWith('stopped:'))).toEqual([`stopped: ${report.stopped}; see the audit log`]);
    expect(await exists(first)).toBe(false);
    expect(await exists(second)).toBe(true);
    expect(await exists(third)).toBe(true);
    expect(events.filter((e) => !e.includes('.crashdiag'))).toEqual([`unlink ${first}`, `fsync ${layout.stagingDir}`]);
    expect(commands).toEqual([]);
    expect(report.rerun).toBeNull();
    expect((await outcomes()).map((r) => [r.op, r.path, r.reason ?? null])).toEqual([
      ['delete', first, null],
      ['fail', second, 'EPERM'],
    ]);
    expect(report.after).toMatchObject({ state: 'UNKNOWN', action: 'investigate', exitCode: 30 });
    expect(report.exitCode).toBe(30);
  });

  it.each(['EACCES', 'EBUSY', 'EROFS', 'EIO'])('%s on the first: nothing removed, stopped, exit 30', async (code) => {
    const orphans = await plantOrphans(layout, 2);
    const { ctx } = fixHarness(layout, { fs: unlinkFailsOn(1, code) });
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.steps.map((s) => s.result)).toEqual(['failed', 'not-attempted']);
    for (const path of orphans) expect(await exists(path)).toBe(true);
    expect(report.exitCode).toBe(30);
  });

  it('a quarantine move whose original cannot be removed says where the copy is', async () => {
    const [first] = (await plantOrphans(layout, 1)) as [string];
    const quarantine = join(root, 'quarantine');
    const { ctx } = fixHarness(layout, { fs: unlinkFailsOn(1, 'EPERM') });
    const report = await fixRun(ctx, withRerun(), KEY, options({ quarantineDir: quarantine }));
    const to = join(quarantine, basename(first));
    expect(report.steps).toEqual([
      {
        path: first,
        bytes: 10,
        pid: Number(first.split('.').at(-2)),
        result: 'failed',
        to,
        reason: `EPERM; a copy is at ${to}, the original is still in staging`,
      },
    ]);
    expect(await exists(first)).toBe(true);
    expect(await fs.readFile(to, 'utf8')).toBe('partial 0\n');
    expect((await outcomes()).map((r) => [r.op, r.to])).toEqual([['fail', to]]);
    expect(report.exitCode).toBe(30);
  });
});

describe('fixRun --quarantine across file systems (issue 9, item 11)', () => {
  /** The real fs, but a link(2) into quarantine fails as it does across mounts (the lock's own links work). */
  const acrossDevices: FileSystem = {
    ...fs,
    link: async (from, to) => {
      if (!String(to).includes('quarantine')) return fs.link(from, to);
      throw Object.assign(new Error(`EXDEV: cross-device link not permitted, link '${String(from)}' -> '${String(to)}'`), {
        code: 'EXDEV',
      });
    },
  };

  it('attack: the copy keeps the orphan’s mtime, and the record holds its original mtime and size', async () => {
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    // A whole second: exact in a double, so the copied time must match to the nanosecond.
    const mtime = Math.floor(Date.now() / 1000) - 7200;
    await fs.utimes(orphan, mtime - 60, mtime);
    const quarantine = join(root, 'quarantine');
    const { ctx } = fixHarness(layout, { fs: acrossDevices });
    const report = await fixRun(ctx, withRerun(), KEY, options({ quarantineDir: quarantine }));
    const to = join(quarantine, basename(orphan));
    expect(report.steps.map((s) => [s.result, s.to])).toEqual([['quarantined', to]]);
    expect(await exists(orphan)).toBe(false);
    const copied = await fs.stat(to, { bigint: true });
    expect(copied.mtimeNs).toBe(BigInt(mtime) * 1_000_000_000n);
    expect(copied.atimeNs).toBe(BigInt(mtime - 60) * 1_000_000_000n);
    expect(await fs.readFile(to, 'utf8')).toBe('partial 0\n');
    const [record] = (await audit()).filter((r) => r.op === 'quarantine');
    expect(record).toMatchObject({ path: orphan, to, bytes: 10, mtime: new Date(mtime * 1000).toISOString() });
  });

  it('a deletion’s record holds the file’s mtime too', async () => {
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const mtimeMs = statSync(orphan).mtimeMs;
    const { ctx } = fixHarness(layout);
    await fixRun(ctx, withRerun(), KEY, options());
    const [record] = (await audit()).filter((r) => r.op === 'delete');
    expect(record).toMatchObject({ path: orphan, bytes: 10, mtime: new Date(mtimeMs).toISOString() });
  });
});

describe('fixRun --quarantine that is not a directory (issue 9, item 11)', () => {
  it.each([
    ['a regular file', (r: string) => join(r, 'evidence.txt')],
    ['a path under a regular file', (r: string) => join(r, 'evidence.txt', 'sub')],
  ])('attack: %s: a usage error before anything moves, the disk unchanged', async (_, pathOf) => {
    await plantOrphans(layout, 2);
    await fs.writeFile(join(root, 'evidence.txt'), 'not a directory');
    const before = await treeOf(root, []);
    const { ctx, commands } = fixHarness(layout);
    const error = await fixRun(ctx, withRerun(), KEY, options({ quarantineDir: pathOf(root) })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/(is|lies under) a file, not a directory; nothing was moved\.$/);
    const after = await treeOf(root, []);
    for (const rel of Object.keys(after)) if (rel.startsWith('_staging/.crashdiag')) delete after[rel];
    expect(after).toEqual(before);
    expect(commands).toEqual([]);
  });

  it('a quarantine directory the acting user may not write to: a usage error before anything moves', async () => {
    await fs.chmod(layout.stagingDir, 0o1777);
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    await fs.chown(orphan, 65534, 65534);
    const quarantine = join(root, 'quarantine');
    await fs.mkdir(quarantine, { mode: 0o755 });
    const before = await treeOf(root, []);
    const { ctx } = fixHarness(layout, { identity: NOBODY });
    const error = await fixRun(ctx, withRerun(), KEY, options({ quarantineDir: quarantine })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('uid 65534 may not add files to');
    const after = await treeOf(root, []);
    for (const rel of Object.keys(after)) if (rel.startsWith('_staging/.crashdiag')) delete after[rel];
    expect(after).toEqual(before);
  });
});
