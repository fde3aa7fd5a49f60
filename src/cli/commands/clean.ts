import {
  type CleanContext, type CleanOptions, type CleanReport, cleanPipeline, MIN_CLEAN_THRESHOLD_MS,
} from '../../core/clean.js';
import { isS3Url } from '../../core/s3-url.js';
import type { PipelineSettings } from '../../core/settings.js';
import { DEFAULT_LOCK_TIMEOUT, DEFAULT_OLDER_THAN } from '../../core/defaults.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { LockTimeoutError } from '../../core/lock.js';
import { EXIT_CODES } from '../../core/states.js';
import { CleanJsonStream, renderCleanHuman } from '../../render/clean.js';
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
          if (dryRun) io.stdout.write(`  would remove ${escapeText(file.path)}\n`);
        },
    onEntries: out.onEntries,
  };
  // A local staging directory is cleaned by the local janitor whatever the output is: it needs no S3 part.
  return isS3Url(settings.stagingDir)
    ? await cleanOnS3(io, ctx, settings, options, timeoutMs)
    : await cleanPipeline(ctx, settings, options);
}

/** Another janitor holds the lock: said on stderr and, under --json, as the stream's last word; exit 20. */
function lockedOut(error: unknown, io: CliIo, json: CleanJsonStream | undefined): number {
  // Thrown by the separately bundled S3 part too, whose class is not this bundle's.
  if (!(error instanceof LockTimeoutError) && !(error instanceof Error && error.name === 'LockTimeoutError')) throw error;
  const hint = 'Another janitor is at work; nothing was changed by this one.';
  const message = (error).message;
  io.stderr.write(`crashdiag: ${escapeText(message)}\n  ${hint}\n`);
  // A script parsing stdout still gets one object: what stopped it, with the exit code.
  json?.fail(EXIT_CODES.RUNNING, { code: 'lock-timeout', message, hint });
  return EXIT_CODES.RUNNING;
}

export async function cleanCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as CleanFlags;
  const limits = cleanLimits(flags);
  const pipelines = await selectPipelines(flags, io);
  if (flags.auditLog !== undefined && pipelines.length > 1) {
    throw new UsageError('--audit-log names one file; with --all each pipeline keeps its own log.');
  }
  const reports: CleanReport[] = [];
  // Each removed file is written as it goes (JSON), or not kept (human, where
  // a dry run lists them as they come): memory stays flat whatever their number.
  const json = flags.json ? new CleanJsonStream(io.stdout) : undefined;
  const progress = progressLine(io, 'clean');
  try {
    for (const settings of pipelines) {
      const report = await cleanOne(flags, io, settings, limits, { json, onEntries: progress.update });
      reports.push(report);
      if (json) json.finish(report);
      else io.stdout.write(renderCleanHuman([report]));
    }
  } catch (error) {
    return lockedOut(error, io, json);
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
