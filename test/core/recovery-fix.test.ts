// --fix and the recovery loop, on real directories with a real audit log: a
// failed re-run, a crash loop that is cleaned but never re-run, --retry, a
// missing input, and the backoff. The re-run is a recorded fake (the runner is
// injected); the real job and a real OOM kill are in test/examples.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultAuditLog, readAudit } from '../../src/core/audit.js';
import { type FixOptions, fixRun } from '../../src/core/fix.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { deadPid } from '../support/dead-pids.js';
import { treeOf } from '../support/file-tree.js';
import { fixHarness, fixOptions, settingsWithRerun } from '../support/fix-harness.js';
import {
  HOUR_MS,
  KEY,
  plantOrphans,
  publish,
  stagingPathFor,
  writeAged,
} from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';

let layout: Layout;

useTempLayout('crashdiag-recovery-', (made) => {
  layout = made;
});

const options = (overrides: Partial<FixOptions> = {}): FixOptions => fixOptions(layout, overrides);
const withRerun = (overrides: Partial<PipelineSettings> = {}): PipelineSettings => settingsWithRerun(layout, overrides);

/** A re-run that dies the way an OOM-killed job does: SIGKILL, its half-written staging file left behind. */
async function dyingRerun() {
  const pid = deadPid();
  await fs.writeFile(stagingPathFor(layout, pid), 'half a fi');
  return { exitStatus: null, signal: 'SIGKILL', pid };
}

describe('a crash loop', () => {
  it('three dead writers of one key: cleaned (and recorded), never re-run, exit 15', async () => {
    const orphans = await plantOrphans(layout, 3);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options());

    expect(report.before.state).toBe('CRASH-LOOP');
    expect(report.before.action).toBe('fix-root-cause');
    expect(report.steps.map((s) => [s.path, s.result])).toEqual(orphans.map((p) => [p, 'deleted']));
    expect(commands).toEqual([]);
    expect(report.rerun).toBeNull();
    expect(report.plan.rerun).toBeNull();
    expect(report.exitCode).toBe(15);
    expect(report.before.summary).toMatch(/failed 3 times without publishing/);
    for (const orphan of orphans) expect(report.before.summary).toContain(`PID ${orphan.split('.').at(-2)}`);

    // Cleaning did not make it forget: the removals are in the log, and still count.
    expect(report.after.state).toBe('CRASH-LOOP');
    const again = await fixRun(ctx, withRerun(), KEY, options());
    expect(again.before.state).toBe('CRASH-LOOP');
    expect(again.before.attempts?.count).toBe(3);
    expect(commands).toEqual([]);
  });

  it('three --fix rounds whose re-runs are OOM-killed: 14, 14, then 15 and no third re-run', async () => {
    await plantOrphans(layout, 1);
    const { ctx, commands } = fixHarness(layout, { rerun: dyingRerun });
    const codes: number[] = [];
    for (let round = 0; round < 4; round++) codes.push((await fixRun(ctx, withRerun(), KEY, options())).exitCode);
    expect(codes).toEqual([14, 14, 15, 15]);
    expect(commands).toHaveLength(2);
    const ops = (await readAudit(fs, defaultAuditLog(layout.stagingDir))).map((r) => r.op);
    expect(ops.filter((op) => op === 'rerun')).toHaveLength(2);
    // The last round still cleaned the second re-run's orphan.
    expect((await fs.readdir(layout.stagingDir)).filter((n) => n !== '.crashdiag')).toEqual([]);
  });

  it('--retry declares the cause fixed: a reset is recorded, and the re-run happens', async () => {
    await plantOrphans(layout, 3);
    const { ctx, commands } = fixHarness(layout);
    expect((await fixRun(ctx, withRerun(), KEY, options())).exitCode).toBe(15);
    expect(commands).toEqual([]);

    const retried = await fixRun(ctx, withRerun(), KEY, options({ retry: true }));
    expect(retried.before.state).toBe('A/B/C');
    expect(commands).toHaveLength(1);
    expect(retried.exitCode).toBe(0);
    // The outcomes, without the intents written ahead of each removal.
    const records = (await readAudit(fs, defaultAuditLog(layout.stagingDir))).filter((r) => r.op !== 'intent');
    expect(records.map((r) => r.op)).toEqual(['delete', 'delete', 'delete', 'reset', 'rerun']);
    expect(records[3]).toMatchObject({ op: 'reset', run: KEY, stagingDir: layout.stagingDir });
  });

  it('after --retry, another maxAttempts: a re-run that dies again is attempt 1 of 3, not 4', async () => {
    await plantOrphans(layout, 3);
    const { ctx, commands } = fixHarness(layout, { rerun: dyingRerun });
    await fixRun(ctx, withRerun(), KEY, options());
    const retried = await fixRun(ctx, withRerun(), KEY, options({ retry: true }));
    expect(commands).toHaveLength(1);
    expect(retried.exitCode).toBe(14);
    expect(retried.after.attempts?.count).toBe(1);
    const next = await fixRun(ctx, withRerun(), KEY, options());
    expect(next.exitCode).toBe(14);
    expect(commands).toHaveLength(2);
  });

  it('--max-attempts 0 turns it off: the fourth dead writer is still re-run', async () => {
    await plantOrphans(layout, 4);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun({ maxAttempts: 0 }), KEY, options());
    expect(report.before.state).toBe('D');
    expect(commands).toHaveLength(1);
    expect(report.exitCode).toBe(0);
  });

  it('a dry run of a crash loop plans the clean-up and no re-run, and changes nothing', async () => {
    await plantOrphans(layout, 3);
    const before = await treeOf(layout.root);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options({ dryRun: true }));
    expect(report.plan.removals).toHaveLength(3);
    expect(report.plan.rerun).toBeNull();
    expect(report.exitCode).toBe(15);
    expect(commands).toEqual([]);
    expect(await treeOf(layout.root)).toEqual(before);
  });
});

