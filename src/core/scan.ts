import { join } from 'node:path';
import {
  classifySummary,
  emptyStagingSummary,
  foldStagingEntry,
  judgeStagingEntry,
  type RunVerdict,
  type StagingSummary,
} from './classify.js';
import { rulesForStagingDirectory } from './directory-rules.js';
import type { PathFacts } from './evidence.js';
import {
  checkDirectory,
  describeStagingBatch,
  listInBatches,
  listMatching,
  lstatFacts,
  type ProbeContext,
  runEvidence,
} from './probe.js';
import { memoizedRunKeyCheck } from './run-key.js';
import { IO_CONCURRENCY, mapPool } from './pool.js';
import { memoizedProcessTable } from './process-table.js';
import type { PipelineSettings } from './settings.js';
import { markerNameIsShared, type StagingName } from './template.js';
import { CLOCK_SLACK_MS } from './writer.js';

export interface ScanOptions {
  /** Outputs or markers changed within this window are listed; orphans of any age always are. */
  readonly sinceMs: number;
  /**
   * Keys are dates: every date in the window without an output shows as A/B/C.
   * Only where the output's name carries the key: one fixed-name file cannot
   * say which dates ran, and judging each date by it would show a week of
   * DONE for a file written this morning.
   */
  readonly daily: boolean;
  /**
   * With `daily`, the dates to list (the caller decides them in the user's
   * zone, up to --until); without, every UTC date from the window's start to now.
   */
  readonly dailyDates?: readonly string[];
  /** Told how many staging-directory entries were looked at so far, for a progress line. */
  readonly onEntries?: (entriesSeen: number) => void;
}

export interface ScanResult {
  readonly pipeline: string | undefined;
  /** Per run, its staging files as totals and the first findings: never a record per file. */
  readonly runs: readonly RunVerdict[];
  /** Newest mtime among published outputs (with their markers), epoch ms. */
  readonly newestPublishedMs: number | undefined;
  readonly durationMs: number;
  /** What could not be told about the pipeline as a whole (S3: uploads that cannot be listed), never read as "none". */
  readonly notes?: readonly string[];
}

interface OutEntry {
  final?: string;
  marker?: string;
}

/** The run keys an output-directory name is the output of, or the marker of. */
interface OutRoles {
  readonly finalKey: string | undefined;
  readonly markerKey: string | undefined;
}

const MS_PER_DAY = 86_400_000;

/** The UTC dates from `fromMs` to `toMs`, as YYYY-MM-DD. */
export function datesBetween(fromMs: number, toMs: number): string[] {
  const dates: string[] = [];
  for (let day = Math.floor(fromMs / MS_PER_DAY); day <= Math.floor(toMs / MS_PER_DAY); day++) {
    dates.push(new Date(day * MS_PER_DAY).toISOString().slice(0, 10));
  }
  return dates;
}

/**
 * Every run of one pipeline, from one listing of the staging directory and
 * one of the output directory, grouped by run key: never one pass per key.
 * List (each staging file judged and folded into its run's totals as it is
 * listed), group the outputs by key, look at them, name the keys in view
 * (filling in the dates with nothing on disk), classify.
 */
export async function scanPipeline(
  ctx: ProbeContext & { readonly wallClock: () => number },
  settings: PipelineSettings,
  options: ScanOptions,
): Promise<ScanResult> {
  const started = ctx.wallClock();
  ctx = { ...ctx, processes: memoizedProcessTable(ctx.processes) };
  await checkDirectory(ctx.fs, settings.outDir, 'output directory');
  await checkDirectory(ctx.fs, settings.stagingDir, 'staging directory');
  const staging = await listStaging(ctx, settings, options);
  const outputs = new OutputLooks(ctx, settings, groupOutputs(staging.outNames));
  const keys = await keysInView(ctx, settings, options, staging, outputs);
  const runs = await classifyRuns(ctx, settings, keys, staging, outputs);
  const { newestPublishedMs } = outputs;
  return { pipeline: settings.pipeline, runs, newestPublishedMs, durationMs: ctx.wallClock() - started };
}

/** What one listing of the staging directory (and, where it is the same, the output directory) found. */
interface StagingListing {
  /** Per run key, its staging files' totals. */
  readonly summaries: Map<string, StagingSummary>;
  /** Keys with a staging file gone between the listing and its lstat. */
  readonly vanished: Set<string>;
  /** Output-directory names that are some key's output or marker. */
  readonly outNames: ReadonlyArray<{ name: string; match: OutRoles }>;
}

/** The run keys a name is a staging file, output or marker of; a "key" that could not be one means another file. */
function namingRoles(settings: PipelineSettings) {
  const isValid = memoizedRunKeyCheck();
  const valid = (key: string | undefined): string | undefined =>
    key !== undefined && isValid(key) ? key : undefined;
  return {
    stagingRole: (name: string): StagingName | undefined => {
      const match = settings.staging.matchAny(name);
      return match && valid(match.runKey) !== undefined ? match : undefined;
    },
    outRoles: (name: string): OutRoles | undefined => {
      const finalKey = valid(settings.final.runKeyOf(name));
      const markerKey = valid(settings.marker?.runKeyOf(name, settings.final));
      return finalKey === undefined && markerKey === undefined ? undefined : { finalKey, markerKey };
    },
  };
}

