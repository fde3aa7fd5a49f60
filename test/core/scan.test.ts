import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import { classifyRun, KEPT_ANOMALIES } from '../../src/core/classify.js';
import type { FileSystem } from '../../src/core/fs.js';
import { probeRun } from '../../src/core/probe.js';
import type { ProcessTable } from '../../src/core/process-table.js';
import { datesBetween, type ScanResult, scanPipeline } from '../../src/core/scan.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { setTimes } from '../support/ctime.js';

const NOW = Date.parse('2026-04-24T06:08:00Z');
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const at = (iso: string) => Date.parse(iso);

const OUT = '/data/out';
const STAGING = '/data/_staging';
const FINAL = 'refunds_settled_{date}.csv';

/** PIDs the fake process table reports as running, with their start times. */
const LIVE_WRITER = 4242;
const REUSED_PID = 4343;
const DEAD = 31337;

function fakeProcesses(alive: Readonly<Record<number, number>>): ProcessTable {
  return {
    hostname: 'batch-01',
    inspect: (pid) => {
      const startMs = alive[pid];
      return startMs === undefined ? { exists: false } : { exists: true, startMs };
    },
  };
}

const processes = fakeProcesses({
  [LIVE_WRITER]: NOW - 2 * HOUR,
  // Started a minute ago: it cannot have written a file last touched hours ago.
  [REUSED_PID]: NOW - MINUTE,
});

interface Entry {
  readonly content?: string;
  readonly mtimeMs: number;
  /** A symlink to this target instead of a file. */
  readonly symlinkTo?: string;
  readonly directory?: true;
}

/** A memfs volume from an object literal of paths, with the mtimes the test needs. */
function volumeOf(entries: Readonly<Record<string, Entry>>, dirs: readonly string[] = [OUT, STAGING]) {
  const vol = new Volume();
  for (const dir of dirs) vol.mkdirSync(dir, { recursive: true });
  for (const [path, entry] of Object.entries(entries)) {
    if (entry.symlinkTo !== undefined) {
      vol.symlinkSync(entry.symlinkTo, path);
      continue;
    }
    if (entry.directory) vol.mkdirSync(path, { recursive: true });
    else vol.writeFileSync(path, entry.content ?? 'x');
    setTimes(vol, path, entry.mtimeMs);
  }
  return vol;
}

interface CountingFs {
  readonly fs: FileSystem;
  readonly listed: string[];
  readonly lstated: string[];
}

/**
 * The volume's promise API with every directory listing and every lstat
 * recorded; `beforeLstat` lets a test change the disk at a chosen moment.
 */
