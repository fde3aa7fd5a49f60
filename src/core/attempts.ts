import { dirname } from 'node:path';
import { type AuditRecord, readAudit } from './audit.js';
import { errnoCode, UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import type { Attempt, RecordedAttempt, RecoveryEvidence } from './recovery.js';
import { CLOCK_SLACK_MS } from './writer.js';

/** Which run key's attempts: the pipeline is named by its staging directory, where its orphans live. */
export interface AttemptScope {
  readonly runKey: string;
  readonly stagingDir: string;
  readonly pipeline: string | null;
}

/** A dead writer's staging file still on disk. */
export interface DeadOrphan {
  readonly pid: number;
  readonly bytes: number;
  readonly mtimeMs: number;
  /** Its creation, where the file system keeps one: what bounds its writer's death from below (causes). */
  readonly bornMs?: number | undefined;
}

/**
 * The fields this module reads. Records are read loosely: other versions of
 * crashdiag add fields and ops, and an op this one does not know is passed
 * over, never an error.
 */
type LooseRecord = Partial<AuditRecord> & {
  readonly op?: string;
  readonly stagingDir?: string;
  readonly startedAt?: string;
  readonly childPid?: number;
  readonly mtime?: string;
};

function timeOf(text: string | undefined): number | null {
  if (text === undefined) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * A re-run or reset belongs to this pipeline: recorded with its staging
 * directory, or (older records) its pipeline name.
 */
function sameRunOf(record: LooseRecord, scope: AttemptScope): boolean {
  if (record.run !== scope.runKey) return false;
  if (record.stagingDir !== undefined) return record.stagingDir === scope.stagingDir;
  return (record.pipeline ?? null) === scope.pipeline;
}

/**
 * Failed attempts the audit log recorded for one run key, since its last
 * reset (--retry) or successful re-run. Every record that names a writer PID
 * of a staging file of this key counts that writer once, whatever its op
 * ("delete", "quarantine", a write-ahead intent): cleaning orphans must not
 * make the tool forget the crashes that left them.
 */
export function attemptsFromAudit(
  records: readonly LooseRecord[],
  scope: AttemptScope,
): { recorded: RecordedAttempt[]; sinceMs: number | null } {
  let recorded: RecordedAttempt[] = [];
  let sinceMs: number | null = null;
  const writers = new Set<number>();
  for (const record of records) {
    const at = timeOf(record.time);
    if (record.op === 'reset' || (record.op === 'rerun' && record.exitStatus === 0 && !record.reason)) {
      if (!sameRunOf(record, scope)) continue;
      recorded = [];
      writers.clear();
      sinceMs = at ?? sinceMs;
      continue;
    }
    if (record.op === 'rerun') {
      if (!sameRunOf(record, scope) || at === null) continue;
      const startedAtMs = timeOf(record.startedAt);
      recorded.push({
        atMs: at,
        ...(startedAtMs === null ? {} : { startedAtMs }),
        pid: record.childPid ?? null,
        bytes: null,
        ended: record.reason
          ? `could not start: ${record.reason}`
          : (record.signal ?? `exit ${String(record.exitStatus)}`),
        source: 'rerun',
      });
      continue;
    }
    const pid = record.writerPid;
    if (
      pid === undefined
      || record.run !== scope.runKey
      || record.path === undefined
      || dirname(record.path) !== scope.stagingDir
      || writers.has(pid)
    ) {
      continue;
    }
    writers.add(pid);
    recorded.push({
      atMs: timeOf(record.mtime) ?? at ?? 0,
      pid,
      bytes: record.bytes ?? null,
      ended: null,
      source: 'removed-orphan',
    });
  }
  return { recorded, sinceMs };
}

/**
 * Reads the audit log through the given fs; an unreadable log undercounts,
 * and says so, rather than failing a diagnosis.
 */
export async function readRecordedAttempts(
  fs: FileSystem,
  auditLog: string,
  scope: AttemptScope,
): Promise<{ recorded: RecordedAttempt[]; sinceMs: number | null; note?: string }> {
  try {
    // Only this run key's records count: the rest of a long log is neither
    // held nor parsed (a line that does not name the key cannot be one of them).
    return attemptsFromAudit(await readAudit(fs, auditLog, (r) => r.run === scope.runKey, scope.runKey), scope);
  } catch (error) {
    if (!(error instanceof UsageError) && !errnoCode(error)) throw error;
    const why = error instanceof UsageError ? error.message : `${auditLog}: ${errnoCode(error)}`;
    return { recorded: [], sinceMs: null, note: `earlier attempts are not counted: ${why}` };
  }
}

/**
 * Written after the re-run started (its child cannot write before it is
 * spawned, and both times come from this host's clock) and no later than
 * its end, give or take the file system's rounding.
 */
function ranWhile(atMs: number, from: number, to: number): boolean {
  return atMs >= from && atMs <= to + CLOCK_SLACK_MS;
}

/**
 * Every failed attempt at a run key since it last succeeded, oldest first,
 * one per writer: dead writers' staging files still on disk (one per PID:
 * last seen at its latest write, with the bytes of all its files, in
 * whatever order they were met), orphans the log says were removed, and
 * failed re-runs, a re-run counted once with the orphan it left (same PID,
 * or written while it ran). Pure.
 */
export function countAttempts(
  onDisk: readonly DeadOrphan[],
  recovery: Pick<RecoveryEvidence, 'recorded' | 'sinceMs'>,
): Attempt[] {
  const orphans: Attempt[] = [];
  const indexOf = new Map<number, number>();
  for (const orphan of onDisk) {
    // An orphan last written before a reset is an attempt the reset forgave.
    if (recovery.sinceMs !== null && orphan.mtimeMs < recovery.sinceMs) continue;
    const at = indexOf.get(orphan.pid);
    const seen = at === undefined ? undefined : orphans[at];
    if (at === undefined || seen === undefined) {
      indexOf.set(orphan.pid, orphans.length);
      orphans.push({ atMs: orphan.mtimeMs, pid: orphan.pid, bytes: orphan.bytes, ended: null, source: 'orphan' });
    } else {
      orphans[at] = {
        ...seen,
        atMs: Math.max(seen.atMs, orphan.mtimeMs),
        bytes: (seen.bytes ?? 0) + orphan.bytes,
      };
    }
  }
  for (const attempt of recovery.recorded) {
    if (attempt.source !== 'removed-orphan' || attempt.pid === null || indexOf.has(attempt.pid)) continue;
    // The janitor may remove, after a reset, an orphan written before it.
    if (recovery.sinceMs !== null && attempt.atMs < recovery.sinceMs) continue;
    indexOf.set(attempt.pid, orphans.length);
    orphans.push(attempt);
  }
  // In time order (then PID), whatever order the files were met in: a re-run
  // without a PID of its own is matched with the first orphan written while it ran.
  orphans.sort(byTime);
  const recordedReruns = recovery.recorded.filter((a) => a.source === 'rerun');
  // A crash loop left alone has 100,000 orphans and no re-run: nothing to match, nothing to index again.
  if (recordedReruns.length === 0) return orphans;
  indexOf.clear();
  orphans.forEach((o, i) => {
    if (o.pid !== null) indexOf.set(o.pid, i);
  });
  const reruns: Attempt[] = [];
  for (const rerun of recordedReruns) {
    // Its own PID first; failing that (a wrapper script wrote under another
    // PID), an orphan last written while it ran.
    const byPid = rerun.pid === null ? -1 : (indexOf.get(rerun.pid) ?? -1);
    const index = byPid >= 0
      ? byPid
      : orphans.findIndex((o) => o.ended === null && ranWhile(o.atMs, rerun.startedAtMs ?? rerun.atMs, rerun.atMs));
    const own = orphans[index];
    if (own) orphans[index] = { ...own, ended: own.ended ?? rerun.ended };
    else reruns.push({ atMs: rerun.atMs, pid: rerun.pid, bytes: null, ended: rerun.ended, source: 'rerun' });
  }
  return [...orphans, ...reruns].sort(byTime);
}

const byTime = (a: Attempt, b: Attempt) => a.atMs - b.atMs || (a.pid ?? 0) - (b.pid ?? 0);

/**
 * --retry-backoff: no re-run sooner than DURATION after the first failed
 * attempt, 5x after the second, 25x after the third (the usual exponential
 * backoff, base 5). Seconds still to wait, or 0.
 */
export function retryAfterSeconds(attempts: readonly Attempt[], backoffMs: number, nowMs: number): number {
  const last = attempts.at(-1);
  if (backoffMs <= 0 || !last) return 0;
  const dueMs = last.atMs + backoffMs * 5 ** (attempts.length - 1);
  return dueMs > nowMs ? Math.ceil((dueMs - nowMs) / 1000) : 0;
}
