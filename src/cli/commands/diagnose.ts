import { resolve } from 'node:path';
import { auditLogFor } from '../../core/audit.js';
import { findCauses } from '../../core/causes.js';
import type { DeadOrphan } from '../../core/attempts.js';
import { classifyFolded } from '../../core/classify.js';
import { DEFAULT_LOCK_TIMEOUT } from '../../core/defaults.js';
import { type Diagnosis, LISTED_FILES } from '../../core/diagnosis.js';
import { parseDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { type FixContext, type FixReport, fixRun } from '../../core/fix.js';
import { LockTimeoutError } from '../../core/lock.js';
import { probeRunFolded } from '../../core/probe.js';
import { gatherRecovery } from '../../core/recovery-probe.js';
import { validateRunKey } from '../../core/run-key.js';
import { isS3Url } from '../../core/s3-url.js';
import type { PipelineSettings } from '../../core/settings.js';
import { EXIT_CODES } from '../../core/states.js';
import { type CliIo, terminalWidth } from '../io.js';
import { type PipelineFlags, refuseFakeClock, resolveNow, settingsFromFlags } from '../pipeline-options.js';
import { auditLogOf, loadS3Part, s3TimeoutOf, stateDirOf } from '../s3-options.js';
import { escapeText } from '../../render/format.js';

interface DiagnoseFlags extends PipelineFlags {
  runKey?: string;
  json?: boolean;
  fix?: boolean;
  dryRun?: boolean;
  quarantine?: string;
  lockTimeout?: string;
  auditLog?: string;
  retry?: boolean;
  timeout?: string;
  abortUploads?: boolean;
}

/** Flags in the order a person would retype them, for the commands we print. */
const ECHOED_FLAGS: ReadonlyArray<[keyof PipelineFlags, string]> = [
  ['config', '--config'],
  ['pipeline', '--pipeline'],
  ['outDir', '--out-dir'],
  ['stagingDir', '--staging-dir'],
  ['final', '--final'],
  ['staging', '--staging'],
  ['marker', '--marker'],
  ['freshWithin', '--fresh-within'],
  ['staleAfter', '--stale-after'],
  ['rerun', '--rerun'],
  ['retryBackoff', '--retry-backoff'],
  ['input', '--input'],
];

export function invocationWords(command: string, runKey: string, flags: PipelineFlags): string[] {
  const words = ['crashdiag', command, runKey];
  for (const [key, flag] of ECHOED_FLAGS) {
    const value = flags[key];
    if (value === false) words.push(`--no-${flag.slice(2)}`);
    else if (typeof value === 'string') words.push(flag, value);
  }
  if (flags.pidCheck === false) words.push('--no-pid-check');
  if (flags.maxAttempts !== undefined) words.push('--max-attempts', String(flags.maxAttempts));
  return words;
}

/** Flag combinations are checked before any I/O. */
function checkCombinations(flags: DiagnoseFlags): void {
  if (!flags.fix) {
    for (const [value, flag] of [
      [flags.dryRun, '--dry-run'],
      [flags.quarantine, '--quarantine'],
      [flags.lockTimeout, '--lock-timeout'],
      [flags.auditLog, '--audit-log'],
      [flags.retry, '--retry'],
      [flags.abortUploads, '--abort-uploads'],
    ] as const) {
      if (value !== undefined && value !== false) {
        throw new UsageError(`${flag} goes with --fix; without --fix, diagnose changes nothing.`);
      }
    }
  }
  if (flags.fix) refuseFakeClock(flags, '--fix', 'run', 'Drop --now, or drop --fix to read the run as of that time.');
  if (flags.quarantine !== undefined && flags.quarantine.trim() === '')
    throw new UsageError('--quarantine is empty.');
  if (flags.auditLog !== undefined && flags.auditLog.trim() === '')
    throw new UsageError('--audit-log is empty.');
  if (flags.auditLog !== undefined && isS3Url(flags.auditLog))
    throw new UsageError('--audit-log must be a local path: the audit log is appended to, and stays local.');
}

/** One diagnose invocation, checked and resolved: what every step below shares. */
interface DiagnoseJob {
  readonly flags: DiagnoseFlags;
  readonly io: CliIo;
  readonly runKey: string;
  readonly settings: PipelineSettings;
  readonly auditLog: string;
}

export async function diagnoseCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as DiagnoseFlags;
  checkCombinations(flags);
  const runKey = validateRunKey(String(flags.runKey ?? ''));
  // The judged "now": --now when given, for reading only (checkCombinations keeps it from --fix).
  const judgedNowMs = flags.now === undefined ? undefined : resolveNow(flags.now, io);
  const lockTimeoutMs = parseDuration(flags.lockTimeout ?? DEFAULT_LOCK_TIMEOUT, '--lock-timeout');
  const timeoutMs = s3TimeoutOf(flags.timeout);
  const settings = await settingsFromFlags(flags, io);
  if (isS3Url(settings.outDir) || isS3Url(settings.stagingDir)) {
    return diagnoseOnS3({ flags, io, runKey, settings, auditLog: auditLogOf(flags.auditLog, settings, io) }, {
      nowMs: judgedNowMs, lockTimeoutMs, timeoutMs,
    });
  }
  refuseS3OnLocal(flags, settings);
  const job: DiagnoseJob = { flags, io, runKey, settings, auditLog: auditLogFor(flags.auditLog, settings, io.cwd) };
  if (!flags.fix) {
    const diagnosis = await diagnose(job, judgedNowMs ?? io.now());
    await writeDiagnosis(job, diagnosis);
    return diagnosis.exitCode;
  }
  const report = await fix(job, lockTimeoutMs);
  if (report instanceof LockTimeoutError) return writeLockTimeout(job, report);
  await writeFixReport(job, report);
  return report.exitCode;
}

