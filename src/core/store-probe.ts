import type { Deps } from './deps.js';
import { rulesForStagingDirectory, type StagingDirectoryRules, type WriterRules } from './directory-rules.js';
import type { UploadReport } from './diagnosis.js';
import type { PathFacts, PidCheck, RunEvidence, StagingEntry } from './evidence.js';
import {
  checkDirectory, checkPid, compareText, describeStagingEntries, listMatching, lstatFacts, type OutputSide, runEvidence,
} from './probe.js';
import type { ProcessTable } from './process-table.js';
import type { PipelineSettings } from './settings.js';
import {
  type IncompleteUpload, isStoreError, type ObjectStore, type StoreEntry, type UploadListing,
} from './store.js';
import type { StagingName } from './template.js';

/**
 * The probe for a pipeline with at least one directory behind the store seam
 * (an S3 prefix). It hands the classifier the same RunEvidence the local
 * probe does, so classify, plan and render stay unaware of the backend; the
 * local probe keeps its own tuned path and is not routed through here.
 */
/** The store probe's narrowing of Deps; `fs` is for a local side (a local directory beside an S3 one). */
export type StoreProbeContext = Pick<Deps, 'fs' | 'processes' | 'nowMs'>;

/** The two directories of a run, each local or S3. */
export interface RunStores {
  readonly out: ObjectStore;
  readonly staging: ObjectStore;
}

/** What a look at a run through the stores found: the evidence, plus the uploads never completed. */
export interface StoreRunLook {
  readonly evidence: RunEvidence;
  readonly uploads: readonly FoundUpload[];
  /** "Cannot tell" about uploads, never read as "none". */
  readonly uploadNotes: readonly string[];
  /** The staging entries as the store described them, by path: what a removal is planned from. */
  readonly entries: ReadonlyMap<string, StoreEntry>;
}

/** An incomplete multipart upload for this run, and the store it lives in (for --abort-uploads). */
export interface FoundUpload {
  readonly store: ObjectStore;
  readonly upload: IncompleteUpload;
}

/**
 * Whether the PID in a staging name can be asked about. On S3 the writer may
 * run on any machine: only a key that names this host (`{host}`) makes its
 * PID meaningful, and then the check is the local one. Otherwise age decides:
 * LastModified is the server's clock, and no client can set it.
 */
export function storePidCheck(
  backend: ObjectStore['backend'],
  name: StagingName,
  rules: Pick<WriterRules, 'pidCheck' | 'pidCheckOffBy' | 'pidCheckOffWhy'>,
  processes: ProcessTable,
): PidCheck {
  if (backend === 's3' && name.host === undefined) {
    return {
      checked: false,
      why: 'an S3 object whose key names no host: its writer may run on any machine, so its PID says nothing here',
    };
  }
  return checkPid(name, rules, processes);
}

/** One store entry as a staging entry for the classifier; an S3 object's LastModified is its last change. */
export function describeStoreEntry(
  ctx: Pick<StoreProbeContext, 'processes'>,
  settings: Pick<PipelineSettings, 'staleAfterMs'>,
  here: StagingDirectoryRules,
  store: ObjectStore,
  entry: StoreEntry,
  match: StagingName,
): StagingEntry {
  const other = here.publishedAs(entry.name);
  const rules = here.writerRulesFor(entry.name);
  const file = entry.kind === 'file' ? entry : undefined;
  return {
    path: store.pathOf(entry.name),
    status: 'present',
    kind: entry.kind,
    bytes: file?.bytes,
    mtimeMs: file?.mtimeMs,
    // No client can set LastModified: it is as honest a "last change" as a ctime.
    ctimeMs: file?.mtimeMs,
    ...(file?.lastChangeUnknown === undefined ? {} : { lastChangeUnknown: file.lastChangeUnknown }),
    name: entry.name,
    pid: match.pid,
    host: match.host,
    pidCheck: storePidCheck(store.backend, match, rules, ctx.processes),
    staleAfterMs: rules.staleAfterMs === settings.staleAfterMs ? undefined : rules.staleAfterMs,
    alsoPublishedAs: other?.runKey,
    alsoPublishedBy: other?.pipeline,
  };
}

