import { constants } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type AuditRecord, appendAudit, checkAuditLog } from './audit.js';
import { classifyRun } from './classify.js';
import { shellJoin } from './command-words.js';
import type { Diagnosis } from './diagnosis.js';
import { errnoCode, UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import {
  type Boundaries,
  type FileSnapshot,
  type GuardContext,
  guardRemoval,
  isInside,
  type Refusal,
  readBoundaries,
  recheckRemoval,
} from './guards.js';
import { acquireLock, lockContextOf, type HeldLock, stillHeld } from './lock.js';
import { type FixPlan, type PlannedRemoval, planFix } from './plan.js';
import { compareText, probeRun } from './probe.js';
import type { ProcessTable } from './process-table.js';
import type { PipelineSettings } from './settings.js';
import { EXIT_CODES, RUNBOOKS } from './states.js';

export interface CommandResult {
  readonly exitStatus: number | null;
  readonly signal: string | null;
  /** Set when the command could not be started at all (ENOENT, EACCES). */
  readonly error?: string;
}

/** Runs a command without a shell, stdio inherited; injected so the core never spawns by itself. */
export type CommandRunner = (
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
) => Promise<CommandResult>;

export interface FixContext {
  readonly fs: FileSystem;
  readonly processes: ProcessTable;
  /** The clock ages are measured against: --now, or the real one. */
  readonly now: () => number;
  /** Always the real clock: lock waits. */
  readonly clock: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly runCommand: CommandRunner;
  readonly user: string;
  /** Progress lines for a person, as each step happens. */
  readonly progress: (line: string) => void;
}

export interface FixOptions {
  readonly dryRun: boolean;
  readonly quarantineDir: string | undefined;
  readonly lockTimeoutMs: number;
  readonly auditLog: string;
}

export type StepResult = 'deleted' | 'quarantined' | 'already-gone' | 'left-alone' | 'planned';

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
  readonly rerun: { readonly argv: readonly string[]; readonly result: CommandResult | null } | null;
  readonly after: Diagnosis;
  readonly exitCode: number;
}

async function diagnose(ctx: FixContext, settings: PipelineSettings, runKey: string): Promise<Diagnosis> {
  return classifyRun(
    await probeRun({ fs: ctx.fs, processes: ctx.processes, nowMs: ctx.now() }, settings, runKey),
  );
}

async function fsyncDirectory(fs: FileSystem, dir: string): Promise<void> {
  // Makes the unlinks and renames survive a power loss.
  const handle = await fs.open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; the change itself stands.
    if (!['EINVAL', 'EISDIR', 'ENOTSUP', 'EBADF'].includes(errnoCode(error) ?? '')) throw error;
  } finally {
    await handle.close();
  }
}

function checkQuarantine(dir: string, real: string, bounds: Boundaries): void {
  if (isInside(real, bounds.realOut) || isInside(bounds.realOut, real)) {
    throw new UsageError(
      `--quarantine ${dir} overlaps the output directory: orphans must never be published.`,
    );
  }
  if (real === bounds.realStaging)
    throw new UsageError(`--quarantine ${dir} is the staging directory itself.`);
}

/** The real path a directory has, or would have once created: its nearest existing ancestor, resolved. */
async function realpathToBe(fs: FileSystem, path: string): Promise<string> {
  const missing: string[] = [];
  for (let at = path; ; at = dirname(at)) {
    try {
      return join(await fs.realpath(at), ...missing.reverse());
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT' || dirname(at) === at) throw error;
      missing.push(basename(at));
    }
  }
}

/**
 * Checks the quarantine directory is a safe place: never the output directory,
 * never staging itself. Checked before it is created, so a refused directory
 * is not left behind in the output directory; and again once it exists.
 */
async function prepareQuarantine(fs: FileSystem, dir: string, bounds: Boundaries): Promise<string> {
  const target = resolve(dir);
  checkQuarantine(dir, await realpathToBe(fs, target), bounds);
  await fs.mkdir(target, { recursive: true });
  const real = await fs.realpath(target);
  checkQuarantine(dir, real, bounds);
  return real;
}

