/*
 * The parts of an S3 scan beside its listings: outputs and markers per run
 * key, the newest published output, incomplete multipart uploads per key.
 */
import type { RunVerdict } from './classify.js';
import type { UploadReport } from './diagnosis.js';
import type { PathFacts } from './evidence.js';
import type { PipelineSettings } from './settings.js';
import { commonStart, type NamingRules, type OutRoles } from './store-names.js';
import { type FoundUpload, listUploadsOrSayWhy, type RunStores, uploadReports } from './store-probe.js';
import type { ObjectStore, StoreEntry } from './store.js';
import { CLOCK_SLACK_MS } from './writer.js';

/** Published outputs and markers per run key, as listed. */
export class OutputsByKey {
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
export class NewestPublished {
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
export function entryFacts(store: ObjectStore, entry: StoreEntry): PathFacts {
  const path = store.pathOf(entry.name);
  if (entry.kind !== 'file') return { path, status: 'present', kind: entry.kind };
  return { path, status: 'present', kind: 'file', bytes: entry.bytes, mtimeMs: entry.mtimeMs, ctimeMs: entry.mtimeMs };
}

export interface UploadsFound {
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
export async function uploadsByKey(
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
    for (const upload of await listUploadsOrSayWhy(store, prefix, found.notes)) {
      const key = keyOf(upload.name);
      if (key === undefined) continue;
      const list = found.byKey.get(key) ?? [];
      list.push({ store, upload });
      found.byKey.set(key, list);
    }
  }
  return found;
}

export function withUploads(verdict: RunVerdict, found: UploadsFound, key: string): RunVerdict {
  const uploads = found.byKey.get(key);
  if (!uploads) return verdict;
  const reports: UploadReport[] = uploadReports(uploads, found.staleAfterMs, found.nowMs);
  return { ...verdict, uploads: reports };
}
