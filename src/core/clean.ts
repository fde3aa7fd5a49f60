import { join } from 'node:path';
import { type AuditLog, type AuditRecord, openAuditLog, precheckAuditLog } from './audit.js';
import {
  publishedReason,
  refuseLockInOutputDirectory,
  refuseWriteIntoOutputDirectory,
  rulesForStagingDirectory,
  type WriterRules,
} from './directory-rules.js';
import { errnoCode, UsageError } from './errors.js';
import type { FixContext } from './fix.js';
import { type FileSystem, fsyncDirectory } from './fs.js';
import { changeSince, type FileSnapshot, snapshotOf } from './guards.js';
import { acquireLock, type HeldLock, lockContextOf, lockPathFor } from './lock.js';
import { IO_CONCURRENCY, mapPool } from './pool.js';
import { memoizedProcessTable } from './process-table.js';
import { pinnedPath } from './same-directory.js';
import { checkDirectory, checkPid, kindOf, listAllStaging } from './probe.js';
import type { PipelineSettings } from './settings.js';
import type { StagingName } from './template.js';
import { judgeWriter, lastChangeMs } from './writer.js';

/** The janitor refuses shorter thresholds: an in-flight write can look idle for minutes. */
export const MIN_CLEAN_THRESHOLD_MS = 3_600_000;

/** What the janitor needs: the fixer's context without re-runs or progress lines. */
export type CleanContext = Omit<FixContext, 'runCommand' | 'progress' | 'identity'>;

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
  /** Files that were to go but could not be examined or removed (permission denied...): a person must look. */
  readonly failed: readonly { readonly path: string; readonly reason: string }[];
  readonly perRun: readonly CleanRunSummary[];
  readonly files: number;
  readonly bytes: number;
}

// Intents are written (and fsynced) per batch before its unlinks: one fsync
// per this many removals keeps the janitor near the speed of `find -delete`.
const AUDIT_BATCH = 256;

/** A file judged to go: as listed, and the real path it is removed by. */
interface Doomed extends CleanedFile {
  readonly run: string;
  readonly realPath: string;
  /** Its mtime (ISO-8601), for the record: the evidence's age once it is gone. */
  readonly mtime: string;
  /** The file as judged: right before the unlink it must still be this very file. */
  readonly snapshot: FileSnapshot;
}

type Verdict
  = | { readonly go: Doomed }
    | { readonly keep: string }
    | { readonly fail: string }
    | { readonly gone: true };

