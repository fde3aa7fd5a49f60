import {
  type CleanContext, type CleanOptions, type CleanReport, cleanPipeline, MIN_CLEAN_THRESHOLD_MS, notCleanedReport,
} from '../../core/clean.js';
import { isS3Url } from '../../core/s3-url.js';
import type { PipelineSettings } from '../../core/settings.js';
import { DEFAULT_LOCK_TIMEOUT, DEFAULT_OLDER_THAN } from '../../core/defaults.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { isUsageError, UsageError } from '../../core/errors.js';
import { LockTimeoutError } from '../../core/lock.js';
import { EXIT_CODES, EXIT_UNEXPECTED, EXIT_USAGE } from '../../core/states.js';
import { CleanJsonStream, renderCleanHuman, renderWouldRemove } from '../../render/clean.js';
import { escapeText } from '../../render/format.js';
import type { CliIo } from '../io.js';
import { refuseFakeClock } from '../pipeline-options.js';
import { progressLine } from '../progress.js';
import { auditLogOf, loadS3Part, s3TimeoutOf, stateDirOf } from '../s3-options.js';
import { type MultiPipelineFlags, selectPipelines } from './pipelines.js';

interface CleanFlags extends MultiPipelineFlags {
  olderThan?: string;
  dryRun?: boolean;
  forceShortThreshold?: boolean;
  json?: boolean;
  auditLog?: string;
  lockTimeout?: string;
  timeout?: string;
}

/** The janitor for a pipeline with an s3:// directory: the S3 part loaded for it alone, its session closed after. */
async function cleanOnS3(
  io: CliIo,
  ctx: CleanContext,
  settings: PipelineSettings,
  options: CleanOptions,
  timeoutMs: number,
): Promise<CleanReport> {
  const part = await loadS3Part(io);
  const opened = part.openRunStores(settings, { fs: io.fs, env: io.env, timeoutMs, wallClock: io.now });
  try {
    return await part.cleanStorePipeline(ctx, settings, opened.stores, { ...options, stateDir: stateDirOf(io) });
  } finally {
    await opened.close();
  }
}

/** The flags every pipeline of this clean shares, checked before any pipeline is read. */
function cleanLimits(flags: CleanFlags): { olderThanMs: number; lockTimeoutMs: number; timeoutMs: number } {
  refuseFakeClock(flags, 'clean', 'clean', 'Drop --now.');
  const olderThanMs = parseDuration(flags.olderThan ?? DEFAULT_OLDER_THAN, '--older-than');
  if (olderThanMs < MIN_CLEAN_THRESHOLD_MS && !flags.forceShortThreshold) {
    throw new UsageError(
      `--older-than ${flags.olderThan} is under ${formatDuration(MIN_CLEAN_THRESHOLD_MS)}: an in-flight write can look idle for minutes.`,
      'If you are sure, add --force-short-threshold.',
    );
  }
  const lockTimeoutMs = parseDuration(flags.lockTimeout ?? DEFAULT_LOCK_TIMEOUT, '--lock-timeout');
  const timeoutMs = s3TimeoutOf(flags.timeout);
  if (flags.auditLog !== undefined && isS3Url(flags.auditLog))
    throw new UsageError('--audit-log must be a local path: the audit log is appended to, and stays local.');
  return { olderThanMs, lockTimeoutMs, timeoutMs };
}

/** One pipeline's janitor, local or S3; each removed file goes to the JSON stream (or a dry run's line) as it goes. */
async function cleanOne(
  flags: CleanFlags,
  io: CliIo,
  settings: PipelineSettings,
  limits: ReturnType<typeof cleanLimits>,
  out: { json: CleanJsonStream | undefined; onEntries: (count: number) => void },
): Promise<CleanReport> {
  const { olderThanMs, lockTimeoutMs, timeoutMs } = limits;
  const { json } = out;
  const dryRun = flags.dryRun === true;
  const ctx: CleanContext = {
    fs: io.fs,
    processes: io.processes,
    wallClock: io.now,
    sleep: io.sleep,
    user: io.user,
    pid: io.pid,
    randomToken: io.randomToken,
    every: io.every,
  };
  const options: CleanOptions = {
    olderThanMs,
    dryRun,
    auditLog: auditLogOf(flags.auditLog, settings, io),
    lockTimeoutMs,
    onRemoved: json
      ? (file) => json.removed(settings, dryRun, olderThanMs, file)
      : (file) => {
          if (dryRun) io.stdout.write(renderWouldRemove(file));
        },
    onEntries: out.onEntries,
  };
  // A local staging directory is cleaned by the local janitor whatever the output is: it needs no S3 part.
  return isS3Url(settings.stagingDir)
    ? await cleanOnS3(io, ctx, settings, options, timeoutMs)
    : await cleanPipeline(ctx, settings, options);
}

function isLockTimeout(error: unknown): boolean {
  // Thrown by the separately bundled S3 part too, whose class is not this bundle's.
  return error instanceof LockTimeoutError || (error instanceof Error && error.name === 'LockTimeoutError');
}

/**
 * An error after part of the JSON was written (pipelines done, files removed):
 * it goes inside that document, as its last word, so stdout stays one valid
 * JSON document; stderr gets the sentence (or the stack), as for any error.
 */
