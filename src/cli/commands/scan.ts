import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { refuseWriteIntoOutputDirectory } from '../../core/directory-rules.js';
import { pinnedPath } from '../../core/same-directory.js';
import { parseDuration } from '../../core/duration.js';
import { errnoCode, UsageError } from '../../core/errors.js';
import type { FileSystem } from '../../core/fs.js';
import { type ScanResult, scanPipeline } from '../../core/scan.js';
import type { CliIo } from '../io.js';
import { resolveNow } from '../pipeline-options.js';
import { progressLine } from '../progress.js';
import { type MultiPipelineFlags, selectPipelines } from './pipelines.js';

interface ScanFlags extends MultiPipelineFlags {
  since?: string;
  daily?: boolean;
  json?: boolean;
  format?: string;
  promFile?: string;
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
async function writeAtomically(fs: FileSystem, path: string, text: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
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

export async function scanCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as ScanFlags;
  const format = flags.json ? 'json' : (flags.format ?? 'table');
  if (flags.json && flags.format !== undefined && flags.format !== 'json') {
    throw new UsageError(`--json and --format ${flags.format} ask for two formats; pick one.`);
  }
  if (flags.promFile !== undefined && format !== 'prom')
    throw new UsageError('--prom-file goes with --format prom.');
  const sinceMs = parseDuration(flags.since ?? '7d', '--since');
  const fixedNow = flags.now === undefined ? undefined : resolveNow(flags.now, io);
  const pipelines = await selectPipelines(flags, io);
  // With --all, a fixed-name pipeline is still scanned; only its dates are not listed.
  const [only] = pipelines;
  if (flags.daily && !flags.all && only && !only.final.keyed) {
    throw new UsageError(
      `--daily needs an output name that carries the run key; ${JSON.stringify(only.final.source)} has no {date}.`,
      'A fixed-name output cannot say which dates ran: scan without --daily.',
    );
  }
  // Written where it is checked, whatever a symlink on the way points at by the end of the scan.
  const promFile = flags.promFile === undefined ? undefined : await pinnedPath(io.fs, resolve(io.cwd, flags.promFile));
  if (promFile !== undefined) {
    await refuseWriteIntoOutputDirectory(io.fs, promFile, pipelines, 'metrics file');
    await checkMetricsTarget(io.fs, promFile);
  }
  const nowMs = fixedNow ?? io.now();
  const results: ScanResult[] = [];
  const progress = progressLine(io, 'scan');
  try {
    for (const settings of pipelines) {
      results.push(
        await scanPipeline({ fs: io.fs, processes: io.processes, nowMs, clock: io.now }, settings, {
          sinceMs,
          daily: flags.daily === true,
          onEntries: progress.update,
        }),
      );
    }
  } finally {
    progress.done();
  }
  const exitCode = Math.max(0, ...results.flatMap((r) => r.runs.map((run) => run.exitCode)));
  if (format === 'prom') {
    const { renderPrometheus } = await import('../../render/prom.js');
    const text = renderPrometheus(results, nowMs);
    if (promFile !== undefined) await writeAtomically(io.fs, promFile, text);
    else io.stdout.write(text);
  } else if (format === 'json') {
    const { renderScanJson } = await import('../../render/scan-rows.js');
    io.stdout.write(renderScanJson(results));
  } else {
    const { renderScanHuman, chalkFor } = await import('../../render/human.js');
    io.stdout.write(renderScanHuman(results, chalkFor(io.stdout, io.env)));
  }
  return exitCode;
}
