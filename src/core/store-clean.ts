import { type AuditLog, type AuditRecord, openAuditLog, precheckAuditLog } from './audit.js';
import { type CleanContext, type CleanOptions, type CleanReport, cleanPipeline, finishJanitor, Tally, YOUNGER } from './clean.js';
import {
  publishedReason, refuseLockInOutputDirectory, refuseWriteIntoOutputDirectory, rulesForStagingDirectory,
  type StagingDirectoryRules,
} from './directory-rules.js';
import { errnoCode, UsageError } from './errors.js';
import { acquireLockAt, type HeldLock, lockContextOf, stillHeld } from './lock.js';
import { mapPool } from './pool.js';
import { checkDirectory } from './probe.js';
import { memoizedProcessTable } from './process-table.js';
import { memoizedRunKeyCheck } from './run-key.js';
import { s3LockPath } from './s3-state.js';
import { parseS3Url } from './s3-url.js';
import { pinnedPath } from './same-directory.js';
import type { PipelineSettings } from './settings.js';
import { guardStoreRemoval } from './store-guards.js';
import type { RunStores } from './store-probe.js';
import { stagingListingPrefix } from './store-names.js';
import { isStoreError, type ObjectStore, type StoredFile, type StoreEntry } from './store.js';
import type { StagingName } from './template.js';

export interface StoreCleanOptions extends CleanOptions {
  /** Where the local lock lives: $XDG_STATE_HOME/crashdiag (s3-state.ts). */
  readonly stateDir: string;
}

/** An object judged to go, as it was listed: right before its DELETE it must still be this very object. */
interface Doomed {
  readonly entry: StoredFile;
  readonly match: StagingName;
  readonly path: string;
  readonly ageSeconds: number;
}

type Verdict = { readonly go: Doomed } | { readonly keep: string };

/**
 * The orphan janitor for an S3 staging prefix: one listing of the prefix (the
 * literal every staging name starts with), page by page. Each object is
 * judged on what the listing says: no pipeline's published name, a plain
 * object, LastModified older than --older-than, and a dead writer by the one
 * guard --fix asks too (guardStoreRemoval: age against --stale-after, or the
 * PID when the key names this host). A page's intents are recorded (one
 * append, one fsync) before its DELETEs, each of which is a removeIfUnchanged:
 * HeadObject must show the listed ETag, size and LastModified, then
 * DeleteObject with If-Match. Outcomes follow with the next page's intents.
 * The lock is local and named after bucket and prefix.
 */
export async function cleanStorePipeline(
  ctx: CleanContext,
  settings: PipelineSettings,
  stores: RunStores,
  options: StoreCleanOptions,
): Promise<CleanReport> {
  if (options.olderThanMs < 0) throw new UsageError('--older-than must not be negative.');
  const staging = stores.staging;
  // A local staging directory beside an S3 output prefix: the local janitor, whose
  // every look and removal is local; the output prefix holds none of its names.
  if (staging.backend !== 's3') return cleanPipeline(ctx, settings, options);
  ctx = { ...ctx, processes: memoizedProcessTable(ctx.processes) };
  if (stores.out.backend === 'local') await checkDirectory(ctx.fs, stores.out.location, 'output directory');
  const auditLog = await pinnedPath(ctx.fs, options.auditLog);
  const lockPath = s3LockPath(options.stateDir, parseS3Url(settings.stagingDir, 'staging directory'), '.clean');
  await refuseWriteIntoOutputDirectory(ctx.fs, auditLog, [settings], 'audit log');
  await refuseLockInOutputDirectory(ctx.fs, lockPath, settings);
  const here = await rulesForStagingDirectory(ctx.fs, settings);
  const tally = new Tally(settings, options.onRemoved);
  const judge = judgeWith(ctx, settings, here, staging, options);
  const prefix = stagingListingPrefix(settings);

  if (options.dryRun) {
    await eachPage(staging, settings.staging, prefix, tally, options, (page) => {
      for (const item of page) {
        const verdict = judge(item);
        if ('go' in verdict) tally.remove(cleaned(verdict.go));
        else tally.keep(staging.pathOf(item.entry.name), verdict.keep);
      }
      return Promise.resolve(undefined);
    });
    return tally.report(options);
  }

  // Before the lock and the state directory exist: a planted log is refused with the disk as it was.
  await precheckAuditLog(ctx.fs, auditLog);
  const lock = await acquireLockAt(lockContextOf(ctx, settings), lockPath, options.lockTimeoutMs);
  let log: AuditLog | undefined;
  const janitor = new Janitor(ctx, settings, here, staging, tally, options);
  try {
    log = await openAuditLog(ctx.fs, auditLog);
    const opened = log;
    await eachPage(staging, settings.staging, prefix, tally, options, async (page) => {
      const doomed: Doomed[] = [];
      for (const item of page) {
        const verdict = judge(item);
        if ('go' in verdict) doomed.push(verdict.go);
        else tally.keep(staging.pathOf(item.entry.name), verdict.keep);
      }
      return janitor.removeBatch(opened, lock, doomed);
    });
  } finally {
    const opened = log;
    const unrecorded = await finishJanitor({
      record: async () => opened?.append(janitor.outcomes),
      close: async () => opened?.close(),
      release: () => lock.release(),
    });
    if (unrecorded !== undefined) tally.fail(auditLog, unrecorded);
  }
  return tally.report(options);
}

