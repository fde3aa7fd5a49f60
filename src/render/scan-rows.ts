import type { Diagnosis } from '../core/diagnosis.js';
import type { ScanResult } from '../core/scan.js';
import { SCHEMA_VERSION } from '../core/states.js';

/**
 * The name a pipeline given by flags alone (no config) goes by, in the JSON
 * rows and the metrics' `pipeline` label alike, so the two can be joined.
 */
export const DEFAULT_PIPELINE_LABEL = 'default';

export function pipelineLabel(pipeline: string | undefined): string {
  return pipeline ?? DEFAULT_PIPELINE_LABEL;
}

/** A pipeline that could not be scanned (missing directory, bad setting). */
export interface ScanFailureRow {
  readonly pipeline: string;
  readonly message: string;
  readonly hint: string | null;
}

export interface ScanRow {
  readonly pipeline: string;
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
  /** S3 only: incomplete multipart uploads of this run, where the server lists them. */
  readonly incompleteUploads?: number;
}

/** One row per run, worst first across every pipeline. */
export function scanRows(results: readonly ScanResult[]): ScanRow[] {
  const rows = results.flatMap((result) =>
    result.runs.map((run): ScanRow => {
      const { totals } = run;
      return {
        pipeline: pipelineLabel(result.pipeline),
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
        ...(run.uploads === undefined ? {} : { incompleteUploads: run.uploads.length }),
      };
    }),
  );
  return rows.sort(
    (a, b) =>
      b.exitCode - a.exitCode
      || a.pipeline.localeCompare(b.pipeline)
      || (a.run < b.run ? 1 : a.run > b.run ? -1 : 0),
  );
}

/**
 * `pipelines` says, for every pipeline, whether it was scanned, and if not
 * why; `runs` holds the runs of those that were.
 */
export function renderScanJson(results: readonly ScanResult[], failures: readonly ScanFailureRow[] = []): string {
  const pipelines = [
    ...results.map((r) => ({
      pipeline: pipelineLabel(r.pipeline),
      scanned: true,
      error: null,
      ...(r.notes === undefined ? {} : { notes: r.notes }),
    })),
    ...failures.map((f) => ({ pipeline: f.pipeline, scanned: false, error: { message: f.message, hint: f.hint } })),
  ].sort((a, b) => a.pipeline.localeCompare(b.pipeline));
  return `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, pipelines, runs: scanRows(results) }, null, 2)}\n`;
}