function counting(vol: InstanceType<typeof Volume>, beforeLstat?: (path: string) => void): CountingFs {
  const base = vol.promises as unknown as FileSystem;
  const listed: string[] = [];
  const lstated: string[] = [];
  const fs = new Proxy(base, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (key === 'opendir') {
        return (path: string, ...rest: unknown[]) => {
          listed.push(path);
          return (value as (...args: unknown[]) => unknown).call(target, path, ...rest);
        };
      }
      if (key === 'lstat') {
        return (path: string, ...rest: unknown[]) => {
          lstated.push(path);
          beforeLstat?.(path);
          return (value as (...args: unknown[]) => unknown).call(target, path, ...rest);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { fs, listed, lstated };
}

function settingsFor(flags: Parameters<typeof resolveSettings>[0] = {}): PipelineSettings {
  return resolveSettings({ outDir: OUT, stagingDir: STAGING, final: FINAL, ...flags }, undefined, {}, '/');
}

async function scan(
  fs: FileSystem,
  settings: PipelineSettings,
  options: { sinceMs?: number; daily?: boolean } = {},
  table: ProcessTable = processes,
): Promise<ScanResult> {
  return scanPipeline({ fs, processes: table, nowMs: NOW, wallClock: () => NOW }, settings, {
    sinceMs: options.sinceMs ?? 7 * DAY,
    daily: options.daily ?? false,
  });
}

const states = (result: ScanResult) => Object.fromEntries(result.runs.map((r) => [r.run, r.state]));
const out = (name: string) => `${OUT}/${name}`;
const staged = (name: string) => `${STAGING}/${name}`;
const output = (key: string) => out(`refunds_settled_${key}.csv`);
const marker = (key: string) => `${output(key)}.success`;

/**
 * Every state a run can be in, one or more keys each, plus look-alikes that
 * belong to no run. The window is 7 days back from 2026-04-24T06:08Z.
 */
const FLEET: Readonly<Record<string, Entry>> = {
  // DONE, published inside the window.
  [output('2026-04-17')]: { content: 'a,b\n', mtimeMs: at('2026-04-17T07:00:00Z') },
  [marker('2026-04-17')]: { content: '', mtimeMs: at('2026-04-17T07:00:01Z') },
  // D: the writer died mid-write, twice (a retrying wrapper).
  [staged('2026-04-18.31337.csv')]: { content: 'partial', mtimeMs: at('2026-04-18T06:03:00Z') },
  [staged('2026-04-18.31338.csv')]: { content: 'partial row', mtimeMs: at('2026-04-18T06:13:00Z') },
  // 2026-04-19: nothing at all (A/B/C with --daily, invisible without).
  // D-race: published, and a dead orphan beside it.
  [output('2026-04-20')]: { content: 'a,b,c\n', mtimeMs: at('2026-04-20T07:00:00Z') },
  [marker('2026-04-20')]: { content: '', mtimeMs: at('2026-04-20T07:00:01Z') },
  [staged('2026-04-20.31337.csv')]: { content: '12345', mtimeMs: at('2026-04-20T06:05:00Z') },
  // UNPUBLISHED: the output without its marker.
  [output('2026-04-21')]: { content: 'a\n', mtimeMs: at('2026-04-21T07:00:00Z') },
  // UNKNOWN: a marker without its output.
  [marker('2026-04-22')]: { content: '', mtimeMs: at('2026-04-22T07:00:00Z') },
  // RUNNING: the writer is alive and started before its last write.
  [staged(`2026-04-23.${LIVE_WRITER}.csv`)]: { content: 'in flight', mtimeMs: NOW - MINUTE },
  // D by a reused PID: the process with that PID started after the file was last written.
  [staged(`2026-04-16.${REUSED_PID}.csv`)]: { content: 'old', mtimeMs: NOW - 3 * HOUR },
  // UNKNOWN, far outside the window: a symlink where a staging file should be.
  [staged('2026-03-01.31337.csv')]: { symlinkTo: '/etc/passwd', mtimeMs: at('2026-03-01T00:00:00Z') },
  // UNKNOWN: a directory named like a staging file.
  [staged('2026-03-02.31337.csv')]: { directory: true, mtimeMs: at('2026-03-02T00:00:00Z') },
  // D, a year old: orphans of any age are always listed.
  [staged('2025-04-01.31337.csv')]: { content: 'ancient', mtimeMs: at('2025-04-01T06:00:00Z') },
  // DONE long ago: outside the window, not listed.
  [output('2026-04-01')]: { content: 'old\n', mtimeMs: at('2026-04-01T07:00:00Z') },
  [marker('2026-04-01')]: { content: '', mtimeMs: at('2026-04-01T07:00:01Z') },
  // DONE long ago, but its marker was touched yesterday: listed.
  [output('2026-04-02')]: { content: 'old\n', mtimeMs: at('2026-04-02T07:00:00Z') },
  [marker('2026-04-02')]: { content: '', mtimeMs: at('2026-04-23T12:00:00Z') },
  // Look-alikes: none of these is a run's file.
  [out('refunds_settled_2026-04-19.csv.tmp')]: { mtimeMs: NOW - HOUR },
  [out('refunds_settled_bad key.csv')]: { mtimeMs: NOW - HOUR },
  [out('refunds_settled_2026-04-19.csv.success.bak')]: { mtimeMs: NOW - HOUR },
  [out('README')]: { mtimeMs: NOW - HOUR },
  [staged('2026-04-19.notapid.csv')]: { mtimeMs: NOW - DAY },
  [staged('2026-04-19.31337.csv.partial')]: { mtimeMs: NOW - DAY },
  [staged('2026-04-19.31337.tsv')]: { mtimeMs: NOW - DAY },
  [staged('bad key.31337.csv')]: { mtimeMs: NOW - DAY },
  [staged('notes.txt')]: { mtimeMs: NOW - DAY },
};

const FLEET_STATES = {
  '2026-04-17': 'DONE',
  '2026-04-18': 'D',
  '2026-04-20': 'D-race',
  '2026-04-21': 'UNPUBLISHED',
  '2026-04-22': 'UNKNOWN',
  '2026-04-23': 'RUNNING',
  '2026-04-16': 'D',
  '2026-03-01': 'UNKNOWN',
  '2026-03-02': 'UNKNOWN',
  '2025-04-01': 'D',
  '2026-04-02': 'DONE',
};

describe('scanPipeline over a fleet of runs in every state', () => {
  it('names the state of every key with a staging file or a recent output, and nothing else', async () => {
    const { fs } = counting(volumeOf(FLEET));
    const result = await scan(fs, settingsFor());
    expect(states(result)).toEqual(FLEET_STATES);
    expect(result.pipeline).toBeUndefined();
  });

  it('with --daily adds every date in the window without an output as A/B/C', async () => {
    const { fs } = counting(volumeOf(FLEET));
    const result = await scan(fs, settingsFor(), { daily: true });
    // 2026-04-17 to 2026-04-24: 2026-04-19 and today have nothing; 04-18 and 04-23 have staging files.
    expect(states(result)).toEqual({ ...FLEET_STATES, '2026-04-19': 'A/B/C', '2026-04-24': 'A/B/C' });
  });

  it('reports orphan counts, bytes, the writer verdicts and the evidence per run', async () => {
    const { fs } = counting(volumeOf(FLEET));
    const result = await scan(fs, settingsFor());
    const run = (key: string) => {
      const found = result.runs.find((r) => r.run === key);
      if (!found) throw new Error(`no run ${key}`);
      return found;
    };
    // Totals only: scan keeps no record per file.
    expect(run('2026-04-18').totals).toEqual({
      orphanCount: 2, orphanBytes: 18, oldestOrphanAgeSeconds: expect.any(Number), liveWriters: 0, anomalyCount: 0,
    });
    expect(run('2026-04-20').totals.orphanBytes).toBe(5);
    expect([run('2026-04-23').totals.liveWriters, run('2026-04-23').summary]).toEqual([1, expect.stringContaining(`PID ${LIVE_WRITER}`)]);
    // A live PID that started after the file's last change, the file quiet: a reused PID, so an orphan.
    expect([run('2026-04-16').state, run('2026-04-16').totals.orphanCount]).toEqual(['D', 1]);
    expect(run('2026-03-01').anomalies.map((a) => a.reason)).toEqual([
      expect.stringMatching(/symlink where a staging file should be/),
    ]);
    expect(run('2026-03-02').anomalies.map((a) => a.reason)).toEqual([
      expect.stringMatching(/directory where a staging file should be/),
    ]);
    expect(run('2026-04-22').anomalies.map((a) => a.reason)).toEqual([
      expect.stringMatching(/success marker without its output/),
    ]);
    expect(run('2025-04-01').totals.oldestOrphanAgeSeconds).toBe((NOW - at('2025-04-01T06:00:00Z')) / 1000);
    // Newest published: 2026-04-20's output (2026-04-21's has no marker, 2026-04-22's marker no output).
    expect(result.newestPublishedMs).toBe(at('2026-04-20T07:00:00Z'));
  });

  it('sorts worst first: highest exit code, then the newest run key', async () => {
    const { fs } = counting(volumeOf(FLEET));
    const result = await scan(fs, settingsFor(), { daily: true });
    expect(result.runs.map((r) => r.run)).toEqual([
      '2026-04-22',
      '2026-03-02',
      '2026-03-01',
      '2026-04-23',
      '2026-04-21',
      '2026-04-20',
      '2026-04-18',
      '2026-04-16',
      '2025-04-01',
      '2026-04-24',
      '2026-04-19',
      '2026-04-17',
      '2026-04-02',
    ]);
    const codes = result.runs.map((r) => r.exitCode);
    expect(codes).toEqual([...codes].sort((a, b) => b - a));
  });
});

describe('scanPipeline reads each directory once', () => {
  const UNRELATED = 1000;
  const crowded = (): Record<string, Entry> => {
    const entries: Record<string, Entry> = { ...FLEET };
    for (let i = 0; i < UNRELATED; i++) {
      const n = String(i).padStart(4, '0');
      entries[out(`unrelated-${n}.log`)] = { mtimeMs: NOW - HOUR };
      entries[staged(`unrelated-${n}.log`)] = { mtimeMs: NOW - HOUR };
    }
    return entries;
  };

  it('lists the output and the staging directory exactly once each, whatever the number of keys', async () => {
    const { fs, listed } = counting(volumeOf(crowded()));
    const result = await scan(fs, settingsFor(), { daily: true });
    expect(result.runs.length).toBe(13);
    expect([...listed].sort()).toEqual([STAGING, OUT].sort());
  });

  it('lstats only the entries that match a template, each at most once', async () => {
    const { fs, lstated } = counting(volumeOf(crowded()));
    await scan(fs, settingsFor(), { daily: true });
    const matching = Object.keys(FLEET).filter(
      (path) => !/unrelated|\.tmp$|bad key|README|notapid|\.partial$|\.tsv$|notes\.txt|\.bak$/.test(path),
    );
    expect(lstated.filter((path) => path.includes('unrelated'))).toEqual([]);
    expect(new Set(lstated).size).toBe(lstated.length);
    expect(lstated.length).toBeLessThanOrEqual(matching.length);
    for (const path of lstated) expect(matching).toContain(path);
  });

  it('lists a directory that is both the output and the staging directory once', async () => {
    const entries: Record<string, Entry> = {
      [out('refunds_settled_2026-04-22.csv')]: { mtimeMs: at('2026-04-22T07:00:00Z') },
      [out('refunds_settled_2026-04-22.csv.success')]: { mtimeMs: at('2026-04-22T07:00:01Z') },
      [out('2026-04-22.31337.csv')]: { mtimeMs: at('2026-04-22T06:00:00Z') },
      [out('2026-04-23.31337.csv')]: { mtimeMs: at('2026-04-23T06:00:00Z') },
      [out('refunds_settled_2026-04-21.csv')]: { mtimeMs: at('2026-04-21T07:00:00Z') },
      [out('refunds_settled_2026-04-21.csv.success')]: { mtimeMs: at('2026-04-21T07:00:01Z') },
    };
    for (let i = 0; i < UNRELATED; i++) entries[out(`unrelated-${i}.log`)] = { mtimeMs: NOW - HOUR };
    const { fs, listed, lstated } = counting(volumeOf(entries, [OUT]));
    const result = await scan(fs, settingsFor({ stagingDir: OUT }));
    expect(states(result)).toEqual({ '2026-04-21': 'DONE', '2026-04-22': 'D-race', '2026-04-23': 'D' });
    expect(listed).toEqual([OUT]);
    expect(lstated.filter((path) => path.includes('unrelated'))).toEqual([]);
  });
});

describe('scanPipeline, the --since window', () => {
  const entries: Record<string, Entry> = {
    [output('2026-04-23')]: { mtimeMs: NOW - 20 * HOUR },
    [marker('2026-04-23')]: { mtimeMs: NOW - 20 * HOUR },
    [output('2026-04-20')]: { mtimeMs: NOW - 4 * DAY },
    [marker('2026-04-20')]: { mtimeMs: NOW - 4 * DAY },
    [output('2026-03-20')]: { mtimeMs: NOW - 35 * DAY },
    [marker('2026-03-20')]: { mtimeMs: NOW - 35 * DAY },
    // An output rewritten an hour ago for an old key: a backfill is listed by when it changed.
    [output('2025-12-31')]: { mtimeMs: NOW - HOUR },
    [marker('2025-12-31')]: { mtimeMs: NOW - HOUR },
    // Orphans older than any window.
    [staged('2025-01-01.31337.csv')]: { mtimeMs: at('2025-01-01T06:00:00Z') },
    [staged('2026-03-20.31338.csv')]: { mtimeMs: NOW - 36 * DAY },
  };

  it.each([
    ['30m', 30 * MINUTE, ['2025-01-01', '2026-03-20']],
    ['1d', DAY, ['2025-01-01', '2025-12-31', '2026-03-20', '2026-04-23']],
    ['7d', 7 * DAY, ['2025-01-01', '2025-12-31', '2026-03-20', '2026-04-20', '2026-04-23']],
    ['60d', 60 * DAY, ['2025-01-01', '2025-12-31', '2026-03-20', '2026-04-20', '2026-04-23']],
  ])('--since %s lists outputs changed within it, and every orphan', async (_, sinceMs, keys) => {
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, settingsFor(), { sinceMs });
    expect(result.runs.map((r) => r.run).sort()).toEqual(keys);
    expect(states(result)['2025-01-01']).toBe('D');
    // 2026-03-20 is published: its orphan makes it D-race whatever the window.
    expect(states(result)['2026-03-20']).toBe('D-race');
  });

  it('includes an output changed exactly at the window start', async () => {
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, settingsFor(), { sinceMs: 20 * HOUR });
    expect(result.runs.map((r) => r.run)).toContain('2026-04-23');
  });

  it('gives the newest published output even when it is outside the window', async () => {
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, settingsFor(), { sinceMs: 30 * MINUTE });
    expect(result.newestPublishedMs).toBe(NOW - HOUR);
  });

  it('with --daily, covers every UTC date from the window start to today', async () => {
    expect(datesBetween(at('2026-04-17T06:08:00Z'), NOW)).toEqual([
      '2026-04-17',
      '2026-04-18',
      '2026-04-19',
      '2026-04-20',
      '2026-04-21',
      '2026-04-22',
      '2026-04-23',
      '2026-04-24',
    ]);
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, settingsFor(), { sinceMs: 2 * DAY, daily: true });
    expect(states(result)).toEqual({
      '2025-01-01': 'D',
      '2025-12-31': 'DONE',
      '2026-03-20': 'D-race',
      '2026-04-22': 'A/B/C',
      '2026-04-23': 'DONE',
      '2026-04-24': 'A/B/C',
    });
  });
});

