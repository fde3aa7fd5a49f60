import { constants } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { refuseWriteIntoOutputDirectory } from '../../core/directory-rules.js';
import { pinnedPath } from '../../core/same-directory.js';
import { DEFAULT_SINCE } from '../../core/defaults.js';
import { checkDateRange, parseDuration } from '../../core/duration.js';
import type { Diagnosis } from '../../core/diagnosis.js';
import { errnoCode, isUsageError, UsageError } from '../../core/errors.js';
import type { FileSystem } from '../../core/fs.js';
import { type ScanOptions, type ScanResult, scanPipeline } from '../../core/scan.js';
import type { PipelineSettings } from '../../core/settings.js';
import { EXIT_CODES, EXIT_USAGE, STATES, type State } from '../../core/states.js';
import { DEFAULT_PIPELINE_LABEL } from '../../render/scan-rows.js';
import { type CliIo, terminalWidth } from '../io.js';
import { neighboursIn, readConfigFor, resolveNow, resolveSettings } from '../pipeline-options.js';
import { progressLine } from '../progress.js';
import { hasS3Side, loadS3Part, s3TimeoutOf } from '../s3-options.js';
import { checkTimeZone, dailyDates, dateInZone, defaultTimeZone, resolveUntil } from '../scan-dates.js';
import { checkAllFlags, type MultiPipelineFlags, selectPipelines } from './pipelines.js';

interface ScanFlags extends MultiPipelineFlags {
  since?: string;
  daily?: boolean;
  tz?: string;
  until?: string;
  problems?: boolean;
  state?: string | string[];
  json?: boolean;
  format?: string;
  promFile?: string;
  timeout?: string;
}

/**
 * The metrics file replaces only a previous metrics file, or nothing: a
 * published output, a config, a log given as --prom-file by mistake is
 * refused before the scan, and nothing is changed.
 */
async function checkMetricsTarget(fs: FileSystem, path: string): Promise<void> {
  let kind: string;
  try {
    const stats = await fs.lstat(path);
    if (stats.isFile()) kind = 'file';
    else if (stats.isSymbolicLink()) kind = 'a symlink';
    else if (stats.isDirectory()) kind = 'a directory';
    else kind = 'a special file';
  } catch (error) {
    const code = errnoCode(error);
    // Nothing there yet (or no directory: the write reports that).
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    if (code === 'EACCES' || code === 'EPERM') throw new UsageError(`Cannot write the metrics file ${path} (${code}).`);
    throw error;
  }
  if (kind === 'file') {
    const { METRICS_HEADER, LEGACY_METRICS_START } = await import('../../render/prom.js');
    const head = await readHead(fs, path, Buffer.byteLength(METRICS_HEADER));
    if (head.startsWith(METRICS_HEADER) || head.startsWith(LEGACY_METRICS_START)) return;
    kind = 'a file crashdiag did not write';
  }
  throw new UsageError(
    `Cannot write the metrics file ${path}: it is ${kind}, and --prom-file only replaces a previous crashdiag metrics file; nothing was changed.`,
    'Name a new file, or one an earlier scan --format prom wrote.',
  );
}

/** The first bytes of a regular file, opened without following a symlink or blocking on a FIFO. */
async function readHead(fs: FileSystem, path: string, bytes: number): Promise<string> {
  let handle: Awaited<ReturnType<FileSystem['open']>>;
  try {
    handle = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = errnoCode(error);
    if (code === undefined) throw error;
    throw new UsageError(`Cannot write the metrics file ${path}: it cannot be read (${code}); nothing was changed.`);
  }
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Writes the metrics file the way the textfile collector needs it: a temp
 * file in the same directory (a name it ignores), fsynced, then renamed over
 * the target, so a scrape never reads half a file and nothing else is left.
 */
async function writeAtomically(io: Pick<CliIo, 'fs' | 'pid' | 'randomToken'>, path: string, text: string): Promise<void> {
  const { fs } = io;
  const temp = join(dirname(path), `.${basename(path)}.${io.pid}.${io.randomToken()}.tmp`);
  try {
    const handle = await fs.open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, path);
  } catch (error) {
    await fs.unlink(temp).catch(() => {});
    const code = errnoCode(error);
    if (
      code === 'ENOENT'
      || code === 'EACCES'
      || code === 'EPERM'
      || code === 'EISDIR'
      || code === 'ENOTDIR'
    ) {
      throw new UsageError(`Cannot write the metrics file ${path} (${code}).`);
    }
    throw error;
  }
}

