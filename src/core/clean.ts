import { join } from 'node:path';
import { type AuditRecord, appendAudit, checkAuditLog } from './audit.js';
import {
  publishedReason,
  refuseLockInOutputDirectory,
  refuseWriteIntoOutputDirectory,
  rulesForStagingDirectory,
  type WriterRules,
} from './directory-rules.js';
import { errnoCode, UsageError } from './errors.js';
import type { FixContext } from './fix.js';
import type { FileSystem } from './fs.js';
import { acquireLock, lockContextOf, lockPathFor } from './lock.js';
import { IO_CONCURRENCY, mapPool } from './pool.js';
import { memoizedProcessTable } from './process-table.js';
import { pinnedPath } from './same-directory.js';
import { checkDirectory, checkPid, kindOf, listAllStaging } from './probe.js';
import type { PipelineSettings } from './settings.js';
import type { StagingName } from './template.js';
import { judgeWriter } from './writer.js';

/** The janitor refuses shorter thresholds: an in-flight write can look idle for minutes. */
export const MIN_CLEAN_THRESHOLD_MS = 3_600_000;

/** What the janitor needs: the fixer's context without re-runs or progress lines. */
export type CleanContext = Omit<FixContext, 'runCommand' | 'progress'>;

export interface CleanOptions {
  readonly olderThanMs: number;
  readonly dryRun: boolean;
  readonly auditLog: string;
  readonly lockTimeoutMs: number;
}

export interface CleanedFile {
  readonly path: string;
  readonly bytes: number;
  readonly pid: number;
  readonly ageSeconds: number;
}

export interface CleanRunSummary {
  readonly run: string;
  readonly files: number;
  readonly bytes: number;
}

export interface CleanReport {
  readonly pipeline: string | null;
  readonly stagingDir: string;
  readonly dryRun: boolean;
  readonly olderThanSeconds: number;
  /** Removed, or with --dry-run what would be. Sorted by path. */
  readonly removed: readonly CleanedFile[];
  /** Files skipped at the last look, and why (too young, live writer, not a regular file...). */
  readonly kept: readonly { readonly path: string; readonly reason: string }[];
  readonly perRun: readonly CleanRunSummary[];
  readonly files: number;
  readonly bytes: number;
}

const AUDIT_BATCH = 256;

/**
 * The orphan janitor: removes dead-writer staging files older than a
 * threshold, for every run key, with the fixer's guards. The plan is the
 * listing (names checked against the template, all inside the staging
 * directory by construction); each file then gets exactly one lstat, right
 * before its unlink, and that look decides: a regular file, old enough, its
 * writer dead by the diagnose rules. Anything else is kept.
 */
