import {
  classifySummary,
  emptyStagingSummary,
  foldStagingEntry,
  judgeStagingEntry,
  type RunVerdict,
  type StagingSummary,
} from './classify.js';
import type { UploadReport } from './diagnosis.js';
import { rulesForStagingDirectory, type StagingDirectoryRules } from './directory-rules.js';
import { UsageError } from './errors.js';
import type { PathFacts, StagingEntry } from './evidence.js';
import { checkDirectory, describeStagingBatch, listInBatches, listMatching, lstatFacts, runEvidence } from './probe.js';
import { memoizedProcessTable } from './process-table.js';
import { memoizedRunKeyCheck } from './run-key.js';
import { datesBetween, type ScanOptions, type ScanResult } from './scan.js';
import type { PipelineSettings } from './settings.js';
import { describeStoreEntry, type FoundUpload, type RunStores, type StoreProbeContext, storeFacts, uploadReports }
  from './store-probe.js';
import { isStoreError, type ObjectStore, type StoreEntry, type UploadListing } from './store.js';
import type { StagingName } from './template.js';
import { CLOCK_SLACK_MS } from './writer.js';

/**
 * scan for a pipeline with an S3 side. One listing of the staging prefix and
 * one of the output prefix (one in all when they are the same prefix), each
 * sent with the longest literal every name starts with, so the cost follows
 * the pipeline's keys, not the bucket's. Each page is folded into per-key
 * summaries as it comes (never a record per object), outputs and markers are
 * read off the listing (no HeadObject per key), and the same classifier
 * judges every key. A local side (a local staging directory beside an S3
 * output prefix, or the reverse) is listed as the local scan lists it.
 */
export async function scanStorePipeline(
  ctx: StoreProbeContext & { readonly clock: () => number },
  settings: PipelineSettings,
  stores: RunStores,
  options: ScanOptions,
): Promise<ScanResult> {
  const started = ctx.clock();
  ctx = { ...ctx, processes: memoizedProcessTable(ctx.processes) };
  for (const [store, role] of [[stores.out, 'output directory'], [stores.staging, 'staging directory']] as const)
    if (store.backend === 'local') await checkDirectory(ctx.fs, store.location, role);
  const roles = namingRules(settings);
  const here = await rulesForStagingDirectory(ctx.fs, settings);
  const outputs = new OutputsByKey();
  const shared = settings.final.keyed && here.sharedWithOwnOutput;
  const alsoOutputs = shared ? outputs : undefined;
  const staging = await summariseStaging(ctx, settings, here, stores.staging, roles, alsoOutputs, options);
  if (settings.final.keyed && !shared) await listOutputs(ctx, stores.out, roles, outputs);
  outputs.dropPhantoms();

  const facts = async (key: string): Promise<{ final: PathFacts; marker: PathFacts | null }> => {
    const finalName = settings.final.nameFor(key);
    const markerName = settings.marker?.nameFor(key, finalName);
    // Keyed names were all listed: what the listing did not show is not there.
    if (settings.final.keyed && !staging.vanished.has(key)) {
      const found = outputs.get(key);
      return {
        final: found?.final ?? { path: stores.out.pathOf(finalName), status: 'missing' },
        marker: markerName === undefined ? null : (found?.marker ?? { path: stores.out.pathOf(markerName), status: 'missing' }),
      };
    }
    return { final: await look(finalName), marker: markerName === undefined ? null : await look(markerName) };
  };
  // A fixed-name output is shared by every run key: each name is looked at once.
  const looked = new Map<string, Promise<PathFacts>>();
  const look = (name: string): Promise<PathFacts> => {
    let found = looked.get(name);
    if (!found) {
      found = stores.out.backend === 'local' ? lstatFacts(ctx.fs, stores.out.pathOf(name)) : storeFacts(stores.out, name);
      looked.set(name, found);
    }
    return found;
  };

  const keys = new Set([...staging.summaries.keys(), ...staging.vanished]);
  const published = new NewestPublished(settings.final.keyed);
  const windowStart = ctx.nowMs - options.sinceMs;
  for (const key of outputs.keys()) {
    const { final, marker } = await facts(key);
    const changed = Math.max(final.mtimeMs ?? Number.NEGATIVE_INFINITY, marker?.mtimeMs ?? Number.NEGATIVE_INFINITY);
    if (changed >= windowStart) keys.add(key);
    published.note(final, marker);
  }
  if (options.daily && settings.final.keyed) {
    for (const date of options.dailyDates ?? datesBetween(windowStart, ctx.nowMs))
      if (!outputs.has(date)) keys.add(date);
  }
  if (!settings.final.keyed) {
    // As the local scan: the fixed-name output is looked at whether or not any key is in view.
    const finalName = settings.final.nameFor('');
    const markerFixed = settings.marker === null
      || settings.marker.nameFor('a', finalName) === settings.marker.nameFor('b', finalName);
    for (const key of markerFixed ? [''] : keys) {
      const { final, marker } = await facts(key);
      published.note(final, marker);
    }
  }

  const uploads = await uploadsByKey(settings, stores, roles, ctx.nowMs);
  const runs: RunVerdict[] = [];
  for (const key of keys) {
    const { final, marker } = await facts(key);
    if (staging.vanished.has(key)) published.note(final, marker);
    const verdict = classifySummary({
      ...runEvidence(settings, key, ctx.nowMs, { final, marker, staging: [] }),
      staging: staging.summaries.get(key) ?? emptyStagingSummary(),
    });
    runs.push(withUploads(verdict, uploads, key));
  }
  runs.sort((a, b) => b.exitCode - a.exitCode || (a.run < b.run ? 1 : a.run > b.run ? -1 : 0));
  return {
    pipeline: settings.pipeline,
    runs,
    newestPublishedMs: published.newestMs,
    durationMs: ctx.clock() - started,
    ...(uploads.notes.length === 0 ? {} : { notes: uploads.notes }),
  };
}

