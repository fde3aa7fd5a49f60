import { auditLogFor } from '../../core/audit.js';
import { type CleanedFile, type CleanReport, cleanPipeline, MIN_CLEAN_THRESHOLD_MS } from '../../core/clean.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { LockTimeoutError } from '../../core/lock.js';
import { EXIT_CODES, SCHEMA_VERSION } from '../../core/states.js';
import { escapeText, formatBytes, plural } from '../../render/format.js';
import type { PipelineSettings } from '../../core/settings.js';
import type { CliIo } from '../io.js';
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
    const special = report.kept.filter((k) => k.reason !== 'younger than the threshold');
    for (const k of special) lines.push(`  kept ${escapeText(k.path)}: ${escapeText(k.reason)}`);
    if (report.keptYounger > 0) lines.push(`  kept ${plural(report.keptYounger, 'file')} younger than the threshold`);
    const unlisted = report.keptCount - report.keptYounger - special.length;
    if (unlisted > 0) lines.push(`  kept ${plural(unlisted, 'more file')} for other reasons (not listed)`);
    for (const f of report.failed) lines.push(`  NOT removed ${escapeText(f.path)}: ${escapeText(f.reason)}`);
    const more = report.failedCount - report.failed.length;
    if (more > 0) lines.push(`  NOT removed ${plural(more, 'more file')}: each is in the audit log (crashdiag history)`);
  }
  return `${lines.join('\n')}\n`;
}

/** A dry run removed nothing: its list is `wouldRemove`, so a script cannot read it as done. */
export async function cleanCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as CleanFlags;
  if (flags.now !== undefined) {
    // A fake clock makes a file written a second ago look long dead: never let it decide a deletion.
    throw new UsageError(
      `--now is for reading only: clean${flags.dryRun ? ' --dry-run shows what the real clean would do, so it too' : ''} judges every file against the real clock.`,
      'Drop --now.',
    );
  }
  const olderThanMs = parseDuration(flags.olderThan ?? '24h', '--older-than');
  if (olderThanMs < MIN_CLEAN_THRESHOLD_MS && !flags.forceShortThreshold) {
    throw new UsageError(
      `--older-than ${flags.olderThan} is under 1h: an in-flight write can look idle for minutes.`,
      'If you are sure, add --force-short-threshold.',
    );
  }
  const lockTimeoutMs = parseDuration(flags.lockTimeout ?? '30s', '--lock-timeout');
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
      else io.stdout.write(renderHuman([report]));
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

/**
 * `{"schemaVersion": 1, "pipelines": [...]}` written while the janitor works:
 * each pipeline's `removed` list is streamed, the rest of its report follows.
 */
class CleanJsonStream {
  readonly #out: CliIo['stdout'];
  #opened = false;
  #pending = '';
  #pipelines = 0;
  #closed = false;
  #failure: { exitCode: number; error: { code: string; message: string; hint: string } } | undefined;
  /** Files written in the open pipeline's `removed`; undefined when none is open. */
  #files: number | undefined;

  constructor(out: CliIo['stdout']) {
    this.#out = out;
  }

  removed(settings: PipelineSettings, dryRun: boolean, olderThanMs: number, file: CleanedFile): void {
    const files = this.#files ?? this.#begin({
      pipeline: settings.pipeline ?? null,
      stagingDir: settings.stagingDir,
      dryRun,
      olderThanSeconds: Math.round(olderThanMs / 1000),
    });
    this.#pending += `${files > 0 ? ',' : ''}\n        ${JSON.stringify(file)}`;
    this.#files = files + 1;
    // Written in chunks: a write per file was a fifth of the janitor's time.
    if (this.#pending.length >= 65_536) this.#flush();
  }

  #flush(): void {
    if (this.#pending !== '') this.#out.write(this.#pending);
    this.#pending = '';
  }

  finish(report: CleanReport): void {
    const { pipeline, stagingDir, dryRun, olderThanSeconds, removed: _removed, ...rest } = report;
    const files = this.#files ?? this.#begin({ pipeline, stagingDir, dryRun, olderThanSeconds });
    const tail = Object.entries(rest).map(([key, value]) => `      ${JSON.stringify(key)}: ${JSON.stringify(value)}`);
    this.#flush();
    this.#out.write(`${files > 0 ? '\n      ' : ''}],\n${tail.join(',\n')}\n    }`);
    this.#files = undefined;
  }

  /** Opens a pipeline's object, up to its `removed` list. */
  #begin(head: Pick<CleanReport, 'pipeline' | 'stagingDir' | 'dryRun' | 'olderThanSeconds'>): number {
    this.#open();
    const fields = Object.entries(head).map(([key, value]) => `      ${JSON.stringify(key)}: ${JSON.stringify(value)}`);
    // A dry run removed nothing: its list says what would go.
    const list = head.dryRun ? 'wouldRemove' : 'removed';
    this.#out.write(`${this.#pipelines++ > 0 ? ',\n' : ''}    {\n${fields.join(',\n')},\n      "${list}": [`);
    this.#files = 0;
    return 0;
  }

  /** What stopped the janitor, with the exit code: one object, written once the stream closes. */
  fail(exitCode: number, error: { code: string; message: string; hint: string }): void {
    this.#failure = { exitCode, error };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#flush();
    if (!this.#opened && this.#failure) {
      this.#out.write(`${JSON.stringify({ schemaVersion: SCHEMA_VERSION, ...this.#failure }, null, 2)}\n`);
      return;
    }
    this.#open();
    // A pipeline cut off midway (an unexpected error) still closes: its removals so far are listed.
    if (this.#files !== undefined) this.#out.write('\n      ]}');
    const failure = this.#failure
      ? `,\n  "exitCode": ${this.#failure.exitCode},\n  "error": ${JSON.stringify(this.#failure.error)}`
      : '';
    this.#out.write(`\n  ]${failure}\n}\n`);
  }

  #open(): void {
    if (this.#opened) return;
    this.#opened = true;
    this.#out.write(`{\n  "schemaVersion": ${SCHEMA_VERSION},\n  "pipelines": [\n`);
  }
}
