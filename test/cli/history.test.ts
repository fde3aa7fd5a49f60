import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import { recordingIo } from './cli-io.js';

// `crashdiag history` in process, on a memfs volume: the audit log is a file
// the test writes line by line, so each record is exactly what it shows.

const STAGING = '/data/refunds/_staging';
const OTHER_STAGING = '/data/payouts/_staging';
const LOG = `${STAGING}/.crashdiag/audit.jsonl`;
const CONFIG = '/work/crashdiag.config.json';

type Line = Record<string, unknown>;

function record(extra: Line): Line {
  return {
    time: '2026-04-24T06:08:00.000Z',
    user: 'oncall',
    host: 'batch-01',
    pid: 777,
    pipeline: null,
    run: '2026-04-24',
    ...extra,
  };
}

const deleted = (run: string, pid: number, extra: Line = {}) =>
  record({ op: 'delete', run, path: `${STAGING}/${run}.${pid}.csv`, bytes: 8192, writerPid: pid, ...extra });

function volume(files: Record<string, string>): FileSystem {
  return Volume.fromJSON(files).promises as unknown as FileSystem;
}

const logOf = (lines: readonly Line[]) => `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;

async function history(args: readonly string[], fs: FileSystem, env: Record<string, string> = {}) {
  const { io, stdout, stderr } = recordingIo({ fs, cwd: '/work', env: { NO_COLOR: '1', TZ: 'UTC', ...env } });
  const code = await run(['history', ...args], io);
  return { code, stdout: stdout(), stderr: stderr() };
}

/** The --json records, by what they name: op and run key. */
async function jsonRecords(args: readonly string[], fs: FileSystem) {
  const { code, stdout, stderr } = await history([...args, '--json'], fs);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const parsed = JSON.parse(stdout) as { schemaVersion: number; auditLog: string; records: Line[] };
  return parsed;
}

describe('crashdiag history', () => {
  it('shows the log as a table: the directory once, each file by name, sizes and local times', async () => {
    const fs = volume({
      [LOG]: logOf([
        deleted('2026-04-23', 91247),
        record({ op: 'rerun', command: ['node', 'job.js', '--date', '2026-04-24'], exitStatus: 0 }),
        record({ op: 'refuse', path: `${STAGING}/2026-04-24.5.csv`, reason: 'a live writer' }),
      ]),
    });
    const { code, stdout, stderr } = await history(['--staging-dir', STAGING], fs);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        `audit log: ${LOG}`,
        `directory: ${STAGING}`,
        '┌────────────────────────────┬─────────────────┬────────────┬────────┬────────────────────────────────────────┬─────────┬────────┐',
        '│ time                       │ who             │ run        │ action │ what                                   │ size    │ writer │',
        '│ 2026-04-24 06:08:00 +00:00 │ oncall@batch-01 │ 2026-04-23 │ delete │ 2026-04-23.91247.csv                   │ 8.0 KiB │ 91247  │',
        '│ 2026-04-24 06:08:00 +00:00 │ oncall@batch-01 │ 2026-04-24 │ rerun  │ node job.js --date 2026-04-24 (exit 0) │         │        │',
        '│ 2026-04-24 06:08:00 +00:00 │ oncall@batch-01 │ 2026-04-24 │ refuse │ 2026-04-24.5.csv (a live writer)       │         │        │',
        '└────────────────────────────┴─────────────────┴────────────┴────────┴────────────────────────────────────────┴─────────┴────────┘',
        '',
      ].join('\n'),
    );
  });

  it('--json prints every record as the log holds it, with the log\'s path and the schema version', async () => {
    const lines = [deleted('2026-04-23', 91247), record({ op: 'rerun', command: ['job'], exitStatus: 1 })];
    const parsed = await jsonRecords(['--staging-dir', STAGING], volume({ [LOG]: logOf(lines) }));
    expect(parsed).toEqual({ schemaVersion: 1, auditLog: LOG, records: lines });
  });

  it('--run shows only that run key\'s records', async () => {
    const fs = volume({ [LOG]: logOf([deleted('2026-04-22', 11), deleted('2026-04-23', 12), deleted('2026-04-22', 13)]) });
    const { records } = await jsonRecords(['--staging-dir', STAGING, '--run', '2026-04-22'], fs);
    expect(records.map((r) => r.writerPid)).toEqual([11, 13]);
    const { stdout } = await history(['--staging-dir', STAGING, '--run', '2026-04-22'], fs);
    expect(stdout).toContain('2026-04-22.11.csv');
    expect(stdout).toContain('2026-04-22.13.csv');
    expect(stdout).not.toContain('2026-04-23');
  });

  it('--run refuses a run key that is not one (exit 2), before reading anything', async () => {
    const { code, stderr, stdout } = await history(['--staging-dir', STAGING, '--run', '../etc'], volume({}));
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^crashdiag: /);
    expect(stderr).not.toContain('    at ');
  });

  it('--limit N shows the last N actions, oldest first', async () => {
    const lines = [11, 12, 13, 14, 15].map((pid) => deleted('2026-04-23', pid));
    const fs = volume({ [LOG]: logOf(lines) });
    const { records } = await jsonRecords(['--staging-dir', STAGING, '--limit', '2'], fs);
    expect(records.map((r) => r.writerPid)).toEqual([14, 15]);
  });

  it('without --limit shows the last 50', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => deleted('2026-04-23', 100 + i));
    const { records } = await jsonRecords(['--staging-dir', STAGING], volume({ [LOG]: logOf(lines) }));
    expect(records.map((r) => r.writerPid)).toEqual(lines.slice(10).map((l) => l.writerPid));
  });

  it.each([
    ['0', '--limit takes a whole number of at least 1.'],
    ['1.5', '--limit takes a whole number, not "1.5".'],
  ])('--limit %s is refused (exit 2)', async (limit, sentence) => {
    const { code, stderr } = await history(['--staging-dir', STAGING, '--limit', limit], volume({}));
    expect(code).toBe(2);
    expect(stderr).toBe(`crashdiag: ${sentence}\n`);
  });

  it('--pipeline reads that pipeline\'s log from the config, and only its records and those of no pipeline', async () => {
    const config = {
      pipelines: {
        refunds: { outDir: '/data/refunds/out', stagingDir: STAGING, final: 'r_{date}.csv' },
        payouts: { outDir: '/data/payouts/out', stagingDir: OTHER_STAGING, final: 'p_{date}.csv' },
      },
    };
    const fs = volume({
      [CONFIG]: JSON.stringify(config),
      // A log shared by two pipelines (an --audit-log both name): each sees its own.
      [LOG]: logOf([
        deleted('2026-04-23', 11, { pipeline: 'refunds' }),
        deleted('2026-04-23', 12, { pipeline: 'payouts' }),
        deleted('2026-04-23', 13),
      ]),
    });
    const parsed = await jsonRecords(['--pipeline', 'refunds'], fs);
    expect(parsed.auditLog).toBe(LOG);
    expect(parsed.records.map((r) => r.writerPid)).toEqual([11, 13]);
  });

  it('--pipeline with no config anywhere is a usage error that says where it looked', async () => {
    const { code, stderr, stdout } = await history(['--pipeline', 'refunds'], volume({ '/work/.keep': '' }));
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('--pipeline refunds needs a config file, and none was found');
  });

  it('with no log named at all, says how to name one (exit 2)', async () => {
    const { code, stderr } = await history([], volume({}));
    expect(code).toBe(2);
    expect(stderr).toContain('Name the audit log: --pipeline NAME, --staging-dir DIR or --audit-log FILE.');
  });

  it('--utc shows times in UTC whatever $TZ says; without it, in $TZ', async () => {
    const fs = volume({ [LOG]: logOf([deleted('2026-04-23', 11)]) });
    const utc = await history(['--staging-dir', STAGING, '--utc'], fs, { TZ: 'America/New_York' });
    expect(utc.stdout).toContain('2026-04-24 06:08:00 +00:00');
    const local = await history(['--staging-dir', STAGING], fs, { TZ: 'America/New_York' });
    expect(local.stdout).toContain('2026-04-24 02:08:00 -04:00');
    expect(local.stdout).not.toContain('+00:00');
  });

  it('shows an intent only while no outcome followed it; --json keeps every line', async () => {
    const path = `${STAGING}/2026-04-23.11.csv`;
    const cut = `${STAGING}/2026-04-23.12.csv`;
    const lines = [
      record({ op: 'intent', intent: 'delete', path }),
      record({ op: 'delete', path, bytes: 8192, writerPid: 11 }),
      // The same crashdiag (host, pid) was killed between this intent and its outcome.
      record({ op: 'intent', intent: 'delete', path: cut }),
    ];
    const fs = volume({ [LOG]: logOf(lines) });
    const { stdout } = await history(['--staging-dir', STAGING], fs);
    expect(stdout.match(/ intent /g)).toHaveLength(1);
    expect(stdout.match(/ delete /g)).toHaveLength(1);
    expect(stdout).toContain('2026-04-23.12.csv (about to delete; no outcome recorded');
    expect(stdout).not.toContain('2026-04-23.11.csv (about to delete');
    const { records } = await jsonRecords(['--staging-dir', STAGING], fs);
    expect(records.map((r) => r.op)).toEqual(['intent', 'delete', 'intent']);
  });

  it('an intent from another crashdiag (another pid) is not settled by this one\'s outcome', async () => {
    const path = `${STAGING}/2026-04-23.11.csv`;
    const lines = [
      record({ op: 'intent', intent: 'delete', path, pid: 900 }),
      record({ op: 'delete', path, bytes: 8192, writerPid: 11, pid: 901 }),
    ];
    const { stdout } = await history(['--staging-dir', STAGING], volume({ [LOG]: logOf(lines) }));
    expect(stdout.match(/ intent /g)).toHaveLength(1);
  });

  it('a missing log: "No actions recorded", exit 0, in both forms', async () => {
    const fs = volume({ [`${STAGING}/.keep`]: '' });
    const { code, stdout, stderr } = await history(['--staging-dir', STAGING], fs);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: `No actions recorded in ${LOG}.\n`, stderr: '' });
    expect(await jsonRecords(['--staging-dir', STAGING], fs)).toEqual({ schemaVersion: 1, auditLog: LOG, records: [] });
  });

  it('an unreadable log: one sentence naming it, exit 2, no stack', async () => {
    const base = volume({ [LOG]: logOf([deleted('2026-04-23', 11)]) });
    const denied: FileSystem = {
      ...base,
      open: async (path: unknown) => {
        throw Object.assign(new Error(`EACCES: permission denied, open '${String(path)}'`), { code: 'EACCES' });
      },
    };
    for (const json of [[], ['--json']]) {
      const { code, stdout, stderr } = await history(['--staging-dir', STAGING, ...json], denied);
      expect(code).toBe(2);
      expect(stderr).toBe(`crashdiag: The audit log ${LOG} cannot be read (permission denied).\n`);
      if (json.length > 0) expect(JSON.parse(stdout)).toMatchObject({ exitCode: 2, error: { code: 'usage' } });
      else expect(stdout).toBe('');
    }
  });

  it('a line cut short by a crash mid-append is shown as such; the other lines still count', async () => {
    const fs = volume({ [LOG]: `${JSON.stringify(deleted('2026-04-23', 11))}\n{"time": "2026-04-2` });
    const { code, stdout } = await history(['--staging-dir', STAGING], fs);
    expect(code).toBe(0);
    expect(stdout).toContain('2026-04-23.11.csv');
    expect(stdout).toContain(`line 2 of ${LOG} is not valid JSON`);
  });

  it('a planted record cannot drive the terminal: control characters are escaped', async () => {
    const fs = volume({ [LOG]: logOf([deleted('2026-04-23', 11, { user: 'x\u001b[2Jy', time: 'not\u0007a time' })]) });
    const { stdout } = await history(['--staging-dir', STAGING], fs);
    expect(stdout).not.toContain('\u001b');
    expect(stdout).not.toContain('\u0007');
  });
});
