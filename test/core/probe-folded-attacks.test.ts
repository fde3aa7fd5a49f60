// Read-only diagnose judges each staging file as it is listed and keeps a
// report for the first 1,000 by path; --fix probes every file. Attacked on
// a real directory: what decides the state sits past the first 1,000.
import { promises as fs, readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';
import { defaultAuditLog } from '../../src/core/audit.js';
import { classifyFolded, classifyRun } from '../../src/core/classify.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { probeRun, probeRunFolded } from '../../src/core/probe.js';
import { gatherRecovery } from '../../src/core/recovery-probe.js';
import { KEY, settingsFor, stagingPathFor, writeAged } from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';

let layout: Layout;
useTempLayout('crashdiag-probe-folded-', (made) => {
  layout = made;
});

const LISTED = 1000;
// Above this machine's pid_max (32,768 by default): no process has them; as
// text they sort before a PID that does not start with "10". (A PID past
// 4,194,304, the kernel's limit, is no PID at all to the name matcher.)
const DEAD_BASE = 1_000_000;
const own = String(process.pid);
const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
const skip = pidMax > DEAD_BASE;
// Whether this process's staging name sorts after the dead writers' (a PID of 10000-10011 sorts among them).
const ownSortsLast = Array.from({ length: 1001 }, (_, i) => `${DEAD_BASE + i}.csv`).every((dead) => dead < `${own}.csv`);

async function bothDiagnoses(maxAttempts?: number) {
  const settings = settingsFor(layout, maxAttempts === undefined ? {} : { maxAttempts });
  const nowMs = Date.now();
  const ctx = { fs, processes: createProcessTable(), nowMs };
  const auditLog = defaultAuditLog(layout.stagingDir);
  const recovery = await gatherRecovery(fs, settings, KEY, { auditLog, retry: false, nowMs });
  const { evidence, fold } = await probeRunFolded(ctx, settings, KEY, LISTED);
  const readOnly = classifyFolded({ ...evidence, recovery }, fold);
  const full = classifyRun({ ...(await probeRun(ctx, settings, KEY)), recovery });
  return { readOnly, full };
}

async function deadOrphans(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await writeAged(stagingPathFor(layout, DEAD_BASE + i), `partial ${i}\n`);
}

function expectSameVerdict({ readOnly, full }: Awaited<ReturnType<typeof bothDiagnoses>>): void {
  const { orphans, orphanTotals, ...rest } = readOnly;
  const { orphans: allOrphans, orphanTotals: allTotals, ...fullRest } = full;
  expect(allTotals.count).toBeGreaterThan(LISTED);
  expect(rest).toEqual(fullRest);
  expect(orphans).toEqual(allOrphans.slice(0, LISTED));
  expect(orphanTotals).toEqual({ ...allTotals, listed: Math.min(LISTED, allTotals.count) });
}

describe.skipIf(skip)('attack: what decides the state sits past the first 1,000 files by path', () => {
  // This process is the live writer: its name sorts after the dead ones'.
  it.runIf(ownSortsLast)('a live writer (this process) after 1,001 dead ones: RUNNING in both, its PID named', async () => {
    await deadOrphans(LISTED + 1);
    await fs.writeFile(stagingPathFor(layout, process.pid), 'being written\n');
    const both = await bothDiagnoses();
    expect(both.readOnly.state).toBe('RUNNING');
    expect(both.readOnly.summary).toContain(`PID ${own}`);
    expect(both.readOnly.orphans.map((o) => o.writer)).not.toContain('alive');
    expectSameVerdict(both);
  });

  it('a symlink after 1,001 dead ones: UNKNOWN in both', async () => {
    await deadOrphans(LISTED + 1);
    await fs.symlink('/etc/passwd', stagingPathFor(layout, 99_999));
    const both = await bothDiagnoses();
    expect(both.readOnly.state).toBe('UNKNOWN');
    expectSameVerdict(both);
  });

  it('a name that is not UTF-8 after 1,001 dead ones: UNKNOWN in both', async () => {
    await deadOrphans(LISTED + 1);
    const name = Buffer.concat([Buffer.from(`${KEY}.`), Buffer.from([0xff, 0xfe]), Buffer.from('.csv')]);
    await fs.writeFile(Buffer.concat([Buffer.from(`${layout.stagingDir}/`), name]), 'x');
    const both = await bothDiagnoses();
    expect(both.readOnly.state).toBe('UNKNOWN');
    expectSameVerdict(both);
  });

  it('a crash loop of 1,200 attempts with --max-attempts 3: the same state, attempts and summary', async () => {
    await deadOrphans(1200);
    const both = await bothDiagnoses(3);
    expect(both.readOnly.state).toBe('CRASH-LOOP');
    expect(both.readOnly.attempts?.count).toBe(1200);
    expectSameVerdict(both);
  });
});
