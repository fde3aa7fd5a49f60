// Why it died, on real directories with injected witnesses: a kernel log (as
// a reader returns it), statfs figures, the audit log and the inputs.
import { lstatSync, promises as fs, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendAudit, defaultAuditLog } from '../../src/core/audit.js';
import { type CauseWitnesses, findCauses, type SpaceFacts } from '../../src/core/causes.js';
import { classifyFolded, classifyRun } from '../../src/core/classify.js';
import type { KernelLog } from '../../src/core/kernel-log.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { probeRun, probeRunFolded } from '../../src/core/probe.js';
import { gatherRecovery } from '../../src/core/recovery-probe.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { compileStagingTemplate } from '../../src/core/template.js';
import { deadPid, deadPids } from '../support/dead-pids.js';
import { finalPathFor, KEY, publish, settingsFor, stagingPathFor, writeAged } from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';

let layout: Layout;
useTempLayout('crashdiag-causes-', (made) => {
  layout = made;
});

const HOUR = 3_600_000;
const PLENTY: SpaceFacts = { bavail: 900_000, blocks: 1_000_000, bsize: 4096 };

async function diagnosis(settings: PipelineSettings = settingsFor(layout)) {
  const nowMs = Date.now();
  const evidence = await probeRun({ fs, processes: createProcessTable(), nowMs }, settings, KEY);
  const recovery = await gatherRecovery(fs, settings, KEY, {
    auditLog: defaultAuditLog(layout.stagingDir),
    retry: false,
    nowMs,
  });
  return classifyRun({ ...evidence, recovery });
}

function witnesses(log: KernelLog, space: SpaceFacts = PLENTY): CauseWitnesses {
  return { fs, readKernelLog: async () => log, statfs: async () => space };
}

/** A kernel-log line for an OOM kill at `atMs`, the way journalctl -o short-unix prints it. */
const oomLine = (pid: number, atMs: number) =>
  `${(atMs / 1000).toFixed(6)} batch-01 kernel: Memory cgroup out of memory: Killed process ${pid} (node) total-vm:1116448kB, anon-rss:97208kB, file-rss:39184kB, shmem-rss:0kB, UID:0 pgtables:732kB oom_score_adj:0`;