/**
 * Lists the staging directory once. Each staging file is looked at while the
 * directory is listed and folded into its run's summary at once: nothing per
 * file outlives its batch. A pipeline that stages inside its output directory
 * gets one listing of it, not two.
 */
async function listStaging(
  ctx: ProbeContext,
  settings: PipelineSettings,
  options: ScanOptions,
): Promise<StagingListing> {
  const { stagingRole, outRoles } = namingRoles(settings);
  const here = await rulesForStagingDirectory(ctx.fs, settings);
  const rules = { freshWithinMs: settings.freshWithinMs, staleAfterMs: settings.staleAfterMs };
  const summaries = new Map<string, StagingSummary>();
  const vanished = new Set<string>();
  const fold = async (batch: ReadonlyArray<{ name: string; match: StagingName }>): Promise<void> => {
    // In listing order: each entry's key is its batch twin's.
    const described = await describeStagingBatch(ctx, settings, here, batch);
    described.forEach((entry, index) => {
      const key = batch[index]?.match.runKey ?? '';
      if (entry.status === 'missing') {
        vanished.add(key);
        return;
      }
      let summary = summaries.get(key);
      if (!summary) {
        summary = emptyStagingSummary();
        summaries.set(key, summary);
      }
      foldStagingEntry(summary, judgeStagingEntry(entry, rules, ctx.nowMs));
    });
  };
  const progress = { onEntries: options.onEntries };
  let outNames: Array<{ name: string; match: OutRoles }> = [];
  if (settings.final.keyed && here.sharedWithOwnOutput) {
    await listInBatches(ctx.fs, settings.stagingDir, 'staging directory', (name) => {
      const out = outRoles(name);
      if (out) outNames.push({ name, match: out });
      return stagingRole(name);
    }, fold, progress);
  } else {
    await listInBatches(ctx.fs, settings.stagingDir, 'staging directory', stagingRole, fold, progress);
    if (settings.final.keyed)
      outNames = await listMatching(ctx.fs, settings.outDir, 'output directory', outRoles);
  }
  return { summaries, vanished, outNames };
}

/** The output-directory names grouped by the run key they are the output or marker of. */
function groupOutputs(outNames: ReadonlyArray<{ name: string; match: OutRoles }>): Map<string, OutEntry> {
  const outByKey = new Map<string, OutEntry>();
  const note = (key: string, role: keyof OutEntry, name: string) => {
    const entry = outByKey.get(key) ?? {};
    entry[role] = name;
    outByKey.set(key, entry);
  };
  for (const { name, match } of outNames) {
    if (match.finalKey !== undefined) note(match.finalKey, 'final', name);
    if (match.markerKey !== undefined) note(match.markerKey, 'marker', name);
  }
  // Both templates can claim a name: with final `out_{date}`, `out_K.success`
  // is K's marker or the output of a key "K.success". Beside K's output it
  // is K's marker; a phantom run would hide K's DONE behind two UNPUBLISHED.
  for (const { name, match } of outNames) {
    if (match.finalKey === undefined || match.markerKey === undefined) continue;
    if (outByKey.get(match.markerKey)?.final === undefined) continue;
    const phantom = outByKey.get(match.finalKey);
    if (phantom?.final !== name) continue;
    delete phantom.final;
    if (phantom.marker === undefined) outByKey.delete(match.finalKey);
  }
  return outByKey;
}

type OutputFacts = { final: PathFacts; marker: PathFacts | null };

/** The outputs and markers, each path looked at once, and the newest publish among them. */
class OutputLooks {
  readonly #ctx: ProbeContext;
  readonly #settings: PipelineSettings;
  /** A marker every key shares (`_SUCCESS`) is no key's in the listing: it is looked at (once). */
  readonly #markerShared: boolean;
  readonly outByKey: ReadonlyMap<string, OutEntry>;
  /** A fixed-name output is shared by every run key: each path is looked at once. */
  readonly #looked = new Map<string, Promise<PathFacts>>();
  /** Newest mtime among published outputs (with their markers), epoch ms. */
  newestPublishedMs: number | undefined;

  constructor(ctx: ProbeContext, settings: PipelineSettings, outByKey: ReadonlyMap<string, OutEntry>) {
    this.#ctx = ctx;
    this.#settings = settings;
    this.#markerShared = markerNameIsShared(settings.final, settings.marker);
    this.outByKey = outByKey;
  }

  #look(path: string, listedThere: boolean | undefined): Promise<PathFacts> {
    if (listedThere === false) return Promise.resolve({ path, status: 'missing' });
    let facts = this.#looked.get(path);
    if (!facts) {
      facts = lstatFacts(this.#ctx.fs, path);
      this.#looked.set(path, facts);
    }
    return facts;
  }

