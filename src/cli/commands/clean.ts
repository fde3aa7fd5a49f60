import { auditLogFor } from '../../core/audit.js';
import { type CleanReport, cleanPipeline, MIN_CLEAN_THRESHOLD_MS } from '../../core/clean.js';
import { DEFAULT_LOCK_TIMEOUT, DEFAULT_OLDER_THAN } from '../../core/defaults.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { LockTimeoutError } from '../../core/lock.js';
import { EXIT_CODES, SCHEMA_VERSION } from '../../core/states.js';
import { escapeText, formatBytes, plural } from '../../render/format.js';
import type { CliIo } from '../io.js';
import { type MultiPipelineFlags, selectPipelines } from './pipelines.js';

interface CleanFlags extends MultiPipelineFlags {
  olderThan?: string;
  dryRun?: boolean;
  forceShortThreshold?: boolean;
  json?: boolean;
  auditLog?: string;
  lockTimeout?: string;
}

function renderHuman(reports: readonly CleanReport[]): string {
  const lines: string[] = [];
  for (const report of reports) {
    const verb = report.dryRun ? 'would free' : 'freed';
    // Names and reasons come from disk and the config: escaped, they cannot drive the terminal.
    const name = escapeText(report.pipeline ? `pipeline ${report.pipeline}` : report.stagingDir);
    lines.push(
      `${name}: ${verb} ${plural(report.files, 'file')}, ${formatBytes(report.bytes)} (orphans older than ${formatDuration(report.olderThanSeconds * 1000)})`,
    );
    for (const run of report.perRun)
      lines.push(`  ${escapeText(run.run)}: ${plural(run.files, 'file')}, ${formatBytes(run.bytes)}`);
    if (report.dryRun) for (const file of report.removed) lines.push(`  would remove ${escapeText(file.path)}`);
    const special = report.kept.filter((k) => k.reason !== 'younger than the threshold');
    for (const k of special) lines.push(`  kept ${escapeText(k.path)}: ${escapeText(k.reason)}`);
    const young = report.kept.length - special.length;
    if (young > 0) lines.push(`  kept ${plural(young, 'file')} younger than the threshold`);
    for (const f of report.failed) lines.push(`  NOT removed ${escapeText(f.path)}: ${escapeText(f.reason)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A dry run removed nothing: its list is `wouldRemove`, so a script cannot read it as done. */
function jsonReport(report: CleanReport): Record<string, unknown> {
  if (!report.dryRun) return { ...report };
  const { removed, ...rest } = report;
  const entries: Array<[string, unknown]> = Object.entries(rest);
  const at = entries.findIndex(([key]) => key === 'olderThanSeconds') + 1;
  entries.splice(at, 0, ['wouldRemove', removed]);
  return Object.fromEntries(entries);
}

export async function cleanCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as CleanFlags;
  if (flags.now !== undefined) {
    // A fake clock makes a file written a second ago look long dead: never let it decide a deletion.
    throw new UsageError(
      `--now is for reading only: clean${flags.dryRun ? ' --dry-run shows what the real clean would do, so it too' : ''} judges every file against the real clock.`,
      'Drop --now.',
    );
  }
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
  for (const settings of pipelines) {
    try {
      reports.push(
        await cleanPipeline(
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
            dryRun: flags.dryRun === true,
            auditLog: auditLogFor(flags.auditLog, settings, io.cwd),
            lockTimeoutMs,
          },
        ),
      );
    } catch (error) {
      if (!(error instanceof LockTimeoutError)) throw error;
      const hint = 'Another janitor is at work; nothing was changed by this one.';
      io.stderr.write(`crashdiag: ${escapeText(error.message)}\n  ${hint}\n`);
      if (flags.json) {
        // A script parsing stdout still gets one object: what stopped it, with the exit code.
        const body = { schemaVersion: SCHEMA_VERSION, exitCode: EXIT_CODES.RUNNING, error: { code: 'lock-timeout', message: error.message, hint } };
        io.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      }
      return EXIT_CODES.RUNNING;
    }
  }
  if (flags.json) {
    io.stdout.write(`${JSON.stringify({ schemaVersion: SCHEMA_VERSION, pipelines: reports.map(jsonReport) }, null, 2)}\n`);
  } else {
    io.stdout.write(renderHuman(reports));
  }
  // Not 0 when an orphan that was to go is still there: a person must look (the report says which, and why).
  if (reports.some((r) => r.failed.length > 0)) {
    io.stderr.write('crashdiag: some orphans could not be removed (listed above); everything else was done.\n');
    return EXIT_CODES.UNKNOWN;
  }
  return 0;
}