describe('findCauses', () => {
  it('oom-kill: the kernel killed the orphan’s writer after the file was created', async () => {
    const pid = deadPid();
    await writeAged(stagingPathFor(layout, pid), 'partial');
    const created = (await fs.lstat(stagingPathFor(layout, pid))).birthtimeMs || Date.now();
    const log: KernelLog = { source: 'journalctl -k', lines: [oomLine(pid, created + 1000)], bootTimeMs: null };
    const found = await findCauses(witnesses(log), settingsFor(layout), await diagnosis());
    expect(found.causes).toContainEqual({
      kind: 'oom-kill',
      pid,
      at: expect.stringMatching(/Z$/),
      detail: expect.stringContaining('anon-rss 95 MiB'),
    });
  });

  it('does not blame an OOM kill of the same PID from before the orphan existed: a reused PID', async () => {
    const pid = deadPid();
    await fs.writeFile(stagingPathFor(layout, pid), 'partial');
    const log: KernelLog = { source: 'dmesg', lines: [oomLine(pid, Date.now() - 3_600_000)], bootTimeMs: null };
    const found = await findCauses(witnesses(log), settingsFor(layout), await diagnosis());
    expect(found.causes.filter((c) => c.kind === 'oom-kill')).toEqual([]);
  });

  it('an unreadable kernel log is a note that says how to allow it, never an error', async () => {
    await writeAged(stagingPathFor(layout, deadPid()), 'partial');
    const found = await findCauses(
      witnesses({ unavailable: 'the kernel log cannot be read (dmesg: Operation not permitted): run crashdiag as root' }),
      settingsFor(layout),
      await diagnosis(),
    );
    expect(found.notes).toEqual([expect.stringContaining('run crashdiag as root')]);
  });

  it('disk-full: under 5 % free is said with figures', async () => {
    await writeAged(stagingPathFor(layout, deadPid()), 'partial');
    const found = await findCauses(
      witnesses({ unavailable: 'n/a' }, { bavail: 20_000, blocks: 1_000_000, bsize: 4096 }),
      settingsFor(layout),
      await diagnosis(),
    );
    const disk = found.causes.filter((c) => c.kind === 'disk-full');
    expect(disk.map((c) => c.detail)).toEqual([
      expect.stringMatching(new RegExp(`^${layout.stagingDir} has 78.1 MiB free \\(2.0 % of 3906.3 MiB\\)`)),
      expect.stringMatching(new RegExp(`^${layout.outDir} has 78.1 MiB free`)),
    ]);
  });

  it('disk-full: less free space than the pipeline’s largest output', async () => {
    await publish(layout, '2026-04-23', 'x'.repeat(50_000));
    await writeAged(stagingPathFor(layout, deadPid()), 'partial');
    const found = await findCauses(
      witnesses({ unavailable: 'n/a' }, { bavail: 10, blocks: 100, bsize: 4096 }),
      settingsFor(layout),
      await diagnosis(),
    );
    expect(found.causes.find((c) => c.kind === 'disk-full')?.detail).toContain('less than this pipeline\'s largest output');
  });

  it('partial-write: how far the orphan got, by size, against the last published output', async () => {
    await publish(layout, '2026-04-23', 'x'.repeat(1000));
    const pid = deadPid();
    await writeAged(stagingPathFor(layout, pid), 'y'.repeat(230));
    const found = await findCauses(witnesses({ unavailable: 'n/a' }), settingsFor(layout), await diagnosis());
    expect(found.causes.find((c) => c.kind === 'partial-write')).toMatchObject({
      pid,
      detail: expect.stringContaining('got about 23 % through, by size'),
    });
  });

  describe.each([
    ['synchronous lstat (the bin)', { ...fs, lstatSync }],
    ['promises only', fs],
  ])('the outputs a partial write and free space are measured against, %s', (_path, files) => {
    it('takes the newest regular output and the largest one; a symlink or a directory named like an output is no witness', async () => {
      const day = 86_400_000;
      await publish(layout, '2026-04-20', 'x'.repeat(3 * 1024 * 1024));
      await publish(layout, '2026-04-22', 'x'.repeat(1000));
      await fs.utimes(finalPathFor(layout, '2026-04-20'), new Date(Date.now() - 2 * day), new Date(Date.now() - 2 * day));
      await fs.utimes(finalPathFor(layout, '2026-04-22'), new Date(Date.now() - day), new Date(Date.now() - day));
      // Newer than both, and would be the largest if followed: never counted.
      const big = join(layout.root, 'elsewhere.bin');
      await fs.writeFile(big, 'z'.repeat(9 * 1024 * 1024));
      await fs.symlink(big, finalPathFor(layout, '2026-04-23'));
      await fs.mkdir(finalPathFor(layout, '2026-04-21'));
      await writeAged(stagingPathFor(layout, deadPid()), 'y'.repeat(250));
      const found = await findCauses(
        { ...witnesses({ unavailable: 'n/a' }, { bavail: 2, blocks: 100, bsize: 1000 }), fs: files },
        settingsFor(layout),
        await diagnosis(),
      );
      expect(found.causes.find((c) => c.kind === 'partial-write')?.detail).toContain(
        `got about 25 % through, by size (the last published output, ${basename(finalPathFor(layout, '2026-04-22'))}, has 1000)`,
      );
      expect(found.causes.find((c) => c.kind === 'disk-full')?.detail).toContain('less than this pipeline\'s largest output (3.0 MiB)');
    });

    it('an output directory that cannot be listed is no witness, and no error', async () => {
      await writeAged(stagingPathFor(layout, deadPid()), 'y'.repeat(250));
      const settings = settingsFor(layout);
      const evidence = await diagnosis(settings);
      const found = await findCauses(
        { ...witnesses({ unavailable: 'n/a' }), fs: files },
        { ...settings, outDir: join(layout.root, 'no-such-dir') },
        evidence,
      );
      expect(found.causes.map((c) => c.kind)).not.toContain('partial-write');
    });
  });

  it('starts reading the kernel log before it lists the output directory: the log is a child process that runs meanwhile', async () => {
    await publish(layout, '2026-04-23', 'x'.repeat(1000));
    await writeAged(stagingPathFor(layout, deadPid()), 'partial');
    const events: string[] = [];
    const files = { ...fs, opendir: (async (...args: Parameters<typeof fs.opendir>) => {
      events.push(`opendir ${args[0] === layout.outDir ? 'out' : String(args[0])}`);
      return fs.opendir(...args);
    }) as typeof fs.opendir };
    await findCauses(
      { fs: files, statfs: async () => PLENTY, readKernelLog: async () => {
        events.push('kernel log');
        return { unavailable: 'n/a' };
      } },
      settingsFor(layout),
      await diagnosis(),
    );
    expect(events).toEqual(['kernel log', 'opendir out']);
  });

  it('a kernel-log reader that fails while the outputs are listed fails the causes once, never as an unhandled rejection', async () => {
    await publish(layout, '2026-04-23', 'x'.repeat(1000));
    await writeAged(stagingPathFor(layout, deadPid()), 'partial');
    const failing: CauseWitnesses = {
      fs,
      statfs: async () => PLENTY,
      readKernelLog: () => Promise.reject(new Error('the reader broke')),
    };
    await expect(findCauses(failing, settingsFor(layout), await diagnosis())).rejects.toThrow('the reader broke');
  });

  it('killed-by-signal and rerun-failed: the last re-run crashdiag started, from the audit log', async () => {
    const log = defaultAuditLog(layout.stagingDir);
    const base = { user: 'u', host: 'h', pid: 1, pipeline: null, run: KEY, stagingDir: layout.stagingDir };
    await appendAudit(fs, log, [
      { ...base, time: new Date(Date.now() - 60_000).toISOString(), op: 'rerun', exitStatus: 1, signal: null },
    ]);
    let found = await findCauses(witnesses({ unavailable: 'n/a' }), settingsFor(layout), await diagnosis());
    expect(found.causes).toContainEqual(expect.objectContaining({ kind: 'rerun-failed', detail: expect.stringContaining('exit 1') }));
    await appendAudit(fs, log, [{ ...base, time: new Date().toISOString(), op: 'rerun', exitStatus: null, signal: 'SIGKILL' }]);
    found = await findCauses(witnesses({ unavailable: 'n/a' }), settingsFor(layout), await diagnosis());
    expect(found.causes.map((c) => c.kind)).toContain('killed-by-signal');
    expect(found.causes.map((c) => c.kind)).not.toContain('rerun-failed');
  });

  it('input-missing: names the input', async () => {
    const input = join(layout.root, 'in', 'refunds_{date}.csv');
    const settings = settingsFor(layout, { inputs: [input] });
    const found = await findCauses(witnesses({ unavailable: 'n/a' }), settings, await diagnosis(settings));
    expect(found.causes).toEqual([
      { kind: 'input-missing', detail: `the input ${join(layout.root, 'in', `refunds_${KEY}.csv`)} does not exist` },
    ]);
  });

  it('takes each orphan’s birth time from the probe’s look: a crash loop’s files are not looked at twice', async () => {
    const settings = settingsFor(layout);
    const pids = [deadPid(), deadPid()].sort((a, b) => String(a).localeCompare(String(b)));
    for (const pid of pids) await fs.writeFile(stagingPathFor(layout, pid), 'partial');
    const nowMs = Date.now();
    const { evidence, fold } = await probeRunFolded({ fs, processes: createProcessTable(), nowMs }, settings, KEY, 1);
    const auditLog = defaultAuditLog(layout.stagingDir);
    const recovery = await gatherRecovery(fs, settings, KEY, { auditLog, retry: false, nowMs });
    const diagnosed = classifyFolded({ ...evidence, recovery }, fold);
    // Listed: the first file only; both are attempts, each with the birth time the probe saw.
    expect(diagnosed.orphans).toHaveLength(1);
    expect(diagnosed.attempts?.count).toBe(2);
    const looked: string[] = [];
    const counting = {
      ...fs,
      lstat: async (path: string) => (looked.push(path), fs.lstat(path)),
      lstatSync: ((path: string) => (looked.push(path), lstatSync(path))) as typeof lstatSync,
    } as unknown as typeof fs;
    const [first, second] = fold.deadOrphans.map((d) => d.bornMs ?? nowMs);
    const lines = [
      oomLine(pids[0] as number, (first as number) + 1000),
      oomLine(pids[1] as number, (second as number) - HOUR),
    ];
    const log: KernelLog = { source: 'journalctl -k', lines, bootTimeMs: null };
    const found = await findCauses({ ...witnesses(log), fs: counting }, settings, diagnosed, fold.deadOrphans);
    expect(looked.filter((p) => p.startsWith(layout.stagingDir))).toEqual([]);
    // The same answers as a second look would give: the kill after the file's creation, not the one before it.
    expect(found.causes.filter((c) => c.kind === 'oom-kill').map((c) => c.pid)).toEqual([pids[0]]);
    // Without the probe's facts, each orphan is looked at (each one listed: the full diagnosis).
    await findCauses({ ...witnesses(log), fs: counting }, settings, classifyRun({
      ...(await probeRun({ fs, processes: createProcessTable(), nowMs }, settings, KEY)), recovery,
    }));
    expect(looked.filter((p) => p.startsWith(layout.stagingDir))).toHaveLength(2);
  });

  it('looks for nothing when the run is DONE', async () => {
    await publish(layout);
    let asked = false;
    const found = await findCauses(
      { fs, readKernelLog: async () => ((asked = true), { unavailable: '' }), statfs: async () => PLENTY },
      settingsFor(layout),
      await diagnosis(),
    );
    expect(found).toEqual({ causes: [], notes: [], unlisted: 0 });
    expect(asked).toBe(false);
  });
});

