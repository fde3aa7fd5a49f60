import type { Diagnosis } from '../core/diagnosis.js';
import type { ScanResult } from '../core/scan.js';

export interface ScanRow {
  readonly pipeline: string | null;
  readonly run: string;
  readonly state: Diagnosis['state'];
  readonly action: Diagnosis['action'];
  readonly exitCode: number;
  readonly orphanCount: number;
  readonly orphanBytes: number;
  readonly oldestOrphanAgeSeconds: number | null;
  readonly outputAgeSeconds: number | null;
  readonly liveWriters: number;
  readonly anomalies: number;
  readonly summary: string;
}

/** One row per run, worst first across every pipeline. */
export function scanRows(results: readonly ScanResult[]): ScanRow[] {
  const rows = results.flatMap((result) =>
    result.runs.map((run): ScanRow => {
      const dead = run.orphans.filter((o) => o.writer === 'dead');
      return {
        pipeline: result.pipeline ?? null,
        run: run.run,
        state: run.state,
        action: run.action,
        exitCode: run.exitCode,
        orphanCount: dead.length,
        orphanBytes: dead.reduce((n, o) => n + o.bytes, 0),
        oldestOrphanAgeSeconds: dead.length === 0 ? null : Math.max(...dead.map((o) => o.ageSeconds)),
        outputAgeSeconds: run.final.exists ? run.final.ageSeconds : null,
        liveWriters: run.orphans.filter((o) => o.writer === 'alive').length,
        anomalies: run.anomalies.length,
        summary: run.summary,
      };
    }),
  );
  return rows.sort(
    (a, b) =>
      b.exitCode - a.exitCode
      || (a.pipeline ?? '').localeCompare(b.pipeline ?? '')
      || (a.run < b.run ? 1 : a.run > b.run ? -1 : 0),
  );
}

export function renderScanJson(results: readonly ScanResult[]): string {
  return `${JSON.stringify({ schemaVersion: 1, runs: scanRows(results) }, null, 2)}\n`;
}
