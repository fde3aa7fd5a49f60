import type { Deps } from './deps.js';
import { basename, join } from 'node:path';
import { type AuditRecord, checkAuditLog } from './audit.js';
import { classifyRun } from './classify.js';
import { refuseLockInOutputDirectory, refuseWriteIntoOutputDirectory } from './directory-rules.js';
import type { Diagnosis } from './diagnosis.js';
import { errnoCode, isUsageError } from './errors.js';
import { type FileSystem, fsyncDirectory } from './fs.js';
import {
  type Boundaries,
  type FileSnapshot,
  type GuardContext,
  guardRemoval,
  type Refusal,
  readBoundaries,
  recheckRemoval,
} from './guards.js';
import { acquireLock, lockContextOf, lockPathFor, type HeldLock, stillHeld } from './lock.js';
import { type FixPlan, type PlannedRemoval, planFix } from './plan.js';
import { type OutputSide, probeRun } from './probe.js';
import { pinnedPath } from './same-directory.js';
import {
  checkQuarantine,
  moveToQuarantine,
  NotTheCheckedFile,
  OriginalNotRemoved,
  prepareQuarantine,
} from './quarantine.js';
import type { RerunOutcome } from './recovery.js';
import { gatherRecovery, type RecoveryRequest } from './recovery-probe.js';
import type { PipelineSettings } from './settings.js';
import {
  type Audit,
  auditorFor,
  concludeFix,
  type LookAgain,
  type Rerunner,
  rerunIfStillNeeded,
  type RerunStep,
  refusedReport,
} from './fix-reports.js';

export interface CommandResult {
  readonly exitStatus: number | null;
  readonly signal: string | null;
  /** Set when the command could not be started at all (ENOENT, EACCES). */
  readonly error?: string;
  /** The PID of the process started, when it started. */
  readonly pid?: number;
  /** The last lines it wrote to stderr (which still streamed to the terminal as it ran). */
  readonly stderrTail?: readonly string[];
}

/** Runs a command without a shell, stdio inherited; injected so the core never spawns by itself. */
export type CommandRunner = (
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
) => Promise<CommandResult>;

/**
 * The fixer's narrowing of Deps. It judges every removal on the wall clock,
 * never --now; `pid`, `randomToken` and `every` (a timer) are the lock's.
 */
export type FixContext = Pick<
  Deps,
  'fs' | 'processes' | 'wallClock' | 'sleep' | 'runCommand' | 'user' | 'identity' | 'progress' | 'pid' | 'randomToken' | 'every'
>;

export interface FixOptions {
  readonly dryRun: boolean;
  readonly quarantineDir: string | undefined;
  readonly lockTimeoutMs: number;
  readonly auditLog: string;
  /** --retry: the cause of a crash loop is declared fixed; recorded as a reset, it allows another round. */
  readonly retry?: boolean;
}

export type StepResult
  = | 'deleted'
    | 'quarantined'
    /** S3: an incomplete multipart upload aborted (--abort-uploads). */
    | 'aborted'
    | 'already-gone'
    | 'left-alone'
    | 'planned'
    /** The disk refused the removal (permissions changed, read-only, I/O error): the fix stopped there. */
    | 'failed'
    /** Planned, but the fix stopped at an earlier failure. */
    | 'not-attempted';

export interface FixStep {
  readonly path: string;
  readonly bytes: number;
  readonly pid: number;
  readonly result: StepResult;
  readonly to?: string;
  readonly reason?: string;
}

export interface FixReport {
  readonly dryRun: boolean;
  readonly before: Diagnosis;
  readonly plan: FixPlan;
  /** Guards that failed before anything was touched: then nothing was. */
  readonly refused: readonly Refusal[];
  readonly steps: readonly FixStep[];
  /** Set when a removal failed midway: why the fix stopped, in one sentence. */
  readonly stopped: string | null;
  readonly rerun: {
    readonly argv: readonly string[];
    readonly result: CommandResult | null;
    /** ISO-8601; absent from a dry run. */
    readonly startedAt?: string;
    readonly durationMs?: number;
  } | null;
  /** Set when a planned re-run was not started, and why. */
  readonly rerunSkipped: string | null;
  readonly after: Diagnosis;
  readonly exitCode: number;
}

