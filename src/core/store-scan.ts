import {
  classifySummary,
  emptyStagingSummary,
  foldStagingEntry,
  judgeStagingEntry,
  type RunVerdict,
  type StagingSummary,
} from './classify.js';
import { rulesForStagingDirectory, type StagingDirectoryRules } from './directory-rules.js';
import { UsageError } from './errors.js';
import type { PathFacts, StagingEntry } from './evidence.js';
import { checkDirectory, describeStagingBatch, listInBatches, listMatching, lstatFacts, runEvidence } from './probe.js';
import { memoizedProcessTable } from './process-table.js';
import { datesBetween, type ScanOptions, type ScanResult } from './scan.js';
import type { PipelineSettings } from './settings.js';
import { commonStart, type NamingRules, namingRules } from './store-names.js';
import { describeStoreEntry, type RunStores, type StoreProbeContext, storeFacts } from './store-probe.js';
import { entryFacts, NewestPublished, OutputsByKey, uploadsByKey, withUploads } from './store-scan-parts.js';
import { isStoreError, type ObjectStore, type StoreEntry } from './store.js';
import { markerNameIsShared } from './template.js';

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
  ctx: StoreProbeContext & { readonly wallClock: () => number },
  settings: PipelineSettings,
  stores: RunStores,
  options: ScanOptions,
): Promise<ScanResult> {
  const started = ctx.wallClock();
  ctx = { ...ctx, processes: memoizedProcessTable(ctx.processes) };
  for (const [store, role] of [[stores.out, 'output directory'], [stores.staging, 'staging directory']] as const)
    if (store.backend === 'local') await checkDirectory(ctx.fs, store.location, role);
  const roles = namingRules(settings);
  const { staging, outputs } = await listAndFold(ctx, settings, stores, roles, options);
  const facts = outputFactsOf(ctx, settings, stores.out, outputs, staging.vanished);
  const published = new NewestPublished(settings.final.keyed);
  const keys = await keysInView(ctx, settings, { staging, outputs, facts, published }, options);
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
    durationMs: ctx.wallClock() - started,
    ...(uploads.notes.length === 0 ? {} : { notes: uploads.notes }),
  };
}

/** The staging listing folded per run key, and the outputs and markers (one listing when the prefix is shared). */
async function listAndFold(
  ctx: StoreProbeContext,
  settings: PipelineSettings,
  stores: RunStores,
  roles: NamingRules,
  options: ScanOptions,
): Promise<{ staging: StagingFolded; outputs: OutputsByKey }> {
  const here = await rulesForStagingDirectory(ctx.fs, settings);
  const outputs = new OutputsByKey();
  const shared = settings.final.keyed && here.sharedWithOwnOutput;
  const alsoOutputs = shared ? outputs : undefined;
  const staging = await summariseStaging(ctx, settings, here, stores.staging, roles, alsoOutputs, options);
  if (settings.final.keyed && !shared) await listOutputs(ctx, stores.out, roles, outputs);
  outputs.dropPhantoms();
  return { staging, outputs };
}

type OutputFactsOf = (key: string) => Promise<{ final: PathFacts; marker: PathFacts | null }>;

/**
 * A run key's output and marker: keyed names from the listing (what it did
 * not show is not there), except a key whose staging file vanished meanwhile
 * and a marker every key shares; a fixed name looked at once for all keys.
 */
function outputFactsOf(
  ctx: StoreProbeContext,
  settings: PipelineSettings,
  out: ObjectStore,
  outputs: OutputsByKey,
  vanished: ReadonlySet<string>,
): OutputFactsOf {
  const looked = new Map<string, Promise<PathFacts>>();
  const look = (name: string): Promise<PathFacts> => {
    let found = looked.get(name);
    if (!found) {
      found = out.backend === 'local' ? lstatFacts(ctx.fs, out.pathOf(name)) : storeFacts(out, name);
      looked.set(name, found);
    }
    return found;
  };
  const markerShared = markerNameIsShared(settings.final, settings.marker);
  return async (key) => {
    const finalName = settings.final.nameFor(key);
    const markerName = settings.marker?.nameFor(key, finalName);
    if (settings.final.keyed && !vanished.has(key)) {
      const found = outputs.get(key);
      return {
        final: found?.final ?? { path: out.pathOf(finalName), status: 'missing' },
        marker: markerName === undefined
          ? null
          // A marker every key shares (`_SUCCESS`) is no key's in the listing: looked at (once).
          : markerShared
            ? await look(markerName)
            : (found?.marker ?? { path: out.pathOf(markerName), status: 'missing' }),
      };
    }
    return { final: await look(finalName), marker: markerName === undefined ? null : await look(markerName) };
  };
}

/**
 * The run keys a scan shows: every key with a staging object, every key whose
 * output or marker changed within the window (or has no time: a folder of
 * parts), and with --daily every date of the window; the newest publish noted.
 */
async function keysInView(
  ctx: StoreProbeContext,
  settings: PipelineSettings,
  found: { staging: StagingFolded; outputs: OutputsByKey; facts: OutputFactsOf; published: NewestPublished },
  options: ScanOptions,
): Promise<Set<string>> {
  const { staging, outputs, facts, published } = found;
  const keys = new Set([...staging.summaries.keys(), ...staging.vanished]);
  const windowStart = ctx.nowMs - options.sinceMs;
  for (const key of outputs.keys()) {
    const { final, marker } = await facts(key);
    const changed = Math.max(final.mtimeMs ?? Number.NEGATIVE_INFINITY, marker?.mtimeMs ?? Number.NEGATIVE_INFINITY);
    // An output or marker that is a "directory" of keys (NAME/part-00000, as
    // Spark writes one) has no time on S3: it is in view whatever the window,
    // as diagnose calls it UNKNOWN; left out, scan said nothing (exit 0).
    const timeless = [final, marker].some((f) => f?.status === 'present' && f.mtimeMs === undefined);
    if (changed >= windowStart || timeless) keys.add(key);
    published.note(final, marker);
  }
  if (options.daily && settings.final.keyed) {
    for (const date of options.dailyDates ?? datesBetween(windowStart, ctx.nowMs))
      if (!outputs.has(date)) keys.add(date);
  }
  if (!settings.final.keyed) {
    // As the local scan: the fixed-name output is looked at whether or not any key is in view.
    const markerFixed = settings.marker === null || markerNameIsShared(settings.final, settings.marker);
    for (const key of markerFixed ? [''] : keys) {
      const { final, marker } = await facts(key);
      published.note(final, marker);
    }
  }
  return keys;
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