interface Listed {
  readonly entry: StoreEntry;
  readonly match: StagingName;
}

/**
 * The staging objects of every key, a page at a time, in key order. A listing
 * that fails after a page is a failure for a person to look at (what the
 * rest of the prefix holds is not known); before the first, the command's
 * usage error.
 */
async function eachPage(
  store: ObjectStore,
  staging: PipelineSettings['staging'],
  prefix: string,
  tally: Tally,
  options: Pick<CleanOptions, 'onEntries'>,
  onPage: (page: readonly Listed[]) => Promise<void | 'stop'>,
): Promise<void> {
  const isValid = memoizedRunKeyCheck();
  let pages = 0;
  let seen = 0;
  try {
    for await (const page of store.list(prefix)) {
      pages += 1;
      seen += page.length;
      const listed: Listed[] = [];
      for (const entry of page) {
        const match = staging.matchAny(entry.name);
        if (match && isValid(match.runKey)) listed.push({ entry, match });
      }
      options.onEntries?.(seen);
      if ((await onPage(listed)) === 'stop') return;
    }
  } catch (error) {
    if (!isStoreError(error) || (error.afterPages === 0 && pages === 0)) throw error;
    tally.fail(store.location, `the listing failed after ${Math.max(pages, error.afterPages)} page(s), so what the rest of the prefix holds is not known: ${error.message}`);
  }
}

/** The one look at a listed object: whether it goes, by the rules diagnose --fix asks too. */
function judgeWith(
  ctx: CleanContext,
  settings: PipelineSettings,
  here: StagingDirectoryRules,
  staging: ObjectStore,
  options: Pick<CleanOptions, 'olderThanMs'>,
): (item: Listed) => Verdict {
  return ({ entry, match }) => {
    const published = here.publishedAs(entry.name);
    if (published !== undefined)
      return { keep: published.runKey === undefined ? publishedReason(published) : 'a published output or marker' };
    if (entry.kind !== 'file') return { keep: `a ${entry.kind}, not a plain object: left for a person` };
    const nowMs = ctx.wallClock();
    // LastModified: the server's clock, which no client can set back.
    const ageMs = nowMs - entry.mtimeMs;
    if (ageMs < options.olderThanMs) return { keep: YOUNGER };
    const guardCtx = { settings, runKey: match.runKey, nowMs, processes: ctx.processes };
    const verdict = guardStoreRemoval(guardCtx, here, staging, entry);
    if (!verdict.ok) return { keep: verdict.reason };
    const ageSeconds = Math.round(ageMs / 1000);
    return { go: { entry: verdict.entry, match, path: staging.pathOf(entry.name), ageSeconds } };
  };
}

function cleaned(f: Doomed) {
  return { path: f.path, bytes: f.entry.bytes, pid: f.match.pid, ageSeconds: f.ageSeconds, run: f.match.runKey };
}

// DELETEs in flight at once within a page: each is a HEAD and a DELETE, tens
// of milliseconds apiece against S3, so one at a time took minutes per
// 10,000 orphans; a few in flight keep a failure's blast radius to a few
// requests (those already started when one fails still run to their outcome).
const DELETE_CONCURRENCY = 8;

/** Removes judged objects a batch at a time: intents first, then each DELETE, outcomes with the next batch. */
class Janitor {
  outcomes: AuditRecord[] = [];
  readonly #ctx: CleanContext;
  readonly #settings: PipelineSettings;
  readonly #here: StagingDirectoryRules;
  readonly #staging: ObjectStore;
  readonly #tally: Tally;
  readonly #why: string;

