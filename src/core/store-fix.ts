import { checkAuditLog } from './audit.js';
import { classifyRun } from './classify.js';
import type { Diagnosis } from './diagnosis.js';
import {
  refuseLockInOutputDirectory, refuseWriteIntoOutputDirectory, rulesForStagingDirectory, type StagingDirectoryRules,
} from './directory-rules.js';
import { isUsageError, UsageError } from './errors.js';
import { type FixContext, type FixOptions, type FixReport, type FixStep, fixRun } from './fix.js';
import type { Refusal } from './guards.js';
import { acquireLockAt, type HeldLock, lockContextOf, stillHeld } from './lock.js';
import { type FixPlan, type PlannedRemoval, planFix } from './plan.js';
import { gatherRecovery, type RecoveryRequest } from './recovery-probe.js';
import type { RerunOutcome } from './recovery.js';
import { s3LockPath } from './s3-state.js';
import { pinnedPath } from './same-directory.js';
import { parseS3Url } from './s3-url.js';
import type { PipelineSettings } from './settings.js';
import { guardStoreRemoval } from './store-guards.js';
import {
  type FoundUpload, isStaleUpload, probeStoreRun, type RunStores, storeIdentity, storeOutputSide, type StoreRunLook,
  uploadReports,
} from './store-probe.js';
import { isStoreError, type ObjectStore, type StoredFile } from './store.js';
import {
  type Audit,
  auditorFor,
  concludeFix,
  type LookAgain,
  rerunIfStillNeeded,
  type RerunStep,
  refusedReport,
} from './fix-reports.js';

/** The stores a fix acts through; the quarantine, when given, already checked (checkStoreQuarantine). */
export interface FixStores extends RunStores {
  readonly quarantine?: ObjectStore;
}

export interface StoreFixOptions extends FixOptions {
  /** --abort-uploads: abort this run's incomplete multipart uploads initiated longer ago than --stale-after. */
  readonly abortUploads: boolean;
  /** Where the local lock lives: $XDG_STATE_HOME/crashdiag (s3-state.ts). */
  readonly stateDir: string;
}

/** The diagnosis of a run through the stores, with its uploads: what diagnose shows and --fix plans from. */
export interface StoreDiagnosis {
  readonly diagnosis: Diagnosis;
  readonly look: StoreRunLook;
}

interface StoreFixJob {
  readonly ctx: FixContext;
  readonly settings: PipelineSettings;
  readonly stores: FixStores;
  readonly runKey: string;
  readonly options: StoreFixOptions;
}

/**
 * Looks at one run through the stores and judges it: the same classifier as
 * a local run, the uploads beside it (evidence, not a state). `nowMs` is
 * --now when reading, the real clock under --fix.
 */
export async function diagnoseStoreRun(
  ctx: Pick<FixContext, 'fs' | 'processes'>,
  settings: PipelineSettings,
  stores: RunStores,
  runKey: string,
  request: RecoveryRequest,
): Promise<StoreDiagnosis> {
  const { nowMs } = request;
  const look = await probeStoreRun({ fs: ctx.fs, processes: ctx.processes, nowMs }, settings, stores, runKey);
  const recovery = await gatherRecovery(ctx.fs, settings, runKey, request);
  const judged = classifyRun({ ...look.evidence, recovery });
  const withUploads: Diagnosis = {
    ...judged,
    uploads: uploadReports(look.uploads, settings.staleAfterMs, nowMs),
    ...(look.uploadNotes.length === 0 ? {} : { uploadNotes: look.uploadNotes }),
  };
  return { diagnosis: withUploads, look };
}

/**
 * --fix for a run whose staging directory is an S3 prefix: the same plan,
 * check all, act as a local fix. The lock and the audit log are local. Right
 * before each DELETE the object must still be the planned one (ETag, size,
 * LastModified: removeIfUnchanged); a quarantine is a copy, then the delete,
 * and a refused copy means no delete. Never anything under an output prefix:
 * only names the staging template gives for this run key, that no pipeline
 * publishes, directly in the staging prefix.
 */
