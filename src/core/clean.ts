import type { Stats } from 'node:fs';
import { join } from 'node:path';
import {
  type AuditLog, AuditLines, fileFieldsText, headText, isoTime, openAuditLog, precheckAuditLog,
} from './audit.js';
import {
  publishedReason,
  refuseLockInOutputDirectory,
  refuseWriteIntoOutputDirectory,
  rulesForStagingDirectory,
  type StagingDirectoryRules,
} from './directory-rules.js';
import { errnoCode, UsageError } from './errors.js';
import type { FixContext } from './fix.js';
import { type FileSystem, fsyncDirectory } from './fs.js';
import { changeSince, type FileSnapshot, snapshotOf, unrecordableTime } from './guards.js';
import { acquireLock, type HeldLock, lockContextOf, lockPathFor } from './lock.js';
import { IO_CONCURRENCY, mapPool } from './pool.js';
import { memoizedProcessTable } from './process-table.js';
import { isS3Url } from './s3-url.js';
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
// janitor's wall time over 100,000 orphans. Larger batches cost memory and
// no longer save time now that each fsync runs under the janitor's own work
// (peak RSS 130 MiB at 4,096, 115 at 2,048, 102 at 1,024, the same CPU time,
// measured side by side), so 1,024. A janitor killed midway leaves at most
// two batches of intents without outcomes (the one being removed, the one
// written ahead), never a removal unrecorded.
export const AUDIT_BATCH = 1024;

/** How many files of the batch before go while a batch's intents are written (about a millisecond's work). */
const WRITE_HEAD_START = 128;

/**
 * A batch's files judged to go, column by column: file i is index i of each.
 * A batch stays in memory through its intents' fsync and its removal, up to
 * three at a time: objects per file (a snapshot, a report, the doubles boxed
 * in them) held that long outlive the young generation's collections and are
 * copied and promoted. A plain array of numbers holds them unboxed. (With the
 * audit lines encoded as they are made, AuditLines: 40 MB promoted over
 * 100,000 orphans before, 13 MB after; peak RSS 114 -> 94-100 MiB.)
 */
class Doomed {
  /** As listed: the report's path is the staging directory as given plus this, the unlink's its real path plus this. */
  readonly names: string[] = [];
  readonly runs: string[] = [];
  readonly pids: number[] = [];
  readonly ageSeconds: number[] = [];
  /** Its fields for its records (path, bytes, its mtime: the evidence's age once it is gone), serialised once. */
  readonly fields: string[] = [];
  /** The file as judged, SNAPSHOT_FIELDS numbers each: right before the unlink it must still be this very file. */
  readonly #snapshots: number[] = [];

  get length(): number {
    return this.names.length;
  }

  add(name: string, match: StagingName, snapshot: FileSnapshot, ageMs: number, fields: string): void {
    this.names.push(name);
    this.runs.push(match.runKey);
    this.pids.push(match.pid);
    this.ageSeconds.push(Math.round(ageMs / 1000));
    this.fields.push(fields);
    this.#snapshots.push(snapshot.dev, snapshot.ino, snapshot.bytes, snapshot.mtimeMs, snapshot.ctimeMs);
  }

  /** File i as it was judged. */
  snapshot(i: number): FileSnapshot {
    const at = i * SNAPSHOT_FIELDS;
    const facts = this.#snapshots;
    return {
      dev: facts[at] as number,
      ino: facts[at + 1] as number,
      bytes: facts[at + 2] as number,
      mtimeMs: facts[at + 3] as number,
      ctimeMs: facts[at + 4] as number,
    };
  }

  /** File i for the report: its path under the staging directory as given. */
  cleaned(i: number, base: string): CleanedFile {
    return {
      path: base + (this.names[i] as string),
      bytes: this.#snapshots[i * SNAPSHOT_FIELDS + 2] as number,
      pid: this.pids[i] as number,
      ageSeconds: this.ageSeconds[i] as number,
    };
  }
}

/** dev, ino, bytes, mtimeMs, ctimeMs: a FileSnapshot's fields, in Doomed's order. */
const SNAPSHOT_FIELDS = 5;

type RemovalResult = 'deleted' | 'gone' | { kept: string } | { failed: string };

/** How a file was judged: to go (then it is in the batch's Doomed), or why not. */
type Verdict = 'go' | 'gone' | { readonly keep: string } | { readonly fail: string };