  constructor(
    ctx: CleanContext,
    settings: PipelineSettings,
    here: StagingDirectoryRules,
    staging: ObjectStore,
    tally: Tally,
    options: Pick<CleanOptions, 'olderThanMs'>,
  ) {
    this.#ctx = ctx;
    this.#settings = settings;
    this.#here = here;
    this.#staging = staging;
    this.#tally = tally;
    this.#why = `janitor: older than ${Math.round(options.olderThanMs / 1000)}s`;
  }

  #record(run: string, fields: Partial<AuditRecord> & Pick<AuditRecord, 'op'>): AuditRecord {
    const ctx = this.#ctx;
    return {
      time: new Date(ctx.wallClock()).toISOString(),
      user: ctx.user,
      host: ctx.processes.hostname,
      pid: ctx.pid,
      pipeline: this.#settings.pipeline ?? null,
      run,
      ...fields,
    };
  }

  #file(f: Doomed) {
    const mtime = new Date(f.entry.mtimeMs).toISOString();
    return { path: f.path, bytes: f.entry.bytes, mtime, writerPid: f.match.pid };
  }

  async removeBatch(log: AuditLog, lock: HeldLock, doomed: readonly Doomed[]): Promise<void | 'stop'> {
    if (doomed.length === 0) return undefined;
    const tally = this.#tally;
    if (!(await stillHeld(this.#ctx.fs, lock))) {
      // Named, as the audit log is: with --all each prefix has a lock of its own.
      const reason = `not removed: the janitor's lock ${lock.path} was lost; it stopped here`;
      for (const f of doomed) tally.fail(f.path, reason);
      return 'stop';
    }
    // Write-ahead: the last batch's outcomes and this batch's intents, one write, one fsync, then the DELETEs.
    try {
      await log.append([
        ...this.outcomes,
        ...doomed.map((f) => this.#record(f.match.runKey, { op: 'intent', intent: 'delete', ...this.#file(f), reason: this.#why })),
      ]);
    } catch (error) {
      const code = errnoCode(error);
      if (!code) throw error;
      // Named: with --all, or --audit-log elsewhere, "the audit log" says not which disk to look at.
      const reason = `not removed: the audit log ${log.path} could not be written (${code}); the janitor stopped here`;
      for (const f of doomed) tally.fail(f.path, reason);
      this.outcomes = [];
      return 'stop';
    }
    this.outcomes = [];
    let stopped: string | undefined;
    await mapPool(doomed, DELETE_CONCURRENCY, async (f) => {
      if (stopped !== undefined) {
        const rest = `not attempted: the janitor stopped at an earlier failure (${stopped})`;
        tally.fail(f.path, rest);
        this.outcomes.push(this.#record(f.match.runKey, { op: 'skip', ...this.#file(f), reason: rest }));
        return;
      }
      const stop = await this.#removeOne(f);
      if (stop !== undefined) stopped ??= `${f.path}: ${stop}`;
    });
    return stopped === undefined ? undefined : 'stop';
  }

  /** One DELETE, if every guard still passes now and the object is the one listed; returns why to stop, if so. */
  async #removeOne(f: Doomed): Promise<string | undefined> {
    const run = f.match.runKey;
    const tally = this.#tally;
    const ctx = this.#ctx;
    const guardCtx = { settings: this.#settings, runKey: run, nowMs: ctx.wallClock(), processes: ctx.processes };
    const verdict = guardStoreRemoval(guardCtx, this.#here, this.#staging, f.entry);
    if (!verdict.ok) {
      tally.keep(f.path, verdict.reason);
      this.outcomes.push(this.#record(run, { op: 'skip', ...this.#file(f), reason: verdict.reason }));
      return undefined;
    }
    try {
      const outcome = await this.#staging.removeIfUnchanged(f.entry);
      if (outcome.outcome === 'removed') {
        tally.remove(cleaned(f));
        this.outcomes.push(this.#record(run, { op: 'delete', ...this.#file(f), reason: this.#why }));
      } else if (outcome.outcome === 'gone') {
        this.outcomes.push(this.#record(run, { op: 'gone', path: f.path, reason: 'already removed by someone else' }));
      } else {
        tally.keep(f.path, outcome.reason);
        this.outcomes.push(this.#record(run, { op: 'skip', ...this.#file(f), reason: outcome.reason }));
      }
      return undefined;
    } catch (error) {
      if (!isStoreError(error)) throw error;
      // The server refused or could not be reached: the rest would most likely fail alike.
      tally.fail(f.path, `could not be removed: ${error.message}`);
      this.outcomes.push(this.#record(run, { op: 'fail', ...this.#file(f), reason: error.message }));
      return error.message;
    }
  }
}