export async function fixStoreRun(
  ctx: FixContext,
  settings: PipelineSettings,
  stores: FixStores,
  runKey: string,
  options: StoreFixOptions,
): Promise<FixReport> {
  if (stores.staging.backend !== 's3') return fixLocalStaging(ctx, settings, stores, runKey, options);
  // Appended to where it is checked, whatever a symlink on the way points at later.
  const auditLog = await pinnedPath(ctx.fs, options.auditLog);
  const job: StoreFixJob = { ctx, settings, stores, runKey, options: { ...options, auditLog } };
  const lockPath = s3LockPath(options.stateDir, parseS3Url(settings.stagingDir, 'staging directory'), runKey);
  await refuseWriteIntoOutputDirectory(ctx.fs, auditLog, [settings], 'audit log');
  await refuseLockInOutputDirectory(ctx.fs, lockPath, settings);
  if (options.dryRun) return planOnly(job);
  const lock = await acquireLockAt(lockContextOf(ctx, settings), lockPath, options.lockTimeoutMs);
  try {
    return await fixLocked(job, lock);
  } finally {
    await lock.release();
  }
}

/**
 * A local staging directory beside an S3 output prefix: the local fixer does
 * every removal (its lock and audit log beside staging, its guards, the
 * permission check, the write-ahead intent, the directory fsync); the output
 * store only says what is published, and whether the output was replaced
 * (ETag, size, LastModified) between the plan and the re-run.
 */
function fixLocalStaging(
  ctx: FixContext,
  settings: PipelineSettings,
  stores: FixStores,
  runKey: string,
  options: StoreFixOptions,
): Promise<FixReport> {
  if (options.abortUploads) {
    throw new UsageError(
      `--abort-uploads acts on uploads under an S3 staging prefix; the staging directory ${settings.stagingDir} is local, and nothing was changed.`,
      'Drop --abort-uploads; abort an upload under the output prefix by hand once no writer can be uploading it.',
    );
  }
  if (stores.quarantine) {
    throw new UsageError(
      `The quarantine ${stores.quarantine.location} is an S3 prefix, but the staging directory ${settings.stagingDir} is local; nothing was changed.`,
      'Give --quarantine as a local directory.',
    );
  }
  return fixRun(ctx, settings, runKey, options, storeOutputSide(stores.out));
}

/** The fix reports' second look at a run with an S3 side. */
function againOf(job: StoreFixJob): LookAgain {
  const lookAgain = async (rerun: RerunOutcome | null | undefined) => (await look(job, rerun ?? null)).diagnosis;
  return { stagingDir: job.settings.stagingDir, progress: job.ctx.progress, look: lookAgain };
}

function look(job: StoreFixJob, rerun?: RerunOutcome | null): Promise<StoreDiagnosis> {
  const { ctx, settings, stores, runKey, options } = job;
  const retry = rerun === undefined && options.retry === true;
  return diagnoseStoreRun(ctx, settings, stores, runKey, {
    auditLog: options.auditLog,
    retry,
    nowMs: ctx.wallClock(),
    ...(rerun === undefined ? {} : { rerun }),
  });
}

/** What passed every guard (the entry each removal was planned from) and what did not. */
interface Checked {
  readonly planned: Map<string, StoredFile>;
  readonly refused: Refusal[];
  /** What every pipeline of the config says about names in the staging prefix: asked again before each delete. */
  readonly here: StagingDirectoryRules;
}

async function checkAll(job: StoreFixJob, found: StoreRunLook, removals: readonly PlannedRemoval[]): Promise<Checked> {
  const { ctx, settings, runKey, stores } = job;
  const here = await rulesForStagingDirectory(ctx.fs, settings);
  const guardCtx = { settings, runKey, nowMs: ctx.wallClock(), processes: ctx.processes };
  const planned = new Map<string, StoredFile>();
  const refused: Refusal[] = [];
  for (const removal of removals) {
    const entry = found.entries.get(removal.path);
    const verdict = entry
      ? guardStoreRemoval(guardCtx, here, stores.staging, entry)
      : { ok: false as const, reason: 'it is not among the entries listed in the staging prefix' };
    if (verdict.ok) planned.set(removal.path, verdict.entry);
    else refused.push({ path: removal.path, reason: verdict.reason });
  }
  return { planned, refused, here };
}