/** A pipeline of the config that could not be scanned, and why: its own row and metric. */
export interface ScanFailure {
  readonly pipeline: string;
  readonly message: string;
  readonly hint: string | null;
}

type Target = { readonly name: string; readonly settings: PipelineSettings } | ScanFailure;

const failureOf = (name: string, error: unknown): ScanFailure => {
  if (!isUsageError(error)) throw error;
  return { pipeline: name, message: error.message, hint: error.hint ?? null };
};

/**
 * Every pipeline to scan. Under --all, one pipeline's bad setting is that
 * pipeline's failure, not the whole scan's: the others are still watched.
 */
async function scanTargets(flags: ScanFlags, io: CliIo): Promise<Target[]> {
  if (!flags.all) {
    const [settings] = await selectPipelines(flags, io);
    return [{ name: settings?.pipeline ?? DEFAULT_PIPELINE_LABEL, settings: settings as PipelineSettings }];
  }
  checkAllFlags(flags);
  const { path, config } = await readConfigFor(flags, io, true);
  if (!config) throw new UsageError(`--all needs a config file, and ${path} does not exist.`);
  if (config.pipelines.size === 0) throw new UsageError(`The config file ${path} defines no pipelines.`);
  return [...config.pipelines].map(([name, pipeline]): Target => {
    try {
      const settings = { ...resolveSettings(flags, name, pipeline, io.cwd), neighbours: neighboursIn(config, name) };
      return { name, settings };
    } catch (error) {
      return failureOf(name, error);
    }
  });
}

/** The states --state names, checked: a typo must not make a filter that silently matches nothing. */
function stateFilter(flags: ScanFlags): ReadonlySet<State> | undefined {
  const given = flags.state === undefined ? [] : [flags.state].flat();
  if (given.length === 0 && !flags.problems) return undefined;
  const wanted = new Set<State>();
  for (const name of given) {
    const state = STATES.find((s) => s.toUpperCase() === name.toUpperCase())
      ?? (name.toUpperCase() === 'ABC' ? 'A/B/C' : undefined);
    if (!state) throw new UsageError(`--state ${JSON.stringify(name)} is not a state.`, `The states are ${STATES.join(', ')}.`);
    wanted.add(state);
  }
  if (flags.problems) {
    for (const state of STATES) if (state !== 'DONE' && (given.length === 0 || wanted.has(state))) wanted.add(state);
    if (given.length > 0) wanted.delete('DONE');
  }
  return wanted;
}

/**
 * The highest state code among runs that are not RUNNING: a live writer in
 * one run must not hide a crash in another. RUNNING (20) only when it is the
 * only state besides DONE; a pipeline that could not be scanned gives 2 when
 * nothing scanned is worse than DONE.
 */
export function scanExitCode(runs: ReadonlyArray<Pick<Diagnosis, 'state' | 'exitCode'>>, failures: number): number {
  const settled = Math.max(0, ...runs.filter((r) => r.state !== 'RUNNING').map((r) => r.exitCode));
  if (settled > 0) return settled;
  if (failures > 0) return EXIT_USAGE;
  return runs.some((r) => r.state === 'RUNNING') ? EXIT_CODES.RUNNING : 0;
}

