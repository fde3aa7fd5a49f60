import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import type { ProcessTable } from '../../src/core/process-table.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';
import { recordingIo } from './cli-io.js';

const OUT = '/data/refunds/out';
const STAGING = '/data/refunds/_staging';
const LIVE_PID = 4242;
const HOUR = 3_600_000;

/** Only LIVE_PID runs, since long before any file was written. */
const processes: ProcessTable = {
  hostname: 'batch-01',
  inspect: (pid) => (pid === LIVE_PID ? { exists: true, startMs: 0, command: 'node job.js' } : { exists: false }),
};

type Files = Record<string, { content?: string; mtimeMs: number }>;

function volume(files: Files, extra: Record<string, string> = {}): FileSystem {
  const vol = Volume.fromJSON({
    ...Object.fromEntries(Object.entries(files).map(([path, f]) => [path, f.content ?? 'x'])),
    ...extra,
  });
  for (const [path, f] of Object.entries(files)) vol.utimesSync(path, f.mtimeMs / 1000, f.mtimeMs / 1000);
  vol.mkdirSync(OUT, { recursive: true });
  vol.mkdirSync(STAGING, { recursive: true });
  return vol.promises as unknown as FileSystem;
}

const published = (key: string, mtimeMs: number): Files => ({
  [`${OUT}/r_${key}.csv`]: { mtimeMs },
  [`${OUT}/r_${key}.csv.success`]: { mtimeMs },
});
const staged = (key: string, pid: number, mtimeMs: number): Files => ({ [`${STAGING}/${key}.${pid}.csv`]: { mtimeMs } });
const LAYOUT = ['--out-dir', OUT, '--staging-dir', STAGING, '--final', 'r_{date}.csv'];

async function scan(fs: FileSystem, args: string[], nowIso: string, env: Record<string, string> = {}) {
  const { io, stdout, stderr } = recordingIo({
    fs,
    processes,
    now: () => Date.parse(nowIso),
    env: { NO_COLOR: '1', TZ: 'UTC', ...env },
  });
  const code = await run(['scan', ...args], io);
  return { code, stdout: stdout(), stderr: stderr() };
}

interface ScanJson {
  pipelines: Array<{ pipeline: string; scanned: boolean; error: { message: string } | null }>;
  runs: Array<{ pipeline: string; run: string; state: string }>;
}
const json = (stdout: string) => JSON.parse(stdout) as ScanJson;
const NOW = '2026-04-24T06:08:00Z';
const now = Date.parse(NOW);

describe('scan exit code in cron', () => {
  it('a D is never hidden behind a live writer: RUNNING and D give 11, not 20', async () => {
    const fs = volume({ ...staged('2026-04-24', LIVE_PID, now - 60_000), ...staged('2026-04-23', 91247, now - 20 * HOUR) });
    const { code, stdout } = await scan(fs, [...LAYOUT, '--json'], NOW);
    expect(json(stdout).runs.map((r) => r.state).sort()).toEqual(['D', 'RUNNING']);
    expect(code).toBe(11);
  });

  it('RUNNING beside DONE only gives 20', async () => {
    const fs = volume({ ...staged('2026-04-24', LIVE_PID, now - 60_000), ...published('2026-04-23', now - 20 * HOUR) });
    expect((await scan(fs, [...LAYOUT, '--json'], NOW)).code).toBe(20);
  });
});