/**
 * The orphan janitor: removes dead-writer staging files older than a
 * threshold, for every run key, with the fixer's guards. The plan is the
 * listing (names checked against the template, all inside the staging
 * directory by construction). Batch by batch, each file then gets exactly one
 * lstat, and that look decides: a regular file, old enough, its writer dead
 * by the diagnose rules. Anything else is kept. The batch's intents are
 * recorded and fsynced, then its files removed, then their outcomes recorded.
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
  const judge = async (item: (typeof planned)[number]): Promise<Verdict> => {
    const published = here.publishedAs(item.name);
    if (published !== undefined)
      return { keep: published.runKey === undefined ? publishedReason(published) : 'a published output or marker' };
    // Node reads a byte that is not UTF-8 as U+FFFD: that string names no file, so it is kept and said.
    if (item.name.includes('\uFFFD'))
      return { keep: 'its name is not valid UTF-8 (shown with U+FFFD): never deleted; a person must look' };
    return judgeOne(ctx, settings, pinned.stagingDir, options, item, here.writerRulesFor(item.name));
  };

  const removed: CleanedFile[] = [];
  const kept: Array<{ path: string; reason: string }> = [];
  const failed: Array<{ path: string; reason: string }> = [];
  const sort = () => {
    for (const list of [removed, kept, failed]) list.sort((a, b) => (a.path < b.path ? -1 : 1));
  };
  const sortVerdicts = (items: typeof planned, verdicts: readonly Verdict[]) => {
    const doomed: Doomed[] = [];
    verdicts.forEach((verdict, index) => {
      const path = join(settings.stagingDir, items[index]?.name ?? '');
      if ('go' in verdict) doomed.push(verdict.go);
      else if ('keep' in verdict) kept.push({ path, reason: verdict.keep });
      else if ('fail' in verdict) failed.push({ path, reason: verdict.fail });
    });
    return doomed;
  };

  if (options.dryRun) {
    removed.push(...sortVerdicts(planned, await mapPool(planned, IO_CONCURRENCY, judge)).map(fileOf));
    sort();
    return reportOf(settings, options, removed, kept, failed);
  }

  // Before the lock and the state directory exist: a planted log is refused with the disk as it was.
  await precheckAuditLog(ctx.fs, options.auditLog);
  // One janitor per staging directory; fixers of single keys re-check every
  // file themselves, and ENOENT is success for both.
  const lock = await acquireLock(
    lockContextOf(ctx, settings),
    settings.stagingDir,
    '.clean',
    options.lockTimeoutMs,
  );
  const record = (run: string, fields: Partial<AuditRecord> & Pick<AuditRecord, 'op'>): AuditRecord => ({
    time: new Date(ctx.clock()).toISOString(),
    user: ctx.user,
    host: ctx.processes.hostname,
    pid: ctx.pid,
    pipeline: settings.pipeline ?? null,
    run,
    ...fields,
  });
  const why = `janitor: older than ${Math.round(options.olderThanMs / 1000)}s`;
  let log: AuditLog | undefined;
  let outcomes: AuditRecord[] = [];
  try {
    log = await openAuditLog(ctx.fs, options.auditLog);
    for (let start = 0; start < planned.length; start += AUDIT_BATCH) {
      const batch = planned.slice(start, start + AUDIT_BATCH);
      const doomed = sortVerdicts(batch, await mapPool(batch, IO_CONCURRENCY, judge));
      if (doomed.length === 0) continue;
      const file = (f: Doomed) => ({ path: f.path, bytes: f.bytes, mtime: f.mtime, writerPid: f.pid });
      // Write-ahead: the last batch's outcomes and this batch's intents, one write, one fsync, then the unlinks.
      try {
        await log.append([
          ...outcomes,
          ...doomed.map((f) => record(f.run, { op: 'intent', intent: 'delete', ...file(f), reason: why })),
        ]);
      } catch (error) {
        // A full disk, say: what cannot be recorded is not removed, and the janitor stops here.
        const code = errnoCode(error);
        if (!code) throw error;
        const reason = `not removed: the audit log could not be written (${code}); the janitor stopped here`;
        for (const f of doomed) failed.push({ path: f.path, reason });
        // The last batch's outcomes went with that write: its intents stand alone, as after a crash.
        outcomes = [];
        break;
      }
      outcomes = [];
      const results = await mapPool(doomed, IO_CONCURRENCY, (f) => removeOne(ctx.fs, f));
      results.forEach((result, index) => {
        const f = doomed[index];
        if (!f) return;
        if (result === 'deleted') {
          removed.push(fileOf(f));
          outcomes.push(record(f.run, { op: 'delete', ...file(f), reason: why }));
        } else if (result === 'gone') {
          outcomes.push(record(f.run, { op: 'gone', path: f.path, reason: 'already removed by someone else' }));
        } else if ('kept' in result) {
          kept.push({ path: f.path, reason: result.kept });
          outcomes.push(record(f.run, { op: 'skip', ...file(f), reason: result.kept }));
        } else {
          failed.push({ path: f.path, reason: result.failed });
          outcomes.push(record(f.run, { op: 'fail', ...file(f), reason: result.failed }));
        }
      });
    }
  } finally {
    await finish(ctx.fs, settings.stagingDir, removed.length > 0, log, outcomes, lock);
  }
  sort();
  return reportOf(settings, options, removed, kept, failed);
}

/**
 * Makes what was done durable and recorded, also when the run stopped midway:
 * the removals (fsync of the staging directory), then their outcomes; then
 * lets go of the log and the lock. Each step is tried whatever the others did.
 */