/** On a local layout, the S3-only flags and an S3 quarantine mean a mistake: refused, before any I/O on the run. */
function refuseS3OnLocal(flags: DiagnoseFlags, settings: PipelineSettings): void {
  if (flags.abortUploads) {
    throw new UsageError('--abort-uploads is for S3 prefixes: a local directory holds no multipart uploads.');
  }
  const quarantine = flags.quarantine ?? settings.quarantine;
  if (flags.fix && quarantine !== undefined && isS3Url(quarantine)) {
    throw new UsageError(
      `The quarantine ${quarantine} is an S3 prefix, but the staging directory ${settings.stagingDir} is local; nothing was changed.`,
      'Give --quarantine as a local directory.',
    );
  }
}

/**
 * diagnose and --fix when a directory is an s3:// URL: the same judgement,
 * evidence and exit codes, through the store seam. The S3 part (and the SDK)
 * is loaded here, and only here.
 */
async function diagnoseOnS3(
  job: DiagnoseJob,
  options: { readonly nowMs: number | undefined; readonly lockTimeoutMs: number; readonly timeoutMs: number },
): Promise<number> {
  const { flags, io, settings, runKey } = job;
  const part = await loadS3Part(io);
  const rawQuarantine = flags.fix ? (flags.quarantine ?? settings.quarantine) : undefined;
  if (rawQuarantine !== undefined && !isS3Url(settings.stagingDir)) refuseS3OnLocal(flags, settings);
  const quarantine = rawQuarantine === undefined || !isS3Url(settings.stagingDir)
    ? undefined
    : part.checkStoreQuarantine(settings, rawQuarantine);
  // A local staging directory (beside an S3 output prefix) is fixed by the local fixer: a local quarantine, as there.
  const quarantineDir = isS3Url(settings.stagingDir) ? quarantine : localQuarantineOf(job);
  const opened = part.openRunStores(settings, {
    fs: io.fs, env: io.env, timeoutMs: options.timeoutMs, wallClock: io.now, quarantine,
  });
  try {
    if (!flags.fix) {
      const looked = await part.diagnoseStoreRun(io, settings, opened.stores, runKey, {
        auditLog: job.auditLog, retry: false, nowMs: options.nowMs ?? io.now(),
      });
      const diagnosis = await withCauses(job, looked.diagnosis);
      await writeDiagnosis(job, diagnosis);
      return diagnosis.exitCode;
    }
    let report: FixReport;
    try {
      report = await part.fixStoreRun(fixContextOf(job), settings, opened.stores, runKey, {
        dryRun: flags.dryRun === true,
        quarantineDir,
        lockTimeoutMs: options.lockTimeoutMs,
        auditLog: job.auditLog,
        retry: flags.retry === true,
        abortUploads: flags.abortUploads === true,
        stateDir: stateDirOf(io),
      });
    } catch (error) {
      // Thrown by the separately bundled part: its class is not this bundle's.
      if (error instanceof Error && error.name === 'LockTimeoutError') return writeLockTimeout(job, error as LockTimeoutError);
      throw error;
    }
    const after = await withCauses(job, report.after);
    await writeFixReport(job, { ...report, after, ...(report.dryRun ? { before: after } : {}) });
    return report.exitCode;
  } finally {
    await opened.close();
  }
}

/** Look, then judge: the evidence on disk as of `nowMs`, its state, and why it died. */
async function diagnose(job: DiagnoseJob, nowMs: number): Promise<Diagnosis> {
  const { io, settings, runKey } = job;
  // Judged as they are looked at: a report for the files the views list, totals for all of them.
  const { evidence, fold } = await probeRunFolded(
    { fs: io.fs, processes: io.processes, nowMs }, settings, runKey, LISTED_FILES,
  );
  const recovery = await gatherRecovery(io.fs, settings, runKey, { auditLog: job.auditLog, retry: false, nowMs });
  return withCauses(job, classifyFolded({ ...evidence, recovery }, fold), fold.deadOrphans);
}