/** The run keys a name is the staging file, the output, or the marker of. */
interface NamingRules {
  staging(name: string): StagingName | undefined;
  outputs(name: string): OutRoles | undefined;
  /** The literal every staging name of any key starts with. */
  readonly stagingPrefix: string;
  /** The literal every output and marker name of any key starts with. */
  readonly outPrefix: string;
}

interface OutRoles {
  readonly finalKey: string | undefined;
  readonly markerKey: string | undefined;
}

function namingRules(settings: PipelineSettings): NamingRules {
  const isValid = memoizedRunKeyCheck();
  const valid = (key: string | undefined): string | undefined => (key !== undefined && isValid(key) ? key : undefined);
  const outNames = (key: string) => {
    const finalName = settings.final.nameFor(key);
    return [finalName, ...(settings.marker ? [settings.marker.nameFor(key, finalName)] : [])];
  };
  return {
    staging(name) {
      const match = settings.staging.matchAny(name);
      return match && valid(match.runKey) !== undefined ? match : undefined;
    },
    outputs(name) {
      const finalKey = valid(settings.final.runKeyOf(name));
      const markerKey = valid(settings.marker?.runKeyOf(name, settings.final));
      return finalKey === undefined && markerKey === undefined ? undefined : { finalKey, markerKey };
    },
    stagingPrefix: commonStart([settings.staging.prefixFor('0'), settings.staging.prefixFor('1')]),
    outPrefix: commonStart([...outNames('0'), ...outNames('1')]),
  };
}

/** The longest text every one of `names` starts with: what a listing by prefix may send. */
export function commonStart(names: readonly string[]): string {
  const [first = ''] = names;
  let length = first.length;
  for (const name of names) {
    let i = 0;
    while (i < length && i < name.length && name[i] === first[i]) i++;
    length = i;
  }
  return first.slice(0, length);
}

/** Published outputs and markers per run key, as listed. */
class OutputsByKey {
  readonly #byKey = new Map<string, { final?: PathFacts; marker?: PathFacts; finalName?: string }>();
  readonly #both: Array<{ name: string; roles: OutRoles }> = [];

  add(name: string, roles: OutRoles, facts: PathFacts): void {
    if (roles.finalKey !== undefined) this.#entry(roles.finalKey).final = facts;
    if (roles.finalKey !== undefined) this.#entry(roles.finalKey).finalName = name;
    if (roles.markerKey !== undefined) this.#entry(roles.markerKey).marker = facts;
    if (roles.finalKey !== undefined && roles.markerKey !== undefined) this.#both.push({ name, roles });
  }