/**
 * The staging entries of one run key in a store, listed by the key's literal
 * start so the cost follows the matches. A listing that fails after some
 * pages becomes an unreadable entry naming the prefix and the reason: the
 * run is then UNKNOWN (or RUNNING, if a live writer was already seen), never
 * judged on a part. A failure before any page is the caller's usage error.
 */
export async function listStoreStaging(
  ctx: Pick<StoreProbeContext, 'processes'>,
  settings: PipelineSettings,
  here: StagingDirectoryRules,
  store: ObjectStore,
  runKey: string,
  keep?: Map<string, StoreEntry>,
): Promise<StagingEntry[]> {
  const matcher = settings.staging.matcherFor(runKey);
  const found: StagingEntry[] = [];
  let pages = 0;
  try {
    for await (const page of store.list(settings.staging.prefixFor(runKey))) {
      pages += 1;
      for (const entry of page) {
        const match = matcher(entry.name);
        if (!match) continue;
        const described = describeStoreEntry(ctx, settings, here, store, entry, match);
        found.push(described);
        keep?.set(described.path, entry);
      }
    }
  } catch (error) {
    if (!isStoreError(error) || (error.afterPages === 0 && pages === 0)) throw error;
    found.push(partialListing(store, Math.max(pages, error.afterPages), error.message));
  }
  return found.sort((a, b) => compareText(a.path, b.path));
}

function partialListing(store: ObjectStore, pages: number, why: string): StagingEntry {
  const reason = `the listing of ${store.location} failed after ${pages} page${pages === 1 ? '' : 's'}, so what it holds is not known: ${why}`;
  return {
    path: store.location,
    status: 'unreadable',
    error: reason,
    name: '',
    pid: 0,
    host: undefined,
    pidCheck: { checked: false, why: 'the listing is incomplete' },
  };
}

/** One name in a store as path facts: a missing key is a fact, not an error. */
export async function storeFacts(store: ObjectStore, name: string): Promise<PathFacts> {
  const path = store.pathOf(name);
  const entry = await store.stat(name);
  if (!entry) return { path, status: 'missing' };
  if (entry.kind !== 'file') return { path, status: 'present', kind: entry.kind };
  return { path, status: 'present', kind: 'file', bytes: entry.bytes, mtimeMs: entry.mtimeMs, ctimeMs: entry.mtimeMs };
}

/**
 * An output store as the local fixer's output side: the output's and the
 * marker's facts by HeadObject, and its identity (ETag, size, LastModified),
 * so "replaced since it was planned" compares the object, not an inode.
 */
export function storeOutputSide(store: ObjectStore): OutputSide {
  return {
    facts: (name) => storeFacts(store, name),
    identity: (name) => storeIdentity(store, name),
  };
}

/** What identifies an object now (undefined: none there): a rewrite changes its ETag or LastModified. */
export async function storeIdentity(store: ObjectStore, name: string): Promise<string | undefined> {
  const entry = await store.stat(name);
  return entry?.kind === 'file' ? `${entry.version}:${entry.bytes}:${entry.mtimeMs}` : entry?.kind;
}

/**
 * Looks at one run key through the stores. In the writer's order, as the
 * local probe does: staging, then the output, then its marker.
 */
