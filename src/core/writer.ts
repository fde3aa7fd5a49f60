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

/**
 * Whether the process that wrote a staging file can still be writing it.
 * Pure: the PID facts were gathered by the probe.
 */
export function judgeWriter(
  entry: Pick<StagingEntry, 'pid' | 'mtimeMs' | 'pidCheck'>,
  rules: JudgementRules,
  nowMs: number,
): WriterJudgement {
  const mtimeMs = entry.mtimeMs ?? nowMs;
  const check = entry.pidCheck;
  if (check.checked) {
    const { facts } = check;
    if (!facts.exists) return { writer: 'dead', by: 'pid', reason: `PID ${entry.pid} is not running` };
    if (facts.zombie)
      return { writer: 'dead', by: 'pid', reason: `PID ${entry.pid} has exited (a zombie not yet reaped)` };
    if (facts.startMs !== undefined) {
      // A live process that started after the file was last written cannot be its writer: PIDs are reused.
      if (facts.startMs > mtimeMs + CLOCK_SLACK_MS) {
        return {
          writer: 'dead',
          by: 'pid',
          reason: `PID ${entry.pid} is running but started ${formatDuration(facts.startMs - mtimeMs)} after the file was last written: a reused PID`,
        };
      }
      return {
        writer: 'alive',
        by: 'pid',
        reason: `PID ${entry.pid} is running and started before the file's last write`,
      };
    }
    return judgeByAge(mtimeMs, rules, nowMs, `PID ${entry.pid} is running but its start time cannot be read`);
  }
  return judgeByAge(mtimeMs, rules, nowMs, check.why);
}

function judgeByAge(mtimeMs: number, rules: JudgementRules, nowMs: number, why: string): WriterJudgement {
  const ageMs = nowMs - mtimeMs;
  const threshold = formatDuration(rules.staleAfterMs);
  if (ageMs < -rules.staleAfterMs) {
    return {
      writer: 'unknown',
      by: 'age',
      reason: `${why}; and the file was modified ${formatDuration(-ageMs)} in the future (clock skew between hosts?), so its age says nothing`,
    };
  }
  if (ageMs <= rules.staleAfterMs) {
    return {
      writer: 'alive',
      by: 'age',
      reason: `${why}; modified ${formatDuration(Math.max(0, ageMs))} ago, within ${threshold}`,
    };
  }
  return {
    writer: 'dead',
    by: 'age',
    reason: `${why}; untouched for ${formatDuration(ageMs)}, over ${threshold}`,
  };
}
