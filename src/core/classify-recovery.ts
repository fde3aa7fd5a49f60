import { countAttempts, type DeadOrphan, retryAfterSeconds } from './attempts.js';
import { shellJoin } from './command-words.js';
import { formatDuration } from './duration.js';
import { type Attempt, describeEnd, type InputFact, type RecoveryEvidence, rerunFailed } from './recovery.js';
import { type Action, EXIT_BACKOFF, EXIT_CODES, type State } from './states.js';

/** The disk's verdict, before the recovery loop has its say. */
export interface DiskVerdict {
  readonly state: State;
  readonly action: Action;
  readonly summary: string;
}

export interface RecoveryVerdict extends DiskVerdict {
  readonly exitCode: number;
  readonly attempts: {
    readonly count: number;
    /** 0: crash-loop detection is off. */
    readonly max: number;
    readonly list: readonly Attempt[];
    readonly note?: string;
  };
  readonly inputs: readonly InputFact[];
  /** Seconds until --retry-backoff allows the next re-run; 0: now; null: no backoff. */
  readonly retryAfterSeconds: number | null;
  readonly rerun: RecoveryEvidence['rerun'];
}

const NEEDS_RERUN: readonly Action[] = ['rerun', 'clean-then-rerun'];

/** The furthest a Date reaches either side of 1970: tmpfs and btrfs keep mtimes past it. */
const MAX_DATE_MS = 8.64e15;

function clock(ms: number): string {
  // An mtime no Date holds is said, not thrown: the state and its exit code do not hang on it.
  if (!(Math.abs(ms) <= MAX_DATE_MS)) return `(mtime ${ms} ms from 1970, beyond any date)`;
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** `2026-04-24T06:02:11Z PID 91247, 2048 bytes, exit 1`: the attempt list a crash loop names. */
export function describeAttempt(attempt: Attempt): string {
  return [
    clock(attempt.atMs),
    attempt.pid === null ? 'PID unknown' : `PID ${attempt.pid}`,
    ...(attempt.bytes === null ? [] : [`${attempt.bytes} bytes`]),
    ...(attempt.ended === null ? [] : [attempt.ended]),
  ].join(' ');
}

// The CRASH-LOOP summary names this many attempts, then says how many more:
// a crash loop left alone for weeks has 100,000, all under `attempts`.
const NAMED_ATTEMPTS = 20;

function namedAttempts(list: readonly Attempt[]): string {
  const named = list.slice(0, NAMED_ATTEMPTS).map(describeAttempt).join('; ');
  const more = list.length - NAMED_ATTEMPTS;
  return more > 0 ? `${named}; and ${more} more` : named;
}

/** What every recovery verdict reports, whatever state it names: the attempts, the inputs, the re-run. */
function recoveryFacts(list: readonly Attempt[], recovery: RecoveryEvidence) {
  return {
    attempts: {
      count: list.length,
      max: recovery.maxAttempts,
      list,
      ...(recovery.auditNote === undefined ? {} : { note: recovery.auditNote }),
    },
    inputs: recovery.inputs,
    retryAfterSeconds: null,
    rerun: recovery.rerun,
  };
}

/** A verdict naming `state`, with the facts every one reports; the exit code is the state's unless given. */
function verdictWith(facts: ReturnType<typeof recoveryFacts>) {
  return (state: State, action: Action, summary: string, exitCode = EXIT_CODES[state]) => ({
    ...facts,
    state,
    action,
    summary,
    exitCode,
  });
}

/**
 * The recovery loop's states over the disk's: RERUN-FAILED, then BLOCKED,
 * then CRASH-LOOP, then the backoff. Pure. Called only when the disk's state
 * is neither RUNNING nor UNKNOWN, which win over all of these. BLOCKED comes
 * before CRASH-LOOP because a missing input is the more precise diagnosis of
 * a loop it caused; only states that need a re-run can be either, so a
 * published run (DONE, D-race) is never a crash loop.
 */
export function judgeRecovery(
  disk: DiskVerdict,
  recovery: RecoveryEvidence,
  deadOrphans: readonly DeadOrphan[],
  nowMs: number,
): RecoveryVerdict {
  const list = countAttempts(deadOrphans, recovery);
  const max = recovery.maxAttempts;
  const verdict = verdictWith(recoveryFacts(list, recovery));

  if (recovery.rerun && rerunFailed(recovery.rerun)) {
    return verdict(
      'RERUN-FAILED',
      'investigate',
      `The re-run crashdiag started (${shellJoin(recovery.rerun.argv)}) failed: ${describeEnd(recovery.rerun)}. It is not retried. What it left on disk reads as ${disk.state}: ${disk.summary} Find out why it failed before anything runs it again.`,
    );
  }
  if (!NEEDS_RERUN.includes(disk.action)) return verdict(disk.state, disk.action, disk.summary);

  const bad = recovery.inputs.filter((input) => input.status !== 'ok');
  if (bad.length > 0) {
    return verdict(
      'BLOCKED',
      'fix-upstream',
      `A re-run is needed (${disk.state}), but ${bad.map((i) => `the input ${i.path} ${i.detail}`).join('; ')}: it would fail again. Fix upstream first, then re-run.${disk.action === 'clean-then-rerun' ? ' --fix deletes the orphans and re-runs nothing.' : ''}`,
    );
  }
  if (max > 0 && list.length >= max) {
    return verdict(
      'CRASH-LOOP',
      'fix-root-cause',
      `This run key has failed ${list.length} times without publishing (--max-attempts ${max}): ${namedAttempts(list)}. Another re-run would most likely die the same way: fix the cause, then re-run with --fix --retry. --fix deletes the orphans and re-runs nothing.`,
    );
  }
  const wait = retryAfterSeconds(list, recovery.backoffMs, nowMs);
  if (recovery.backoffMs > 0 && wait > 0) {
    return {
      ...verdict(
        disk.state,
        'wait',
        `${disk.summary} But ${list.length} attempt${list.length === 1 ? ' has' : 's have'} failed already, and --retry-backoff ${formatDuration(recovery.backoffMs)} holds the next re-run for ${formatDuration(wait * 1000)}. Nothing is changed until then.`,
        EXIT_BACKOFF,
      ),
      retryAfterSeconds: wait,
    };
  }
  return { ...verdict(disk.state, disk.action, disk.summary), retryAfterSeconds: recovery.backoffMs > 0 ? 0 : null };
}