/** Why it died (causes.ts), beside the state: advice only, never the exit code. */
async function withCauses(job: DiagnoseJob, diagnosis: Diagnosis, probed?: readonly DeadOrphan[]): Promise<Diagnosis> {
  const { io } = job;
  // Free space means nothing for an S3 prefix: only local directories are asked.
  const local = !isS3Url(job.settings.outDir) && !isS3Url(job.settings.stagingDir);
  const witnesses = {
    fs: io.fs,
    ...(io.readKernelLog ? { readKernelLog: io.readKernelLog } : {}),
    ...(io.statfs && local ? { statfs: io.statfs } : {}),
  };
  // As many as the views list: a crash loop's partial writes, one per attempt, are counted past that.
  const found = await findCauses(witnesses, job.settings, diagnosis, probed, LISTED_FILES);
  return {
    ...diagnosis,
    causes: found.causes,
    ...(found.unlisted > 0 ? { unlistedCauses: found.unlisted } : {}),
    causeNotes: found.notes,
  };
}

/** Plan, act under the run's lock, and diagnose again; a LockTimeoutError when another fixer holds it. */
async function fix(job: DiagnoseJob, lockTimeoutMs: number): Promise<FixReport | LockTimeoutError> {
  const { flags, settings } = job;
  let report: FixReport;
  try {
    report = await fixRun(fixContextOf(job), settings, job.runKey, {
      dryRun: flags.dryRun === true,
      quarantineDir: localQuarantineOf(job),
      lockTimeoutMs,
      auditLog: job.auditLog,
      retry: flags.retry === true,
    });
  } catch (error) {
    if (error instanceof LockTimeoutError) return error;
    throw error;
  }
  const after = await withCauses(job, report.after);
  // A dry run's "after" is its "before": one look for both.
  return { ...report, after, ...(report.dryRun ? { before: after } : {}) };
}

/** --quarantine as a local directory: the flag against the working directory, else the config's. */
function localQuarantineOf({ flags, io, settings }: DiagnoseJob): string | undefined {
  return flags.quarantine === undefined ? settings.quarantine : resolve(io.cwd, flags.quarantine);
}

/** --fix acts on the real world: the wall clock (never --now), real processes, real commands. */
function fixContextOf({ flags, io }: DiagnoseJob): FixContext {
  return {
    fs: io.fs,
    processes: io.processes,
    wallClock: io.now,
    sleep: io.sleep,
    runCommand: (words, env) => io.runCommand(words, env, flags.json === true),
    user: io.user,
    identity: io.identity,
    pid: io.pid,
    randomToken: io.randomToken,
    every: io.every,
    progress: (line) => {
      if (!flags.json) io.stderr.write(`crashdiag: ${escapeText(line)}\n`);
    },
  };
}

/** The human view of a diagnosis, and the renderers and colours to write the rest with. */
async function humanView(job: DiagnoseJob, diagnosis: Diagnosis) {
  const { flags, io, settings, runKey } = job;
  const human = await import('../../render/human.js');
  const chalk = human.chalkFor(io.stdout, io.env);
  const view = {
    diagnosis,
    pipeline: settings.pipeline,
    rerun: settings.rerun,
    invocation: invocationWords('diagnose', runKey, flags),
    width: terminalWidth(io),
    localHost: io.processes.hostname,
  };
  return { human, chalk, diagnosisText: human.renderDiagnosisHuman(view, chalk) };
}

async function writeDiagnosis(job: DiagnoseJob, diagnosis: Diagnosis): Promise<void> {
  if (job.flags.json) {
    const { renderDiagnosisJson } = await import('../../render/json.js');
    job.io.stdout.write(renderDiagnosisJson(diagnosis, job.io.runbooks.pathOf));
  } else {
    job.io.stdout.write((await humanView(job, diagnosis)).diagnosisText);
  }
}

async function writeFixReport(job: DiagnoseJob, report: FixReport): Promise<void> {
  if (job.flags.json) {
    const { renderFixJson } = await import('../../render/json.js');
    job.io.stdout.write(renderFixJson(report, job.io.runbooks.pathOf));
  } else {
    const { human, chalk, diagnosisText } = await humanView(job, report.after);
    job.io.stdout.write(human.renderFixHuman(report, chalk));
    job.io.stdout.write(diagnosisText);
  }
}

/** Another fixer is acting on this run right now: for a gate that means "wait". */
async function writeLockTimeout({ flags, io, runKey }: DiagnoseJob, error: LockTimeoutError): Promise<number> {
  io.stderr.write(`crashdiag: ${escapeText(error.message)}\n  Try again once it finishes; nothing was changed.\n`);
  if (flags.json) {
    // A gate that parses stdout still gets one object, in the diagnosis' shape.
    const { renderLockTimeoutJson } = await import('../../render/json.js');
    io.stdout.write(renderLockTimeoutJson(runKey, error, io.runbooks.pathOf));
  }
  return EXIT_CODES.RUNNING;
}
