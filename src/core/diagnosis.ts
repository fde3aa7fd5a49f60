import type { Cause } from './causes.js';
import type { RecoveryVerdict } from './classify-recovery.js';
import type { Action, State } from './states.js';
import type { WriterVerdict } from './writer.js';

/** A staging file for the run key, and whether its writer lives. */
export interface StagingFileReport {
  readonly path: string;
  readonly pid: number;
  readonly host: string | null;
  readonly bytes: number;
  readonly ageSeconds: number;
  readonly writer: WriterVerdict;
  readonly writerReason: string;
  /** `pid`: the process table decided; `age`: no usable PID verdict, the file's age did. */
  readonly writerJudgedBy: 'pid' | 'age';
  /** The command line of the live process holding the PID on this host, where it could be read. */
  readonly writerCommand?: string;
}

/**
 * What every staging file of the run key adds up to, listed or not: a crash
 * loop's 100,000 orphans are counted here, and only the first
 * LISTED_FILES of them are reports in `orphans`.
 */
export interface OrphanTotals {
  /** Every staging file of the run key (the reports in `orphans`, and those beyond them). */
  readonly count: number;
  /** How many of them `orphans` holds: the first by path. */
  readonly listed: number;
  readonly bytes: number;
  readonly dead: number;
  readonly alive: number;
  readonly unknown: number;
}

/** The totals of a complete list of staging files. */
export function orphanTotalsOf(files: readonly StagingFileReport[]): OrphanTotals {
  const totals = { count: files.length, listed: files.length, bytes: 0, dead: 0, alive: 0, unknown: 0 };
  for (const file of files) {
    totals.bytes += file.bytes;
    totals[file.writer]++;
  }
  return totals;
}

/**
 * The staging files a read-only diagnosis keeps one report each for, the first
 * by path; the rest are only counted (OrphanTotals). --fix keeps every one.
 */
export const LISTED_FILES = 1000;

/** A multipart upload never completed (S3 only): an invisible orphan that still costs money. */
export interface UploadReport {
  readonly path: string;
  readonly uploadId: string;
  /** ISO-8601, the server's clock. */
  readonly initiated: string;
  readonly ageSeconds: number;
  /** Initiated longer ago than --stale-after: what --abort-uploads may abort. */
  readonly stale: boolean;
}

export interface Anomaly {
  readonly path: string;
  readonly reason: string;
}

/** The judgement on one run key: the model every renderer and the fixer read. */
export interface Diagnosis {
  readonly run: string;
  readonly state: State;
  readonly action: Action;
  readonly exitCode: number;
  readonly summary: string;
  readonly final: {
    readonly path: string;
    readonly exists: boolean;
    readonly bytes: number | null;
    readonly ageSeconds: number | null;
    /** Younger than --fresh-within. */
    readonly fresh: boolean | null;
    /** Counted as this run's output: its name carries the run key, or it is fresh. */
    readonly belongsToRun: boolean;
    readonly marker: {
      readonly path: string;
      readonly exists: boolean;
      readonly ageSeconds?: number | null;
    } | null;
  };
  /**
   * The staging files for the run key, sorted by path, with their writers'
   * verdicts: every one, or the first `orphanTotals.listed` where the
   * diagnosis was asked to list fewer (a read-only look at a crash loop).
   */
  readonly orphans: readonly StagingFileReport[];
  readonly orphanTotals: OrphanTotals;
  /**
   * Findings about the output and the staging entries, sorted by path: every
   * one, or the first ones where the diagnosis was asked to list fewer.
   */
  readonly anomalies: readonly Anomaly[];
  /** How many findings are past those in `anomalies`; absent when it holds every one. */
  readonly unlistedAnomalies?: number;
  readonly runbook: string;
  // The recovery loop's facts: present when they were gathered (diagnose, --fix), absent from scan.
  readonly attempts?: RecoveryVerdict['attempts'];
  readonly inputs?: RecoveryVerdict['inputs'];
  readonly retryAfterSeconds?: RecoveryVerdict['retryAfterSeconds'];
  /** Why it died, as far as the kernel log, the file systems and the audit log say. */
  readonly causes?: readonly Cause[];
  /** How many causes are past those in `causes` (a crash loop's partial writes); absent when it holds every one. */
  readonly unlistedCauses?: number;
  /** What could not be looked at while looking for causes (an unreadable kernel log), and how to allow it. */
  readonly causeNotes?: readonly string[];
  /** S3 only: incomplete multipart uploads for this run. Absent where there can be none (local). */
  readonly uploads?: readonly UploadReport[];
  /** S3 only: why the uploads could not be listed ("not known", never "none"). */
  readonly uploadNotes?: readonly string[];
}
