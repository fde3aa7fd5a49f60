import type { EntryKind, PathFacts, PidCheck, RunEvidence, StagingEntry } from '../../src/core/evidence.js';

/** Hand-built evidence for the pure classifier: every fact, the clock included, is written out. */

export const NOW = Date.parse('2026-04-24T06:08:00Z');
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export const KEY = '2026-04-24';
export const OUT = '/data/out';
export const STAGING = '/data/_staging';
export const FINAL_PATH = `${OUT}/refunds_settled_${KEY}.csv`;
export const MARKER_PATH = `${FINAL_PATH}.success`;
export const LATEST_PATH = `${OUT}/latest.csv`;
export const LATEST_MARKER_PATH = `${LATEST_PATH}.success`;

/** The defaults: --fresh-within 6h, --stale-after 15m. */
export const RULES = { freshWithinMs: 6 * HOUR, staleAfterMs: 15 * MINUTE } as const;

/** A regular file last modified `ageMs` before NOW (negative: in the future). */
export function file(path: string, ageMs: number, bytes = 1024): PathFacts {
  return { path, status: 'present', kind: 'file', bytes, mtimeMs: NOW - ageMs };
}

export function entry(path: string, kind: EntryKind, ageMs = HOUR): PathFacts {
  return { path, status: 'present', kind, bytes: 64, mtimeMs: NOW - ageMs };
}

export function missing(path: string): PathFacts {
  return { path, status: 'missing' };
}

export function unreadable(path: string, error = 'EACCES'): PathFacts {
  return { path, status: 'unreadable', error };
}

/** The PID is not in the process table. */
export const GONE: PidCheck = { checked: true, facts: { exists: false } };
/** The PID exists and has exited, but nobody reaped it. */
export const ZOMBIE: PidCheck = { checked: true, facts: { exists: true, zombie: true, startMs: NOW - DAY } };
/** The PID exists and started at `startMs`. */
export const runningSince = (startMs: number): PidCheck => ({
  checked: true,
  facts: { exists: true, zombie: false, startMs },
});
/** The PID exists but its start time could not be read. */
export const RUNNING_NO_START: PidCheck = { checked: true, facts: { exists: true } };
export const NO_PID_CHECK: PidCheck = { checked: false, why: 'PID checks are off (--no-pid-check)' };
export const OTHER_HOST: PidCheck = {
  checked: false,
  why: 'written on host batch-02, not this one (batch-01)',
};

export interface StagedOptions {
  readonly bytes?: number;
  readonly host?: string;
  readonly kind?: EntryKind;
  readonly unreadable?: string;
}

/** A staging entry `<KEY>.<pid>.csv` last modified `ageMs` before NOW. */
export function staged(
  pid: number,
  ageMs: number,
  pidCheck: PidCheck,
  options: StagedOptions = {},
): StagingEntry {
  const name = options.host ? `${KEY}.${options.host}.${pid}.csv` : `${KEY}.${pid}.csv`;
  const path = `${STAGING}/${name}`;
  const facts: PathFacts
    = options.unreadable !== undefined
      ? unreadable(path, options.unreadable)
      : {
          path,
          status: 'present',
          kind: options.kind ?? 'file',
          bytes: options.bytes ?? 4096,
          mtimeMs: NOW - ageMs,
        };
  return { ...facts, name, pid, host: options.host, pidCheck };
}

/** Evidence for the keyed output `refunds_settled_<KEY>.csv`; nothing on disk unless given. */
export function evidence(parts: Partial<RunEvidence> = {}): RunEvidence {
  return {
    runKey: KEY,
    nowMs: NOW,
    rules: RULES,
    finalKeyed: true,
    final: missing(FINAL_PATH),
    marker: missing(MARKER_PATH),
    staging: [],
    ...parts,
  };
}

/** Evidence for a fixed-name output `latest.csv` (no {date} in --final). */
export function fixedNameEvidence(parts: Partial<RunEvidence> = {}): RunEvidence {
  return evidence({
    finalKeyed: false,
    final: missing(LATEST_PATH),
    marker: missing(LATEST_MARKER_PATH),
    ...parts,
  });
}

// The recovery loop's evidence (issue 10).
import type { InputFact, RecordedAttempt, RecoveryEvidence, RerunOutcome } from '../../src/core/recovery.js';

/** No earlier attempts, no inputs, --max-attempts 3, no backoff, no re-run just now. */
export function recovery(parts: Partial<RecoveryEvidence> = {}): RecoveryEvidence {
  return { maxAttempts: 3, recorded: [], sinceMs: null, backoffMs: 0, inputs: [], rerun: null, ...parts };
}

/** An orphan of `pid` that the audit log says was removed; it was last written `ageMs` before NOW. */
export function removedOrphan(pid: number, ageMs: number, bytes = 4096): RecordedAttempt {
  return { atMs: NOW - ageMs, pid, bytes, ended: null, source: 'removed-orphan' };
}

/** A re-run crashdiag started that ran from `startedAgoMs` to `endedAgoMs` before NOW and failed. */
export function failedRerun(endedAgoMs: number, ended = 'exit 1', startedAgoMs = endedAgoMs + MINUTE, pid: number | null = null): RecordedAttempt {
  return { atMs: NOW - endedAgoMs, startedAtMs: NOW - startedAgoMs, pid, bytes: null, ended, source: 'rerun' };
}

export function inputFact(status: InputFact['status'], path = `/data/in/refunds_${KEY}.csv`): InputFact {
  const detail = { 'ok': '1024 bytes', 'missing': 'does not exist', 'unreadable': 'cannot be read (EACCES)', 'empty': 'is empty (0 bytes)', 'not-a-file': 'is a directory, not a file' }[status];
  return { template: path.replace(KEY, '{date}'), path, status, detail };
}

export function rerunOutcome(exitStatus: number | null, signal: string | null = null): RerunOutcome {
  return { argv: ['job', '--date', KEY], exitStatus, signal };
}
