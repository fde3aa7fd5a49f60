import { execFileSync, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { watch } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.js';
import type { CleanReport } from '../../src/core/clean.js';
import { collectOutput, type Finished, useBuiltBin } from '../support/built-bin.js';
import { changedAtMtimeFs } from '../support/ctime.js';
import { deadPids } from '../support/dead-pids.js';
import { age, dateKey, exists, put } from '../support/disk.js';
import { snapshot } from '../support/file-tree.js';
import { useLiveWriter } from '../support/live-process.js';
import { removeTempDir } from '../support/temp-dir.js';
import { makeTempLayout } from '../support/temp-layout.js';
import { crashdiagInProcess } from '../support/in-process.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const FINAL = 'refunds_settled_{date}.csv';

/**
 * The janitor in process, on the real disk and process table, except that
 * each file reads as last changed at its mtime: these tests age orphans with
 * utimes, and the janitor ages a file by its last change (its ctime, which
 * no one can set back, is now). The ctime itself is tested in
 * test/core/clean.test.ts and test/cli/pid-namespace.test.ts.
 */
function janitorInProcess(args: readonly string[], options: { cwd?: string } = {}): Promise<Finished> {
  return crashdiagInProcess(args, options.cwd ?? root, {
    fs: changedAtMtimeFs(fsp),
    runCommand: async () => ({ exitStatus: null, signal: null, error: 'clean runs no commands' }),
    user: 'janitor-test',
  });
}
// A few tests run the janitor as its own process: to SIGKILL it, or to run it as another user.
const built = useBuiltBin();
// Files written from here on are written after the live writer started.
const liveWriter = useLiveWriter();
let livePid: number;
beforeAll(() => {
  livePid = liveWriter.pid;
});

let root: string;
let outDir: string;
let stagingDir: string;
let now: number;

beforeEach(async () => {
  ({ root, outDir, stagingDir } = await makeTempLayout('crashdiag-janitor-'));
  now = Date.now();
});
afterEach(() => removeTempDir(root));

// For janitors run as a process, which see the real ctime (now) of files aged with utimes.
const NO_THRESHOLD = ['--older-than', '1ms', '--force-short-threshold'];
const layoutFlags = () => ['--out-dir', outDir, '--staging-dir', stagingDir, '--final', FINAL];
const staged = (name: string) => join(stagingDir, name);
const auditLog = () => join(stagingDir, '.crashdiag', 'audit.jsonl');

function clean(args: readonly string[]): Promise<Finished> {
  return janitorInProcess(['clean', ...layoutFlags(), ...args], { cwd: root });
}

function reportOf(finished: Finished): CleanReport {
  const parsed = JSON.parse(finished.stdout) as { schemaVersion: number; pipelines: CleanReport[] };
  expect(parsed.schemaVersion).toBe(1);
  expect(parsed.pipelines).toHaveLength(1);
  const [report] = parsed.pipelines;
  if (!report) throw new Error('no report');
  return report;
}

/** Every line of the audit log, intents included. */
async function auditLines(log = auditLog()): Promise<AuditRecord[]> {
  if (!(await exists(log))) return [];
  const text = await fsp.readFile(log, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as AuditRecord);
}

/** The outcomes: what was done, without the intents written ahead of it. */
async function auditRecords(): Promise<AuditRecord[]> {
  return (await auditLines()).filter((r) => r.op !== 'intent');
}

interface Fleet {
  /** Dead writers, past 24h: must go. [path, bytes, run key] */
  readonly doomed: Array<[string, number, string]>;
  /** Everything else on disk, which must stay as it is. */
  readonly spared: string[];
}

/** Many run keys: old and young orphans, published outputs, special entries, strangers. */
async function fleet(): Promise<Fleet> {
  const [a = 0, b = 0, c = 0] = deadPids(3);
  const doomed: Fleet['doomed'] = [];
  const spared: string[] = [];
  const orphan = async (name: string, content: string, ageMs: number, fate: 'go' | 'stay') => {
    await put(staged(name), content, now, ageMs);
    if (fate === 'go') doomed.push([staged(name), content.length, name.slice(0, 10)]);
    else spared.push(staged(name));
  };
  for (let day = 1; day <= 12; day++) {
    const key = `2026-03-${String(day).padStart(2, '0')}`;
    // One orphan per retry, days old.
    await orphan(`${key}.${a}.csv`, `attempt 1 of ${key}`, (40 - day) * DAY, 'go');
    await orphan(`${key}.${b}.csv`, `attempt 2 of ${key}!`, (40 - day) * DAY - HOUR, 'go');
    // Published afterwards by hand: D-race, the output and its marker are never touched.
    if (day % 3 === 0) {
      await put(join(outDir, `refunds_settled_${key}.csv`), `published ${key}`, now, (39 - day) * DAY);
      await put(join(outDir, `refunds_settled_${key}.csv.success`), '', now, (39 - day) * DAY);
    }
  }
  // Younger than 24h: kept.
  await orphan(`2026-03-20.${c}.csv`, 'crashed this morning', 5 * HOUR, 'stay');
  await orphan(`2026-03-20.${a}.csv`, 'crashed an hour ago', HOUR, 'stay');
  // A live writer's file: written after its process started, so that process may be writing it.
  await fsp.writeFile(staged(`2026-03-21.${livePid}.csv`), 'still being written');
  spared.push(staged(`2026-03-21.${livePid}.csv`));
  // A symlink and a directory named like orphans, both old: never followed, never removed.
  await put(join(root, 'elsewhere.csv'), 'not staging', now, 30 * DAY);
  await fsp.symlink(join(root, 'elsewhere.csv'), staged(`2026-03-22.${a}.csv`));
  await fsp.symlink(outDir, staged(`2026-03-23.${a}.csv`));
  await fsp.mkdir(staged(`2026-03-24.${a}.csv`));
  await put(join(staged(`2026-03-24.${a}.csv`), `2026-03-24.${b}.csv`), 'nested', now, 30 * DAY);
  await age(staged(`2026-03-24.${a}.csv`), now, 30 * DAY);
  spared.push(staged(`2026-03-22.${a}.csv`), staged(`2026-03-23.${a}.csv`), staged(`2026-03-24.${a}.csv`));
  // Names the staging template does not claim.
  for (const name of ['notes.txt', `2026-03-25.${a}.csv.bak`, '2026-03-25.pid.csv', `bad key.${a}.csv`]) {
    await put(staged(name), 'not an orphan', now, 30 * DAY);
    spared.push(staged(name));
  }
  return { doomed, spared };
}

describe('crashdiag clean', () => {
  it('deletes old dead-writer orphans of every run key and nothing else', async () => {
    const { doomed, spared } = await fleet();
    const outBefore = await snapshot(outDir);
    const target = await fsp.stat(join(root, 'elsewhere.csv'));
    const finished = await clean([]);
    expect(finished.stderr).toBe('');
    expect(finished.code).toBe(0);
    for (const [path] of doomed)
      expect({ path, exists: await exists(path) }).toEqual({ path, exists: false });
    for (const path of spared) expect({ path, exists: await exists(path) }).toEqual({ path, exists: true });
    expect(await snapshot(outDir)).toEqual(outBefore);
    // Symlink targets and a directory's contents are untouched.
    expect(await fsp.readFile(join(root, 'elsewhere.csv'), 'utf8')).toBe('not staging');
    expect((await fsp.stat(join(root, 'elsewhere.csv'))).mtimeMs).toBe(target.mtimeMs);
    const nested = (await snapshot(root)).filter((line) => line.includes('2026-03-24'));
    expect(nested).toHaveLength(2);
    expect(nested[1]).toMatch(/ nested$/);
    // The human summary: what was freed, per run key.
    const freed = doomed.reduce((n, [, bytes]) => n + bytes, 0);
    expect(finished.stdout).toContain(`freed ${doomed.length} files, ${freed} B`);
    expect(finished.stdout).toContain('  2026-03-01: 2 files,');
    expect(finished.stdout).toMatch(/kept .*2026-03-22\.\d+\.csv: a symlink, not a regular file/);
    expect(finished.stdout).toMatch(/kept .*2026-03-24\.\d+\.csv: a directory, not a regular file/);
    // Two young orphans, and the live writer's fresh file.
    expect(finished.stdout).toContain('kept 3 files younger than the threshold');
  });

  it('--json sums files and bytes, in all and per run key', async () => {
    const { doomed } = await fleet();
    const finished = await clean(['--json']);
    expect(finished.code).toBe(0);
    const report = reportOf(finished);
    expect(report.dryRun).toBe(false);
    expect(report.olderThanSeconds).toBe(86_400);
    expect(report.files).toBe(doomed.length);
    expect(report.bytes).toBe(doomed.reduce((n, [, bytes]) => n + bytes, 0));
    expect(report.removed.map((f) => f.path)).toEqual(doomed.map(([path]) => path).sort());
    expect(report.perRun).toHaveLength(12);
    for (const run of report.perRun) {
      const mine = doomed.filter(([, , key]) => key === run.run);
      expect(run).toEqual({ run: run.run, files: mine.length, bytes: mine.reduce((n, [, b]) => n + b, 0) });
    }
  });

  it('appends one audit line per deletion, run after run', async () => {
    const { doomed } = await fleet();
    await clean([]);
    const first = await auditRecords();
    expect(first.map((r) => r.path).sort()).toEqual(doomed.map(([path]) => path).sort());
    for (const record of first) {
      const [, bytes, run] = doomed.find(([path]) => path === record.path) ?? [];
      expect(record).toMatchObject({ op: 'delete', run, bytes, pipeline: null });
      expect(record.writerPid).toBe(Number(record.path?.split('.')[1]));
    }
    // A second janitor run later: its deletions are appended, the first ones stay on record.
    const [dead] = deadPids(1);
    await put(staged(`2026-03-30.${dead}.csv`), 'one more', now, 2 * DAY);
    await clean([]);
    const second = await auditRecords();
    expect(second.slice(0, first.length)).toEqual(first);
    expect(second.slice(first.length).map((r) => r.path)).toEqual([staged(`2026-03-30.${dead}.csv`)]);
  });

  it('--dry-run changes nothing and lists what would go', async () => {
    const { doomed } = await fleet();
    const before = await snapshot(root);
    const human = await clean(['--dry-run']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`would free ${doomed.length} files`);
    for (const [path] of doomed) expect(human.stdout).toContain(`would remove ${path}\n`);
    const json = await clean(['--dry-run', '--json']);
    const report = reportOf(json) as CleanReport & { wouldRemove?: CleanReport['removed'] };
    expect(report.dryRun).toBe(true);
    // A dry run removed nothing: the list says what would go, under a name that says so.
    expect(report).not.toHaveProperty('removed');
    expect(report.wouldRemove?.map((f) => f.path)).toEqual(doomed.map(([path]) => path).sort());
    // No file removed, no lock taken, no audit log written.
    expect(await snapshot(root)).toEqual(before);
  });

  it('takes --older-than: only orphans untouched that long', async () => {
    const [dead] = deadPids(1);
    await put(staged(`2026-03-01.${dead}.csv`), 'three days', now, 3 * DAY);
    await put(staged(`2026-03-02.${dead}.csv`), 'one day', now, DAY + HOUR);
    const report = reportOf(await clean(['--older-than', '2d', '--json']));
    expect(report.removed.map((f) => f.path)).toEqual([staged(`2026-03-01.${dead}.csv`)]);
    expect(await exists(staged(`2026-03-02.${dead}.csv`))).toBe(true);
  });
});

describe('crashdiag clean: short thresholds', () => {
  it('refuses --older-than under 1h with exit 2, and every file stays', async () => {
    const [dead] = deadPids(1);
    await put(staged(`2026-03-01.${dead}.csv`), 'old orphan', now, 2 * DAY);
    await put(staged(`2026-03-02.${dead}.csv`), 'recent orphan', now, 45 * MINUTE);
    const before = await snapshot(root);
    for (const threshold of ['30m', '0s']) {
      const finished = await clean(['--older-than', threshold]);
      expect(finished.code).toBe(2);
      expect(finished.stdout).toBe('');
      expect(finished.stderr).toContain(`--older-than ${threshold} is under 1h`);
      expect(finished.stderr).toContain('--force-short-threshold');
    }
    expect(await exists(staged(`2026-03-01.${dead}.csv`))).toBe(true);
    expect(await exists(staged(`2026-03-02.${dead}.csv`))).toBe(true);
    expect(await snapshot(root)).toEqual(before);
  });

  it('accepts 1h exactly without the override', async () => {
    const [dead] = deadPids(1);
    await put(staged(`2026-03-01.${dead}.csv`), 'old orphan', now, 2 * HOUR);
    const finished = await clean(['--older-than', '1h', '--json']);
    expect(finished.code).toBe(0);
    expect(reportOf(finished).files).toBe(1);
  });

  it('with --force-short-threshold deletes past the short threshold, never a live writer\'s file', async () => {
    const [dead] = deadPids(1);
    // Aged against the real clock: clean has no --now.
    await put(staged(`2026-03-01.${dead}.csv`), 'died 105 minutes ago', now, 105 * MINUTE);
    await put(staged(`2026-03-02.${dead}.csv`), 'died 70 minutes ago', now, 70 * MINUTE);
    // Written now, by a process that started before: its writer, alive.
    await fsp.writeFile(staged(`2026-03-03.${livePid}.csv`), 'still being written');
    // A zero threshold: every file is past it, the live writer's too; only its verdict keeps it.
    const finished = await clean(['--older-than', '0ms', '--force-short-threshold', '--json']);
    expect(finished.stderr).toBe('');
    expect(finished.code).toBe(0);
    const report = reportOf(finished);
    expect(report.removed.map((f) => f.path)).toEqual([
      staged(`2026-03-01.${dead}.csv`),
      staged(`2026-03-02.${dead}.csv`),
    ]);
    expect(await exists(staged(`2026-03-03.${livePid}.csv`))).toBe(true);
    expect(report.kept).toEqual([
      { path: staged(`2026-03-03.${livePid}.csv`), reason: expect.stringMatching(/^writer alive: PID/) },
    ]);
  });
});

describe('crashdiag clean: a live writer\'s file at the default threshold', () => {
  it('keeps it however far past the threshold, and deletes a reused PID\'s file', async () => {
    const [dead] = deadPids(1);
    await fsp.writeFile(staged(`2026-03-03.${livePid}.csv`), 'still being written');
    await fsp.writeFile(staged(`2026-03-03.${dead}.csv`), 'its writer died');
    // Last written before the live process started: that process cannot be its writer.
    await put(staged(`2026-03-02.${livePid}.csv`), 'pid since reused', now, 3 * DAY);
    const report = reportOf(await clean(['--older-than', '0ms', '--force-short-threshold', '--json']));
    expect(report.removed.map((f) => f.path)).toEqual([
      staged(`2026-03-02.${livePid}.csv`),
      staged(`2026-03-03.${dead}.csv`),
    ]);
    expect(await exists(staged(`2026-03-03.${livePid}.csv`))).toBe(true);
  });

  it('with --no-pid-check (shared storage) judges by age alone', async () => {
    // A live PID's file untouched for two days, aged against the real clock.
    await put(staged(`2026-03-03.${livePid}.csv`), 'written on another host?', now, 2 * DAY);
    const byAge = reportOf(await clean(['--no-pid-check', '--stale-after', '3d', '--json']));
    expect(byAge.files).toBe(0);
    expect(await exists(staged(`2026-03-03.${livePid}.csv`))).toBe(true);
    const stale = reportOf(await clean(['--no-pid-check', '--json']));
    expect(stale.removed.map((f) => f.path)).toEqual([staged(`2026-03-03.${livePid}.csv`)]);
  });
});

describe('crashdiag clean: outputs and markers', () => {
  it('never deletes them when the staging directory is the output directory', async () => {
    const [dead] = deadPids(1);
    const shared = ['--out-dir', outDir, '--staging-dir', outDir, '--final', 'refunds_{date}.csv'];
    for (let day = 1; day <= 5; day++) {
      const key = `2026-03-0${day}`;
      await put(join(outDir, `refunds_${key}.csv`), `published ${key}`, now, 10 * DAY);
      await put(join(outDir, `refunds_${key}.csv.success`), '', now, 10 * DAY);
      await put(join(outDir, `${key}.${dead}.csv`), `orphan ${key}`, now, 10 * DAY);
    }
    const finished = await janitorInProcess(['clean', ...shared, '--json'], { cwd: root });
    expect(finished.code).toBe(0);
    expect(reportOf(finished).files).toBe(5);
    const left = (await fsp.readdir(outDir)).sort();
    expect(left).toEqual([
      '.crashdiag',
      ...[1, 2, 3, 4, 5].flatMap((d) => [`refunds_2026-03-0${d}.csv`, `refunds_2026-03-0${d}.csv.success`]),
    ]);
  });

  it('keeps an output whose name the staging template also matches', async () => {
    const [dead] = deadPids(1);
    // With --final '{date}.csv', 2026-03-01.<pid>.csv is the output of run key "2026-03-01.<pid>".
    const shared = ['--out-dir', outDir, '--staging-dir', outDir, '--final', '{date}.csv'];
    await put(join(outDir, `2026-03-01.${dead}.csv`), 'a published output', now, 10 * DAY);
    await put(join(outDir, `2026-03-01.${dead}.csv.success`), '', now, 10 * DAY);
    const finished = await janitorInProcess(['clean', ...shared, '--json'], { cwd: root });
    expect(finished.code).toBe(0);
    expect(reportOf(finished).files).toBe(0);
    expect(await fsp.readFile(join(outDir, `2026-03-01.${dead}.csv`), 'utf8')).toBe('a published output');
  });
});

describe('crashdiag clean: refusals', () => {
  it('exits 2 for a missing output directory, and every file stays', async () => {
    const { doomed } = await fleet();
    const before = await snapshot(root);
    const finished = await janitorInProcess(
      ['clean', '--out-dir', join(root, 'no-such-out'), '--staging-dir', stagingDir, '--final', FINAL],
      { cwd: root },
    );
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/^crashdiag: The output directory .* does not exist\./);
    for (const [path] of doomed) expect(await exists(path)).toBe(true);
    expect(await snapshot(root)).toEqual(before);
  });

  it('exits 2 for a missing staging directory', async () => {
    const finished = await janitorInProcess(
      ['clean', '--out-dir', outDir, '--staging-dir', join(root, 'nope'), '--final', FINAL],
      { cwd: root },
    );
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/The staging directory .* does not exist/);
  });

  it('exits 2 for --all with --audit-log, and for --all with --staging-dir, deleting nothing', async () => {
    const { doomed } = await fleet();
    await fsp.writeFile(
      join(root, 'crashdiag.config.json'),
      JSON.stringify({
        pipelines: {
          refunds: { outDir, stagingDir, final: FINAL },
          ledger: { outDir, stagingDir, final: 'ledger_{date}.csv' },
        },
      }),
    );
    const before = await snapshot(root);
    const withLog = await janitorInProcess(['clean', '--all', '--audit-log', join(root, 'a.jsonl')], {
      cwd: root,
    });
    expect(withLog.code).toBe(2);
    const withDir = await janitorInProcess(['clean', '--all', '--staging-dir', stagingDir], { cwd: root });
    expect(withDir.code).toBe(2);
    for (const [path] of doomed) expect(await exists(path)).toBe(true);
    expect(await snapshot(root)).toEqual(before);
  });

  it('--all cleans every pipeline in the config', async () => {
    const { doomed } = await fleet();
    const ledgerStaging = join(root, 'ledger-staging');
    await fsp.mkdir(ledgerStaging);
    const [dead] = deadPids(1);
    await put(join(ledgerStaging, `2026-03-01.${dead}.csv`), 'ledger orphan', now, 3 * DAY);
    await fsp.writeFile(
      join(root, 'crashdiag.config.json'),
      JSON.stringify({
        pipelines: {
          refunds: { outDir, stagingDir, final: FINAL },
          ledger: { outDir, stagingDir: ledgerStaging, final: 'ledger_{date}.csv' },
        },
      }),
    );
    const finished = await janitorInProcess(['clean', '--all', '--json'], { cwd: root });
    expect(finished.code).toBe(0);
    const { pipelines } = JSON.parse(finished.stdout) as { pipelines: CleanReport[] };
    expect(Object.fromEntries(pipelines.map((p) => [p.pipeline, p.files]))).toEqual({
      refunds: doomed.length,
      ledger: 1,
    });
    expect(await fsp.readdir(ledgerStaging)).toEqual(['.crashdiag']);
  });
});