/** One fix: what it acts on and how; passed to each step. */
interface FixJob {
  readonly ctx: FixContext;
  readonly settings: PipelineSettings;
  readonly runKey: string;
  readonly options: FixOptions;
  /** Set when the output is not in a local directory (an S3 output prefix): where its facts come from. */
  readonly output: OutputSide | undefined;
}

function guardContextOf(job: FixJob): GuardContext {
  const { ctx, settings, runKey } = job;
  return {
    fs: ctx.fs,
    processes: ctx.processes,
    nowMs: ctx.wallClock(),
    settings,
    runKey,
    identity: ctx.identity,
  };
}

/** The recovery loop's part of a diagnosis: where the attempts are recorded, whether --retry forgave them. */
type RecoveryAsk = Omit<RecoveryRequest, 'nowMs'>;

/** The fix reports' second look at a local run. */
function againOf(job: FixJob): LookAgain {
  return { stagingDir: job.settings.stagingDir, progress: job.ctx.progress, look: (rerun) => diagnose(job, rerun) };
}

/** The shared re-run step's view of a local fix. */
function rerunnerOf(job: FixJob): Rerunner {
  const { fs, runCommand, wallClock } = job.ctx;
  return { ...againOf(job), runKey: job.runKey, fs, runCommand, wallClock };
}

/**
 * Diagnoses the run as it is now, attempts included. Before the fix acts,
 * --retry forgives the attempts so far; once acted on, that forgiveness is
 * the reset record in the log, and a re-run's outcome is the latest attempt.
 */
async function diagnose(job: FixJob, rerun?: RerunOutcome | null): Promise<Diagnosis> {
  const { ctx, settings, runKey, options } = job;
  const nowMs = ctx.wallClock();
  const evidence = await probeRun({ fs: ctx.fs, processes: ctx.processes, nowMs }, settings, runKey, job.output);
  const ask: RecoveryAsk = rerun === undefined
    ? { auditLog: options.auditLog, retry: options.retry === true }
    : { auditLog: options.auditLog, retry: false, rerun };
  return classifyRun({ ...evidence, recovery: await gatherRecovery(ctx.fs, settings, runKey, { ...ask, nowMs }) });
}

/**
 * Performs the safe action for one run key: lock, diagnose afresh, plan, run
 * every guard on every path, then act, re-checking each file right before it
 * goes; diagnose again and re-run if the state still calls for it; diagnose again.
 * `output`, for an output that is not a local directory (an S3 output prefix
 * beside this local staging directory), only says what is published and
 * whether it was replaced: the staging directory, the lock, the guards and
 * every removal stay the local ones.
 */
export async function fixRun(
  ctx: FixContext,
  settings: PipelineSettings,
  runKey: string,
  options: FixOptions,
  output?: OutputSide,
): Promise<FixReport> {
  // Appended to where it is checked, whatever a symlink on the way points at later.
  const auditLog = await pinnedPath(ctx.fs, options.auditLog);
  const job: FixJob = { ctx, settings, runKey, options: { ...options, auditLog }, output };
  // Before anything else, dry run included: the same answer either way.
  await refuseWriteIntoOutputDirectory(ctx.fs, auditLog, [settings], 'audit log');
  await refuseLockInOutputDirectory(ctx.fs, lockPathFor(settings.stagingDir, runKey), settings);
  if (options.dryRun) return planOnly(job);
  const lock = await acquireLock(
    lockContextOf(ctx, settings),
    settings.stagingDir,
    runKey,
    options.lockTimeoutMs,
  );
  try {
    return await fixLocked(job, lock);
  } finally {
    await lock.release();
  }
}

/** The boundaries every path is held against; with --quarantine, its directory checked (a usage error if unfit). */
async function boundariesFor(job: FixJob): Promise<Boundaries> {
  const bounds = await readBoundaries(guardContextOf(job));
  // Checked whether or not this state moves anything: an unfit --quarantine is
  // a usage error (exit 2) in every state, not only when there are orphans.
  const { quarantineDir } = job.options;
  if (!quarantineDir) return bounds;
  const quarantineAccess = await checkQuarantine(job.ctx.fs, quarantineDir, bounds, job.ctx.identity);
  return { ...bounds, quarantineAccess };
}