describe('scan --daily and time', () => {
  // 23:30 UTC on the 24th is already 11:30 on the 25th in Auckland.
  const LATE = '2026-04-24T23:30:00Z';
  const late = Date.parse(LATE);
  const fs = () => volume({ ...published('2026-04-23', late - 20 * HOUR), ...published('2026-04-22', late - 44 * HOUR) });
  const dates = (stdout: string) => json(stdout).runs.filter((r) => r.state === 'A/B/C').map((r) => r.run).sort();

  it('by default stops at yesterday: a run not yet due is not reported missed', async () => {
    const { code, stdout } = await scan(fs(), [...LAYOUT, '--daily', '--since', '3d', '--json'], LATE);
    expect(dates(stdout)).toEqual(['2026-04-21']);
    expect(code).toBe(10);
  });

  it('--tz decides which date is today', async () => {
    const { stdout } = await scan(fs(), [...LAYOUT, '--daily', '--since', '3d', '--tz', 'Pacific/Auckland', '--json'], LATE);
    // In Auckland it is the 25th: yesterday, the 24th, is due and missing.
    expect(dates(stdout)).toEqual(['2026-04-24']);
  });

  it('the local zone comes from $TZ', async () => {
    const { stdout } = await scan(fs(), [...LAYOUT, '--daily', '--since', '3d', '--json'], LATE, { TZ: 'Pacific/Auckland' });
    expect(dates(stdout)).toEqual(['2026-04-24']);
  });

  it('--until today includes today; --until DATE stops there', async () => {
    const today = await scan(fs(), [...LAYOUT, '--daily', '--since', '3d', '--until', 'today', '--json'], LATE);
    expect(dates(today.stdout)).toEqual(['2026-04-21', '2026-04-24']);
    const until = await scan(fs(), [...LAYOUT, '--daily', '--since', '3d', '--until', '2026-04-21', '--json'], LATE);
    expect(dates(until.stdout)).toEqual(['2026-04-21']);
  });

  it.each([
    [['--daily', '--tz', 'Mars/Olympus'], /--tz "Mars\/Olympus" is not a time zone/],
    [['--daily', '--until', '2026-02-30'], /--until "2026-02-30" is not a date/],
    [['--tz', 'UTC'], /--tz goes with --daily/],
  ])('refuses %j with exit 2', async (args, message) => {
    const { code, stderr } = await scan(fs(), [...LAYOUT, ...args], LATE);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});

describe('scan filters', () => {
  const fs = () =>
    volume({
      ...published('2026-04-23', now - 20 * HOUR),
      ...staged('2026-04-22', 91247, now - 40 * HOUR),
      ...published('2026-04-21', now - 60 * HOUR),
      ...staged('2026-04-21', 91248, now - 61 * HOUR),
    });

  it('--problems shows every run that is not DONE', async () => {
    const { stdout } = await scan(fs(), [...LAYOUT, '--problems', '--json'], NOW);
    expect(json(stdout).runs.map((r) => r.state).sort()).toEqual(['D', 'D-race']);
  });

  it('--state is repeatable and case-insensitive; the exit code is over the runs shown', async () => {
    const one = await scan(fs(), [...LAYOUT, '--state', 'd-race', '--json'], NOW);
    expect(json(one.stdout).runs.map((r) => r.state)).toEqual(['D-race']);
    expect(one.code).toBe(12);
    const two = await scan(fs(), [...LAYOUT, '--state', 'D', '--state', 'DONE', '--json'], NOW);
    expect(json(two.stdout).runs.map((r) => r.state).sort()).toEqual(['D', 'DONE']);
  });

  it('an unknown state is refused, so a typo never filters everything away', async () => {
    const { code, stderr } = await scan(fs(), [...LAYOUT, '--state', 'DEAD'], NOW);
    expect(code).toBe(2);
    expect(stderr).toContain('--state "DEAD" is not a state');
  });
});

describe('scan --all with a pipeline that cannot be scanned', () => {
  const config = {
    pipelines: {
      refunds: { outDir: OUT, stagingDir: STAGING, final: 'r_{date}.csv' },
      payments: { outDir: '/data/payments/out', stagingDir: '/data/payments/_staging', final: 'p_{date}.csv' },
      nofinal: { outDir: OUT, stagingDir: STAGING },
    },
  };
  const fs = (extra: Files = {}) =>
    volume({ ...published('2026-04-23', now - 20 * HOUR), ...extra }, { '/crashdiag.config.json': JSON.stringify(config) });

  it('is a row of its own with the reason in JSON; the others are still scanned', async () => {
    const { code, stdout, stderr } = await scan(fs(), ['--all', '--json'], NOW);
    const body = json(stdout);
    expect(body.pipelines.map((p) => [p.pipeline, p.scanned])).toEqual([
      ['nofinal', false],
      ['payments', false],
      ['refunds', true],
    ]);
    expect(body.pipelines.find((p) => p.pipeline === 'payments')?.error?.message).toMatch(/does not exist/);
    expect(body.pipelines.find((p) => p.pipeline === 'nofinal')?.error?.message).toMatch(/Missing --final/);
    expect(body.runs.map((r) => [r.pipeline, r.state])).toEqual([['refunds', 'DONE']]);
    expect(stderr).toContain('pipeline payments was not scanned');
    // Nothing scanned is worse than DONE: the configuration problem is the exit code.
    expect(code).toBe(2);
  });

  it('a crash in a scanned pipeline outranks it', async () => {
    const { code } = await scan(fs(staged('2026-04-22', 91247, now - 40 * HOUR)), ['--all', '--json'], NOW);
    expect(code).toBe(11);
  });

  it('gets crashdiag_scan_success 0, the others 1 and their metrics', async () => {
    const { stdout } = await scan(fs(), ['--all', '--format', 'prom'], NOW);
    const parsed = parsePrometheusText(stdout);
    expect(sampleValue(parsed, 'crashdiag_scan_success', { pipeline: 'payments' })).toBe(0);
    expect(sampleValue(parsed, 'crashdiag_scan_success', { pipeline: 'nofinal' })).toBe(0);
    expect(sampleValue(parsed, 'crashdiag_scan_success', { pipeline: 'refunds' })).toBe(1);
    expect(sampleValue(parsed, 'crashdiag_runs', { pipeline: 'refunds', state: 'DONE' })).toBe(1);
  });

  it('shows in the table as NOT SCANNED, with the reason below', async () => {
    const { stdout } = await scan(fs(), ['--all'], NOW);
    expect(stdout).toMatch(/payments .*NOT SCANNED/);
    expect(stdout).toContain('pipeline payments was not scanned: ');
  });
});

describe('scan output', () => {
  it('the pipeline label in the metrics matches the JSON', async () => {
    const fs = volume(published('2026-04-23', now - 20 * HOUR));
    const rows = json((await scan(fs, [...LAYOUT, '--json'], NOW)).stdout).runs;
    const prom = parsePrometheusText((await scan(fs, [...LAYOUT, '--format', 'prom'], NOW)).stdout);
    expect(rows[0]?.pipeline).toBe('default');
    expect(sampleValue(prom, 'crashdiag_runs', { pipeline: rows[0]?.pipeline ?? '', state: 'DONE' })).toBe(1);
  });

  it('at 80 columns no table line is wider than 80', async () => {
    const files: Files = {};
    for (let day = 10; day < 24; day++) Object.assign(files, staged(`2026-04-${day}`, 91_000 + day, now - (25 - day) * 24 * HOUR));
    Object.assign(files, published('2026-04-23', now - HOUR), { [`${OUT}/r_2026-04-22.csv`]: { mtimeMs: now - 20 * HOUR } });
    const { stdout } = await scan(volume(files), [...LAYOUT, '--daily'], NOW, { COLUMNS: '80' });
    expect(stdout).toContain('UNPUBLISHED');
    for (const line of stdout.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(80);
  });
});