describe('two janitors at once', () => {
  it('neither fails, and between them each orphan is deleted and logged exactly once', async () => {
    const pids = deadPids(4);
    const orphans: string[] = [];
    // Enough that the second janitor starts while the first is still at work.
    for (let day = 0; day < 100; day++) {
      for (const pid of pids) {
        const name = `${dateKey(Date.parse('2026-01-01'), day)}.${pid}.csv`;
        await put(staged(name), `orphan ${name}`, now, 3 * DAY);
        orphans.push(staged(name));
      }
    }
    const [one, two] = await Promise.all([clean(['--json']), clean(['--json'])]);
    expect([one.code, two.code, one.stderr, two.stderr]).toEqual([0, 0, '', '']);
    const removed = [...reportOf(one).removed, ...reportOf(two).removed].map((f) => f.path).sort();
    expect(removed).toEqual(orphans.sort());
    expect((await auditRecords()).map((r) => r.path).sort()).toEqual(orphans);
    expect(await fsp.readdir(stagingDir)).toEqual(['.crashdiag']);
  });
});

describe('crashdiag clean: --now is for reading only (issue 9, item 4)', () => {
  it.each([
    ['clean', [] as string[]],
    ['clean --dry-run', ['--dry-run']],
  ])('attack: %s --now 2030-01-01 on a file written a second ago: exit 2 before any I/O, the disk unchanged', async (_, extra) => {
    const [dead] = deadPids(1);
    // Untouched for a second; a clock four years on would make it past every threshold and --stale-after.
    await put(staged(`2026-03-01.${dead}.csv`), 'written a second ago', now, 1000);
    await put(staged(`2026-03-02.${livePid}.csv`), 'being written', now, 0);
    const before = await snapshot(root);
    const finished = await clean(['--no-pid-check', '--now', '2030-01-01', ...extra]);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/^crashdiag: --now is for reading only: clean.* judges every file against the real clock\.\n/);
    expect(finished.stderr).not.toMatch(/\n\s+at /);
    expect(await snapshot(root)).toEqual(before);
  });
});