/**
 * The orphan janitor: removes dead-writer staging files older than a
 * threshold, for every run key, with the fixer's guards. The plan is the
 * listing (names checked against the template, all inside the staging
 * directory by construction). Batch by batch, each file gets one lstat, and
 * that look decides: a regular file, old enough, its writer dead by the
 * diagnose rules. Anything else is kept. The batch's intents are recorded and
 * fsynced, then each file is looked at once more and removed if it is still
 * the very file judged, then the outcomes are recorded.
 */
export async function cleanPipeline(
  ctx: CleanContext,
  settings: PipelineSettings,
  options: CleanOptions,
): Promise<CleanReport> {
  if (options.olderThanMs < 0) throw new UsageError('--older-than must not be negative.');
  const janitor = await prepareJanitor(ctx, settings, options);
  if (options.dryRun) {
    await listCandidates(janitor, async (batch) => {
      const doomed = await lookAndJudge(janitor, batch);
      const { tally, base } = janitor;
      for (let i = 0; i < doomed.length; i++) tally.removeFile(doomed.cleaned(i, base), doomed.runs[i] as string);
    });
    return janitor.tally.report(janitor.options);
  }
  // Before the lock and the state directory exist: a planted log is refused with the disk as it was.
  await precheckAuditLog(janitor.ctx.fs, janitor.options.auditLog);
  // One janitor per staging directory; fixers of single keys re-check every
  // file themselves, and ENOENT is success for both.
  const lockContext = lockContextOf(janitor.ctx, settings);
  const lock = await acquireLock(lockContext, settings.stagingDir, '.clean', options.lockTimeoutMs);
  let log: AuditLog | undefined;
  const ahead = new WriteAhead(janitor);
  try {
    log = await openAuditLog(janitor.ctx.fs, janitor.options.auditLog);
    const opened = log;
    // The listing is read while files go: an entry unlinked meanwhile is
    // either not listed or found gone at its lstat, and never listed twice.
    await listCandidates(janitor, async (batch) => ahead.next(opened, await lookAndJudge(janitor, batch)));
    await ahead.drain();
  } finally {
    // Stopped by an error: the append under way ends before the last outcomes are written after it.
    await ahead.quiesce();
    const { ctx, pinned, tally } = janitor;
    const unrecorded = await finish(ctx.fs, pinned.stagingDir, tally.files > 0, log, ahead.outcomes, lock);
    // The files are gone and their intents on record; what is missing is the
    // word that they went. A person must look (exit 30), but it is no bug.
    if (unrecorded !== undefined) janitor.tally.fail(janitor.options.auditLog, unrecorded);
  }
  return janitor.tally.report(janitor.options);
}

type Planned = { readonly name: string; readonly match: StagingName };

/** One janitor run's fixed facts: its context, the staging directory pinned to its real path, its rules, its tally. */
interface Janitor {
  readonly ctx: CleanContext;
  readonly settings: PipelineSettings;
  /** With the audit log's path pinned. */
  readonly options: CleanOptions;
  /** The settings with the staging directory's real path, resolved once. */
  readonly pinned: PipelineSettings;
  readonly here: StagingDirectoryRules;
  /** `<staging-dir>/` as given, for reports; and as resolved, for every look and removal. */
  readonly base: string;
  readonly realBase: string;
  readonly tally: Tally;
  /** `janitor: older than Ns`, the reason every record gives. */
  readonly why: string;
}

/** Every check that comes before the first look at a file; what the rest of the run needs. */
async function prepareJanitor(ctx: CleanContext, settings: PipelineSettings, options: CleanOptions): Promise<Janitor> {
  // A dead PID stays dead and a live one is kept either way: one question per PID is enough.
  ctx = { ...ctx, processes: memoizedProcessTable(ctx.processes) };
  await checkDirectory(ctx.fs, settings.stagingDir, 'staging directory');
  // Read below to keep published names out of a shared directory: a missing
  // one is a layout mistake to report, as scan and diagnose do, not a crash.
  // An S3 output prefix shares nothing with a local directory: nothing to read there.
  if (!isS3Url(settings.outDir)) await checkDirectory(ctx.fs, settings.outDir, 'output directory');
  // Appended to where it is checked, whatever a symlink on the way points at later.
  options = { ...options, auditLog: await pinnedPath(ctx.fs, options.auditLog) };
  await refuseWriteIntoOutputDirectory(ctx.fs, options.auditLog, [settings], 'audit log');
  await refuseLockInOutputDirectory(ctx.fs, lockPathFor(settings.stagingDir, '.clean'), settings);
  // Every listing, look and removal goes through the staging directory's real
  // path, resolved once: a symlink on the way swung elsewhere mid-run (a
  // deploy) must not turn a listed name into a file of another directory.
  const pinned = { ...settings, stagingDir: await ctx.fs.realpath(settings.stagingDir) };
  return {
    ctx,
    settings,
    options,
    pinned,
    // Where staging is also an output directory (this pipeline's or another's),
    // published names are never candidates; a name another pipeline stages is
    // judged by the most cautious of their rules.
    here: await rulesForStagingDirectory(ctx.fs, pinned),
    // Paths by concatenation, not path.join per file: the names come from the listing and hold no slash.
    base: join(settings.stagingDir, '/'),
    realBase: join(pinned.stagingDir, '/'),
    tally: new Tally(settings, options.onRemoved),
    why: `janitor: older than ${Math.round(options.olderThanMs / 1000)}s`,
  };
}