/** The uploads --abort-uploads acts on: stale ones, and only when no writer of the run is alive. */
function uploadsToAbort(job: StoreFixJob, before: StoreDiagnosis): FoundUpload[] {
  if (!job.options.abortUploads) return [];
  // A live writer may still be uploading parts to an upload started long ago.
  if (before.diagnosis.state === 'RUNNING' || before.diagnosis.state === 'UNKNOWN') return [];
  const nowMs = job.ctx.wallClock();
  return before.look.uploads.filter((u) => isStaleUpload(u.upload, job.settings.staleAfterMs, nowMs));
}

async function planOnly(job: StoreFixJob): Promise<FixReport> {
  const before = await look(job);
  const plan = planFix(before.diagnosis, job.settings.rerun, job.options.quarantineDir);
  const { refused } = await checkAll(job, before.look, plan.removals);
  const acts = refused.length === 0;
  const steps: FixStep[] = acts
    ? [
        ...plan.removals.map((r) => ({ path: r.path, bytes: r.bytes, pid: r.pid, result: 'planned' as const })),
        ...uploadsToAbort(job, before).map((u) => uploadStep(u, 'planned')),
      ]
    : [];
  return {
    dryRun: true,
    before: before.diagnosis,
    plan,
    refused,
    steps,
    stopped: null,
    rerun: acts && plan.rerun ? { argv: plan.rerun, result: null } : null,
    rerunSkipped: null,
    after: before.diagnosis,
    exitCode: before.diagnosis.exitCode,
  };
}

function uploadStep(found: FoundUpload, result: FixStep['result'], reason?: string): FixStep {
  return {
    path: found.store.pathOf(found.upload.name),
    bytes: 0,
    pid: 0,
    result,
    ...(reason === undefined ? {} : { reason: `multipart upload ${found.upload.uploadId}: ${reason}` }),
  };
}

async function fixLocked(job: StoreFixJob, lock: HeldLock): Promise<FixReport> {
  const { ctx, settings, options } = job;
  // Afresh under the lock: another fixer on this host may have acted while we waited.
  const before = await look(job);
  const plan = planFix(before.diagnosis, settings.rerun, options.quarantineDir);
  const aborts = uploadsToAbort(job, before);
  const audit = auditorFor(job, before.diagnosis);
  if (plan.removals.length > 0 || plan.rerun || aborts.length > 0) await checkAuditLog(ctx.fs, options.auditLog);
  const { planned, refused, here } = await checkAll(job, before.look, plan.removals);
  if (refused.length > 0) return refusedReport(againOf(job), before.diagnosis, plan, refused, audit);

  const output = await outputIdentity(job);
  const removed = await removeAll(job, lock, plan.removals, { planned, here }, audit);
  const aborted: Removed = removed.stopped
    ? { steps: [], leftAlone: false, stopped: null }
    : await abortAll(job, lock, aborts, audit);
  const steps = [...removed.steps, ...aborted.steps];
  const stopped = removed.stopped ?? aborted.stopped;
  const report = { dryRun: false, before: before.diagnosis, plan, refused, steps };
  const found = { before: before.diagnosis, leftAlone: removed.leftAlone, output };
  const done = { stopped, leftAlone: removed.leftAlone, retry: options.retry };
  return concludeFix(againOf(job), report, done, () => rerunStep(job, lock, plan, found, audit), audit);
}

/** Appends one record; returns why it could not be written. */
async function tryAudit(audit: Audit, record: Parameters<Audit>[0]): Promise<string | undefined> {
  try {
    await audit(record);
    return undefined;
  } catch (error) {
    if (isUsageError(error)) return error.message;
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code !== 'string') throw error;
    return `the audit log cannot be written: ${code}`;
  }
}

interface Removed {
  readonly steps: FixStep[];
  readonly leftAlone: boolean;
  readonly stopped: string | null;
}

/**
 * One by one: the intent on record, every guard again on the clock of now,
 * then removeIfUnchanged (HeadObject: same ETag, size, LastModified as
 * planned, then DeleteObject with If-Match). Stops at the first failure the
 * server reports; nothing after it is attempted.
 */