describe('crashdiag clean: the audit log, before anything goes', () => {
  it('--audit-log naming a directory: exit 2 before the first deletion, the disk unchanged byte for byte', async () => {
    const { doomed } = await fleet();
    await fsp.mkdir(join(root, 'somedir'));
    const before = await snapshot(root);
    const finished = await clean(['--audit-log', 'somedir']);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/^crashdiag: The audit log \S+\/somedir is a directory; .*nothing was changed\.\n {2}\S.*\n$/);
    for (const [path] of doomed) expect(await exists(path)).toBe(true);
    expect(await snapshot(root)).toEqual(before);
  });

  it('a hard link planted as .crashdiag/audit.jsonl, to a published output: exit 2, the output unchanged, nothing deleted', async () => {
    const { doomed } = await fleet();
    const output = join(outDir, 'refunds_settled_2026-03-03.csv');
    await fsp.mkdir(join(stagingDir, '.crashdiag'));
    await fsp.link(output, auditLog());
    const published = await fsp.readFile(output);
    const before = await snapshot(root);
    const finished = await clean([]);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toContain(`The audit log ${auditLog()} is a file with 2 hard links`);
    expect(finished.stderr).not.toMatch(/\n\s+at /);
    expect(await fsp.readFile(output)).toEqual(published);
    for (const [path] of doomed) expect(await exists(path)).toBe(true);
    expect(await snapshot(root)).toEqual(before);
  });

  it('SIGKILLed mid-clean: every file missing from staging has an intent on record (the log may hold intents without outcomes)', async () => {
    const [a = 0, b = 0] = deadPids(2);
    const orphans: string[] = [];
    for (let day = 0; day < 1500; day++) {
      for (const pid of [a, b]) {
        const path = staged(`${dateKey(Date.parse('2020-01-01'), day)}.${pid}.csv`);
        await put(path, 'orphan', now, 3 * DAY);
        orphans.push(path);
      }
    }
    // Watch the staging directory: kill the janitor in the middle of its
    // second batch of removals, after the 300th.
    // Aged by utimes, last changed (ctime) now: a spawned janitor sees them as fresh, so no threshold.
    const child = spawn(process.execPath, [built.bin, 'clean', ...layoutFlags(), ...NO_THRESHOLD], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = collectOutput(child);
    const watcher = watch(stagingDir);
    let removals = 0;
    try {
      for await (const event of watcher) {
        if (event.eventType === 'rename' && event.filename?.endsWith('.csv') && ++removals >= 300) break;
      }
    } finally {
      child.kill('SIGKILL');
    }
    const { signal } = await exited;
    expect(signal).toBe('SIGKILL');
    const lines = await auditLines();
    const intended = new Set(lines.filter((r) => r.op === 'intent').map((r) => r.path));
    const missing = [];
    for (const path of orphans) if (!(await exists(path))) missing.push(path);
    expect(missing.filter((path) => !intended.has(path))).toEqual([]);
    // Every removal on record was intended first.
    for (const r of lines.filter((l) => l.op === 'delete')) expect(intended.has(r.path)).toBe(true);
    // The next janitor takes over the dead one's lock and finishes the job.
    const after = await clean([]);
    expect(after.code).toBe(0);
    for (const path of orphans) expect(await exists(path)).toBe(false);
  }, 60_000);
});