/** Lists the candidates a batch at a time, each batch in name order: a small directory's report and log read sorted. */
function listCandidates(janitor: Janitor, onBatch: (batch: Planned[]) => Promise<void | 'stop'>): Promise<void> {
  const inOrder = (batch: Planned[]) => onBatch(batch.sort((a, b) => (a.name < b.name ? -1 : 1)));
  return listAllStaging(janitor.ctx.fs, janitor.pinned, inOrder, {
    onEntries: janitor.options.onEntries,
    batchSize: AUDIT_BATCH,
  });
}

/**
 * Every file of a batch gets its one look here, and is judged on it: the
 * files to remove; the kept and failed ones go to the tally. Synchronously
 * where the file system allows: no promise per file, and one batch is
 * milliseconds, so the lock's heartbeat still runs between batches.
 */
async function lookAndJudge(janitor: Janitor, batch: readonly Planned[]): Promise<Doomed> {
  const { fs } = janitor.ctx;
  const doomed = new Doomed();
  // One clock read per batch, before its looks: a file that changes while the
  // batch is looked at reads younger than it is, never older.
  const nowMs = janitor.ctx.wallClock();
  // A name that is no candidate is kept as it is, unlooked at (a published
  // name, one that names no file): the look's answer would change nothing.
  const toLook = batch.filter((item) => {
    const kept = nameVerdict(janitor, item);
    if (kept !== undefined) tallyVerdict(janitor, item, kept);
    return kept === undefined;
  });
  const look = fs.lstatSync;
  if (look) {
    for (const item of toLook) {
      let stats: Stats;
      try {
        stats = look(janitor.realBase + item.name);
      } catch (error) {
        tallyVerdict(janitor, item, failedLook(error));
        continue;
      }
      tallyVerdict(janitor, item, judgeOne(janitor, item, stats, nowMs, doomed));
    }
    return doomed;
  }
  const looks = await mapPool(toLook, IO_CONCURRENCY, (item) => lookAt(fs, janitor.realBase + item.name));
  toLook.forEach((item, index) => {
    const looked = looks[index] as LookedAt;
    const verdict = 'error' in looked ? failedLook(looked.error) : judgeOne(janitor, item, looked.stats, nowMs, doomed);
    tallyVerdict(janitor, item, verdict);
  });
  return doomed;
}

function tallyVerdict(janitor: Janitor, item: Planned, verdict: Verdict): void {
  if (typeof verdict === 'string') return;
  if ('keep' in verdict) janitor.tally.keep(janitor.base + item.name, verdict.keep);
  else janitor.tally.fail(janitor.base + item.name, verdict.fail);
}

/** Why a listed name is kept whatever its file, if it is. */
function nameVerdict(janitor: Janitor, item: Planned): { readonly keep: string } | undefined {
  const published = janitor.here.publishedAs(item.name);
  if (published !== undefined)
    return { keep: published.runKey === undefined ? publishedReason(published) : 'a published output or marker' };
  // Node reads a byte that is not UTF-8 as U+FFFD: that string names no file, so it is kept and said.
  if (item.name.includes('\uFFFD'))
    return { keep: 'its name is not valid UTF-8 (shown with U+FFFD): never deleted; a person must look' };
  return undefined;
}

/**
 * The write-ahead log of the removals, one batch ahead: a batch's intents are
 * fsynced while the batch before is removed and the listing reads and judges
 * the next batch, so the wait on the disk's journal overlaps the janitor's
 * own work. A file is only ever removed after its intent is durable (its
 * batch's append has completed), and its outcome is written with a later
 * append, or at the end.
 */
