import { type AuditRecord, appendAudit } from './audit.js';
import { shellJoin } from './command-words.js';
import type { Deps } from './deps.js';
import { type Diagnosis, orphanTotalsOf } from './diagnosis.js';
import { isUsageError } from './errors.js';
import type { FixContext, FixReport } from './fix.js';
import type { Refusal } from './guards.js';
import { type HeldLock, stillHeld } from './lock.js';
import { type FixPlan, rerunStillNeeded } from './plan.js';
import { compareText } from './probe.js';
import type { PipelineSettings } from './settings.js';
import type { RerunOutcome } from './recovery.js';
import { EXIT_CODES, RUNBOOKS } from './states.js';

/** Appends one record to the audit log of the fix (and fsyncs it). */
export type Audit = (record: Partial<AuditRecord> & Pick<AuditRecord, 'op'>) => Promise<void>;

/** The fix's audit log: every record says who, where, which run and its state before, and when (the wall clock). */
export function auditorFor(
  job: {
    readonly ctx: Pick<FixContext, 'fs' | 'user' | 'processes' | 'pid' | 'wallClock'>;
    readonly settings: Pick<PipelineSettings, 'pipeline'>;
    readonly runKey: string;
    readonly options: { readonly auditLog: string };
  },
  before: Diagnosis,
): Audit {
  const { ctx, settings, runKey, options } = job;
  const base = {
    time: '',
    user: ctx.user,
    host: ctx.processes.hostname,
    pid: ctx.pid,
    pipeline: settings.pipeline ?? null,
    run: runKey,
    stateBefore: before.state,
  };
  return (record) =>
    appendAudit(ctx.fs, options.auditLog, [{ ...base, ...record, time: new Date(ctx.wallClock()).toISOString() }]);
}

/**
 * The shared steps of both fixers (a local run; a run with an S3 side): the
 * second look, the re-run, and the reports of a refused or stopped fix.
 *
 * What they need of a fix, whatever its backend (a directory, an
 * S3 prefix): where it cleans, where progress goes, and a second look.
 */
export interface LookAgain {
  readonly stagingDir: string;
  readonly progress: (line: string) => void;
  /** The run diagnosed again (with the re-run's outcome, if one was made); a UsageError if it cannot be looked at. */
  readonly look: (rerun: RerunOutcome | null | undefined) => Promise<Diagnosis>;
}

/** What the re-run's report says of how it ended, as the recovery rules read it. */
function outcomeOf(rerun: FixReport['rerun']): RerunOutcome | null {
  if (!rerun?.result) return null;
  const { exitStatus, signal, error } = rerun.result;
  return { argv: rerun.argv, exitStatus, signal, ...(error === undefined ? {} : { error }) };
}

/**
 * The run looked at again once the fix has acted (or refused, or stopped).
 * If it cannot be (its permissions changed midway, which may be why a
 * removal failed; a store that stopped answering), UNKNOWN, with what was
 * found before, its staging files no longer vouched for: the report of what
 * was done must still come out, not give way to a usage error, and nothing
 * is re-run on it. `rerun` as for diagnose.
 */
async function diagnoseAgain(
  again: LookAgain,
  before: Diagnosis,
  rerun?: RerunOutcome | null,
): Promise<Diagnosis> {
  try {
    return await again.look(rerun);
  } catch (error) {
    if (!isUsageError(error)) throw error;
    const why = `it cannot be looked at again: ${error.message}`;
    return {
      ...before,
      state: 'UNKNOWN',
      action: 'investigate',
      exitCode: EXIT_CODES.UNKNOWN,
      orphans: [],
      orphanTotals: orphanTotalsOf([]),
      summary: `The run ${why}`,
      anomalies: [...before.anomalies, { path: again.stagingDir, reason: why }],
      runbook: RUNBOOKS.UNKNOWN,
    };
  }
}

/** A diagnosis a person must look at, whatever the run looks like now: state, action and code agree. */
async function investigateNow(
  again: LookAgain,
  before: Diagnosis,
  why: string,
  anomalies: readonly Refusal[],
): Promise<Diagnosis> {
  const now = await diagnoseAgain(again, before, null);
  return {
    ...now,
    state: 'UNKNOWN',
    action: 'investigate',
    exitCode: EXIT_CODES.UNKNOWN,
    summary: `${why} ${now.summary}`,
    anomalies: [...now.anomalies, ...anomalies].sort((a, b) => compareText(a.path, b.path)),
    runbook: RUNBOOKS.UNKNOWN,
  };
}

/** A removal failed its check when re-examined: every refusal on record, nothing removed, a person must look. */
export async function refusedReport(
  again: LookAgain,
  before: Diagnosis,
  plan: FixPlan,
  refused: readonly Refusal[],
  audit: Audit,
): Promise<FixReport> {
  for (const r of refused) await audit({ op: 'refuse', path: r.path, reason: r.reason });
  again.progress(`refused: ${refused.length} of ${plan.removals.length} paths failed a safety check; nothing was removed`);
  // The run moved under the diagnosis, or a removal is not ours to make:
  // whatever it looks like now, a person must look.
  const after = await investigateNow(
    again,
    before,
    `--fix refused to act: ${refused.length} planned removal${refused.length === 1 ? '' : 's'} failed a safety check when re-examined, so nothing was removed.`,
    refused,
  );
  const nothing = { steps: [], stopped: null, rerun: null, rerunSkipped: null };
  return { dryRun: false, before, plan, refused, ...nothing, after, exitCode: after.exitCode };
}