  /**
   * As the local scan (scan.ts): with final `out_{date}`, `out_K.success` is
   * K's marker or the output of a key "K.success"; beside K's output it is
   * K's marker, and the phantom run is dropped.
   */
  dropPhantoms(): void {
    for (const { name, roles } of this.#both) {
      if (this.#byKey.get(roles.markerKey as string)?.final === undefined) continue;
      const phantom = this.#byKey.get(roles.finalKey as string);
      if (phantom?.finalName !== name) continue;
      delete phantom.final;
      delete phantom.finalName;
      if (phantom.marker === undefined) this.#byKey.delete(roles.finalKey as string);
    }
    this.#both.length = 0;
  }

  get(key: string) {
    return this.#byKey.get(key);
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  keys(): string[] {
    return [...this.#byKey.keys()];
  }

  #entry(key: string) {
    let entry = this.#byKey.get(key);
    if (!entry) {
      entry = {};
      this.#byKey.set(key, entry);
    }
    return entry;
  }
}

/** Published as diagnose judges it: a regular file, and a marker that vouches for it. */
class NewestPublished {
  newestMs: number | undefined;
  readonly #keyed: boolean;

  constructor(keyed: boolean) {
    this.#keyed = keyed;
  }

  note(final: PathFacts, marker: PathFacts | null): void {
    const isFile = (facts: PathFacts) => facts.status === 'present' && facts.kind === 'file';
    if (!isFile(final) || final.mtimeMs === undefined) return;
    if (marker !== null) {
      if (!isFile(marker)) return;
      // A fixed name: only a marker written after the output now in place vouches for it.
      if (!this.#keyed && (marker.mtimeMs ?? 0) + CLOCK_SLACK_MS < final.mtimeMs) return;
    }
    this.newestMs = Math.max(this.newestMs ?? 0, final.mtimeMs);
  }
}

/** An S3 object (or what stands where one should be) as path facts; LastModified is its last change. */
function entryFacts(store: ObjectStore, entry: StoreEntry): PathFacts {
  const path = store.pathOf(entry.name);
  if (entry.kind !== 'file') return { path, status: 'present', kind: entry.kind };
  return { path, status: 'present', kind: 'file', bytes: entry.bytes, mtimeMs: entry.mtimeMs, ctimeMs: entry.mtimeMs };
}

interface StagingFolded {
  readonly summaries: Map<string, StagingSummary>;
  /** Local staging only: keys with a file gone between the listing and its lstat (most likely renamed into place). */
  readonly vanished: Set<string>;
}

/** Every staging entry of every key, judged and folded into its key's summary while listing. */
async function summariseStaging(
  ctx: StoreProbeContext,
  settings: PipelineSettings,
  here: StagingDirectoryRules,
  store: ObjectStore,
  roles: NamingRules,
  outputs: OutputsByKey | undefined,
  options: Pick<ScanOptions, 'onEntries'>,
): Promise<StagingFolded> {
  const folded: StagingFolded = { summaries: new Map(), vanished: new Set() };
  const rules = { freshWithinMs: settings.freshWithinMs, staleAfterMs: settings.staleAfterMs };
  const fold = (key: string, entry: StagingEntry) => {
    let summary = folded.summaries.get(key);
    if (!summary) {
      summary = emptyStagingSummary();
      folded.summaries.set(key, summary);
    }
    foldStagingEntry(summary, judgeStagingEntry(entry, rules, ctx.nowMs));
  };
  if (store.backend === 'local') {
    // A local staging directory beside an S3 output prefix: the local scan's own listing and lstat.
    await listInBatches(ctx.fs, settings.stagingDir, 'staging directory', (name) => roles.staging(name), async (batch) => {
      const described = await describeStagingBatch(ctx, settings, here, batch);
      described.forEach((entry, index) => {
        const key = batch[index]?.match.runKey ?? '';
        if (entry.status === 'missing') folded.vanished.add(key);
        else fold(key, entry);
      });
    }, { onEntries: options.onEntries });
    return folded;
  }
  // One listing for both kinds of name when the prefix is shared: the start they have in common.
  const prefix = outputs ? commonStart([roles.stagingPrefix, roles.outPrefix]) : roles.stagingPrefix;
  await listPages(store, prefix, 'staging prefix', (page, seen) => {
    for (const entry of page) {
      const match = roles.staging(entry.name);
      if (match) fold(match.runKey, describeStoreEntry(ctx, settings, here, store, entry, match));
      const out = outputs ? roles.outputs(entry.name) : undefined;
      if (out) outputs?.add(entry.name, out, entryFacts(store, entry));
    }
    options.onEntries?.(seen);
  });
  return folded;
}

/** The output prefix's (or directory's) outputs and markers of every key. */
async function listOutputs(
  ctx: StoreProbeContext,
  store: ObjectStore,
  roles: NamingRules,
  outputs: OutputsByKey,
): Promise<void> {
  if (store.backend === 'local') {
    for (const { name, match } of await listMatching(ctx.fs, store.location, 'output directory', (n) => roles.outputs(n)))
      outputs.add(name, match, await lstatFacts(ctx.fs, store.pathOf(name)));
    return;
  }
  await listPages(store, roles.outPrefix, 'output prefix', (page) => {
    for (const entry of page) {
      const out = roles.outputs(entry.name);
      if (out) outputs.add(entry.name, out, entryFacts(store, entry));
    }
  });
}

/**
 * Every page of one listing, handed over as it comes. A listing that fails
 * after a page leaves every key of the prefix unknown (a key's objects may
 * sit on both sides of the failure): the pipeline is not scanned, with the
 * reason, never judged on a part.
 */
async function listPages(
  store: ObjectStore,
  prefix: string,
  role: string,
  onPage: (page: readonly StoreEntry[], seen: number) => void,
): Promise<void> {
  let pages = 0;
  let seen = 0;
  try {
    for await (const page of store.list(prefix)) {
      pages += 1;
      seen += page.length;
      onPage(page, seen);
    }
  } catch (error) {
    if (!isStoreError(error) || (error.afterPages === 0 && pages === 0)) throw error;
    throw new UsageError(
      `The listing of the ${role} ${store.location} failed after ${Math.max(pages, error.afterPages)} page${pages === 1 ? '' : 's'}, so what it holds is not known: ${error.message}`,
      'Nothing was judged on a part of the listing; scan again once the store answers.',
    );
  }
}

interface UploadsFound {
  readonly byKey: Map<string, FoundUpload[]>;
  /** "Cannot tell", never read as "none". */
  readonly notes: string[];
  readonly staleAfterMs: number;
  readonly nowMs: number;
}

/**
 * Incomplete multipart uploads under the staging and output prefixes, by run
 * key: one ListMultipartUploads per prefix, as diagnose asks per key. A server
 * that cannot list them gets a note for the pipeline.
 */
async function uploadsByKey(
  settings: PipelineSettings,
  stores: RunStores,
  roles: NamingRules,
  nowMs: number,
): Promise<UploadsFound> {
  const found: UploadsFound = { byKey: new Map(), notes: [], staleAfterMs: settings.staleAfterMs, nowMs };
  // A staging name, or the output's own (a job that completes its multipart upload under the final key).
  const keyOf = (name: string) => roles.staging(name)?.runKey ?? roles.outputs(name)?.finalKey;
  const asks: Array<[ObjectStore, string]> = [[stores.staging, roles.stagingPrefix], [stores.out, roles.outPrefix]];
  // One prefix for both is asked once, with the start both kinds of name share.
  const shared = stores.staging.location === stores.out.location;
  const asked = new Set<string>();
  for (const [store, own] of asks) {
    const prefix = shared ? commonStart([roles.stagingPrefix, roles.outPrefix]) : own;
    if (store.backend !== 's3' || asked.has(store.location)) continue;
    asked.add(store.location);
    let listing: UploadListing;
    try {
      listing = await store.listUploads(prefix);
    } catch (error) {
      if (!isStoreError(error)) throw error;
      listing = { supported: false, reason: error.message };
    }
    if (!listing.supported) {
      found.notes.push(`incomplete multipart uploads under ${store.location} cannot be listed, so whether any are left is not known: ${listing.reason}`);
      continue;
    }
    for (const upload of listing.uploads) {
      const key = keyOf(upload.name);
      if (key === undefined) continue;
      const list = found.byKey.get(key) ?? [];
      list.push({ store, upload });
      found.byKey.set(key, list);
    }
  }
  return found;
}

function withUploads(verdict: RunVerdict, found: UploadsFound, key: string): RunVerdict {
  const uploads = found.byKey.get(key);
  if (!uploads) return verdict;
  const reports: UploadReport[] = uploadReports(uploads, found.staleAfterMs, found.nowMs);
  return { ...verdict, uploads: reports };
}