/** Moves a file into quarantine without ever overwriting: link (or exclusive copy across devices), then unlink. */
async function moveToQuarantine(fs: FileSystem, path: string, dir: string): Promise<string> {
  const name = basename(path);
  for (let attempt = 0; ; attempt++) {
    const target = join(dir, attempt === 0 ? name : `${name}.${attempt}`);
    try {
      await fs.link(path, target);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') continue;
      if (code !== 'EXDEV' && code !== 'EPERM') throw error;
      try {
        await fs.copyFile(path, target, constants.COPYFILE_EXCL);
      } catch (copyError) {
        if (errnoCode(copyError) === 'EEXIST') continue;
        throw copyError;
      }
      const copy = await fs.open(target, 'r+');
      await copy.sync().finally(() => copy.close());
    }
    await fs.unlink(path);
    await fsyncDirectory(fs, dir);
    return target;
  }
}

/**
 * Performs the safe action for one run key: lock, diagnose afresh, plan, run
 * every guard on every path, then act, re-checking each file right before it
 * goes; re-run if the state calls for it; diagnose again.
 */
export async function fixRun(
  ctx: FixContext,
  settings: PipelineSettings,
  runKey: string,
  options: FixOptions,
): Promise<FixReport> {
  const guardCtx = (): GuardContext => ({
    fs: ctx.fs,
    processes: ctx.processes,
    nowMs: ctx.now(),
    settings,
    runKey,
  });
  if (options.dryRun) {
    const before = await diagnose(ctx, settings, runKey);
    const plan = planFix(before, settings.rerun, options.quarantineDir);
    const bounds = await readBoundaries(guardCtx());
    const { refused } = await checkAll(guardCtx, bounds, plan.removals);
    // The same answer the real run would give, without creating the directory.
    if (plan.quarantineDir) {
      checkQuarantine(plan.quarantineDir, await realpathToBe(ctx.fs, resolve(plan.quarantineDir)), bounds);
    }
    const steps = plan.removals.map((r) => ({
      path: r.path,
      bytes: r.bytes,
      pid: r.pid,
      result: 'planned' as const,
    }));
    const rerun = plan.rerun ? { argv: plan.rerun, result: null } : null;
    return { dryRun: true, before, plan, refused, steps, rerun, after: before, exitCode: before.exitCode };
  }

  const lock = await acquireLock(
    lockContextOf(ctx, settings),
    settings.stagingDir,
    runKey,
    options.lockTimeoutMs,
  );
  try {
    return await fixLocked(ctx, settings, runKey, options, lock, guardCtx);
  } finally {
    await lock.release();
  }
}

/** Every guard on every planned path, before anything is touched: what passed (with its identity) and what did not. */
async function checkAll(
  guardCtx: () => GuardContext,
  bounds: Boundaries,
  removals: readonly PlannedRemoval[],
): Promise<{ snapshots: Map<string, FileSnapshot>; refused: Refusal[] }> {
  const snapshots = new Map<string, FileSnapshot>();
  const refused: Refusal[] = [];
  for (const removal of removals) {
    const verdict = await guardRemoval(guardCtx(), bounds, removal);
    if (verdict.ok) snapshots.set(removal.path, verdict.snapshot);
    else refused.push({ path: removal.path, reason: verdict.reason });
  }
  return { snapshots, refused };
}