describe('attack: the output directory under the causes\' listing', () => {
  it('vanishes mid-listing (a cleanup removes it between two batches): no error, the diagnosis\' causes still come', async () => {
    // More outputs than one batch of the listing holds: the directory goes while it is being read.
    for (let day = 1; day <= 600; day++) {
      const key = new Date(Date.UTC(2020, 0, day)).toISOString().slice(0, 10);
      await fs.writeFile(finalPathFor(layout, key), 'x');
    }
    await writeAged(stagingPathFor(layout, deadPid()), 'partial');
    const settings = settingsFor(layout);
    const evidence = await diagnosis(settings);
    let removed = false;
    const vanishing = ((path: string) => {
      if (!removed) {
        removed = true;
        rmSync(layout.outDir, { recursive: true, force: true });
      }
      return lstatSync(path);
    }) as typeof lstatSync;
    const found = await findCauses({ ...witnesses({ unavailable: 'n/a' }), fs: { ...fs, lstatSync: vanishing } }, settings, evidence);
    expect(removed).toBe(true);
    expect(found.notes).toEqual(['n/a']);
  });

  it('is also the staging directory: the orphans are no published output, the other runs\' outputs are', async () => {
    const settings = { ...settingsFor(layout), stagingDir: layout.outDir };
    await fs.writeFile(finalPathFor(layout, '2026-04-23'), 'x'.repeat(1000));
    const pid = deadPid();
    await writeAged(join(layout.outDir, `${KEY}.${pid}.csv`), 'y'.repeat(3 * 1024 * 1024));
    const evidence = await diagnosis(settings);
    expect(evidence.state).toBe('D');
    const found = await findCauses(witnesses({ unavailable: 'n/a' }, { bavail: 2, blocks: 100, bsize: 1 }), settings, evidence);
    expect(found.causes.find((c) => c.kind === 'partial-write')?.detail).toContain('has 1000)');
    expect(found.causes.find((c) => c.kind === 'disk-full')?.detail).toContain('largest output (0.0 MiB)');
  });
});