async function removeAll(
  job: StoreFixJob,
  lock: HeldLock,
  removals: readonly PlannedRemoval[],
  checked: Pick<Checked, 'planned' | 'here'>,
  audit: Audit,
): Promise<Removed> {
  const { ctx } = job;
  const steps: FixStep[] = [];
  let leftAlone = false;
  let stopped: string | null = null;
  for (const removal of removals) {
    const { path, bytes, pid } = removal;
    const entry = checked.planned.get(path);
    if (stopped) {
      steps.push({ path, bytes, pid, result: 'not-attempted', reason: 'the fix stopped at an earlier failure' });
      continue;
    }
    if (!entry || !(await stillHeld(ctx.fs, lock))) {
      steps.push({ path, bytes, pid, result: 'left-alone', reason: 'the fix lock was lost' });
      leftAlone = true;
      continue;
    }
    const mtime = new Date(entry.mtimeMs).toISOString();
    const intent = job.stores.quarantine ? 'quarantine' : 'delete';
    const unrecorded = await tryAudit(audit, { op: 'intent', intent, path, bytes, mtime, writerPid: pid });
    if (unrecorded) {
      steps.push({ path, bytes, pid, result: 'not-attempted', reason: unrecorded });
      stopped = `recording the intent to remove ${path} failed (${unrecorded}); it was not removed, the rest not attempted, nothing was re-run`;
      continue;
    }
    const { step, record } = await removeOne(job, checked.here, removal, entry);
    steps.push(step);
    if (step.result === 'left-alone') leftAlone = true;
    if (step.result === 'failed') {
      stopped = `removing ${path} failed (${step.reason}); the rest not attempted, nothing was re-run`;
    }
    const unwritten = await tryAudit(audit, { ...record, mtime });
    if (unwritten && !stopped) {
      stopped = `${path} is ${step.result}, but its outcome could not be recorded (${unwritten}; its intent is on record); the rest not attempted, nothing was re-run`;
    }
  }
  if (stopped) ctx.progress(`stopped: ${stopped}; see the audit log`);
  return { steps, leftAlone, stopped };
}

interface Outcome {
  readonly step: FixStep;
  readonly record: Parameters<Audit>[0];
}

async function removeOne(
  job: StoreFixJob,
  here: StagingDirectoryRules,
  removal: PlannedRemoval,
  entry: StoredFile,
): Promise<Outcome> {
  const { ctx, settings, runKey, stores } = job;
  const { path, bytes, pid } = removal;
  const skip = (reason: string): Outcome => ({
    step: { path, bytes, pid, result: 'left-alone', reason },
    record: { op: 'skip', path, bytes, writerPid: pid, reason },
  });
  // Every guard again, on the clock of now: a writer found alive since (its host's process table) stops it.
  const guardCtx = { settings, runKey, nowMs: ctx.wallClock(), processes: ctx.processes };
  const verdict = guardStoreRemoval(guardCtx, here, stores.staging, entry);
  if (!verdict.ok) return skip(verdict.reason);
  // Set once the copy is made: from then on, whatever happens says where it is.
  let to: string | undefined;
  try {
    if (stores.quarantine) {
      const copied = await stores.staging.copy(entry, stores.quarantine, entry.name);
      // No copy, no delete: the evidence is never lost on the way to quarantine.
      if (copied.outcome === 'refused') return skip(`the quarantine copy was refused: ${copied.reason}`);
      to = stores.quarantine.pathOf(entry.name);
    }
    const outcome = await stores.staging.removeIfUnchanged(entry);
    if (outcome.outcome === 'refused') return skip(to === undefined ? outcome.reason : `${outcome.reason}; a copy of it as planned is at ${to}`);
    if (outcome.outcome === 'gone') {
      return { step: { path, bytes, pid, result: 'already-gone' }, record: { op: 'gone', path, bytes, writerPid: pid } };
    }
    if (to !== undefined) {
      ctx.progress(`quarantined ${path} -> ${to}`);
      return {
        step: { path, bytes, pid, result: 'quarantined', to },
        record: { op: 'quarantine', path, bytes, writerPid: pid, to },
      };
    }
    ctx.progress(`deleted ${path} (${bytes} bytes, writer PID ${pid})`);
    return { step: { path, bytes, pid, result: 'deleted' }, record: { op: 'delete', path, bytes, writerPid: pid } };
  } catch (error) {
    if (!isStoreError(error)) throw error;
    // A copy already made stays: the person (and the next fix, which finds the target taken) must know where.
    const reason = to === undefined ? error.message : `${error.message}; a copy of it as planned is at ${to}`;
    return {
      step: { path, bytes, pid, result: 'failed', reason, ...(to === undefined ? {} : { to }) },
      record: { op: 'fail', path, bytes, writerPid: pid, reason, ...(to === undefined ? {} : { to }) },
    };
  }
}

