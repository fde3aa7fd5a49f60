import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import type { FileSystem } from '../../src/core/fs.js';
import type { ProcessTable } from '../../src/core/process-table.js';
import { type ScanResult, scanPipeline } from '../../src/core/scan.js';
import { STATES } from '../../src/core/states.js';
import { renderPrometheus } from '../../src/render/prom.js';
import { parsePrometheusText, samplesOf, sampleValue } from '../support/prometheus-text.js';
import { setTimes } from '../support/ctime.js';

const NOW = Date.parse('2026-04-24T06:08:00Z');
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const LIVE = 4242;

const processes: ProcessTable = {
  hostname: 'batch-01',
  inspect: (pid) => (pid === LIVE ? { exists: true, startMs: NOW - DAY } : { exists: false }),
};

/** Scans one pipeline laid out in a memfs volume: `files` maps a path to its content and age. */
async function scanOf(
  pipeline: string | undefined,
  files: Readonly<Record<string, [content: string, ageMs: number]>>,
  { durationMs = 0, daily = false }: { durationMs?: number; daily?: boolean } = {},
): Promise<ScanResult> {
  const vol = new Volume();
  vol.mkdirSync('/out', { recursive: true });
  vol.mkdirSync('/stg', { recursive: true });
  for (const [path, [content, ageMs]] of Object.entries(files)) {
    vol.writeFileSync(path, content);
    setTimes(vol, path, NOW - ageMs);
  }
  const settings = resolveSettings(
    { outDir: '/out', stagingDir: '/stg', final: 'r_{date}.csv' },
    pipeline,
    {},
    '/',
  );
  let clockReads = 0;
  return scanPipeline(
    {
      fs: vol.promises as unknown as FileSystem,
      processes,
      nowMs: NOW,
      // The scan reads the clock when it starts and when it ends.
      wallClock: () => (clockReads++ === 0 ? NOW : NOW + durationMs),
    },
    settings,
    { sinceMs: 7 * DAY, daily },
  );
}

/** refunds, --daily: every state once or more; 9 dead orphans in all, 1 live writer's file. */
const refunds = () =>
  scanOf(
    'refunds',
    {
      '/out/r_2026-04-17.csv': ['done\n', 7 * DAY - HOUR],
      '/out/r_2026-04-17.csv.success': ['', 7 * DAY - HOUR],
      '/out/r_2026-04-20.csv': ['published', 4 * DAY],
      '/out/r_2026-04-20.csv.success': ['', 4 * DAY],
      '/stg/2026-04-20.31337.csv': ['1234567', 4 * DAY + HOUR],
      '/out/r_2026-04-21.csv': ['no marker', 3 * DAY],
      '/stg/2026-04-21.31338.csv': ['12', 3 * DAY + HOUR],
      '/out/r_2026-04-22.csv.success': ['', 2 * DAY],
      '/stg/2026-04-18.31339.csv': ['a'.repeat(1000), 6 * DAY],
      '/stg/2026-04-18.31340.csv': ['b'.repeat(2000), 6 * DAY - HOUR],
      '/stg/2026-04-18.31341.csv': ['c'.repeat(3000), 6 * DAY - 2 * HOUR],
      '/stg/2026-04-23.4242.csv': ['live writer', MINUTE],
      '/stg/2026-04-23.31342.csv': ['dead beside a live one', 20 * HOUR],
      '/stg/2025-01-01.31343.csv': ['x'.repeat(10), 478 * DAY],
      '/stg/2025-01-02.31343.csv': ['y'.repeat(20), 477 * DAY],
      '/stg/2025-01-03.31343.csv': ['z'.repeat(30), 476 * DAY],
    },
    { durationMs: 250, daily: true },
  );

/** ledger: all DONE, nothing in staging. */
const ledger = () =>
  scanOf('ledger', {
    '/out/r_2026-04-23.csv': ['ok', 20 * HOUR],
    '/out/r_2026-04-23.csv.success': ['', 20 * HOUR],
    '/out/r_2026-04-24.csv': ['ok', 2 * HOUR],
    '/out/r_2026-04-24.csv.success': ['', 2 * HOUR],
  });

const METRICS = [
  'crashdiag_runs',
  'crashdiag_orphan_files',
  'crashdiag_orphan_bytes',
  'crashdiag_oldest_orphan_age_seconds',
  'crashdiag_last_published_timestamp_seconds',
  'crashdiag_scan_duration_seconds',
  'crashdiag_scan_timestamp_seconds',
  'crashdiag_scan_success',
];

