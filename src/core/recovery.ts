// The recovery loop's evidence: what earlier attempts, the job's inputs and
// the re-run crashdiag just started say, beside what the disk says. Gathered
// by recovery-probe.ts (I/O), judged by classify.ts (pure).

/** One failed attempt at a run key: a writer that died, or a re-run that failed. */
export interface Attempt {
  /** When it was last seen: an orphan's last write, or a re-run's end (ms). */
  readonly atMs: number;
  /** The writer's PID, when known (an orphan's name carries it). */
  readonly pid: number | null;
  /** Bytes it wrote before it died, when an orphan says. */
  readonly bytes: number | null;
  /** How a re-run crashdiag started ended: `exit 1`, `SIGKILL`; null for a writer found dead. */
  readonly ended: string | null;
  /** Where it was counted from. */
  readonly source: 'orphan' | 'removed-orphan' | 'rerun';
}

/** A failed attempt read from the audit log: a removed orphan or a failed re-run. */
export interface RecordedAttempt extends Attempt {
  /** A re-run's start (ms): an orphan written between start and end is that re-run's own. */
  readonly startedAtMs?: number;
}

export type InputStatus = 'ok' | 'missing' | 'unreadable' | 'empty' | 'not-a-file';

/** One input the job reads, checked before any re-run. */
export interface InputFact {
  readonly template: string;
  readonly path: string;
  readonly status: InputStatus;
  readonly detail: string;
}

/** How the re-run --fix started ended. */
export interface RerunOutcome {
  readonly argv: readonly string[];
  readonly exitStatus: number | null;
  readonly signal: string | null;
  readonly error?: string;
}

export interface RecoveryEvidence {
  /** CRASH-LOOP at this many failed attempts; 0: never. */
  readonly maxAttempts: number;
  /**
   * Failed attempts the audit log recorded since the last reset or success
   * (orphans still on disk are added by the classifier).
   */
  readonly recorded: readonly RecordedAttempt[];
  /** The last reset (--retry) or successful re-run: orphans written before it are not counted (ms). */
  readonly sinceMs: number | null;
  /** --retry-backoff in ms; 0: off. */
  readonly backoffMs: number;
  readonly inputs: readonly InputFact[];
  /** Set only in the diagnosis right after --fix started a re-run. */
  readonly rerun: RerunOutcome | null;
  /** Why the audit log could not be read, when it could not: attempts may be undercounted. */
  readonly auditNote?: string;
}

export function rerunFailed(outcome: Pick<RerunOutcome, 'exitStatus' | 'error'> | null): boolean {
  return outcome !== null && (outcome.exitStatus !== 0 || outcome.error !== undefined);
}

/** `exit 1`, `SIGKILL`, `could not start: ENOENT`. */
export function describeEnd(outcome: Pick<RerunOutcome, 'exitStatus' | 'signal' | 'error'>): string {
  if (outcome.error !== undefined) return `could not start: ${outcome.error}`;
  if (outcome.signal) return outcome.signal;
  return `exit ${outcome.exitStatus}`;
}