async function finish(
  fs: FileSystem,
  stagingDir: string,
  removedAny: boolean,
  log: AuditLog | undefined,
  outcomes: readonly AuditRecord[],
  lock: HeldLock,
): Promise<void> {
  const steps = [
    async () => {
      if (removedAny) await fsyncDirectory(fs, stagingDir);
    },
    async () => log?.append(outcomes),
    async () => log?.close(),
    () => lock.release(),
  ];
  let first: unknown;
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== undefined) throw first;
}

function fileOf(f: CleanedFile): CleanedFile {
  return { path: f.path, bytes: f.bytes, pid: f.pid, ageSeconds: f.ageSeconds };
}

function reportOf(
  settings: PipelineSettings,
  options: CleanOptions,
  removed: readonly CleanedFile[],
  kept: CleanReport['kept'],
  failed: CleanReport['failed'],
): CleanReport {
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
    failed,
    perRun: [...perRun].sort(([a], [b]) => (a < b ? -1 : 1)).map(([run, sum]) => ({ run, ...sum })),
    files: removed.length,
    bytes: removed.reduce((n, f) => n + f.bytes, 0),
  };
}

/** The one look at a file: whether it goes. */
async function judgeOne(
  ctx: CleanContext,
  settings: PipelineSettings,
  realStaging: string,
  options: CleanOptions,
  { name, match }: { readonly name: string; readonly match: StagingName },
  rules: WriterRules,
): Promise<Verdict> {
  const path = join(settings.stagingDir, name);
  const realPath = join(realStaging, name);
  let stats: Awaited<ReturnType<FileSystem['lstat']>>;
  try {
    stats = await ctx.fs.lstat(realPath);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { gone: true };
    return { fail: `cannot be examined (${errnoCode(error) ?? String(error)})` };
  }
  const kind = kindOf(stats);
  if (kind !== 'file') return { keep: `a ${kind}, not a regular file: left for a person` };
  const nowMs = ctx.clock();
  const times = { mtimeMs: Number(stats.mtimeMs), ctimeMs: Number(stats.ctimeMs) };
  // Aged by its last change, not its mtime alone: an mtime can be set into the past.
  const ageMs = nowMs - (lastChangeMs(times) ?? nowMs);
  if (ageMs < options.olderThanMs) return { keep: 'younger than the threshold' };
  const judgement = judgeWriter(
    { pid: match.pid, ...times, pidCheck: checkPid(match, rules, ctx.processes) },
    { ...settings, staleAfterMs: rules.staleAfterMs },
    nowMs,
  );
  if (judgement.writer !== 'dead') return { keep: `writer ${judgement.writer}: ${judgement.reason}` };
  return {
    go: {
      path,
      bytes: Number(stats.size),
      pid: match.pid,
      ageSeconds: Math.round(ageMs / 1000),
      run: match.runKey,
      realPath,
      mtime: new Date(times.mtimeMs).toISOString(),
      snapshot: snapshotOf(stats),
    },
  };
}

/**
 * Removes a judged file if it is still the very file judged: between that
 * look and now its intent was made durable, and a writer may have opened the
 * name again (a container's next attempt reuses its PID, so its name).
 * ENOENT is success (another janitor or fixer got there first); another
 * errno is the file's failure, not the run's.
 */
async function removeOne(fs: FileSystem, f: Doomed): Promise<'deleted' | 'gone' | { kept: string } | { failed: string }> {
  try {
    const changed = changeSince(f.snapshot, snapshotOf(await fs.lstat(f.realPath)));
    if (changed !== undefined) return { kept: changed };
    await fs.unlink(f.realPath);
    return 'deleted';
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return 'gone';
    if (!code) throw error;
    const denied = code === 'EACCES' || code === 'EPERM';
    return {
      failed: denied
        ? `could not be removed (${code}): the staging directory is not writable for this user, or it is sticky and the file belongs to another user`
        : `could not be removed (${code})`,
    };
  }
}