describe('renderPrometheus', () => {
  it('writes text the exposition format parses back: # HELP and # TYPE before each metric', async () => {
    const text = renderPrometheus([await refunds(), await ledger()], NOW);
    const parsed = parsePrometheusText(text);
    expect([...parsed.help.keys()]).toEqual(METRICS);
    for (const name of METRICS) {
      expect(parsed.type.get(name)).toBe('gauge');
      expect(parsed.help.get(name)).not.toBe('');
    }
    expect(new Set(parsed.samples.map((s) => s.name))).toEqual(new Set(METRICS));
  });

  it('counts runs per state, every state listed, summing to the runs scanned', async () => {
    const results = [await refunds(), await ledger()];
    const parsed = parsePrometheusText(renderPrometheus(results, NOW));
    for (const result of results) {
      const pipeline = result.pipeline ?? '';
      const perState = samplesOf(parsed, 'crashdiag_runs', { pipeline });
      expect(perState.map((s) => s.labels.state)).toEqual([...STATES]);
      expect(perState.reduce((n, s) => n + s.value, 0)).toBe(result.runs.length);
      for (const state of STATES) {
        expect(sampleValue(parsed, 'crashdiag_runs', { pipeline, state })).toBe(
          result.runs.filter((r) => r.state === state).length,
        );
      }
    }
    const refundsRuns = (state: string) =>
      sampleValue(parsed, 'crashdiag_runs', { pipeline: 'refunds', state });
    expect(STATES.map(refundsRuns)).toEqual([1, 2, 4, 1, 1, 0, 0, 0, 1, 1]);
    expect(sampleValue(parsed, 'crashdiag_runs', { pipeline: 'ledger', state: 'DONE' })).toBe(2);
  });

  it('gives dead-writer orphan files, bytes and the oldest age; a live writer is not an orphan', async () => {
    const parsed = parsePrometheusText(renderPrometheus([await refunds(), await ledger()], NOW));
    expect(sampleValue(parsed, 'crashdiag_orphan_files', { pipeline: 'refunds' })).toBe(9);
    expect(sampleValue(parsed, 'crashdiag_orphan_bytes', { pipeline: 'refunds' })).toBe(
      7 + 2 + 1000 + 2000 + 3000 + 'dead beside a live one'.length + 10 + 20 + 30,
    );
    expect(sampleValue(parsed, 'crashdiag_oldest_orphan_age_seconds', { pipeline: 'refunds' })).toBe(
      (478 * DAY) / 1000,
    );
    for (const name of [
      'crashdiag_orphan_files',
      'crashdiag_orphan_bytes',
      'crashdiag_oldest_orphan_age_seconds',
    ])
      expect(sampleValue(parsed, name, { pipeline: 'ledger' })).toBe(0);
  });

  it('gives the newest published output time, the scan duration and the scan time', async () => {
    const parsed = parsePrometheusText(renderPrometheus([await refunds(), await ledger()], NOW));
    // refunds: 2026-04-20's output is the newest with its marker (2026-04-21 has none).
    expect(sampleValue(parsed, 'crashdiag_last_published_timestamp_seconds', { pipeline: 'refunds' })).toBe(
      (NOW - 4 * DAY) / 1000,
    );
    expect(sampleValue(parsed, 'crashdiag_last_published_timestamp_seconds', { pipeline: 'ledger' })).toBe(
      (NOW - 2 * HOUR) / 1000,
    );
    expect(sampleValue(parsed, 'crashdiag_scan_duration_seconds', { pipeline: 'refunds' })).toBe(0.25);
    for (const pipeline of ['refunds', 'ledger'])
      expect(sampleValue(parsed, 'crashdiag_scan_timestamp_seconds', { pipeline })).toBe(NOW / 1000);
  });

  it('reports an empty pipeline with zeros, not missing series', async () => {
    const empty = await scanOf(undefined, {});
    expect(empty.runs).toEqual([]);
    const parsed = parsePrometheusText(renderPrometheus([empty], NOW));
    expect(samplesOf(parsed, 'crashdiag_runs', { pipeline: 'default' })).toHaveLength(STATES.length);
    for (const name of METRICS.slice(0, 5)) {
      for (const sample of samplesOf(parsed, name)) expect(sample.value).toBe(0);
    }
  });

  it('escapes label values so any pipeline name stays one valid line', async () => {
    const result = await ledger();
    const name = 'we"ird\\pipe\nline';
    const text = renderPrometheus([{ ...result, pipeline: name }], NOW);
    const parsed = parsePrometheusText(text);
    expect(sampleValue(parsed, 'crashdiag_runs', { pipeline: name, state: 'DONE' })).toBe(2);
  });
});

describe('the reader these tests use', () => {
  it('rejects what the textfile collector would', () => {
    expect(() => parsePrometheusText('x{a="1"} 1\n')).toThrow(/before its # HELP and # TYPE/);
    expect(() => parsePrometheusText('# HELP x h\n# TYPE x gauge\nx{a=1} 1\n')).toThrow(/bad labels/);
    expect(() => parsePrometheusText('# HELP x h\n# TYPE x gauge\nx 1')).toThrow(/newline/);
    expect(() => parsePrometheusText('# HELP x h\n# TYPE x gauge\nx 1\nx 2\n')).toThrow(/twice/);
    expect(() => parsePrometheusText('# HELP x h\n# TYPE x gauge\nx one\n')).toThrow(/bad value/);
    expect(parsePrometheusText('# HELP x h\n# TYPE x gauge\nx{a="q\\"\\\\",b="2"} 1.5\n').samples).toEqual([
      { name: 'x', labels: { a: 'q"\\', b: '2' }, value: 1.5 },
    ]);
  });
});
