import { formatDuration } from './duration.js';
import type { JudgementRules, StagingEntry } from './evidence.js';

export type WriterVerdict = 'alive' | 'dead' | 'unknown';

export interface WriterJudgement {
  readonly writer: WriterVerdict;
  readonly reason: string;
  /** What decided: the process table, or the file's age (no usable PID verdict). */
  readonly by: 'pid' | 'age';
}

// /proc start times come in clock ticks on top of a boot time rounded to the
// second, and file systems round mtimes: allow a second of slack before
// calling a process "started after the file was written".
export const CLOCK_SLACK_MS = 1000;

/** The times a writer is judged by: what lstat (or the object store) said about the file. */
export type FileTimes = Pick<StagingEntry, 'mtimeMs' | 'ctimeMs' | 'lastChangeUnknown'>;

/**
 * When the file last changed: the later of its mtime and ctime. ctime, not
 * mtime alone: cp -p, curl -R, rsync -t, tar x and wget -N set an old mtime
 * on a file their process is still writing, and no user can set the ctime
 * back (any utime, write, rename or link moves it to now). Without a ctime
 * (a source that has none) the mtime is all there is.
 */
export function lastChangeMs(times: FileTimes): number | undefined {
  const { mtimeMs, ctimeMs } = times;
  if (mtimeMs === undefined) return ctimeMs;
  return ctimeMs === undefined ? mtimeMs : Math.max(mtimeMs, ctimeMs);
}

function changedText(times: FileTimes, nowMs: number): string {
  const ago = (ms: number) => (ms <= nowMs ? `${formatDuration(nowMs - ms)} ago` : `${formatDuration(ms - nowMs)} ahead`);
  const { mtimeMs, ctimeMs } = times;
  // Both are named only when the ctime is the later: an mtime set into the past.
  if (mtimeMs === undefined || ctimeMs === undefined || ctimeMs - mtimeMs <= CLOCK_SLACK_MS) {
    const last = lastChangeMs(times);
    return last === undefined ? 'unknown' : ago(last);
  }
  return `mtime ${ago(mtimeMs)}, ctime ${ago(ctimeMs)}`;
}

/**
 * Whether the process that wrote a staging file can still be writing it.
 * Pure: the PID facts were gathered by the probe. The one home of this
 * rule: diagnose, scan, the fix guards, clean and the lock all ask it.
 *
 * A live PID is the file's writer unless it provably is not: the process
 * started after the file's last change (beyond the clock slack) AND the file
 * has been quiet for longer than --stale-after. PIDs are reused, but a
 * process that started after the last change of a file still changing may
 * well be writing it (a writer that opened it earlier and exec'd, a file
 * handed over): only quiet plus a later start rules it out.
 */
export function judgeWriter(
  entry: Pick<StagingEntry, 'pid' | 'mtimeMs' | 'ctimeMs' | 'lastChangeUnknown' | 'pidCheck'>,
  rules: JudgementRules,
  nowMs: number,
): WriterJudgement {
  const changedMs = lastChangeMs(entry) ?? nowMs;
  const check = entry.pidCheck;
  if (check.checked) {
    const { facts } = check;
    if (!facts.exists) return { writer: 'dead', by: 'pid', reason: `PID ${entry.pid} is not running` };
    if (facts.zombie)
      return { writer: 'dead', by: 'pid', reason: `PID ${entry.pid} has exited (a zombie not yet reaped)` };
    if (entry.lastChangeUnknown !== undefined) {
      // Its last write may be as late as now: nothing proves a live PID is not its writer.
      return { writer: 'alive', by: 'pid', reason: `PID ${entry.pid} is running, and ${entry.lastChangeUnknown}` };
    }
    if (facts.startMs !== undefined) return judgeLivePid(entry, facts.startMs, changedMs, rules, nowMs);
    return judgeLivePidByAge(entry, rules, nowMs);
  }
  const byAge = judgeByAge(entry, rules, nowMs, check.why);
  if (byAge.writer !== 'dead' || entry.lastChangeUnknown === undefined) return byAge;
  // Old by its start is not old by its last write: a writer may have finished it a second ago.
  return {
    writer: 'unknown',
    by: 'age',
    reason: `${check.why}; started ${formatDuration(nowMs - changedMs)} ago, but ${entry.lastChangeUnknown}, so its age cannot rule out a live writer`,
  };
}