/** Every guard on every planned path, before anything is touched: what passed (with its identity) and what did not. */
async function checkAll(
  job: FixJob,
  bounds: Boundaries,
  removals: readonly PlannedRemoval[],
): Promise<{ snapshots: Map<string, FileSnapshot>; refused: Refusal[] }> {
  const snapshots = new Map<string, FileSnapshot>();
  const refused: Refusal[] = [];
  for (const removal of removals) {
    const verdict = await guardRemoval(guardContextOf(job), bounds, removal);
    if (verdict.ok) snapshots.set(removal.path, verdict.snapshot);
    else refused.push({ path: removal.path, reason: verdict.reason });
  }
  return { snapshots, refused };
}

/** --dry-run: the same plan and the same checks as the real run, without the lock, changing nothing. */
async function planOnly(job: FixJob): Promise<FixReport> {
  const before = await diagnose(job);
  const plan = planFix(before, job.settings.rerun, job.options.quarantineDir);
  const bounds = await boundariesFor(job);
  const { refused } = await checkAll(job, bounds, plan.removals);
  // As the real run: one refusal, and nothing is removed and nothing re-run.
  const acts = refused.length === 0;
  const steps = acts
    ? plan.removals.map((r) => ({ path: r.path, bytes: r.bytes, pid: r.pid, result: 'planned' as const }))
    : [];
  const rerun = acts && plan.rerun ? { argv: plan.rerun, result: null } : null;
  return {
    dryRun: true,
    before,
    plan,
    refused,
    steps,
    stopped: null,
    rerun,
    rerunSkipped: null,
    after: before,
    exitCode: before.exitCode,
  };
}

async function fixLocked(job: FixJob, lock: HeldLock): Promise<FixReport> {
  const { ctx, settings, options } = job;
  // Diagnose afresh under the lock: another fixer may have acted while we waited.
  const before = await diagnose(job);
  const plan = planFix(before, settings.rerun, options.quarantineDir);
  const audit = auditorFor(job, before);
  // The quarantine first: a refusal must leave nothing behind, not even an empty audit log.
  const bounds = await boundariesFor(job);
  if (plan.removals.length > 0 || plan.rerun) await checkAuditLog(ctx.fs, options.auditLog);
  // Plan, check all, then act: one failed guard and nothing at all is removed.
  const { snapshots, refused } = await checkAll(job, bounds, plan.removals);
  if (refused.length > 0) return refusedReport(againOf(job), before, plan, refused, audit);

  const quarantine = plan.quarantineDir
    ? await prepareQuarantine(ctx.fs, plan.quarantineDir, bounds, ctx.identity)
    : undefined;
  const output = await outputIdentityOf(job, before.final.path);
  const removed = await removeAll(job, lock, plan.removals, { bounds, snapshots, quarantine, audit });
  const report = { dryRun: false, before, plan, refused, steps: removed.steps };
  const removals = { before, leftAlone: removed.leftAlone, output };
  const done = { stopped: removed.stopped, leftAlone: removed.leftAlone, retry: options.retry };
  return concludeFix(againOf(job), report, done, () => rerunStep(job, lock, plan, removals, audit), audit);
}

/** How the re-run ended, for the recovery loop's count of attempts. */
interface RemovalTools {
  readonly bounds: Boundaries;
  readonly snapshots: ReadonlyMap<string, FileSnapshot>;
  readonly quarantine: string | undefined;
  readonly audit: Audit;
}

/**
 * Removes the checked files one by one, each re-checked right before it
 * goes. Stops at the first removal the disk refuses (nothing after it is
 * attempted, and the re-run is off); fsyncs the staging directory after
 * whatever was removed, also then.
 */