describe('BLOCKED: an input the re-run reads is missing, unreadable or empty', () => {
  const inputIn = (name: string) => join(layout.root, 'in', name);

  it.each([
    ['missing', async () => {}, /does not exist/],
    ['empty', async (p: string) => fs.writeFile(p, ''), /is empty/],
    ['a directory', async (p: string) => fs.mkdir(p), /is a directory/],
  ])('%s: the orphans go (recorded), nothing is re-run, exit 16', async (_, make, detail) => {
    await fs.mkdir(join(layout.root, 'in'));
    await make(inputIn(`refunds_${KEY}.csv`));
    const orphans = await plantOrphans(layout, 1);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun({ inputs: [inputIn('refunds_{date}.csv')] }), KEY, options());
    expect(report.before.state).toBe('BLOCKED');
    expect(report.before.action).toBe('fix-upstream');
    expect(report.before.summary).toContain(inputIn(`refunds_${KEY}.csv`));
    expect(report.before.summary).toMatch(detail);
    expect(report.steps.map((s) => s.path)).toEqual(orphans);
    expect(commands).toEqual([]);
    expect(report.exitCode).toBe(16);
  });

  it('nothing to clean and the input missing: the disk is left exactly as it was', async () => {
    const before = await treeOf(layout.root);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun({ inputs: [inputIn('refunds_{date}.csv')] }), KEY, options());
    expect(report.exitCode).toBe(16);
    expect(commands).toEqual([]);
    expect(await treeOf(layout.root)).toEqual(before);
  });

  it('the input there, with the run key in its name: re-run as usual', async () => {
    await fs.mkdir(join(layout.root, 'in'));
    await fs.writeFile(inputIn(`refunds_${KEY}.csv`), 'refund_id\n1\n');
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun({ inputs: [inputIn('refunds_{date}.csv')] }), KEY, options());
    expect(commands).toHaveLength(1);
    expect(report.exitCode).toBe(0);
  });
});

describe('--retry-backoff', () => {
  it('refuses to re-run early, changes nothing, reports retryAfterSeconds and exits 21', async () => {
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const writtenMs = (await fs.stat(orphan)).mtimeMs;
    const before = await treeOf(layout.root);
    const { ctx, commands } = fixHarness(layout, { wallClock: () => writtenMs + 4 * 60_000 });
    const report = await fixRun(ctx, withRerun({ retryBackoffMs: 10 * 60_000 }), KEY, options());
    expect(report.exitCode).toBe(21);
    expect(report.before.action).toBe('wait');
    expect(report.before.retryAfterSeconds).toBe(6 * 60);
    expect(report.steps).toEqual([]);
    expect(commands).toEqual([]);
    expect(await treeOf(layout.root)).toEqual(before);
  });

  it('once DURATION has passed since the first failure, cleans and re-runs', async () => {
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const writtenMs = (await fs.stat(orphan)).mtimeMs;
    const { ctx, commands } = fixHarness(layout, { wallClock: () => writtenMs + 11 * 60_000 });
    const report = await fixRun(ctx, withRerun({ retryBackoffMs: 10 * 60_000 }), KEY, options());
    expect(commands).toHaveLength(1);
    expect(report.exitCode).toBe(0);
  });

  it('after the second failure, waits 5x DURATION', async () => {
    const [a, b] = (await plantOrphans(layout, 2)) as [string, string];
    const t = Date.now() - HOUR_MS;
    await writeAged(a, 'first', HOUR_MS + 60 * 60_000);
    await writeAged(b, 'second', HOUR_MS);
    const { ctx, commands } = fixHarness(layout, { wallClock: () => t + 30 * 60_000 });
    const report = await fixRun(ctx, withRerun({ retryBackoffMs: 10 * 60_000 }), KEY, options());
    expect(report.exitCode).toBe(21);
    expect(report.before.retryAfterSeconds).toBeGreaterThanOrEqual(20 * 60 - 1);
    expect(report.before.retryAfterSeconds).toBeLessThanOrEqual(20 * 60 + 1);
    expect(commands).toEqual([]);
  });

  it('is off by default: an engineer who just fixed the cause is not made to wait', async () => {
    await plantOrphans(layout, 1);
    const { ctx, commands } = fixHarness(layout);
    expect((await fixRun(ctx, withRerun(), KEY, options())).exitCode).toBe(0);
    expect(commands).toHaveLength(1);
  });
});

describe('a published run is never a crash loop', () => {
  it('published with three dead orphans: D-race, cleaned, not re-run, exit 0 after', async () => {
    await plantOrphans(layout, 3);
    await publish(layout);
    const { ctx, commands } = fixHarness(layout);
    const report = await fixRun(ctx, withRerun(), KEY, options());
    expect(report.before.state).toBe('D-race');
    expect(commands).toEqual([]);
    expect(report.exitCode).toBe(0);
  });
});
