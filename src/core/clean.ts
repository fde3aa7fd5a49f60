import type { Stats } from 'node:fs';
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
  /**
   * Each file removed (or with --dry-run, that would be), as it goes: the
   * report then keeps only totals, so memory stays flat whatever the number
   * of orphans. Without it, `removed` lists every one.
   */
  readonly onRemoved?: (file: CleanedFile) => void;
  /** Told how many staging-directory entries were looked at so far, for a progress line. */
  readonly onEntries?: (entriesSeen: number) => void;
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
  /** Removed, or with --dry-run what would be, in the order removed; empty when they went to `onRemoved`. */
  readonly removed: readonly CleanedFile[];
  /** The first REPORT_SAMPLE files kept at the last look, and why (too young, live writer, not a regular file...). */
  readonly kept: readonly { readonly path: string; readonly reason: string }[];
  /** Every file kept, also those beyond the sample. */
  readonly keptCount: number;
  /** Of those, the ones kept only for being younger than the threshold. */
  readonly keptYounger: number;
  /**
   * The first REPORT_SAMPLE files that were to go but could not be examined
   * or removed (permission denied...): a person must look.
   */
  readonly failed: readonly { readonly path: string; readonly reason: string }[];
  /** Every such file: each one's `fail` outcome is in the audit log. */
  readonly failedCount: number;
  readonly perRun: readonly CleanRunSummary[];
  readonly files: number;
  readonly bytes: number;
}

/** Kept and failed files listed in the report; beyond it they are counted (and failures audited). */
export const REPORT_SAMPLE = 1000;

export const YOUNGER = 'younger than the threshold';