describe('attack: one PID\'s files on two hosts (containers: every attempt is PID 7), the later-born first by path', () => {
  it('read-only diagnose and a full probe (--fix --dry-run) blame the same OOM kill', async () => {
    const settings = settingsFor(layout, {
      staging: compileStagingTemplate('{date}.{host}.{pid}.csv'),
      // Judged by age (another host's PID means nothing here): dead at once.
      staleAfterMs: 1,
    });
    const pid = 7;
    const early = join(layout.stagingDir, `${KEY}.b-host.${pid}.csv`);
    const late = join(layout.stagingDir, `${KEY}.a-host.${pid}.csv`);
    await fs.writeFile(early, 'partial');
    await fs.writeFile(late, 'partial');
    // The file system says the early one was created an hour before (as a crash loop's first attempt was).
    const backdated = <T extends { birthtimeMs: number }>(path: unknown, stats: T): T =>
      (String(path) === early ? Object.assign(stats, { birthtimeMs: stats.birthtimeMs - HOUR }) : stats);
    const disk = {
      ...fs,
      lstat: async (path: string) => backdated(path, await fs.lstat(path)),
      lstatSync: ((path: string) => backdated(path, lstatSync(path))) as typeof lstatSync,
    } as unknown as typeof fs;
    const bornEarly = (await disk.lstat(early)).birthtimeMs;
    const bornLate = (await disk.lstat(late)).birthtimeMs;
    const nowMs = Date.now() + 1000;
    const log: KernelLog = { source: 'journalctl -k', lines: [oomLine(pid, (bornEarly + bornLate) / 2)], bootTimeMs: null };
    const auditLog = defaultAuditLog(layout.stagingDir);
    const recovery = await gatherRecovery(fs, settings, KEY, { auditLog, retry: false, nowMs });
    const ctx = { fs: disk, processes: createProcessTable(), nowMs };
    const { evidence, fold } = await probeRunFolded(ctx, settings, KEY, 1000);
    const readOnly = classifyFolded({ ...evidence, recovery }, fold);
    const full = classifyRun({ ...(await probeRun(ctx, settings, KEY)), recovery });
    expect(readOnly.state).toBe(full.state);
    const kinds = async (d: typeof full, probed?: typeof fold.deadOrphans) =>
      (await findCauses({ ...witnesses(log), fs: disk }, settings, d, probed)).causes.filter((c) => c.kind === 'oom-kill');
    expect(await kinds(readOnly, fold.deadOrphans)).toEqual(await kinds(full));
  });
});

describe('attack: a crash loop the kernel OOM-killed at every attempt, more kills than causes are listed', () => {
  it('the input that is missing and the disk that is full are still listed; the kills past the bound are counted', async () => {
    const input = join(layout.root, 'in', 'refunds_{date}.csv');
    const settings = settingsFor(layout, { inputs: [input] });
    const pids = deadPids(4);
    const lines: string[] = [];
    for (const pid of pids) {
      await writeAged(stagingPathFor(layout, pid), 'partial');
      const born = (await fs.lstat(stagingPathFor(layout, pid))).birthtimeMs || Date.now();
      lines.push(oomLine(pid, born + 1000));
    }
    const log: KernelLog = { source: 'journalctl -k', lines, bootTimeMs: null };
    const low: SpaceFacts = { bavail: 20_000, blocks: 1_000_000, bsize: 4096 };
    // Four listed, as the views list 1,000: one kill, the two full disks, the missing input.
    const found = await findCauses(witnesses(log, low), settings, await diagnosis(settings), undefined, 4);
    expect(found.causes.map((c) => c.kind)).toEqual(['oom-kill', 'disk-full', 'disk-full', 'input-missing']);
    expect(found.unlisted).toBe(3);
  });
});