  /** A key's output and marker; for keyed names the listing already says whether each exists. */
  async factsFor(key: string): Promise<OutputFacts> {
    const { outDir, final: template, marker: markerTemplate } = this.#settings;
    const finalName = template.nameFor(key);
    const entry = template.keyed ? (this.outByKey.get(key) ?? {}) : undefined;
    const final = await this.#look(join(outDir, finalName), entry ? entry.final !== undefined : undefined);
    const markerName = markerTemplate?.nameFor(key, finalName);
    const listedMarker = entry && !this.#markerShared ? entry.marker !== undefined : undefined;
    const marker = markerName === undefined ? null : await this.#look(join(outDir, markerName), listedMarker);
    return { final, marker };
  }

  /** Looked at now, whatever the listing said. */
  async factsAfresh(key: string): Promise<OutputFacts> {
    const { fs } = this.#ctx;
    const { outDir, final: template, marker: markerTemplate } = this.#settings;
    const finalName = template.nameFor(key);
    const final = await lstatFacts(fs, join(outDir, finalName));
    const marker = markerTemplate ? await lstatFacts(fs, join(outDir, markerTemplate.nameFor(key, finalName))) : null;
    return { final, marker };
  }

  /**
   * Counts an output as published as diagnose judges it: a regular file, and
   * a marker that vouches for it (for a fixed name, one written after the
   * output now in place).
   */
  notePublished({ final, marker }: OutputFacts): void {
    const isFile = (facts: PathFacts) => facts.status === 'present' && facts.kind === 'file';
    if (!isFile(final) || final.mtimeMs === undefined) return;
    if (marker !== null) {
      if (!isFile(marker)) return;
      if (!this.#settings.final.keyed && (marker.mtimeMs ?? 0) + CLOCK_SLACK_MS < final.mtimeMs) return;
    }
    this.newestPublishedMs = Math.max(this.newestPublishedMs ?? 0, final.mtimeMs);
  }
}

/**
 * The keys a scan reports: every key with staging files, every key whose
 * output or marker changed within the window, and with --daily every date of
 * the window that has no output at all (A/B/C, nothing on disk).
 */
async function keysInView(
  ctx: ProbeContext,
  settings: PipelineSettings,
  options: ScanOptions,
  staging: StagingListing,
  outputs: OutputLooks,
): Promise<Set<string>> {
  const keys = new Set([...staging.summaries.keys(), ...staging.vanished]);
  const windowStart = ctx.nowMs - options.sinceMs;
  const outKeys = [...outputs.outByKey.keys()];
  const outFacts = await mapPool(outKeys, IO_CONCURRENCY, (key) => outputs.factsFor(key));
  for (const [index, key] of outKeys.entries()) {
    const { final, marker } = outFacts[index] as OutputFacts;
    const changed = Math.max(
      final.mtimeMs ?? Number.NEGATIVE_INFINITY,
      marker?.mtimeMs ?? Number.NEGATIVE_INFINITY,
    );
    if (changed >= windowStart) keys.add(key);
    outputs.notePublished({ final, marker });
  }
  if (options.daily && settings.final.keyed) {
    for (const date of options.dailyDates ?? datesBetween(windowStart, ctx.nowMs)) {
      if (!outputs.outByKey.has(date)) keys.add(date);
    }
  }
  return keys;
}

/** Each key's state from its staging totals and its output, worst first. */
async function classifyRuns(
  ctx: ProbeContext,
  settings: PipelineSettings,
  keys: ReadonlySet<string>,
  staging: StagingListing,
  outputs: OutputLooks,
): Promise<RunVerdict[]> {
  const runs: RunVerdict[] = [];
  if (!settings.final.keyed) {
    // The fixed-name output is there whether or not any key is in view: a
    // healthy pipeline with an empty staging directory must not report "never
    // published". Only a marker named after the key needs keys to be found.
    const markerFixed = settings.marker === null || markerNameIsShared(settings.final, settings.marker);
    for (const key of markerFixed ? [''] : keys) outputs.notePublished(await outputs.factsFor(key));
  }
  for (const key of keys) {
    // A staging file gone between the listing and its lstat was most likely
    // renamed into place, possibly after the output directory was listed:
    // look at the output itself, or a run that finished while we looked reads as A/B/C.
    const gone = staging.vanished.has(key);
    const { final, marker } = gone ? await outputs.factsAfresh(key) : await outputs.factsFor(key);
    if (gone) outputs.notePublished({ final, marker });
    runs.push(classifySummary({
      ...runEvidence(settings, key, ctx.nowMs, { final, marker, staging: [] }),
      staging: staging.summaries.get(key) ?? emptyStagingSummary(),
    }));
  }
  runs.sort((a, b) => b.exitCode - a.exitCode || (a.run < b.run ? 1 : a.run > b.run ? -1 : 0));
  return runs;
}
