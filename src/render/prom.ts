import type { ScanResult } from '../core/scan.js';
import { STATES } from '../core/states.js';
import { pipelineLabel, type ScanFailureRow } from './scan-rows.js';

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * The first line of every metrics file crashdiag writes: --prom-file only
 * ever replaces a file that starts with it (or with the metrics of versions
 * before it), never anything else that happens to sit at that path.
 */
export const METRICS_HEADER = '# crashdiag metrics: written by crashdiag scan --format prom; replaced on each scan';

/** How metrics files written before METRICS_HEADER existed begin. */
export const LEGACY_METRICS_START = '# HELP crashdiag_';

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly samples: ReadonlyArray<readonly [Readonly<Record<string, string>>, number]>;
}

type Sample = readonly [Readonly<Record<string, string>>, number];

/** The gauges with one sample per scanned pipeline, in the order they are written. */
const PER_PIPELINE: ReadonlyArray<{
  readonly name: string;
  readonly help: string;
  readonly value: (result: ScanResult, nowMs: number) => number;
}> = [
  {
    name: 'crashdiag_orphan_files',
    help: 'Staging files whose writer is dead.',
    value: (r) => r.runs.reduce((n, run) => n + run.totals.orphanCount, 0),
  },
  {
    name: 'crashdiag_orphan_bytes',
    help: 'Bytes held by staging files whose writer is dead.',
    value: (r) => r.runs.reduce((n, run) => n + run.totals.orphanBytes, 0),
  },
  {
    name: 'crashdiag_oldest_orphan_age_seconds',
    help: 'Age of the oldest dead-writer staging file (0 when none).',
    value: (r) => r.runs.reduce((n, run) => Math.max(n, run.totals.oldestOrphanAgeSeconds ?? 0), 0),
  },
  {
    name: 'crashdiag_last_published_timestamp_seconds',
    help: 'Modification time of the newest published output (with its marker), Unix seconds; 0 when none.',
    value: (r) => (r.newestPublishedMs === undefined ? 0 : Math.floor(r.newestPublishedMs / 1000)),
  },
  {
    name: 'crashdiag_scan_duration_seconds',
    help: 'How long the scan of the pipeline took.',
    value: (r) => r.durationMs / 1000,
  },
  {
    name: 'crashdiag_scan_timestamp_seconds',
    help: 'When the scan ran, Unix seconds.',
    value: (_, nowMs) => Math.floor(nowMs / 1000),
  },
];

/** Run keys per pipeline and state, every state listed (zeros included). */
function runsMetric(results: readonly ScanResult[]): Metric {
  const samples: Sample[] = results.flatMap((result) => {
    const pipeline = pipelineLabel(result.pipeline);
    return STATES.map((state): Sample => [{ pipeline, state }, result.runs.filter((r) => r.state === state).length]);
  });
  return { name: 'crashdiag_runs', help: 'Run keys in each state, as of the last scan.', samples };
}

/** 1 per pipeline scanned, 0 per pipeline that could not be, by pipeline name. */
function successMetric(results: readonly ScanResult[], failures: readonly ScanFailureRow[]): Metric {
  const scannedOrNot = new Map<string, number>([
    ...results.map((r): [string, number] => [pipelineLabel(r.pipeline), 1]),
    ...failures.map((f): [string, number] => [f.pipeline, 0]),
  ]);
  return {
    name: 'crashdiag_scan_success',
    help: '1 when the pipeline was scanned, 0 when it could not be (missing directory, bad setting).',
    samples: [...scannedOrNot]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([pipeline, value]): Sample => [{ pipeline }, value]),
  };
}

/**
 * Prometheus text format for node_exporter's textfile collector. Orphans are
 * staging files whose writer is dead; the per-state gauge lists every state,
 * zeros included, so alerts on absent series are not needed.
 */
export function renderPrometheus(
  results: readonly ScanResult[],
  nowMs: number,
  failures: readonly ScanFailureRow[] = [],
): string {
  const metrics: Metric[] = [
    runsMetric(results),
    ...PER_PIPELINE.map(({ name, help, value }): Metric => ({
      name,
      help,
      samples: results.map((result): Sample => [{ pipeline: pipelineLabel(result.pipeline) }, value(result, nowMs)]),
    })),
    successMetric(results, failures),
  ];
  const lines: string[] = [METRICS_HEADER];
  for (const metric of metrics) {
    lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} gauge`);
    for (const [labels, value] of metric.samples) {
      const text = Object.entries(labels)
        .map(([k, v]) => `${k}="${label(v)}"`)
        .join(',');
      lines.push(`${metric.name}{${text}} ${value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