describe('scanPipeline, writers judged without PIDs', () => {
  it('with --no-pid-check judges by age against --stale-after', async () => {
    const entries: Record<string, Entry> = {
      [staged(`2026-04-24.${DEAD}.csv`)]: { mtimeMs: NOW - 5 * MINUTE },
      [staged(`2026-04-23.${LIVE_WRITER}.csv`)]: { mtimeMs: NOW - 20 * MINUTE },
    };
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, settingsFor({ pidCheck: false, staleAfter: '15m' }));
    // A dead PID is not asked about, and a live one does not keep an untouched file alive.
    expect(states(result)).toEqual({ '2026-04-24': 'RUNNING', '2026-04-23': 'D' });
  });
});

describe('scanPipeline with a fixed-name output (no {date})', () => {
  const fixed = () => settingsFor({ final: 'latest.csv' });

  it('judges each staged key against the one output, looked at once', async () => {
    const entries: Record<string, Entry> = {
      [out('latest.csv')]: { mtimeMs: NOW - HOUR },
      [out('latest.csv.success')]: { mtimeMs: NOW - HOUR + 1000 },
      [staged(`2026-04-24.${DEAD}.csv`)]: { mtimeMs: NOW - 2 * HOUR },
      [staged(`2026-04-23.${DEAD}.csv`)]: { mtimeMs: NOW - 26 * HOUR },
      [staged(`2026-04-22.${DEAD}.csv`)]: { mtimeMs: NOW - 50 * HOUR },
      [staged(`2026-04-24.${LIVE_WRITER}.csv`)]: { mtimeMs: NOW - MINUTE },
    };
    const { fs, listed, lstated } = counting(volumeOf(entries));
    const result = await scan(fs, fixed());
    // Within --fresh-within (6h) the output is the current run's, whatever the key: D-race or RUNNING.
    expect(states(result)).toEqual({
      '2026-04-24': 'RUNNING',
      '2026-04-23': 'D-race',
      '2026-04-22': 'D-race',
    });
    expect(listed).toEqual([STAGING]);
    expect(lstated.filter((p) => p === out('latest.csv'))).toHaveLength(1);
    expect(lstated.filter((p) => p === out('latest.csv.success'))).toHaveLength(1);
    expect(result.newestPublishedMs).toBe(NOW - HOUR);
  });

  it('calls a stale output an earlier run: orphans make D', async () => {
    const entries: Record<string, Entry> = {
      [out('latest.csv')]: { mtimeMs: NOW - 2 * DAY },
      [out('latest.csv.success')]: { mtimeMs: NOW - 2 * DAY },
      [staged(`2026-04-24.${DEAD}.csv`)]: { mtimeMs: NOW - 2 * HOUR },
    };
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, fixed());
    expect(states(result)).toEqual({ '2026-04-24': 'D' });
  });

  it('reports the published output time with nothing in staging', async () => {
    const entries: Record<string, Entry> = {
      [out('latest.csv')]: { mtimeMs: NOW - HOUR },
      [out('latest.csv.success')]: { mtimeMs: NOW - HOUR + 1000 },
    };
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, fixed());
    expect(result.runs).toEqual([]);
    // The metric behind "nothing published for 26 hours" must not read 0 for a healthy pipeline.
    expect(result.newestPublishedMs).toBe(NOW - HOUR);
  });

  it('does not count an output its marker does not vouch for as published', async () => {
    const entries: Record<string, Entry> = {
      [out('latest.csv')]: { mtimeMs: NOW - HOUR },
      // Left by the publish before: older than the output now in place.
      [out('latest.csv.success')]: { mtimeMs: NOW - DAY },
      [staged(`2026-04-24.${DEAD}.csv`)]: { mtimeMs: NOW - 2 * HOUR },
    };
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, fixed());
    expect(states(result)).toEqual({ '2026-04-24': 'UNPUBLISHED' });
    expect(result.newestPublishedMs).toBeUndefined();
  });

  it('with --daily lists no dates: one file cannot say which dates ran', async () => {
    const entries: Record<string, Entry> = {
      [out('latest.csv')]: { mtimeMs: NOW - HOUR },
      [out('latest.csv.success')]: { mtimeMs: NOW - HOUR },
    };
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, fixed(), { daily: true });
    // Not a week of DONE vouched for by a file written an hour ago.
    expect(result.runs).toEqual([]);
    expect(result.newestPublishedMs).toBe(NOW - HOUR);
  });
});