function stoppedInStream(error: unknown, io: CliIo, json: CleanJsonStream): number {
  const usage = isUsageError(error);
  const exitCode = usage ? EXIT_USAGE : EXIT_UNEXPECTED;
  const message = error instanceof Error ? error.message : String(error);
  if (usage) io.stderr.write(`crashdiag: ${escapeText(message)}\n${error.hint ? `  ${escapeText(error.hint)}\n` : ''}`);
  else io.stderr.write(`crashdiag: unexpected error (a bug; nothing was guessed)\n${error instanceof Error ? (error.stack ?? message) : message}\n`);
  json.fail(exitCode, usage
    ? { code: 'usage', message, hint: error.hint ?? null }
    : { code: 'unexpected', message: `unexpected error: ${message}`, hint: 'A bug in crashdiag; the stack is on stderr.' });
  return exitCode;
}

/**
 * Another janitor holds the lock: said on stderr and, under --json, as the
 * stream's last word; exit 20 ("wait, then try again"), unless a pipeline
 * cleaned before it had failures: those are a person's to look at, and 30
 * must not be hidden behind a wait.
 */
function lockedOut(error: unknown, io: CliIo, json: CleanJsonStream | undefined, done: readonly CleanReport[]): number {
  if (!isLockTimeout(error)) throw error;
  const failedBefore = done.some((r) => r.failedCount > 0);
  const hint = failedBefore
    ? 'Another janitor is at work on this pipeline; a pipeline before it has orphans that could not be removed (listed above).'
    : 'Another janitor is at work; nothing was changed by this one.';
  const message = (error as Error).message;
  io.stderr.write(`crashdiag: ${escapeText(message)}\n  ${hint}\n`);
  const exitCode = failedBefore ? EXIT_CODES.UNKNOWN : EXIT_CODES.RUNNING;
  // A script parsing stdout still gets one object: what stopped it, with the exit code.
  json?.fail(exitCode, { code: 'lock-timeout', message, hint });
  return exitCode;
}

/**
 * What every pipeline needs from this host before any of them acts: the
 * audit log's place and, for an S3 staging prefix, the local state directory (its lock).
 * Asked of all first, so `--all` never cleans one pipeline and then finds that
 * the next cannot be cleaned from here at all (exit 2 means nothing was changed).
 */
function refuseWithoutLocalState(flags: CleanFlags, io: CliIo, pipelines: readonly PipelineSettings[]): void {
  for (const settings of pipelines) {
    auditLogOf(flags.auditLog, settings, io);
    if (isS3Url(settings.stagingDir)) stateDirOf(io); // the S3 janitor's lock and log
  }
}

/**
 * One pipeline of several: one that cannot be cleaned at all (its bucket
 * missing, its directory gone) is that pipeline's failure, said on stderr and
 * in its report, and the others are still cleaned; the exit code is then 30,
 * never 2 (which says nothing was changed). Alone, it is the usual exit 2.
 */
function cleanOneOf(
  count: number,
  settings: PipelineSettings,
  io: CliIo,
  limits: ReturnType<typeof cleanLimits>,
  dryRun: boolean,
): (clean: () => Promise<CleanReport>) => Promise<CleanReport> {
  return async (clean) => {
    try {
      return await clean();
    } catch (error) {
      if (count === 1 || !isUsageError(error)) throw error;
      const name = settings.pipeline ?? settings.stagingDir;
      io.stderr.write(`crashdiag: pipeline ${escapeText(name)} was not cleaned: ${escapeText(error.message)}\n`);
      const options = { olderThanMs: limits.olderThanMs, dryRun, auditLog: '', lockTimeoutMs: limits.lockTimeoutMs };
      return notCleanedReport(settings, options, error.message);
    }
  };
}

export async function cleanCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as CleanFlags;
  const limits = cleanLimits(flags);
  const pipelines = await selectPipelines(flags, io);
  if (flags.auditLog !== undefined && pipelines.length > 1) {
    throw new UsageError('--audit-log names one file; with --all each pipeline keeps its own log.');
  }
  refuseWithoutLocalState(flags, io, pipelines);
  const reports: CleanReport[] = [];
  // Each removed file is written as it goes (JSON), or not kept (human, where
  // a dry run lists them as they come): memory stays flat whatever their number.
  const json = flags.json ? new CleanJsonStream(io.stdout) : undefined;
  const progress = progressLine(io, 'clean');
  try {
    for (const settings of pipelines) {
      const report = await cleanOneOf(pipelines.length, settings, io, limits, flags.dryRun === true)(
        () => cleanOne(flags, io, settings, limits, { json, onEntries: progress.update }));
      reports.push(report);
      if (json) json.finish(report);
      else io.stdout.write(renderCleanHuman([report]));
    }
  } catch (error) {
    if (json?.opened && !isLockTimeout(error)) return stoppedInStream(error, io, json);
    return lockedOut(error, io, json, reports);
  } finally {
    progress.done();
    // Valid JSON whatever happened: what was done so far, closed.
    json?.close();
  }
  // Not 0 when an orphan that was to go is still there: a person must look (the report says which, and why).
  if (reports.some((r) => r.failedCount > 0)) {
    io.stderr.write('crashdiag: some orphans could not be removed (listed above); everything else was done.\n');
    return EXIT_CODES.UNKNOWN;
  }
  return 0;
}