function checkFlags(flags: ScanFlags, format: string): void {
  if (flags.json && flags.format !== undefined && flags.format !== 'json') {
    throw new UsageError(`--json and --format ${flags.format} ask for two formats; pick one.`);
  }
  if (flags.promFile !== undefined && format !== 'prom')
    throw new UsageError('--prom-file goes with --format prom.');
  if (!flags.daily) {
    if (flags.tz !== undefined) throw new UsageError('--tz goes with --daily: it decides which date is today.');
    if (flags.until !== undefined) throw new UsageError('--until goes with --daily.');
  }
  if (format === 'prom' && (flags.problems || flags.state !== undefined)) {
    throw new UsageError(
      '--problems and --state filter the table and JSON; the metrics always count every state.',
    );
  }
}

/** The zone that decides which date is today, and the last date --daily lists. */
function dailyWindow(flags: ScanFlags, io: CliIo, nowMs: number): { zone: string; until: string } {
  const zone = flags.tz !== undefined ? checkTimeZone(flags.tz) : defaultTimeZone(io.env);
  return { zone, until: resolveUntil(flags.until, dateInZone(nowMs, zone)) };
}

/**
 * One pipeline with an s3:// directory, through the store seam: the S3 part
 * (and the SDK) is loaded for it alone, its session closed after.
 */
async function scanOnS3(
  io: CliIo,
  settings: PipelineSettings,
  options: ScanOptions,
  at: { readonly nowMs: number; readonly timeoutMs: number },
): Promise<ScanResult> {
  const part = await loadS3Part(io);
  const opened = part.openRunStores(settings, { fs: io.fs, env: io.env, timeoutMs: at.timeoutMs, wallClock: io.now });
  try {
    const ctx = { fs: io.fs, processes: io.processes, nowMs: at.nowMs, wallClock: io.now };
    return await part.scanStorePipeline(ctx, settings, opened.stores, options);
  } finally {
    await opened.close();
  }
}

/** What a scan looks at: its clock, window, --daily dates, and the metrics file. */
interface ScanPlan {
  readonly nowMs: number;
  readonly sinceMs: number;
  readonly timeoutMs: number;
  readonly dates: readonly string[] | undefined;
}

/** The window back from now (--since, --now) and, with --daily, the dates that should have run. */
function scanWindow(flags: ScanFlags, io: CliIo): ScanPlan {
  const sinceMs = parseDuration(flags.since ?? DEFAULT_SINCE, '--since');
  if (sinceMs <= 0) {
    throw new UsageError(
      `--since ${flags.since ?? ''} is an empty window: no output could be listed.`,
      'Give a window longer than zero, such as 1d (orphans of any age are listed whatever the window).',
    );
  }
  const timeoutMs = s3TimeoutOf(flags.timeout);
  const fixedNow = flags.now === undefined ? undefined : resolveNow(flags.now, io);
  const nowMs = fixedNow ?? io.now();
  // The window's first day must be a date a run key can name.
  checkDateRange(nowMs - sinceMs, `--since ${flags.since ?? DEFAULT_SINCE} back from ${new Date(nowMs).toISOString()}`);
  // Only --daily needs a zone (--tz and --until go with it alone): no Intl set-up on other scans.
  const daily = flags.daily ? dailyWindow(flags, io, nowMs) : undefined;
  const dates = daily === undefined ? undefined : dailyDates(nowMs, sinceMs, daily.zone, daily.until);
  return { nowMs, sinceMs, timeoutMs, dates };
}

/**
 * --prom-file, pinned where it is checked (whatever a symlink on the way points
 * at by the end of the scan): never in an output directory, never over a file
 * crashdiag did not write.
 */
async function metricsTarget(flags: ScanFlags, io: CliIo, targets: readonly Target[]): Promise<string | undefined> {
  if (flags.promFile === undefined) return undefined;
  const promFile = await pinnedPath(io.fs, resolve(io.cwd, flags.promFile));
  const pipelines = targets.flatMap((target) => ('settings' in target ? [target.settings] : []));
  await refuseWriteIntoOutputDirectory(
    io.fs,
    promFile,
    pipelines,
    'metrics file',
    'Give --prom-file a path outside every output directory, such as the node exporter\'s textfile collector directory.',
  );
  await checkMetricsTarget(io.fs, promFile);
  return promFile;
}