describe('scanPipeline, names two templates can both claim', () => {
  it('reads out_<key>.success as the marker of <key>, not the output of a key "<key>.success"', async () => {
    const entries: Record<string, Entry> = {
      [out('out_2026-04-23')]: { mtimeMs: NOW - HOUR },
      [out('out_2026-04-23.success')]: { mtimeMs: NOW - HOUR },
    };
    const { fs } = counting(volumeOf(entries));
    const result = await scan(fs, settingsFor({ final: 'out_{date}' }));
    expect(states(result)).toEqual({ '2026-04-23': 'DONE' });
  });
});

describe('scanPipeline while a run finishes', () => {
  it.each([
    ['its own staging directory', STAGING],
    ['the output directory', OUT],
  ])('sees a file renamed into place from %s during the scan as the published output', async (_, dir) => {
    const stagingPath = `${dir}/2026-04-24.${LIVE_WRITER}.csv`;
    const vol = volumeOf({ [stagingPath]: { mtimeMs: NOW - MINUTE } });
    let renamed = false;
    // The writer renames and marks after the directories were listed, right before we look at its file.
    const { fs } = counting(vol, (path) => {
      if (renamed || path !== stagingPath) return;
      renamed = true;
      vol.renameSync(path, output('2026-04-24'));
      vol.writeFileSync(marker('2026-04-24'), '');
    });
    const result = await scan(fs, settingsFor({ stagingDir: dir }));
    expect(renamed).toBe(true);
    // Not A/B/C ("re-run"): the run completed while we looked.
    expect(states(result)).toEqual({ '2026-04-24': 'DONE' });
    expect(result.newestPublishedMs).toBeGreaterThan(0);
  });
});