async function removeAll(
  job: FixJob,
  lock: HeldLock,
  removals: readonly PlannedRemoval[],
  tools: RemovalTools,
): Promise<{ steps: FixStep[]; leftAlone: boolean; stopped: string | null }> {
  const { ctx } = job;
  const steps: FixStep[] = [];
  let leftAlone = false;
  let stopped: string | null = null;
  for (const removal of removals) {
    const { path, bytes, pid } = removal;
    if (stopped) {
      steps.push({ path, bytes, pid, result: 'not-attempted', reason: 'the fix stopped at an earlier failure' });
      continue;
    }
    const snapshot = tools.snapshots.get(path);
    if (!snapshot || !(await stillHeld(ctx.fs, lock))) {
      steps.push({ path, bytes, pid, result: 'left-alone', reason: 'the fix lock was lost' });
      leftAlone = true;
      continue;
    }
    // Write-ahead, and before the re-check so that nothing comes between it and the unlink: after a
    // crash the log may hold an intent without an outcome, never a removal without a line.
    const unrecorded = await recordIntent(tools, removal, snapshot);
    if (unrecorded) {
      steps.push({ path, bytes, pid, result: 'not-attempted', reason: unrecorded });
      stopped = `recording the intent to remove ${path} failed (${unrecorded}); it was not removed, the rest not attempted, nothing was re-run`;
      continue;
    }
    // Through the staging directory as resolved when the fix began: a symlink
    // on the way turned elsewhere since (at an output directory holding the
    // same name) cannot redirect the removal.
    const at = join(tools.bounds.realStaging, basename(path));
    const { step, record } = await checkAndRemove(job, removal, at, snapshot, tools);
    steps.push(step);
    if (step.result === 'left-alone') leftAlone = true;
    const done = () => steps.filter((s) => s.result === 'deleted' || s.result === 'quarantined').length;
    if (step.result === 'failed') {
      stopped = `removing ${path} failed (${step.reason}); ${done()} of ${removals.length} removed before it, the rest not attempted, nothing was re-run`;
    }
    // The outcome after the act: if it cannot be written, the intent on record still tells.
    const unwritten = await tryAudit(tools, record);
    if (unwritten && !stopped) {
      stopped = `${path} is ${step.result}, but its outcome could not be recorded (${unwritten}; its intent is on record); ${done()} of ${removals.length} removed, the rest not attempted, nothing was re-run`;
    }
  }
  if (steps.some((s) => s.result === 'deleted' || s.result === 'quarantined')) {
    // The directory the removals went through, as resolved when the fix began.
    await fsyncDirectory(ctx.fs, tools.bounds.realStaging);
  }
  if (stopped) ctx.progress(`stopped: ${stopped}; see the audit log`);
  return { steps, leftAlone, stopped };
}

/**
 * Records the intent to remove a checked file before anything is done to it.
 * Returns why it could not be recorded (a full disk, the log replaced): then
 * the file must not be removed, or the log would under-report.
 */
async function recordIntent(
  tools: RemovalTools,
  removal: PlannedRemoval,
  snapshot: FileSnapshot,
): Promise<string | undefined> {
  const { path, bytes, pid } = removal;
  const intent = tools.quarantine ? 'quarantine' : 'delete';
  const mtime = new Date(snapshot.mtimeMs).toISOString();
  return tryAudit(tools, { op: 'intent', intent, path, bytes, mtime, writerPid: pid });
}

/**
 * One checked file deleted or moved into quarantine (acted on `at`, its path
 * under the resolved staging directory), and recorded; a refusal by the disk
 * is a 'failed' step, recorded too.
 */
type OutcomeRecord = Partial<AuditRecord> & Pick<AuditRecord, 'op'>;

/** What happened to one file, and the record that says so. */
interface Outcome {
  readonly step: FixStep;
  readonly record: OutcomeRecord;
}

/** The last look right before the removal, then the removal; what happened, not yet recorded. */
async function checkAndRemove(
  job: FixJob,
  removal: PlannedRemoval,
  at: string,
  snapshot: FileSnapshot,
  tools: RemovalTools,
): Promise<Outcome> {
  const { path, bytes, pid } = removal;
  const verdict = await recheckRemoval(guardContextOf(job), tools.bounds, { path: at }, snapshot);
  if (verdict.ok === 'gone') {
    return { step: { path, bytes, pid, result: 'already-gone' }, record: { op: 'gone', path, bytes, writerPid: pid } };
  }
  if (!verdict.ok) {
    const { reason } = verdict;
    return {
      step: { path, bytes, pid, result: 'left-alone', reason },
      record: { op: 'skip', path, bytes, writerPid: pid, reason },
    };
  }
  return removeOne(job, removal, at, snapshot, tools);
}

/** Appends one record; returns why it could not be written (a full disk, the log replaced). */
async function tryAudit(tools: RemovalTools, record: OutcomeRecord): Promise<string | undefined> {
  try {
    await tools.audit(record);
    return undefined;
  } catch (error) {
    if (isUsageError(error)) return error.message;
    const code = errnoCode(error);
    if (!code) throw error;
    return `the audit log cannot be written: ${code}`;
  }
}