async function fixLocked(
  ctx: FixContext,
  settings: PipelineSettings,
  runKey: string,
  options: FixOptions,
  lock: HeldLock,
  guardCtx: () => GuardContext,
): Promise<FixReport> {
  // Diagnose afresh under the lock: another fixer may have acted while we waited.
  const before = await diagnose(ctx, settings, runKey);
  const plan = planFix(before, settings.rerun, options.quarantineDir);
  const base = {
    time: '',
    user: ctx.user,
    host: ctx.processes.hostname,
    pid: process.pid,
    pipeline: settings.pipeline ?? null,
    run: runKey,
    stateBefore: before.state,
  };
  const audit = (record: Partial<AuditRecord> & Pick<AuditRecord, 'op'>) =>
    appendAudit(ctx.fs, options.auditLog, [
      { ...base, ...record, time: new Date(ctx.clock()).toISOString() },
    ]);

  if (plan.removals.length > 0 || plan.rerun) await checkAuditLog(ctx.fs, options.auditLog);
  const bounds = await readBoundaries(guardCtx());
  // Plan, check all, then act: one failed guard and nothing at all is removed.
  const { snapshots, refused } = await checkAll(guardCtx, bounds, plan.removals);
  if (refused.length > 0) {
    for (const r of refused) await audit({ op: 'refuse', path: r.path, reason: r.reason });
    ctx.progress(
      `refused: ${refused.length} of ${plan.removals.length} paths failed a safety check; nothing was removed`,
    );
    // The disk moved under the diagnosis: whatever it looks like now, a
    // person must look, and the report says so in state, action and code alike.
    const now = await diagnose(ctx, settings, runKey);
    const after: Diagnosis = {
      ...now,
      state: 'UNKNOWN',
      action: 'investigate',
      exitCode: EXIT_CODES.UNKNOWN,
      summary: `--fix refused to act: ${refused.length} planned removal${refused.length === 1 ? '' : 's'} failed a safety check when re-examined, so nothing was removed. ${now.summary}`,
      anomalies: [...now.anomalies, ...refused].sort((a, b) => compareText(a.path, b.path)),
      runbook: RUNBOOKS.UNKNOWN,
    };
    return { dryRun: false, before, plan, refused, steps: [], rerun: null, after, exitCode: after.exitCode };
  }
  const quarantine = plan.quarantineDir
    ? await prepareQuarantine(ctx.fs, plan.quarantineDir, bounds)
    : undefined;

  const steps: FixStep[] = [];
  let leftAlone = false;
  for (const removal of plan.removals) {
    const { path, bytes, pid } = removal;
    const snapshot = snapshots.get(path);
    if (!snapshot || !(await stillHeld(ctx.fs, lock))) {
      steps.push({ path, bytes, pid, result: 'left-alone', reason: 'the fix lock was lost' });
      leftAlone = true;
      continue;
    }
    const verdict = await recheckRemoval(guardCtx(), bounds, removal, snapshot);
    if (verdict.ok === 'gone') {
      steps.push({ path, bytes, pid, result: 'already-gone' });
      continue;
    }
    if (!verdict.ok) {
      steps.push({ path, bytes, pid, result: 'left-alone', reason: verdict.reason });
      await audit({ op: 'skip', path, bytes, writerPid: pid, reason: verdict.reason });
      leftAlone = true;
      continue;
    }
    try {
      if (quarantine) {
        const to = await moveToQuarantine(ctx.fs, path, quarantine);
        steps.push({ path, bytes, pid, result: 'quarantined', to });
        await audit({ op: 'quarantine', path, bytes, writerPid: pid, to });
        ctx.progress(`quarantined ${path} -> ${to}`);
      } else {
        await ctx.fs.unlink(path);
        steps.push({ path, bytes, pid, result: 'deleted' });
        await audit({ op: 'delete', path, bytes, writerPid: pid });
        ctx.progress(`deleted ${path} (${bytes} bytes, writer PID ${pid})`);
      }
    } catch (error) {
      // ENOENT: another fixer or the janitor got there first; the outcome is the same.
      if (errnoCode(error) !== 'ENOENT') throw error;
      steps.push({ path, bytes, pid, result: 'already-gone' });
    }
  }
  if (steps.some((s) => s.result === 'deleted' || s.result === 'quarantined')) {
    await fsyncDirectory(ctx.fs, settings.stagingDir);
  }

  let rerun: FixReport['rerun'] = null;
  // The re-run rewrites the published output: like each removal, it happens only while the lock is still ours.
  if (plan.rerun && !leftAlone && !(await stillHeld(ctx.fs, lock))) {
    leftAlone = true;
    ctx.progress('the fix lock was lost before the re-run: not re-running');
    await audit({ op: 'skip', command: plan.rerun, reason: 'the fix lock was lost before the re-run' });
  }
  if (plan.rerun && !leftAlone) {
    ctx.progress(`re-running for ${runKey}: ${shellJoin(plan.rerun)}`);
    const result = await ctx.runCommand(plan.rerun, { CRASHDIAG_RUN_KEY: runKey });
    rerun = { argv: plan.rerun, result };
    await audit({
      op: 'rerun',
      command: plan.rerun,
      exitStatus: result.exitStatus,
      signal: result.signal,
      ...(result.error ? { reason: result.error } : {}),
    });
  }
  if (steps.length === 0 && rerun === null) {
    // Nothing was done (DONE, RUNNING, UNKNOWN, or a re-run with no command):
    // the state found under the lock is the answer.
    return { dryRun: false, before, plan, refused, steps, rerun, after: before, exitCode: before.exitCode };
  }
  const after = await diagnose(ctx, settings, runKey);
  return { dryRun: false, before, plan, refused, steps, rerun, after, exitCode: after.exitCode };
}