/** A batch whose intents are being made durable, and the append doing it. */
interface PendingAppend {
  readonly doomed: Doomed;
  /** What the append wrote: the outcomes before it (its first `outcomeBytes` bytes), then the batch's intents. */
  readonly text: AuditLines;
  readonly outcomeBytes: number;
  /** Settles to the append's error, if any. */
  readonly durable: Promise<unknown>;
}

class WriteAhead {
  readonly #janitor: Janitor;
  /** Outcome lines not yet written: they go with the next append. */
  outcomes = new AuditLines();
  /** The batch whose intents are being made durable, and that append: it settles to its error, if any. */
  #pending: PendingAppend | undefined;
  /** Why the janitor stopped: an append failed. */
  #stopped: string | undefined;
  #head = '';

  constructor(janitor: Janitor) {
    this.#janitor = janitor;
  }

  /** Takes a judged batch: writes its intents, and removes the batch before it once that one's are durable. */
  async next(log: AuditLog, doomed: Doomed): Promise<void | 'stop'> {
    if (doomed.length === 0) return undefined;
    // The batch before may go only once its own intents are durable.
    const ready = await this.#settle();
    if (this.#stopped !== undefined) {
      this.#fail(doomed, this.#stopped);
      return 'stop';
    }
    this.#stamp();
    const { why } = this.#janitor;
    // The outcomes so far go with this write; if it fails they are lost, their
    // intents standing alone, as after a crash.
    const text = this.outcomes;
    // Should this append fail, its outcomes go again with the last one: the
    // files they record are gone, and the log must say so.
    const outcomeBytes = text.bytes().length;
    const { runs, fields } = doomed;
    for (let i = 0; i < doomed.length; i++)
      text.addRemoval(this.#head, runs[i] as string, 'intent', 'delete', fields[i] as string, why);
    this.outcomes = new AuditLines();
    const { written, durable } = log.appendLinesAhead(text);
    // Settled to a value, never left rejected while the removals below run.
    this.#pending = { doomed, text, outcomeBytes, durable: durable.then(() => undefined, (error: unknown) => error) };
    // The fsync starts once the write's completion reaches this thread, and
    // this thread takes it only when it waits. The first files of the batch
    // before go while the write (a copy into the page cache) runs; then its
    // completion is taken, and the fsync runs under the rest of the removals
    // and the next listing. Taken at the next batch, as it was, every fsync
    // was waited for whole; taken before any removal, the write was.
    const headStart = Math.min(ready?.length ?? 0, WRITE_HEAD_START);
    await this.#remove(ready, 0, headStart);
    await written.catch(() => undefined);
    await this.#remove(ready, headStart);
    return undefined;
  }

  /** At the end of the listing: the last batch, once its intents are durable. */
  async drain(): Promise<void> {
    await this.#remove(await this.#settle(), 0);
  }

  /** Waits for the append under way, if any, removing nothing. */
  async quiesce(): Promise<void> {
    await this.#pending?.durable;
  }

  /** The batch whose intents were being written, once they are durable; none when they could not be written. */
  async #settle(): Promise<Doomed | undefined> {
    const pending = this.#pending;
    this.#pending = undefined;
    if (!pending) return undefined;
    const error = await pending.durable;
    if (error === undefined) return pending.doomed;
    // A full disk, say: what cannot be recorded is not removed, and the janitor stops here.
    const code = errnoCode(error);
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the audit write's own failure, rethrown
    if (!code) throw error;
    // Named: with --all, or --audit-log elsewhere, "the audit log" says not which disk to look at.
    const log = this.#janitor.options.auditLog;
    this.#stopped = `not removed: the audit log ${log} could not be written (${code}); the janitor stopped here`;
    if (pending.outcomeBytes > 0) {
      // After a newline: a short write may have left a line cut off, and a blank line is passed over.
      this.outcomes.add('\n');
      this.outcomes.add(pending.text.bytes().subarray(0, pending.outcomeBytes).toString('utf8'));
    }
    this.#fail(pending.doomed, this.#stopped);
    return undefined;
  }