describe('crashdiag clean: a removal refused midway', () => {
  it('run as an unprivileged user in a sticky staging directory: another user\'s orphan is kept, audited, reported, exit 30', async () => {
    // Root bypasses permissions: the janitor runs as nobody, the orphan it may not remove is root's.
    await fsp.chmod(root, 0o755);
    await fsp.chmod(stagingDir, 0o1777);
    await fsp.chmod(join(built.bin, '..', '..'), 0o755);
    const [a = 0, b = 0] = deadPids(2);
    const own = staged(`2026-03-01.${a}.csv`);
    const roots = staged(`2026-03-02.${b}.csv`);
    await put(own, 'nobody\'s orphan', now, 3 * DAY);
    await put(roots, 'root\'s orphan', now, 3 * DAY);
    await fsp.chown(own, 65_534, 65_534);
    const child = spawn(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, built.bin, 'clean', ...layoutFlags(), ...NO_THRESHOLD, '--json'],
      { cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const finished = await collectOutput(child);
    expect(finished.code).toBe(30);
    expect(finished.stderr).toBe('crashdiag: some orphans could not be removed (listed above); everything else was done.\n');
    const report = reportOf(finished);
    expect(report.removed.map((f) => f.path)).toEqual([own]);
    expect(report.failed).toEqual([{ path: roots, reason: expect.stringMatching(/^could not be removed \(EPERM\): /) }]);
    expect(await fsp.readFile(roots, 'utf8')).toBe('root\'s orphan');
    expect((await auditLines()).map((r) => [r.op, r.path])).toEqual([
      ['intent', own],
      ['intent', roots],
      ['delete', own],
      ['fail', roots],
    ]);
  });
});

describe('crashdiag clean and diagnose --fix: a planted lock file', () => {
  const lockOf = (key: string) => join(stagingDir, '.crashdiag', `${key}.lock`);
  const commands = [
    { name: 'clean', key: '.clean', args: () => ['clean', ...layoutFlags(), '--lock-timeout', '2s'] },
    {
      name: 'diagnose --fix',
      key: '2026-03-01',
      args: () => ['diagnose', '2026-03-01', ...layoutFlags(), '--fix', '--lock-timeout', '2s'],
    },
  ];

  for (const { name, key, args } of commands) {
    for (const [what, plant, said] of [
      ['a FIFO', (path: string) => execFileSync('mkfifo', [path]), 'a FIFO (named pipe)'],
      ['a symlink to /dev/zero', (path: string) => fsp.symlink('/dev/zero', path), 'a symlink'],
      ['a directory', (path: string) => fsp.mkdir(path), 'a directory'],
    ] as const) {
      it(`${name}: ${what} named ${key}.lock is refused in one sentence, exit 2, within --lock-timeout, nothing changed`, async () => {
        const [dead] = deadPids(1);
        await put(staged(`2026-03-01.${dead}.csv`), 'orphan', now, 3 * DAY);
        await fsp.mkdir(join(stagingDir, '.crashdiag'));
        await plant(lockOf(key));
        const before = await snapshot(root);
        const child = spawn(process.execPath, [built.bin, ...args()], {
          cwd: root,
          env: { ...process.env, NO_COLOR: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        // A safety net only: the old code hung here for ever.
        const finished = await collectOutput(child, 30_000);
        expect(finished.signal).toBeNull();
        expect(finished.code).toBe(2);
        expect(finished.stderr).toMatch(
          new RegExp(`^crashdiag: ${lockOf(key).replaceAll('.', '\\.')} is ${said.replace(/[()]/g, '\\$&')}, not a lock crashdiag made; nothing was changed\\.\\n {2}\\S.*\\n$`),
        );
        expect(await snapshot(root)).toEqual(before);
      }, 40_000);
    }

    it(`${name}: a stale lock owned by root that an unprivileged user may not move aside: one sentence, exit 2, nothing changed`, async () => {
      await fsp.chmod(root, 0o755);
      await fsp.chmod(stagingDir, 0o1777);
      await fsp.chmod(join(built.bin, '..', '..'), 0o755);
      await fsp.mkdir(join(stagingDir, '.crashdiag'), { mode: 0o1777 });
      await fsp.chmod(join(stagingDir, '.crashdiag'), 0o1777);
      const [dead = 0, holder = 0] = deadPids(2);
      await put(staged(`2026-03-01.${dead}.csv`), 'orphan', now, 3 * DAY);
      await fsp.chown(staged(`2026-03-01.${dead}.csv`), 65_534, 65_534);
      const stale = { pid: holder, host: hostname(), token: 'roots', since: new Date(now - DAY).toISOString() };
      await put(lockOf(key), JSON.stringify(stale), now, DAY);
      const before = await snapshot(root);
      const child = spawn(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, built.bin, ...args()],
        { cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const finished = await collectOutput(child, 30_000);
      expect(finished.code).toBe(2);
      expect(finished.stderr).toMatch(
        new RegExp(`^crashdiag: Cannot move aside the stale lock ${lockOf(key).replaceAll('.', '\\.')} \\(EPERM\\); nothing was changed\\.\\n {2}\\S.*\\n$`),
      );
      expect(await snapshot(root)).toEqual(before);
    }, 40_000);
  }
});

describe('crashdiag history after a clean', () => {
  it('shows each removal once, and an intent only when no outcome followed it (killed midway)', async () => {
    const [dead] = deadPids(1);
    const path = staged(`2026-03-01.${dead}.csv`);
    await put(path, 'orphan', now, 3 * DAY);
    expect((await clean([])).code).toBe(0);
    // An intent a SIGKILL left without its outcome.
    const cut = { ...(await auditLines())[0], time: new Date(now).toISOString(), pid: 4_242_424, path: staged('2026-03-09.77.csv') };
    await fsp.appendFile(auditLog(), `${JSON.stringify(cut)}\n`);
    const shown = await crashdiagInProcess(['history', '--staging-dir', stagingDir], root);
    expect(shown.code).toBe(0);
    expect(shown.stdout.match(/ delete /g)).toHaveLength(1);
    expect(shown.stdout.match(/ intent /g)).toHaveLength(1);
    expect(shown.stdout).toContain('no outcome recorded');
    const json = JSON.parse((await crashdiagInProcess(['history', '--staging-dir', stagingDir, '--json'], root)).stdout) as {
      records: AuditRecord[];
    };
    expect(json.records.map((r) => r.op)).toEqual(['intent', 'delete', 'intent']);
  });
});
