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
  readonly samples: ReadonlyArray<[Record<string, string>, number]>;
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
  const success: Metric = {
    name: 'crashdiag_scan_success',
    help: '1 when the pipeline was scanned, 0 when it could not be (missing directory, bad setting).',
    samples: [],
  };
  const metrics: Metric[] = [
    { name: 'crashdiag_runs', help: 'Run keys in each state, as of the last scan.', samples: [] },
    { name: 'crashdiag_orphan_files', help: 'Staging files whose writer is dead.', samples: [] },
    {
      name: 'crashdiag_orphan_bytes',
      help: 'Bytes held by staging files whose writer is dead.',
      samples: [],
    },
    {
      name: 'crashdiag_oldest_orphan_age_seconds',
      help: 'Age of the oldest dead-writer staging file (0 when none).',
      samples: [],
    },
    {
      name: 'crashdiag_last_published_timestamp_seconds',
      help: 'Modification time of the newest published output (with its marker), Unix seconds; 0 when none.',
      samples: [],
    },
    { name: 'crashdiag_scan_duration_seconds', help: 'How long the scan of the pipeline took.', samples: [] },
    { name: 'crashdiag_scan_timestamp_seconds', help: 'When the scan ran, Unix seconds.', samples: [] },
  ];
  const [runs, files, bytes, oldest, published, duration, scanned] = metrics as [
    Metric,
    Metric,
    Metric,
    Metric,
    Metric,
    Metric,
    Metric,
  ];
  const push = (metric: Metric, labels: Record<string, string>, value: number) =>
    (metric.samples as Array<[Record<string, string>, number]>).push([labels, value]);
  const scannedOrNot = new Map<string, number>([
    ...results.map((r): [string, number] => [pipelineLabel(r.pipeline), 1]),
    ...failures.map((f): [string, number] => [f.pipeline, 0]),
  ]);
  for (const [pipeline, value] of [...scannedOrNot].sort(([a], [b]) => a.localeCompare(b)))
    (success.samples as Array<[Record<string, string>, number]>).push([{ pipeline }, value]);
  metrics.push(success);
  for (const result of results) {
    const pipeline = pipelineLabel(result.pipeline);
    for (const state of STATES)
      push(runs, { pipeline, state }, result.runs.filter((r) => r.state === state).length);
    const totals = result.runs.map((r) => r.totals);
    push(files, { pipeline }, totals.reduce((n, t) => n + t.orphanCount, 0));
    push(
      bytes,
      { pipeline },
      totals.reduce((n, t) => n + t.orphanBytes, 0),
    );
    push(
      oldest,
      { pipeline },
      totals.reduce((n, t) => Math.max(n, t.oldestOrphanAgeSeconds ?? 0), 0),
    );
    push(
      published,
      { pipeline },
      result.newestPublishedMs === undefined ? 0 : Math.floor(result.newestPublishedMs / 1000),
    );
    push(duration, { pipeline }, result.durationMs / 1000);
    push(scanned, { pipeline }, Math.floor(nowMs / 1000));
  }
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