export async function cleanPipeline(
  ctx: CleanContext,
  settings: PipelineSettings,
  options: CleanOptions,
): Promise<CleanReport> {
  if (options.olderThanMs < 0) throw new UsageError('--older-than must not be negative.');
  // A dead PID stays dead and a live one is kept either way: one question per PID is enough.
  ctx = { ...ctx, processes: memoizedProcessTable(ctx.processes) };
  await checkDirectory(ctx.fs, settings.stagingDir, 'staging directory');
  // Read below to keep published names out of a shared directory: a missing
  // one is a layout mistake to report, as scan and diagnose do, not a crash.
  await checkDirectory(ctx.fs, settings.outDir, 'output directory');
  // Appended to where it is checked, whatever a symlink on the way points at later.
  options = { ...options, auditLog: await pinnedPath(ctx.fs, options.auditLog) };
  await refuseWriteIntoOutputDirectory(ctx.fs, options.auditLog, [settings], 'audit log');
  await refuseLockInOutputDirectory(ctx.fs, lockPathFor(settings.stagingDir, '.clean'), settings);
  // Every listing, look and removal goes through the staging directory's real
  // path, resolved once: a symlink on the way swung elsewhere mid-run (a
  // deploy) must not turn a listed name into a file of another directory.
  const pinned = { ...settings, stagingDir: await ctx.fs.realpath(settings.stagingDir) };
  const planned = await listAllStaging(ctx.fs, pinned);
  planned.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Where staging is also an output directory (this pipeline's or another's),
  // published names are never candidates; a name another pipeline stages is
  // judged by the most cautious of their rules.
  const here = await rulesForStagingDirectory(ctx.fs, pinned);

  // One janitor per staging directory; fixers of single keys re-check every
  // file themselves, and ENOENT is success for both.
  const lock = options.dryRun
    ? undefined
    : await acquireLock(
        lockContextOf(ctx, settings),
        settings.stagingDir,
        '.clean',
        options.lockTimeoutMs,
      );
  const removed: CleanedFile[] = [];
  const kept: Array<{ path: string; reason: string }> = [];
  let pendingAudit: AuditRecord[] = [];
  const flushAudit = async () => {
    const batch = pendingAudit;
    pendingAudit = [];
    await appendAudit(ctx.fs, options.auditLog, batch);
  };
  try {
    // As --fix does: a log that cannot take the records stops clean before its first removal.
    if (lock && planned.length > 0) await checkAuditLog(ctx.fs, options.auditLog);
    await mapPool(planned, IO_CONCURRENCY, async (item) => {
      const published = here.publishedAs(item.name);
      if (published !== undefined) {
        const reason = published.runKey === undefined ? publishedReason(published) : 'a published output or marker';
        kept.push({ path: join(settings.stagingDir, item.name), reason });
        return;
      }
      const outcome = await cleanOne(ctx, settings, pinned.stagingDir, options, item, here.writerRulesFor(item.name));
      if ('reason' in outcome) {
        if (outcome.reason !== 'gone') kept.push(outcome);
        return;
      }
      removed.push(outcome);
      if (!options.dryRun) {
        pendingAudit.push({
          time: new Date(ctx.clock()).toISOString(),
          user: ctx.user,
          host: ctx.processes.hostname,
          pid: process.pid,
          pipeline: settings.pipeline ?? null,
          run: item.match.runKey,
          op: 'delete',
          path: outcome.path,
          bytes: outcome.bytes,
          writerPid: outcome.pid,
          reason: `janitor: older than ${Math.round(options.olderThanMs / 1000)}s`,
        });
        if (pendingAudit.length >= AUDIT_BATCH) await flushAudit();
      }
    });
    if (removed.length > 0 && !options.dryRun) {
      const dir = await ctx.fs.open(pinned.stagingDir, 'r');
      await dir.sync().finally(() => dir.close());
    }
  } finally {
    await flushAudit();
    await lock?.release();
  }

  removed.sort((a, b) => (a.path < b.path ? -1 : 1));
  kept.sort((a, b) => (a.path < b.path ? -1 : 1));
  const perRun = new Map<string, { files: number; bytes: number }>();
  for (const file of removed) {
    const key = settings.staging.matchAny(file.path.slice(settings.stagingDir.length + 1))?.runKey ?? '?';
    const sum = perRun.get(key) ?? { files: 0, bytes: 0 };
    sum.files++;
    sum.bytes += file.bytes;
    perRun.set(key, sum);
  }
  return {
    pipeline: settings.pipeline ?? null,
    stagingDir: settings.stagingDir,
    dryRun: options.dryRun,
    olderThanSeconds: Math.round(options.olderThanMs / 1000),
    removed,
    kept,
    perRun: [...perRun].sort(([a], [b]) => (a < b ? -1 : 1)).map(([run, sum]) => ({ run, ...sum })),
    files: removed.length,
    bytes: removed.reduce((n, f) => n + f.bytes, 0),
  };
}

async function cleanOne(
  ctx: CleanContext,
  settings: PipelineSettings,
  realStaging: string,
  options: CleanOptions,
  { name, match }: { name: string; match: StagingName },
  rules: WriterRules,
): Promise<CleanedFile | { path: string; reason: string }> {
  const path = join(settings.stagingDir, name);
  const realPath = join(realStaging, name);
  let stats: Awaited<ReturnType<FileSystem['lstat']>>;
  try {
    stats = await ctx.fs.lstat(realPath);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { path, reason: 'gone' };
    return { path, reason: `cannot be examined (${errnoCode(error) ?? error})` };
  }
  const kind = kindOf(stats);
  if (kind !== 'file') return { path, reason: `a ${kind}, not a regular file: left for a person` };
  const nowMs = ctx.now();
  const mtimeMs = Number(stats.mtimeMs);
  const ageMs = nowMs - mtimeMs;
  if (ageMs < options.olderThanMs) return { path, reason: 'younger than the threshold' };
  const judgement = judgeWriter(
    { pid: match.pid, mtimeMs, pidCheck: checkPid(match, rules, ctx.processes) },
    { ...settings, staleAfterMs: rules.staleAfterMs },
    nowMs,
  );
  if (judgement.writer !== 'dead') return { path, reason: `writer ${judgement.writer}: ${judgement.reason}` };
  const file = { path, bytes: Number(stats.size), pid: match.pid, ageSeconds: Math.round(ageMs / 1000) };
  if (options.dryRun) return file;
  try {
    await ctx.fs.unlink(realPath);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { path, reason: 'gone' };
    throw error;
  }
  return file;
}