describe('scanPipeline: per-key totals folded while listing, never a record per file', () => {
  it('600 dead orphans of three keys and 30 symlinks of a fourth: the verdicts diagnose gives, the findings kept capped and counted', async () => {
    const entries: Record<string, Entry> = {};
    for (const key of ['2026-04-01', '2026-04-02', '2026-04-03']) {
      for (let pid = 1000; pid < 1200; pid++) entries[staged(`${key}.${pid}.csv`)] = { content: 'abc', mtimeMs: NOW - DAY };
    }
    for (let pid = 2000; pid < 2030; pid++)
      entries[staged(`2026-04-05.${pid}.csv`)] = { symlinkTo: '/etc/passwd', mtimeMs: NOW };
    const fs = volumeOf(entries).promises as unknown as FileSystem;
    const ctx = { fs, processes, nowMs: NOW, wallClock: () => NOW };
    const settings = settingsFor();
    const seen: number[] = [];
    const result = await scanPipeline(ctx, settings, {
      sinceMs: 7 * DAY, daily: false, onEntries: (n) => seen.push(n),
    });
    expect(seen.at(-1)).toBe(630);
    expect(result.runs).toHaveLength(4);
    for (const run of result.runs) {
      const diagnosis = classifyRun(await probeRun(ctx, settings, run.run));
      expect([run.state, run.action, run.exitCode, run.summary])
        .toEqual([diagnosis.state, diagnosis.action, diagnosis.exitCode, diagnosis.summary]);
      expect(run.totals.orphanCount).toBe(diagnosis.orphans.filter((o) => o.writer === 'dead').length);
      expect(run.totals.anomalyCount).toBe(diagnosis.anomalies.length);
    }
    const symlinks = result.runs.find((r) => r.run === '2026-04-05');
    expect([symlinks?.state, symlinks?.totals.anomalyCount, symlinks?.anomalies.length])
      .toEqual(['UNKNOWN', 30, KEPT_ANOMALIES]);
    const orphans = result.runs.find((r) => r.run === '2026-04-02')?.totals;
    expect(orphans).toEqual({
      orphanCount: 200, orphanBytes: 600, oldestOrphanAgeSeconds: DAY / 1000, liveWriters: 0, anomalyCount: 0,
    });
  });
});