/** Each pipeline in turn, local or S3; under --all one that cannot be scanned is a failure of its own. */
async function scanTargetsInTurn(
  flags: ScanFlags,
  io: CliIo,
  targets: readonly Target[],
  plan: ScanPlan,
): Promise<{ results: ScanResult[]; failures: ScanFailure[] }> {
  const { nowMs, sinceMs, timeoutMs, dates } = plan;
  const results: ScanResult[] = [];
  const failures: ScanFailure[] = [];
  const progress = progressLine(io, 'scan');
  try {
    for (const target of targets) {
      if (!('settings' in target)) {
        failures.push(target);
        continue;
      }
      const options: ScanOptions = {
        sinceMs,
        daily: flags.daily === true,
        ...(dates ? { dailyDates: dates } : {}),
        onEntries: progress.update,
      };
      const ctx = { fs: io.fs, processes: io.processes, nowMs, wallClock: io.now };
      try {
        results.push(
          hasS3Side(target.settings)
            ? await scanOnS3(io, target.settings, options, { nowMs, timeoutMs })
            : await scanPipeline(ctx, target.settings, options),
        );
      } catch (error) {
        // One pipeline alone: its error is the command's, as before.
        if (!flags.all) throw error;
        failures.push(failureOf(target.name, error));
      }
    }
  } finally {
    progress.done();
  }
  return { results, failures };
}

/** The table, JSON or metrics of what was scanned; the failures on stderr. */
async function writeScan(
  io: CliIo,
  format: string,
  scanned: { results: ScanResult[]; failures: ScanFailure[]; shown: ScanResult[] },
  at: { nowMs: number; promFile: string | undefined },
): Promise<void> {
  const { results, failures, shown } = scanned;
  if (format === 'prom') {
    const { renderPrometheus } = await import('../../render/prom.js');
    const text = renderPrometheus(results, at.nowMs, failures);
    if (at.promFile !== undefined) await writeAtomically(io, at.promFile, text);
    else io.stdout.write(text);
  } else if (format === 'json') {
    const { renderScanJson } = await import('../../render/scan-rows.js');
    io.stdout.write(renderScanJson(shown, failures));
  } else {
    const { renderScanHuman, chalkFor } = await import('../../render/human.js');
    io.stdout.write(renderScanHuman(shown, chalkFor(io.stdout, io.env), failures, terminalWidth(io)));
  }
  for (const failure of failures) {
    io.stderr.write(`crashdiag: pipeline ${failure.pipeline} was not scanned: ${failure.message}\n`);
  }
}

export async function scanCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as ScanFlags;
  const format = flags.json ? 'json' : (flags.format ?? 'table');
  checkFlags(flags, format);
  const wanted = stateFilter(flags);
  const plan = scanWindow(flags, io);
  const targets = await scanTargets(flags, io);
  // With --all, a fixed-name pipeline is still scanned; only its dates are not listed.
  const [only] = targets;
  if (flags.daily && !flags.all && only && 'settings' in only && !only.settings.final.keyed) {
    throw new UsageError(
      `--daily needs an output name that carries the run key; ${JSON.stringify(only.settings.final.source)} has no {date}.`,
      'A fixed-name output cannot say which dates ran: scan without --daily.',
    );
  }
  const promFile = await metricsTarget(flags, io, targets);
  const { results, failures } = await scanTargetsInTurn(flags, io, targets, plan);
  const shown = wanted
    ? results.map((r) => ({ ...r, runs: r.runs.filter((run) => wanted.has(run.state)) }))
    : results;
  await writeScan(io, format, { results, failures, shown }, { nowMs: plan.nowMs, promFile });
  return scanExitCode(shown.flatMap((r) => r.runs), failures.length);
}