  #fail(doomed: Doomed, reason: string): void {
    const { tally, base } = this.#janitor;
    for (const name of doomed.names) tally.fail(base + name, reason);
  }

  /** Removes files `from` to `to` of a batch whose intents are durable, and records their outcomes. */
  async #remove(doomed: Doomed | undefined, from: number, to = doomed?.length ?? 0): Promise<void> {
    if (doomed === undefined || from >= to) return;
    const { ctx, tally, why, base, realBase } = this.#janitor;
    const results = await removeAll(ctx.fs, realBase, doomed, from, to);
    this.#stamp();
    const text = this.outcomes;
    const { names, runs, fields } = doomed;
    results.forEach((result, j) => {
      const i = from + j;
      const run = runs[i] as string;
      const f = fields[i] as string;
      if (result === 'deleted') {
        tally.removeFile(doomed.cleaned(i, base), run);
        text.addRemoval(this.#head, run, 'delete', undefined, f, why);
      } else if (result === 'gone') {
        const path = base + (names[i] as string);
        text.addRemoval(this.#head, run, 'gone', undefined, fileFieldsText({ path }), 'already removed by someone else');
      } else if ('kept' in result) {
        tally.keep(base + (names[i] as string), result.kept);
        text.addRemoval(this.#head, run, 'skip', undefined, f, result.kept);
      } else {
        tally.fail(base + (names[i] as string), result.failed);
        text.addRemoval(this.#head, run, 'fail', undefined, f, result.failed);
      }
    });
  }

  /** One time per batch of records, written together: a clock read and a date per record was a tenth of the run. */
  #stamp(): void {
    const { ctx, settings } = this.#janitor;
    this.#head = headText({
      time: new Date(ctx.wallClock()).toISOString(),
      user: ctx.user,
      host: ctx.processes.hostname,
      pid: ctx.pid,
      pipeline: settings.pipeline ?? null,
    });
  }
}

/** Files `from` to `to` of a batch, each removed if it is still the very file judged: the results in that order. */
function removeAll(
  fs: FileSystem,
  realBase: string,
  doomed: Doomed,
  from: number,
  to: number,
): Promise<RemovalResult[]> | RemovalResult[] {
  const { unlinkSync, lstatSync } = fs;
  const { names } = doomed;
  if (unlinkSync && lstatSync) {
    const results = new Array<RemovalResult>(to - from);
    for (let i = from; i < to; i++)
      results[i - from] = removeOneSync(lstatSync, unlinkSync, realBase + (names[i] as string), doomed.snapshot(i));
    return results;
  }
  const indexes = Array.from({ length: to - from }, (_, j) => from + j);
  return mapPool(indexes, IO_CONCURRENCY, (i) => removeOne(fs, realBase + (names[i] as string), doomed.snapshot(i)));
}

/**
 * Makes what was done durable and recorded, also when the run stopped midway:
 * the removals (fsync of the staging directory), then their outcomes; then
 * lets go of the log and the lock.
 */
function finish(
  fs: FileSystem,
  stagingDir: string,
  removedAny: boolean,
  log: AuditLog | undefined,
  outcomes: AuditLines,
  lock: HeldLock,
): Promise<string | undefined> {
  return finishJanitor({
    durable: async () => {
      if (removedAny) await fsyncDirectory(fs, stagingDir);
    },
    record: async () => log?.appendLines(outcomes),
    close: async () => log?.close(),
    release: () => lock.release(),
  });
}

/**
 * A janitor's last steps, local or S3, each tried whatever the others did:
 * make the removals durable, record their outcomes, close the log, let go of
 * the lock. An outcome the file system refused to record (a full disk) is
 * returned as the reason, not thrown: the removals it records happened, each
 * after its intent was on record, and a person must look (exit 30), but it is
 * no bug. Anything else is rethrown once every step was tried.
 */
export async function finishJanitor(steps: {
  readonly durable?: () => Promise<void>;
  readonly record: () => Promise<unknown>;
  readonly close: () => Promise<unknown>;
  readonly release: () => Promise<unknown>;
}): Promise<string | undefined> {
  let unrecorded: string | undefined;
  const record = async () => {
    try {
      await steps.record();
    } catch (error) {
      const code = errnoCode(error);
      if (!code) throw error;
      unrecorded = `the outcomes of the last removals could not be written to the audit log (${code}); each removal's intent is on record`;
    }
  };
  let first: unknown;
  for (const step of [steps.durable ?? (async () => {}), record, steps.close, steps.release]) {
    try {
      await step();
    } catch (error) {
      first ??= error;
    }
  }
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a step threw, rethrown as it was
  if (first !== undefined) throw first;
  return unrecorded;
}

/** What the janitor did, as totals per run and bounded samples: flat memory whatever the number of files. */
export class Tally {
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

  remove(f: CleanedFile & { readonly run: string }): void {
    this.removeFile(fileOf(f), f.run);
  }