export async function probeStoreRun(
  ctx: StoreProbeContext,
  settings: PipelineSettings,
  stores: RunStores,
  runKey: string,
): Promise<StoreRunLook> {
  const here = await rulesForStagingDirectory(ctx.fs, settings);
  for (const [store, role] of [[stores.staging, 'staging directory'], [stores.out, 'output directory']] as const)
    if (store.backend === 'local') await checkDirectory(ctx.fs, store.location, role);
  const entries = new Map<string, StoreEntry>();
  const staging = stores.staging.backend === 'local'
    ? await describeStagingEntries(ctx, settings, await listMatching(
        ctx.fs, settings.stagingDir, 'staging directory', settings.staging.matcherFor(runKey)))
    : await listStoreStaging(ctx, settings, here, stores.staging, runKey, entries);
  const finalName = settings.final.nameFor(runKey);
  const markerName = settings.marker?.nameFor(runKey, finalName);
  const facts = (name: string) => stores.out.backend === 'local'
    ? lstatFacts(ctx.fs, stores.out.pathOf(name))
    : storeFacts(stores.out, name);
  const final = await facts(finalName);
  const marker = markerName === undefined ? null : await facts(markerName);
  const { uploads, notes } = await uploadsOf(settings, stores, runKey);
  const evidence = runEvidence(settings, runKey, ctx.nowMs, { final, marker, staging });
  return { evidence, uploads, uploadNotes: notes, entries };
}

/**
 * Multipart uploads never completed under this run's staging names and its
 * output's name. A server that cannot list them says so in a note: that is
 * "not known", never "none".
 */
async function uploadsOf(
  settings: PipelineSettings,
  stores: RunStores,
  runKey: string,
): Promise<{ uploads: FoundUpload[]; notes: string[] }> {
  const uploads: FoundUpload[] = [];
  const notes: string[] = [];
  const matcher = settings.staging.matcherFor(runKey);
  const finalName = settings.final.nameFor(runKey);
  const asks: Array<[ObjectStore, string, (name: string) => boolean]> = [
    [stores.staging, settings.staging.prefixFor(runKey), (name) => matcher(name) !== undefined],
    [stores.out, finalName, (name) => name === finalName],
  ];
  for (const [store, prefix, belongs] of asks) {
    if (store.backend !== 's3') continue;
    const listing = await listUploadsOrSayWhy(store, prefix, notes);
    for (const upload of listing) if (belongs(upload.name)) uploads.push({ store, upload });
  }
  return { uploads, notes };
}

/**
 * The incomplete uploads under `prefix`; where the store cannot list them,
 * none, and a note in `notes` that says so ("not known", never "none"). A
 * reader without s3:ListBucketMultipartUploads still gets the run's state.
 */
export async function listUploadsOrSayWhy(
  store: ObjectStore,
  prefix: string,
  notes: string[],
): Promise<readonly IncompleteUpload[]> {
  let listing: UploadListing;
  try {
    listing = await store.listUploads(prefix);
  } catch (error) {
    if (!isStoreError(error)) throw error;
    listing = { supported: false, reason: error.message };
  }
  if (listing.supported) return listing.uploads;
  notes.push(`incomplete multipart uploads under ${store.location} cannot be listed, so whether any are left is not known: ${listing.reason}`);
  return [];
}

/** The uploads as a diagnosis shows them: where, since when, and whether older than --stale-after. */
export function uploadReports(uploads: readonly FoundUpload[], staleAfterMs: number, nowMs: number): UploadReport[] {
  return uploads
    .map(({ store, upload }) => ({
      path: store.pathOf(upload.name),
      uploadId: upload.uploadId,
      initiated: new Date(upload.initiatedMs).toISOString(),
      ageSeconds: Math.round((nowMs - upload.initiatedMs) / 1000),
      stale: isStaleUpload(upload, staleAfterMs, nowMs),
    }))
    .sort((a, b) => compareText(a.path, b.path) || compareText(a.uploadId, b.uploadId));
}

/** The one rule for which uploads --abort-uploads may abort: initiated longer ago than --stale-after. */
export function isStaleUpload(upload: IncompleteUpload, staleAfterMs: number, nowMs: number): boolean {
  return nowMs - upload.initiatedMs > staleAfterMs;
}
