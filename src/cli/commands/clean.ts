import { auditLogFor } from '../../core/audit.js';
import { type CleanReport, cleanPipeline, MIN_CLEAN_THRESHOLD_MS } from '../../core/clean.js';
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
import { type MultiPipelineFlags, selectPipelines } from './pipelines.js';

interface CleanFlags extends MultiPipelineFlags {
  olderThan?: string;
  dryRun?: boolean;
  forceShortThreshold?: boolean;
  json?: boolean;
  auditLog?: string;
  lockTimeout?: string;
}

export async function cleanCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as CleanFlags;
  refuseFakeClock(flags, 'clean', 'clean', 'Drop --now.');
  const olderThanMs = parseDuration(flags.olderThan ?? DEFAULT_OLDER_THAN, '--older-than');
  if (olderThanMs < MIN_CLEAN_THRESHOLD_MS && !flags.forceShortThreshold) {
    throw new UsageError(
      `--older-than ${flags.olderThan} is under ${formatDuration(MIN_CLEAN_THRESHOLD_MS)}: an in-flight write can look idle for minutes.`,
      'If you are sure, add --force-short-threshold.',
    );
  }
  const lockTimeoutMs = parseDuration(flags.lockTimeout ?? DEFAULT_LOCK_TIMEOUT, '--lock-timeout');
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
      const dryRun = flags.dryRun === true;
      const report = await cleanPipeline(
        {
          fs: io.fs,
          processes: io.processes,
          clock: io.now,
          sleep: io.sleep,
          user: io.user,
          pid: io.pid,
          randomToken: io.randomToken,
          every: io.every,
        },
        settings,
        {
          olderThanMs,
          dryRun,
          auditLog: auditLogFor(flags.auditLog, settings, io.cwd),
          lockTimeoutMs,
          onRemoved: json
            ? (file) => json.removed(settings, dryRun, olderThanMs, file)
            : (file) => {
                if (dryRun) io.stdout.write(`  would remove ${escapeText(file.path)}\n`);
              },
          onEntries: progress.update,
        },
      );
      reports.push(report);
      if (json) json.finish(report);
      else io.stdout.write(renderCleanHuman([report]));
    }
  } catch (error) {
    if (!(error instanceof LockTimeoutError)) throw error;
    const hint = 'Another janitor is at work; nothing was changed by this one.';
    io.stderr.write(`crashdiag: ${escapeText(error.message)}\n  ${hint}\n`);
    // A script parsing stdout still gets one object: what stopped it, with the exit code.
    json?.fail(EXIT_CODES.RUNNING, { code: 'lock-timeout', message: error.message, hint });
    return EXIT_CODES.RUNNING;
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