  /** A removal of run `run`; `file` is handed on as it is. */
  removeFile(file: CleanedFile, run: string): void {
    if (this.#onRemoved) this.#onRemoved(file);
    else this.removed.push(file);
    this.files++;
    this.bytes += file.bytes;
    let sum = this.perRun.get(run);
    if (sum === undefined) {
      sum = { files: 0, bytes: 0 };
      this.perRun.set(run, sum);
    }
    sum.files++;
    sum.bytes += file.bytes;
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

/** What the one lstat of a candidate said, where it comes through a promise: its stats, or why there are none. */
type LookedAt = { readonly stats: Stats } | { readonly error: unknown };

async function lookAt(fs: FileSystem, path: string): Promise<LookedAt> {
  try {
    return { stats: await fs.lstat(path) };
  } catch (error) {
    return { error };
  }
}

function failedLook(error: unknown): Verdict {
  if (errnoCode(error) === 'ENOENT') return 'gone';
  return { fail: `cannot be examined (${errnoCode(error) ?? String(error)})` };
}

/** The one look at a file: whether it goes. A file that goes is added to `doomed`. */
function judgeOne(janitor: Janitor, item: Planned, stats: Stats, nowMs: number, doomed: Doomed): Verdict {
  const kind = kindOf(stats);
  if (kind !== 'file') return { keep: `a ${kind}, not a regular file: left for a person` };
  const { ctx, settings, options } = janitor;
  const rules = janitor.here.writerRulesFor(item.name);
  const { match } = item;
  const snapshot = snapshotOf(stats);
  const { mtimeMs, ctimeMs } = snapshot;
  // Aged by its last change, not its mtime alone: an mtime can be set into the past.
  const ageMs = nowMs - (lastChangeMs({ mtimeMs, ctimeMs }) ?? nowMs);
  if (ageMs < options.olderThanMs) return { keep: YOUNGER };
  const judgement = judgeWriter(
    { pid: match.pid, mtimeMs, ctimeMs, pidCheck: checkPid(match, rules, ctx.processes) },
    // The two rules judgeWriter reads, not a copy of every setting per file.
    { freshWithinMs: settings.freshWithinMs, staleAfterMs: rules.staleAfterMs },
    nowMs,
  );
  if (judgement.writer !== 'dead') return { keep: `writer ${judgement.writer}: ${judgement.reason}` };
  // An mtime no Date holds cannot be recorded as the evidence's age: the file stays, and the run goes on.
  const unrecordable = unrecordableTime(mtimeMs);
  if (unrecordable) return { keep: unrecordable };
  const path = janitor.base + item.name;
  const mtime = isoTime(mtimeMs);
  const fields = fileFieldsText({ path, bytes: snapshot.bytes, mtime, writerPid: match.pid });
  doomed.add(item.name, match, snapshot, ageMs, fields);
  return 'go';
}

/**
 * Removes a judged file if it is still the very file judged: between that
 * look and now its intent was made durable, and a writer may have opened the
 * name again (a container's next attempt reuses its PID, so its name).
 * ENOENT is success (another janitor or fixer got there first); another
 * errno is the file's failure, not the run's.
 */
async function removeOne(fs: FileSystem, realPath: string, judged: FileSnapshot): Promise<RemovalResult> {
  try {
    const changed = changeSince(judged, snapshotOf(await fs.lstat(realPath)));
    if (changed !== undefined) return { kept: changed };
    await fs.unlink(realPath);
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

/** removeOne without a promise per file, where the file system offers synchronous calls. */
function removeOneSync(
  lstat: NonNullable<FileSystem['lstatSync']>,
  unlink: NonNullable<FileSystem['unlinkSync']>,
  realPath: string,
  judged: FileSnapshot,
): RemovalResult {
  try {
    // Looked at again right before its unlink: it must be the very file judged.
    const changed = changeSince(judged, snapshotOf(lstat(realPath)));
    if (changed !== undefined) return { kept: changed };
    unlink(realPath);
    return 'deleted';
  } catch (error) {
    return unlinkFailure(error);
  }
}

/**
 * A pipeline of `clean --all` that could not be cleaned at all (its bucket
 * missing, its directory gone, its audit log planted): one failure naming
 * its staging directory and why, so the other pipelines are still cleaned and
 * the run's exit code says a person must look.
 */
export function notCleanedReport(settings: PipelineSettings, options: CleanOptions, reason: string): CleanReport {
  const tally = new Tally(settings, undefined);
  tally.fail(settings.stagingDir, `not cleaned: ${reason}`);
  return tally.report(options);
}