// Intents are written (and fsynced) per batch before its unlinks. Each fsync
// also commits the file system's journal, the batch's unlinks with it (10-30
// ms on the bench's disk): with batches of 256 the fsyncs were most of the
// janitor's wall time over 100,000 orphans. Larger batches cost memory (8,192
// peaked near 200 MiB), so 1,024. A janitor killed midway leaves at most one
// batch of intents without outcomes, never a removal unrecorded.
export const AUDIT_BATCH = 1024;

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
  // Where staging is also an output directory (this pipeline's or another's),
  // published names are never candidates; a name another pipeline stages is
  // judged by the most cautious of their rules.
  const here = await rulesForStagingDirectory(ctx.fs, pinned);
  type Planned = { readonly name: string; readonly match: StagingName };
  // Paths by concatenation, not path.join per file: the names come from the listing and hold no slash.
  const base = join(settings.stagingDir, '/');
  const realBase = join(pinned.stagingDir, '/');
  const judge = (item: Planned, stats: LookedAt): Verdict => {
    const published = here.publishedAs(item.name);
    if (published !== undefined)
      return { keep: published.runKey === undefined ? publishedReason(published) : 'a published output or marker' };
    // Node reads a byte that is not UTF-8 as U+FFFD: that string names no file, so it is kept and said.
    if (item.name.includes('\uFFFD'))
      return { keep: 'its name is not valid UTF-8 (shown with U+FFFD): never deleted; a person must look' };
    const at = { path: base + item.name, realPath: realBase + item.name };
    return judgeOne(ctx, settings, at, options, item.match, here.writerRulesFor(item.name), stats);
  };
  // Every file of a batch gets its one lstat here, synchronously where the
  // file system allows: no promise per file, and one batch is milliseconds,
  // so the lock's heartbeat still runs between batches.
  const judgeBatch = async (batch: readonly Planned[]): Promise<Verdict[]> => {
    const look = ctx.fs.lstatSync;
    if (look) return batch.map((item) => judge(item, lookSync(look, realBase + item.name)));
    return mapPool(batch, IO_CONCURRENCY, async (item) =>
      judge(item, await lookAt(ctx.fs, realBase + item.name)));
  };

  const tally = new Tally(settings, options.onRemoved);
  const sortVerdicts = (items: readonly Planned[], verdicts: readonly Verdict[]) => {
    const doomed: Doomed[] = [];
    verdicts.forEach((verdict, index) => {
      const path = base + (items[index]?.name ?? '');
      if ('go' in verdict) doomed.push(verdict.go);
      else if ('keep' in verdict) tally.keep(path, verdict.keep);
      else if ('fail' in verdict) tally.fail(path, verdict.fail);
    });
    return doomed;
  };
  // Each batch in name order: a small directory's report and audit lines read sorted.
  const list = (onBatch: (batch: Planned[]) => Promise<void | 'stop'>) =>
    listAllStaging(ctx.fs, pinned, (batch) => onBatch(batch.sort((a, b) => (a.name < b.name ? -1 : 1))), {
      onEntries: options.onEntries,
      batchSize: AUDIT_BATCH,
    });

  if (options.dryRun) {
    await list(async (batch) => {
      for (const f of sortVerdicts(batch, await judgeBatch(batch))) tally.remove(f);
    });
    return tally.report(options);
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
  // One time per batch of records, written together: a clock read and a date per record was a tenth of the run.
  let recordedAt = '';
  const stamp = () => {
    recordedAt = new Date(ctx.clock()).toISOString();
  };
  const record = (run: string, fields: Partial<AuditRecord> & Pick<AuditRecord, 'op'>): AuditRecord => ({
    time: recordedAt,
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
  const { unlinkSync, lstatSync } = ctx.fs;
  const removeAll = async (doomed: readonly Doomed[]) =>
    unlinkSync && lstatSync
      ? doomed.map((f) => removeOneSync(lstatSync, unlinkSync, f))
      : mapPool(doomed, IO_CONCURRENCY, (f) => removeOne(ctx.fs, f));
  try {
    log = await openAuditLog(ctx.fs, options.auditLog);
    const opened = log;
    // The listing is read while files go: an entry unlinked meanwhile is
    // either not listed or found gone at its lstat, and never listed twice.
    await list(async (batch) => {
      const doomed = sortVerdicts(batch, await judgeBatch(batch));
      if (doomed.length === 0) return;
      const file = (f: Doomed) => ({ path: f.path, bytes: f.bytes, mtime: f.mtime, writerPid: f.pid });
      stamp();
      // Write-ahead: the last batch's outcomes and this batch's intents, one write, one fsync, then the unlinks.
      try {
        await opened.append([
          ...outcomes,
          ...doomed.map((f) => record(f.run, { op: 'intent', intent: 'delete', ...file(f), reason: why })),
        ]);
      } catch (error) {
        // A full disk, say: what cannot be recorded is not removed, and the janitor stops here.
        const code = errnoCode(error);
        if (!code) throw error;
        const reason = `not removed: the audit log could not be written (${code}); the janitor stopped here`;
        for (const f of doomed) tally.fail(f.path, reason);
        // The last batch's outcomes went with that write: its intents stand alone, as after a crash.
        outcomes = [];
        return 'stop';
      }
      outcomes = [];
      const results = await removeAll(doomed);
      stamp();
      results.forEach((result, index) => {
        const f = doomed[index];
        if (!f) return;
        if (result === 'deleted') {
          tally.remove(f);
          outcomes.push(record(f.run, { op: 'delete', ...file(f), reason: why }));
        } else if (result === 'gone') {
          outcomes.push(record(f.run, { op: 'gone', path: f.path, reason: 'already removed by someone else' }));
        } else if ('kept' in result) {
          tally.keep(f.path, result.kept);
          outcomes.push(record(f.run, { op: 'skip', ...file(f), reason: result.kept }));
        } else {
          tally.fail(f.path, result.failed);
          outcomes.push(record(f.run, { op: 'fail', ...file(f), reason: result.failed }));
        }
      });
      return undefined;
    });
  } finally {
    await finish(ctx.fs, pinned.stagingDir, tally.files > 0, log, outcomes, lock);
  }
  return tally.report(options);
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
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a step threw, rethrown as it was
  if (first !== undefined) throw first;
}

/** What the janitor did, as totals per run and bounded samples: flat memory whatever the number of files. */
class Tally {
  readonly #settings: PipelineSettings;
  readonly #onRemoved: ((file: CleanedFile) => void) | undefined;
  readonly removed: CleanedFile[] = [];
  readonly kept: Array<{ path: string; reason: string }> = [];
  readonly failed: Array<{ path: string; reason: string }> = [];
  readonly perRun = new Map<string, { files: number; bytes: number }>();
  keptCount = 0;
  keptYounger = 0;
  failedCount = 0;
  files = 0;
  bytes = 0;

  constructor(settings: PipelineSettings, onRemoved: ((file: CleanedFile) => void) | undefined) {
    this.#settings = settings;
    this.#onRemoved = onRemoved;
  }

  remove(f: Doomed): void {
    const file = fileOf(f);
    if (this.#onRemoved) this.#onRemoved(file);
    else this.removed.push(file);
    this.files++;
    this.bytes += f.bytes;
    const sum = this.perRun.get(f.run) ?? { files: 0, bytes: 0 };
    sum.files++;
    sum.bytes += f.bytes;
    this.perRun.set(f.run, sum);
  }

  keep(path: string, reason: string): void {
    this.keptCount++;
    if (reason === YOUNGER) this.keptYounger++;
    if (this.kept.length < REPORT_SAMPLE) this.kept.push({ path, reason });
  }

  fail(path: string, reason: string): void {
    this.failedCount++;
    if (this.failed.length < REPORT_SAMPLE) this.failed.push({ path, reason });
  }

  report(options: CleanOptions): CleanReport {
    return {
      pipeline: this.#settings.pipeline ?? null,
      stagingDir: this.#settings.stagingDir,
      dryRun: options.dryRun,
      olderThanSeconds: Math.round(options.olderThanMs / 1000),
      removed: this.removed,
      kept: this.kept,
      keptCount: this.keptCount,
      keptYounger: this.keptYounger,
      failed: this.failed,
      failedCount: this.failedCount,
      perRun: [...this.perRun].sort(([a], [b]) => (a < b ? -1 : 1)).map(([run, sum]) => ({ run, ...sum })),
      files: this.files,
      bytes: this.bytes,
    };
  }
}

function fileOf(f: CleanedFile): CleanedFile {
  return { path: f.path, bytes: f.bytes, pid: f.pid, ageSeconds: f.ageSeconds };
}

/** What the one lstat of a candidate said: its stats, or why there are none. */
type LookedAt = { readonly stats: StatsOf } | { readonly error: unknown };
type StatsOf = Stats;

function lookSync(lstat: NonNullable<FileSystem['lstatSync']>, path: string): LookedAt {
  try {
    return { stats: lstat(path) };
  } catch (error) {
    return { error };
  }
}

async function lookAt(fs: FileSystem, path: string): Promise<LookedAt> {
  try {
    return { stats: await fs.lstat(path) };
  } catch (error) {
    return { error };
  }
}

/** The one look at a file: whether it goes. */
function judgeOne(
  ctx: CleanContext,
  settings: PipelineSettings,
  { path, realPath }: { readonly path: string; readonly realPath: string },
  options: CleanOptions,
  match: StagingName,
  rules: WriterRules,
  looked: LookedAt,
): Verdict {
  if ('error' in looked) {
    const { error } = looked;
    if (errnoCode(error) === 'ENOENT') return { gone: true };
    return { fail: `cannot be examined (${errnoCode(error) ?? String(error)})` };
  }
  const { stats } = looked;
  const kind = kindOf(stats);
  if (kind !== 'file') return { keep: `a ${kind}, not a regular file: left for a person` };
  const nowMs = ctx.clock();
  const times = { mtimeMs: Number(stats.mtimeMs), ctimeMs: Number(stats.ctimeMs) };
  // Aged by its last change, not its mtime alone: an mtime can be set into the past.
  const ageMs = nowMs - (lastChangeMs(times) ?? nowMs);
  if (ageMs < options.olderThanMs) return { keep: YOUNGER };
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
    return unlinkFailure(error);
  }
}

function unlinkFailure(error: unknown): 'gone' | { failed: string } {
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

/** The same, without a promise, where the file system offers a synchronous unlink. */
/** removeOne without a promise per file, where the file system offers synchronous calls. */
function removeOneSync(
  lstat: NonNullable<FileSystem['lstatSync']>,
  unlink: NonNullable<FileSystem['unlinkSync']>,
  f: Doomed,
): 'deleted' | 'gone' | { kept: string } | { failed: string } {
  try {
    // Looked at again right before its unlink: it must be the very file judged.
    const changed = changeSince(f.snapshot, snapshotOf(lstat(f.realPath)));
    if (changed !== undefined) return { kept: changed };
    unlink(f.realPath);
    return 'deleted';
  } catch (error) {
    return unlinkFailure(error);
  }
}