async function removeOne(
  job: FixJob,
  removal: PlannedRemoval,
  at: string,
  snapshot: FileSnapshot,
  tools: RemovalTools,
): Promise<Outcome> {
  const { ctx } = job;
  const { path, bytes, pid } = removal;
  // The checked file's time, so the record keeps the evidence's age once the file is gone.
  const mtime = new Date(snapshot.mtimeMs).toISOString();
  try {
    if (tools.quarantine) {
      const to = await moveToQuarantine(ctx.fs, at, tools.quarantine, snapshot);
      ctx.progress(`quarantined ${path} -> ${to}`);
      return {
        step: { path, bytes, pid, result: 'quarantined', to },
        record: { op: 'quarantine', path, bytes, mtime, writerPid: pid, to },
      };
    }
    await ctx.fs.unlink(at);
    ctx.progress(`deleted ${path} (${bytes} bytes, writer PID ${pid})`);
    return { step: { path, bytes, pid, result: 'deleted' }, record: { op: 'delete', path, bytes, mtime, writerPid: pid } };
  } catch (error) {
    if (error instanceof NotTheCheckedFile) {
      // Swapped in the last instant (after the re-check): like a re-check that failed, left alone.
      const reason = 'it was replaced since it was checked';
      return {
        step: { path, bytes, pid, result: 'left-alone', reason },
        record: { op: 'skip', path, bytes, writerPid: pid, reason },
      };
    }
    const partial = error instanceof OriginalNotRemoved ? error : undefined;
    const code = errnoCode(partial ? partial.cause : error);
    // Not the disk's answer: a bug, never swallowed.
    if (!code) throw error;
    // ENOENT with the file gone: another fixer or the janitor got there first, the
    // outcome is the same. With the file still there, what vanished is a directory
    // on the way (the quarantine): a failure like any other the disk reports.
    if (code === 'ENOENT' && !partial && (await isGone(ctx.fs, at))) {
      return {
        step: { path, bytes, pid, result: 'already-gone' },
        record: { op: 'gone', path, bytes, mtime, writerPid: pid },
      };
    }
    const reason = partial ? `${code}; a copy is at ${partial.to}, the original is still in staging` : code;
    const to = partial ? { to: partial.to } : {};
    return {
      step: { path, bytes, pid, result: 'failed', ...to, reason },
      record: { op: 'fail', path, bytes, mtime, writerPid: pid, ...to, reason },
    };
  }
}

async function isGone(fs: FileSystem, path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return false;
  } catch (error) {
    return errnoCode(error) === 'ENOENT';
  }
}

/** The published output's identity (undefined: none there), to tell whether it was replaced or rewritten meanwhile. */
async function outputIdentity(fs: FileSystem, path: string): Promise<string | undefined> {
  try {
    const s = await fs.lstat(path, { bigint: true });
    return [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(':');
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    return undefined;
  }
}

/** The output's identity through its side: the local lstat, or the output store's (ETag, size, LastModified). */
function outputIdentityOf(job: FixJob, path: string): Promise<string | undefined> {
  const { output, settings, runKey } = job;
  return output ? output.identity(settings.final.nameFor(runKey)) : outputIdentity(job.ctx.fs, path);
}

/**
 * Whether the output is not the one found before the removals. One that
 * cannot be looked at now (the output store does not answer) counts as
 * replaced: the removals are done, and the report of them must still come out.
 */
async function outputReplacedSince(job: FixJob, path: string, before: string | undefined): Promise<boolean> {
  try {
    return (await outputIdentityOf(job, path)) !== before;
  } catch (error) {
    if (!isUsageError(error)) throw error;
    return true;
  }
}

/** What the removals left, for the re-run step. */
interface AfterRemovals {
  /** The diagnosis the fix was planned from. */
  readonly before: Diagnosis;
  readonly leftAlone: boolean;
  /** The output's identity when the removals began. */
  readonly output: string | undefined;
}

/** The re-run step: none planned, held back by a removal left alone, or decided again right before it. */
async function rerunStep(
  job: FixJob,
  lock: HeldLock,
  plan: FixPlan,
  after: AfterRemovals,
  audit: Audit,
): Promise<RerunStep> {
  if (!plan.rerun) return { rerun: null, rerunSkipped: null };
  if (after.leftAlone) return { rerun: null, rerunSkipped: 'a planned removal was left alone (see the steps)' };
  const replaced = (now: Diagnosis) => outputReplacedSince(job, now.final.path, after.output);
  return rerunIfStillNeeded(rerunnerOf(job), lock, plan, { before: after.before, argv: plan.rerun }, replaced, audit);
}