/**
 * A live PID whose start time cannot be read (/proc mounted hidepid=2 and the
 * writer another user's, or no /proc at all): nothing proves it is not the
 * writer. A file changed within --stale-after is its writer's; a quiet one
 * cannot be judged (a stalled writer and a reused PID look alike), never dead.
 */
function judgeLivePidByAge(
  entry: Pick<StagingEntry, 'pid' | 'mtimeMs' | 'ctimeMs'>,
  rules: JudgementRules,
  nowMs: number,
): WriterJudgement {
  const why = `PID ${entry.pid} is running but its start time cannot be read`;
  const byAge = judgeByAge(entry, rules, nowMs, why);
  if (byAge.writer !== 'dead') return byAge;
  return {
    writer: 'unknown',
    by: 'age',
    reason: `${byAge.reason}; without its start time a running PID cannot be ruled out as the writer (a stalled writer and a reused PID look alike)`,
  };
}

function judgeLivePid(
  entry: Pick<StagingEntry, 'pid' | 'mtimeMs' | 'ctimeMs'>,
  startMs: number,
  changedMs: number,
  rules: JudgementRules,
  nowMs: number,
): WriterJudgement {
  const changed = `the file's last change (${changedText(entry, nowMs)})`;
  if (startMs <= changedMs + CLOCK_SLACK_MS) {
    const before = changedMs - startMs;
    return {
      writer: 'alive',
      by: 'pid',
      reason:
        before >= 0
          ? `PID ${entry.pid} is running and started ${formatDuration(before)} before ${changed}`
          : `PID ${entry.pid} is running and started within ${formatDuration(CLOCK_SLACK_MS)} of ${changed}`,
    };
  }
  const after = formatDuration(startMs - changedMs);
  const quietMs = nowMs - changedMs;
  const threshold = formatDuration(rules.staleAfterMs);
  if (quietMs > rules.staleAfterMs) {
    return {
      writer: 'dead',
      by: 'pid',
      reason: `PID ${entry.pid} is running but started ${after} after ${changed}, and the file has been quiet for ${formatDuration(quietMs)}, over ${threshold}: a reused PID`,
    };
  }
  return {
    writer: 'alive',
    by: 'pid',
    reason: `PID ${entry.pid} is running; it started ${after} after ${changed}, but the file changed within ${threshold}, so it may still be its writer`,
  };
}

function judgeByAge(times: FileTimes, rules: JudgementRules, nowMs: number, why: string): WriterJudgement {
  const ageMs = nowMs - (lastChangeMs(times) ?? nowMs);
  const threshold = formatDuration(rules.staleAfterMs);
  // Name both times when the ctime is the later: an old mtime beside a young ctime is the cp -p case.
  const { mtimeMs, ctimeMs } = times;
  const differ = mtimeMs !== undefined && ctimeMs !== undefined && ctimeMs - mtimeMs > CLOCK_SLACK_MS;
  const both = differ ? ` (${changedText(times, nowMs)}: the later counts)` : '';
  if (ageMs < -rules.staleAfterMs) {
    return {
      writer: 'unknown',
      by: 'age',
      reason: `${why}; and the file was modified ${formatDuration(-ageMs)} in the future${both} (clock skew between hosts?), so its age says nothing`,
    };
  }
  if (ageMs <= rules.staleAfterMs) {
    return {
      writer: 'alive',
      by: 'age',
      reason: `${why}; modified ${formatDuration(Math.max(0, ageMs))} ago${both}, within ${threshold}`,
    };
  }
  return {
    writer: 'dead',
    by: 'age',
    reason: `${why}; untouched for ${formatDuration(ageMs)}${both}, over ${threshold}`,
  };
}
