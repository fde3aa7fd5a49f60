import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import { classifyRun } from '../../src/core/classify.js';
import { UsageError } from '../../src/core/errors.js';
import type { FileSystem } from '../../src/core/fs.js';
import { probeRun } from '../../src/core/probe.js';
import type { ProcessFacts, ProcessTable } from '../../src/core/process-table.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { setTimes } from '../support/ctime.js';

const NOW = Date.parse('2026-04-24T06:08:00Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const KEY = '2026-04-24';
const OUT = '/data/out';
const STAGING = '/data/_staging';
const FINAL = `${OUT}/refunds_settled_${KEY}.csv`;
const MARKER = `${FINAL}.success`;
const staged = (name: string) => `${STAGING}/${name}`;

type Vol = InstanceType<typeof Volume>;

/**
 * A memfs volume from an object literal: a string is a file's content, null
 * a directory. Every entry is last modified `ages[path]` (default an hour)
 * before NOW.
 */
function disk(entries: Record<string, string | null>, ages: Record<string, number> = {}): Vol {
  const vol = Volume.fromJSON({ [OUT]: null, [STAGING]: null, ...entries });
  for (const path of Object.keys(entries)) {
    setTimes(vol, path, NOW - (ages[path] ?? HOUR));
  }
  return vol;
}

/** A process table that knows the given PIDs, and remembers every PID it was asked about. */
function fakeTable(known: Record<number, ProcessFacts> = {}, hostname = 'batch-01') {
  const asked: number[] = [];
  const table: ProcessTable = {
    hostname,
    inspect(pid) {
      asked.push(pid);
      return known[pid] ?? { exists: false };
    },
  };
  return { table, asked };
}

interface Hooks {
  /** Called before each lstat; may throw to stand in for a disk error. */
  readonly lstat?: (path: string) => void;
}

/** The volume's promise API, counting directory listings and letting a test break lstat. */
function instrument(vol: Vol, hooks: Hooks = {}) {
  const base = vol.promises as unknown as FileSystem;
  const opened: string[] = [];
  const fs = new Proxy(base, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as (...args: unknown[]) => unknown;
      if (key === 'opendir') {
        return (path: string, ...rest: unknown[]) => {
          opened.push(path);
          return value.call(target, path, ...rest);
        };
      }
      if (key === 'lstat') {
        return async (path: string, ...rest: unknown[]) => {
          hooks.lstat?.(path);
          return value.call(target, path, ...rest);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { fs, opened };
}

function errno(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

function settingsFor(flags: Parameters<typeof resolveSettings>[0] = {}): PipelineSettings {
  return resolveSettings(
    { outDir: OUT, stagingDir: STAGING, final: 'refunds_settled_{date}.csv', ...flags },
    undefined,
    {},
    '/',
  );
}

function probe(
  fs: FileSystem | Vol,
  table: ProcessTable = fakeTable().table,
  settings: PipelineSettings = settingsFor(),
) {
  const files = fs instanceof Volume ? (fs.promises as unknown as FileSystem) : fs;
  return probeRun({ fs: files, processes: table, nowMs: NOW }, settings, KEY);
}

describe('probeRun', () => {
  it('reads the output, its marker and this key’s staging files, and nothing else', async () => {
    const vol = disk(
      {
        [FINAL]: 'a,b\n1,2\n',
        [MARKER]: '',
        [staged('2026-04-24.91247.csv')]: 'partial',
        [staged('2026-04-240.123.csv')]: 'x',
        [staged('2026-04-24.backup.csv')]: 'x',
        [staged('2026-04-24.12x.csv')]: 'x',
        [staged('2026-04-23.123.csv')]: 'x',
        [staged('2026-04-24.123.csv.bak')]: 'x',
        [staged('README')]: 'x',
        [`${OUT}/refunds_settled_2026-04-23.csv`]: 'x',
      },
      { [FINAL]: 2 * HOUR, [MARKER]: 2 * HOUR - MINUTE, [staged('2026-04-24.91247.csv')]: 5 * MINUTE },
    );
    const { table, asked } = fakeTable({ 91247: { exists: true, startMs: NOW - HOUR } });
    const evidence = await probe(vol, table);

    expect(evidence).toEqual({
      runKey: KEY,
      nowMs: NOW,
      rules: { freshWithinMs: 6 * HOUR, staleAfterMs: 15 * MINUTE },
      finalKeyed: true,
      // The birth time is memfs's clock, not the one the helper sets: only its presence is ours.
      final: { path: FINAL, status: 'present', kind: 'file', bytes: 8, mtimeMs: NOW - 2 * HOUR, ctimeMs: NOW - 2 * HOUR, birthtimeMs: expect.any(Number) },
      marker: { path: MARKER, status: 'present', kind: 'file', bytes: 0, mtimeMs: NOW - 2 * HOUR + MINUTE, ctimeMs: NOW - 2 * HOUR + MINUTE, birthtimeMs: expect.any(Number) },
      staging: [
        {
          path: staged('2026-04-24.91247.csv'),
          status: 'present',
          kind: 'file',
          bytes: 7,
          mtimeMs: NOW - 5 * MINUTE,
          ctimeMs: NOW - 5 * MINUTE,
          birthtimeMs: expect.any(Number),
          name: '2026-04-24.91247.csv',
          pid: 91247,
          host: undefined,
          pidCheck: { checked: true, facts: { exists: true, startMs: NOW - HOUR } },
        },
      ],
    });
    // Look-alikes are not ours: their "PIDs" are never even asked about.
    expect(asked).toEqual([91247]);
    expect(classifyRun(evidence).state).toBe('RUNNING');
  });

  it('reports a missing output and marker as facts, not errors', async () => {
    const evidence = await probe(disk({}));
    expect(evidence.final).toEqual({ path: FINAL, status: 'missing' });
    expect(evidence.marker).toEqual({ path: MARKER, status: 'missing' });
    expect(evidence.staging).toEqual([]);
    expect(classifyRun(evidence).state).toBe('A/B/C');
  });

  it('sorts staging files by path', async () => {
    const vol = disk({
      [staged('2026-04-24.9.csv')]: 'x',
      [staged('2026-04-24.100.csv')]: 'x',
      [staged('2026-04-24.10.csv')]: 'x',
    });
    const paths = (await probe(vol)).staging.map((s) => s.path);
    expect(paths).toEqual([
      staged('2026-04-24.10.csv'),
      staged('2026-04-24.100.csv'),
      staged('2026-04-24.9.csv'),
    ]);
  });

  it('reports a symlink in staging as a symlink: lstat, never followed', async () => {
    const vol = disk({ '/elsewhere/big.csv': 'x'.repeat(5000) });
    vol.symlinkSync('/elsewhere/big.csv', staged('2026-04-24.91247.csv'));
    vol.symlinkSync('/nowhere', staged('2026-04-24.91248.csv'));
    const evidence = await probe(vol);
    expect(evidence.staging.map((s) => [s.pid, s.status, s.kind])).toEqual([
      [91247, 'present', 'symlink'],
      [91248, 'present', 'symlink'],
    ]);
    expect(evidence.staging[0]?.bytes).not.toBe(5000);
    expect(classifyRun(evidence).state).toBe('UNKNOWN');
  });

  it('reports a symlinked output as a symlink, even when its target is a file', async () => {
    const vol = disk({ '/elsewhere/out.csv': 'x'.repeat(5000), [MARKER]: '' });
    vol.symlinkSync('/elsewhere/out.csv', FINAL);
    const evidence = await probe(vol);
    expect(evidence.final).toMatchObject({ status: 'present', kind: 'symlink' });
    expect(classifyRun(evidence).state).toBe('UNKNOWN');
  });

  it('reports a directory named like a staging file as a directory', async () => {
    const evidence = await probe(disk({ [staged('2026-04-24.91247.csv')]: null }));
    expect(evidence.staging.map((s) => s.kind)).toEqual(['directory']);
  });

  it('reports a staging entry it cannot lstat as unreadable', async () => {
    const vol = disk({ [staged('2026-04-24.91247.csv')]: 'x', [staged('2026-04-24.91248.csv')]: 'x' });
    const { fs } = instrument(vol, {
      lstat: (path) => {
        if (path === staged('2026-04-24.91247.csv')) throw errno('EACCES');
      },
    });
    const evidence = await probe(fs);
    expect(evidence.staging.map((s) => [s.pid, s.status, s.error])).toEqual([
      [91247, 'unreadable', 'EACCES'],
      [91248, 'present', undefined],
    ]);
    expect(classifyRun(evidence).state).toBe('UNKNOWN');
  });

  it('drops a staging file that vanishes between the listing and its lstat (it was renamed or cleaned)', async () => {
    const vol = disk({ [staged('2026-04-24.91247.csv')]: 'x' });
    const { fs } = instrument(vol, {
      lstat: (path) => {
        if (path === staged('2026-04-24.91247.csv')) vol.unlinkSync(path);
      },
    });
    expect((await probe(fs)).staging).toEqual([]);
  });

  it('lets an unexpected disk error through instead of guessing', async () => {
    const { fs } = instrument(disk({}), {
      lstat: (path) => {
        if (path === FINAL) throw errno('EINVAL');
      },
    });
    await expect(probe(fs)).rejects.toThrow(/EINVAL/);
    await expect(probe(fs)).rejects.not.toBeInstanceOf(UsageError);
  });

  it('lists the staging directory exactly once', async () => {
    const entries: Record<string, string> = {};
    // More entries than one listing batch holds.
    for (let i = 1; i <= 1000; i++) entries[staged(`2026-04-${i % 2 ? '24' : '23'}.${i}.csv`)] = 'x';
    const { fs, opened } = instrument(disk(entries));
    const evidence = await probe(fs);
    expect(opened).toEqual([STAGING]);
    expect(evidence.staging).toHaveLength(500);
  });

  describe('the writer question', () => {
    const file = staged('2026-04-24.91247.csv');

    it('asks nothing of the process table under --no-pid-check', async () => {
      const { table, asked } = fakeTable({ 91247: { exists: true, startMs: NOW - HOUR } });
      const evidence = await probe(disk({ [file]: 'x' }), table, settingsFor({ pidCheck: false }));
      expect(evidence.staging[0]?.pidCheck).toEqual({
        checked: false,
        why: 'PID checks are off (--no-pid-check)',
      });
      expect(asked).toEqual([]);
    });

    it('judges a PID only on the host that wrote the file', async () => {
      const vol = disk({
        [staged('2026-04-24.batch-01.100.csv')]: 'x',
        [staged('2026-04-24.batch-02.200.csv')]: 'x',
      });
      const { table, asked } = fakeTable({ 100: { exists: true, startMs: NOW - HOUR } }, 'batch-01');
      const evidence = await probe(vol, table, settingsFor({ staging: '{date}.{host}.{pid}.csv' }));
      expect(evidence.staging.map((s) => [s.host, s.pid, s.pidCheck])).toEqual([
        ['batch-01', 100, { checked: true, facts: { exists: true, startMs: NOW - HOUR } }],
        ['batch-02', 200, { checked: false, why: 'written on host batch-02, not this one (batch-01)' }],
      ]);
      expect(asked).toEqual([100]);
    });

    it('attack (issue 9.1): a number no kernel hands out as a PID makes no staging file: K.20260425.csv is not K’s orphan', async () => {
      const { table, asked } = fakeTable();
      const vol = disk(
        { [staged('2026-04-24.99999999.csv')]: 'x', [staged('2026-04-24.20260425.csv')]: 'a dated file' },
        { [staged('2026-04-24.99999999.csv')]: DAY, [staged('2026-04-24.20260425.csv')]: DAY },
      );
      const evidence = await probe(vol, table);
      expect(evidence.staging).toEqual([]);
      expect(asked).toEqual([]);
      expect(classifyRun(evidence).state).toBe('A/B/C');
    });
  });

  describe('pipeline layouts', () => {
    it('leaves the marker out under --no-marker', async () => {
      const evidence = await probe(
        disk({ [FINAL]: 'x', [MARKER]: '' }),
        undefined,
        settingsFor({ marker: false }),
      );
      expect(evidence.marker).toBeNull();
      expect(classifyRun(evidence).state).toBe('DONE');
    });

    it('follows the marker template', async () => {
      const vol = disk({ [FINAL]: 'x', [`${OUT}/_SUCCESS_${KEY}`]: '' });
      const evidence = await probe(vol, undefined, settingsFor({ marker: '_SUCCESS_{date}' }));
      expect(evidence.marker).toMatchObject({ path: `${OUT}/_SUCCESS_${KEY}`, status: 'present' });
    });

    it('says a fixed output name does not carry the run key', async () => {
      const vol = disk({ [`${OUT}/latest.csv`]: 'x', [`${OUT}/latest.csv.success`]: '' });
      const evidence = await probe(vol, undefined, settingsFor({ final: 'latest.csv' }));
      expect(evidence.finalKeyed).toBe(false);
      expect(evidence.final).toMatchObject({ path: `${OUT}/latest.csv`, status: 'present' });
      expect(evidence.marker).toMatchObject({ path: `${OUT}/latest.csv.success`, status: 'present' });
    });

    it('carries the rules it was given', async () => {
      const evidence = await probe(
        disk({}),
        undefined,
        settingsFor({ freshWithin: '2d', staleAfter: '90s' }),
      );
      expect(evidence.rules).toEqual({ freshWithinMs: 2 * 24 * HOUR, staleAfterMs: 90_000 });
    });
  });

  describe('directories it cannot use', () => {
    it.each([
      ['output', { [STAGING]: null }, /^The output directory \/data\/out does not exist\.$/],
      ['staging', { [OUT]: null }, /^The staging directory \/data\/_staging does not exist\.$/],
    ])('refuses a missing %s directory', async (_, layout, message) => {
      const vol = Volume.fromJSON(layout);
      await expect(probe(vol)).rejects.toThrow(UsageError);
      await expect(probe(vol)).rejects.toThrow(message);
    });

    it('refuses an output directory that is a file', async () => {
      const vol = Volume.fromJSON({ [OUT]: 'not a dir', [STAGING]: null });
      await expect(probe(vol)).rejects.toThrow('The output directory /data/out is not a directory.');
    });

    it('refuses a staging directory it may not list, and changes nothing', async () => {
      const vol = disk({ [staged('2026-04-24.91247.csv')]: 'x' });
      vol.chmodSync(STAGING, 0);
      await expect(probe(vol)).rejects.toThrow(UsageError);
      await expect(probe(vol)).rejects.toThrow(
        'The staging directory /data/_staging cannot be listed (permission denied).',
      );
      vol.chmodSync(STAGING, 0o755);
      expect(vol.existsSync(staged('2026-04-24.91247.csv'))).toBe(true);
    });
  });
});
