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
      const { totals } = run;
      return {
        pipeline: result.pipeline ?? null,
        run: run.run,
        state: run.state,
        action: run.action,
        exitCode: run.exitCode,
        orphanCount: totals.orphanCount,
        orphanBytes: totals.orphanBytes,
        oldestOrphanAgeSeconds: totals.oldestOrphanAgeSeconds,
        outputAgeSeconds: run.final.exists ? run.final.ageSeconds : null,
        liveWriters: totals.liveWriters,
        anomalies: totals.anomalyCount,
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