/** A removal failed midway: what was done and what failed, no re-run, a person must look. */
async function stoppedReport(
  again: LookAgain,
  report: Pick<FixReport, 'dryRun' | 'before' | 'plan' | 'refused' | 'steps'>,
  stopped: string,
): Promise<FixReport> {
  const failed = report.steps.filter((s) => s.result === 'failed');
  const after = await investigateNow(
    again,
    report.before,
    `--fix stopped midway: ${stopped}.`,
    failed.map((s) => ({ path: s.path, reason: s.reason ?? 'its removal failed' })),
  );
  return { ...report, stopped, rerun: null, rerunSkipped: null, after, exitCode: after.exitCode };
}

export interface RerunStep extends Pick<FixReport, 'rerun' | 'rerunSkipped'> {
  /** Set when nothing was started after this diagnosis: what is there now. */
  readonly current?: Diagnosis;
}

/** What the re-run needs beyond the second look: the run key, the command runner, the clock, the lock's file system. */
export type Rerunner = LookAgain & { readonly runKey: string } & Pick<Deps, 'fs' | 'runCommand' | 'wallClock'>;

/**
 * Right before the re-run, under the lock: diagnose again and start it only
 * if the removals left what they should have (see rerunStillNeeded) and the
 * lock is still ours. Otherwise nothing is started, and the skip is recorded
 * with the state found. `outputReplaced` says whether the published output
 * is no longer the one found before the removals (by inode locally, by ETag on S3).
 */
export async function rerunIfStillNeeded(
  job: Rerunner,
  lock: HeldLock,
  plan: FixPlan,
  found: { readonly before: Diagnosis; readonly argv: readonly string[] },
  outputReplaced: (now: Diagnosis) => Promise<boolean>,
  audit: Audit,
): Promise<RerunStep> {
  const { runKey, argv } = { runKey: job.runKey, argv: found.argv };
  const now = await diagnoseAgain(job, found.before);
  const notNeeded = rerunStillNeeded(plan, now, await outputReplaced(now));
  // The re-run rewrites the published output: like each removal, it happens only while the lock is still ours.
  const skipped = notNeeded ?? ((await stillHeld(job.fs, lock)) ? undefined : 'the fix lock was lost before the re-run');
  if (skipped) {
    job.progress(`not re-running: ${skipped}`);
    await audit({ op: 'skip', command: argv, reason: skipped });
    return { rerun: null, rerunSkipped: skipped, current: now };
  }
  job.progress(`re-running for ${runKey}: ${shellJoin(argv)}`);
  const startedMs = job.wallClock();
  const result = await job.runCommand(argv, { CRASHDIAG_RUN_KEY: runKey });
  const startedAt = new Date(startedMs).toISOString();
  const durationMs = Math.max(0, job.wallClock() - startedMs);
  await audit({
    op: 'rerun',
    command: argv,
    exitStatus: result.exitStatus,
    signal: result.signal,
    ...(result.error ? { reason: result.error } : {}),
    stagingDir: job.stagingDir,
    startedAt,
    durationMs,
    ...(result.pid === undefined ? {} : { childPid: result.pid }),
  });
  return { rerun: { argv, result, startedAt, durationMs }, rerunSkipped: null };
}

/**
 * What both fixers do once the removals are over: stop there if one failed;
 * else record --retry, re-run if still needed, and look again.
 */
export async function concludeFix(
  again: LookAgain,
  report: Pick<FixReport, 'dryRun' | 'before' | 'plan' | 'refused' | 'steps'>,
  done: { readonly stopped?: string | null; readonly leftAlone: boolean; readonly retry: boolean | undefined },
  rerunStep: () => Promise<RerunStep>,
  audit: Audit,
): Promise<FixReport> {
  if (done.stopped) return stoppedReport(again, report, done.stopped);
  const { before, plan, steps } = report;
  // --retry is recorded after the clean-up, so the orphans it removed stay
  // counted before the reset and none after it.
  if (done.retry && !done.leftAlone && (plan.removals.length > 0 || plan.rerun)) {
    await audit({ op: 'reset', stagingDir: again.stagingDir, reason: '--retry: the cause is declared fixed' });
  }
  const { current, ...rerun } = await rerunStep();
  const nothingDone = steps.length === 0 && rerun.rerun === null && !current;
  // Nothing done (DONE, RUNNING, UNKNOWN, a re-run with no command): the state
  // found under the lock is the answer. A re-run held back was decided on a
  // diagnosis made a moment ago: that is what is there now.
  const after = nothingDone ? before : (current ?? (await diagnoseAgain(again, before, outcomeOf(rerun.rerun))));
  return { ...report, stopped: null, ...rerun, after, exitCode: after.exitCode };
}