/** --abort-uploads: each stale upload aborted, its intent recorded first. */
async function abortAll(
  job: StoreFixJob,
  lock: HeldLock,
  uploads: readonly FoundUpload[],
  audit: Audit,
): Promise<Removed> {
  const steps: FixStep[] = [];
  let stopped: string | null = null;
  for (const found of uploads) {
    const path = found.store.pathOf(found.upload.name);
    const id = found.upload.uploadId;
    if (stopped || !(await stillHeld(job.ctx.fs, lock))) {
      steps.push(uploadStep(found, 'not-attempted', stopped ? 'the fix stopped at an earlier failure' : 'the fix lock was lost'));
      continue;
    }
    const unrecorded = await tryAudit(audit, { op: 'intent', intent: 'abort', path, reason: `upload ${id}` });
    if (unrecorded) {
      steps.push(uploadStep(found, 'not-attempted', unrecorded));
      stopped = `recording the intent to abort the upload to ${path} failed (${unrecorded})`;
      continue;
    }
    try {
      const outcome = await found.store.abortUpload(found.upload);
      steps.push(uploadStep(found, outcome === 'aborted' ? 'aborted' : 'already-gone', outcome));
      await tryAudit(audit, { op: outcome === 'aborted' ? 'abort' : 'gone', path, reason: `upload ${id}` });
    } catch (error) {
      if (!isStoreError(error)) throw error;
      steps.push(uploadStep(found, 'failed', error.message));
      await tryAudit(audit, { op: 'fail', path, reason: `upload ${id}: ${error.message}` });
      stopped = `aborting the upload to ${path} failed (${error.message})`;
    }
  }
  return { steps, leftAlone: false, stopped };
}

/** The output's identity through its store (undefined: none there), to tell whether it was replaced meanwhile. */
function outputIdentity(job: StoreFixJob): Promise<string | undefined> {
  return storeIdentity(job.stores.out, job.settings.final.nameFor(job.runKey));
}

/**
 * Whether the output is not the one found before the removals. An output that
 * cannot be looked at now counts as replaced: the removals are done, and a
 * failure here must end in a report of them, never in a bare error.
 */
async function outputReplaced(job: StoreFixJob, before: string | undefined): Promise<boolean> {
  try {
    return (await outputIdentity(job)) !== before;
  } catch (error) {
    if (!isStoreError(error)) throw error;
    return true;
  }
}

/** As a local fix: decided again right before, under the lock; started only if still needed. */
async function rerunStep(
  job: StoreFixJob,
  lock: HeldLock,
  plan: FixPlan,
  found: { readonly before: Diagnosis; readonly leftAlone: boolean; readonly output: string | undefined },
  audit: Audit,
): Promise<RerunStep> {
  if (!plan.rerun) return { rerun: null, rerunSkipped: null };
  if (found.leftAlone) return { rerun: null, rerunSkipped: 'a planned removal was left alone (see the steps)' };
  const { fs, runCommand, wallClock } = job.ctx;
  const rerunner = { ...againOf(job), runKey: job.runKey, fs, runCommand, wallClock };
  const replaced = () => outputReplaced(job, found.output);
  return rerunIfStillNeeded(rerunner, lock, plan, { before: found.before, argv: plan.rerun }, replaced, audit);
}
