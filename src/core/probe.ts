import type { Deps } from './deps.js';
import { isUtf8 } from 'node:buffer';
import { join } from 'node:path';
import { rulesForStagingDirectory, type StagingDirectoryRules, type WriterRules } from './directory-rules.js';
import { errnoCode, UsageError } from './errors.js';
import type { EntryKind, PathFacts, PidCheck, RunEvidence, StagingEntry } from './evidence.js';
import type { FileSystem } from './fs.js';
import { foldRunEntry, newStagingFold, type StagingFold } from './classify.js';
import { IO_CONCURRENCY, mapPool } from './pool.js';
import type { ProcessTable } from './process-table.js';
import { memoizedRunKeyCheck } from './run-key.js';
import { isS3Url } from './s3-url.js';
import type { PipelineSettings } from './settings.js';
import { MAX_PID, type StagingName } from './template.js';

/** What the core needs from the outside world to look at a run: the disk, the process table, and the judged now. */
export type ProbeContext = Pick<Deps, 'fs' | 'processes' | 'nowMs'>;

interface StatsLike {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  size: number | bigint;
  mtimeMs: number | bigint;
  ctimeMs?: number | bigint;
  birthtimeMs?: number | bigint;
}

export function kindOf(stats: StatsLike): EntryKind {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  return 'other';
}

/** lstat one path into facts: a missing path is a fact, not an error. */
export async function lstatFacts(fs: FileSystem, path: string): Promise<PathFacts> {
  try {
    return factsOf(path, fs.lstatSync ? fs.lstatSync(path) : await fs.lstat(path));
  } catch (error) {
    return failedFacts(path, error);
  }
}

/** The same look without a promise, where the file system offers a synchronous lstat. */
function lstatFactsSync(lstat: NonNullable<FileSystem['lstatSync']>, path: string): PathFacts {
  try {
    return factsOf(path, lstat(path));
  } catch (error) {
    return failedFacts(path, error);
  }
}

function factsOf(path: string, stats: StatsLike): PathFacts {
  return {
    path,
    status: 'present',
    kind: kindOf(stats),
    bytes: Number(stats.size),
    mtimeMs: Number(stats.mtimeMs),
    // Without a ctime (a source that keeps none), the mtime is the last change.
    ctimeMs: stats.ctimeMs === undefined ? undefined : Number(stats.ctimeMs),
    // 0 where the file system keeps none: not a time.
    birthtimeMs: Number(stats.birthtimeMs ?? 0) > 0 ? Number(stats.birthtimeMs) : undefined,
  };
}

function failedFacts(path: string, error: unknown): PathFacts {
  const code = errnoCode(error);
  if (code === 'ENOENT' || code === 'ENOTDIR') return { path, status: 'missing' };
  if (code && code !== 'EACCES' && code !== 'EPERM' && code !== 'EIO' && code !== 'ELOOP') throw error;
  return { path, status: 'unreadable', error: code ?? String(error) };
}

// Directory entries fetched per getdents batch: small enough to keep memory
// flat, large enough that the syscall count does not matter.
const LISTING_BUFFER = 256;

/** A name the file system cannot hold is the user's to fix, not an I/O error. */
function checkNameLength(name: string, flag: string): void {
  if (Buffer.byteLength(name) > 255) {
    throw new UsageError(
      `${flag} with this run key makes a name of ${Buffer.byteLength(name)} bytes; a file name holds at most 255.`,
    );
  }
}

/** Checks that a configured directory exists and can be listed; a usage error otherwise. */
export async function checkDirectory(fs: FileSystem, path: string, role: string): Promise<void> {
  if (isS3Url(path)) {
    throw new UsageError(
      `The ${role} ${path} is an S3 prefix, which this command does not read yet.`,
      'diagnose (and diagnose --fix) read S3 prefixes; use it per run key.',
    );
  }
  try {
    const stats = await fs.stat(path);
    if (!stats.isDirectory()) throw new UsageError(`The ${role} ${path} is not a directory.`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UsageError(
        `The ${role} ${path} does not exist.`,
        'Check the path, or the pipeline in the config.',
      );
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UsageError(`The ${role} ${path} cannot be read (permission denied).`);
    }
    throw error;
  }
}

/**
 * Streams one directory listing and keeps the entries `match` accepts. Memory
 * grows with the matches, not with the entries: staging directories in the
 * wild hold hundreds of thousands of leftovers.
 */
export async function listMatching<T>(
  fs: FileSystem,
  dir: string,
  role: string,
  match: (name: string) => T | undefined,
): Promise<Array<{ name: string; match: T }>> {
  const found: Array<{ name: string; match: T }> = [];
  await listInBatches(fs, dir, role, match, (batch) => {
    found.push(...batch);
  });
  return found;
}

/** What a long listing tells whoever shows progress. */
export interface ListingProgress {
  /** Called every LISTING_BUFFER entries looked at, matching or not. */
  readonly onEntries?: (entriesSeen: number) => void;
}

/**
 * Streams one directory listing and hands the entries `match` accepts to
 * `onBatch`, `batchSize` at a time, while listing: memory stays flat
 * whatever the number of matches (a million orphans of one crash loop).
 */
export async function listInBatches<T>(
  fs: FileSystem,
  dir: string,
  role: string,
  match: (name: string) => T | undefined,
  /** 'stop' ends the listing there. */
  onBatch: (batch: Array<{ name: string; match: T }>) => void | 'stop' | Promise<void | 'stop'>,
  options: ListingProgress & { readonly batchSize?: number } = {},
): Promise<void> {
  const batchSize = options.batchSize ?? LISTING_BUFFER;
  let handle: Awaited<ReturnType<FileSystem['opendir']>>;
  try {
    handle = await fs.opendir(dir, { bufferSize: LISTING_BUFFER });
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UsageError(`The ${role} ${dir} cannot be listed (permission denied).`);
    }
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`The ${role} ${dir} does not exist.`);
    throw error;
  }
  // readSync, not for-await: one promise per entry made the listing twice as
  // slow on a 1M-entry directory (measured: 1.1-1.3 s against 0.55-0.6 s).
  // Entries are still read in small batches, so memory stays flat.
  let batch: Array<{ name: string; match: T }> = [];
  let seen = 0;
  try {
    for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
      const result = match(entry.name);
      if (result !== undefined) batch.push({ name: entry.name, match: result });
      if (batch.length >= batchSize) {
        const full = batch;
        batch = [];
        if ((await onBatch(full)) === 'stop') return;
      }
      if (++seen % LISTING_BUFFER === 0) options.onEntries?.(seen);
    }
    if (batch.length > 0) await onBatch(batch);
    options.onEntries?.(seen);
  } finally {
    handle.closeSync();
  }
}

// What Node puts in a string file name for each byte that is not UTF-8.
const REPLACEMENT = '\uFFFD';

const UNDECODABLE = 'its name is not valid UTF-8 (each bad byte shown as \\xNN); it is never deleted: a person must look';

/** How many bytes a UTF-8 sequence starting with `lead` takes; 0 for a byte no sequence starts with. */
function utf8SequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead < 0xe0) return 2;
  if (lead >= 0xe0 && lead < 0xf0) return 3;
  if (lead >= 0xf0 && lead < 0xf5) return 4;
  return 0;
}

/** A file name's bytes as text: valid UTF-8 decoded, every other byte as \xNN. */
export function escapeNameBytes(bytes: Buffer): string {
  let text = '';
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] ?? 0;
    const length = utf8SequenceLength(lead);
    const sequence = length > 0 ? bytes.subarray(i, i + length) : undefined;
    if (sequence && sequence.length === length && isUtf8(sequence)) {
      text += sequence.toString('utf8');
      i += length;
    } else {
      text += `\\x${lead.toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return text;
}

/**
 * Hands `onEntry` each entry of `dir` whose name is not valid UTF-8 and is
 * `suspect` once each bad byte is replaced by U+FFFD, as Node's string
 * listing shows them. A second listing, by bytes, made only when the first saw
 * such a name: a string listing is what keeps a 1M-entry directory fast. Each
 * is handed over as it is met, as the first listing's are: 100,000 of them
 * held at once were 100 MB more of a read-only diagnose.
 */
async function undecodableEntries(
  fs: FileSystem,
  dir: string,
  suspect: (lossy: string) => boolean,
  onEntry: (entry: StagingEntry) => void,
): Promise<void> {
  const handle = await fs.opendir(dir, { bufferSize: LISTING_BUFFER, encoding: 'buffer' as BufferEncoding });
  try {
    for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
      const bytes = entry.name as unknown as Buffer;
      if (!Buffer.isBuffer(bytes) || isUtf8(bytes) || !suspect(bytes.toString('utf8'))) continue;
      const name = escapeNameBytes(bytes);
      onEntry({
        path: join(dir, name),
        status: 'unreadable',
        error: UNDECODABLE,
        name,
        pid: 0,
        host: undefined,
        pidCheck: { checked: false, why: 'its name is not valid UTF-8' },
      });
    }
  } finally {
    handle.closeSync();
  }
}

/** Asks the process table about a staging file's PID, when that question has a meaning. */
export function checkPid(
  name: StagingName,
  settings: Pick<WriterRules, 'pidCheck' | 'pidCheckOffBy' | 'pidCheckOffWhy'>,
  processes: ProcessTable,
): PidCheck {
  if (!settings.pidCheck && settings.pidCheckOffWhy !== undefined)
    return { checked: false, why: settings.pidCheckOffWhy };
  if (!settings.pidCheck && settings.pidCheckOffBy !== undefined) {
    return {
      checked: false,
      why: `pipeline ${settings.pidCheckOffBy} stages files of this name in the same directory and judges their writers by age only (pidCheck false)`,
    };
  }
  if (!settings.pidCheck) return { checked: false, why: 'PID checks are off (--no-pid-check)' };
  // A PID only means something on the host, and in the PID namespace, that wrote the file.
  if (name.host !== undefined && name.host !== processes.hostname) {
    return { checked: false, why: `written on host ${name.host}, not this one (${processes.hostname})` };
  }
  if (name.pid <= 0 || name.pid > MAX_PID) {
    return { checked: false, why: `${name.pid} is not a PID this system can hand out` };
  }
  return { checked: true, facts: processes.inspect(name.pid) };
}

/** Stats the staging entries for one run key, sorted by path, vanished ones left out. */
export async function describeStagingEntries(
  ctx: ProbeContext,
  settings: PipelineSettings,
  entries: ReadonlyArray<{ name: string; match: StagingName }>,
): Promise<StagingEntry[]> {
  const here = await rulesForStagingDirectory(ctx.fs, settings);
  // Sorted before they are looked at, by name (in one directory, the order of
  // their paths): the listing's small records sort several times faster than
  // the entries they become (100,000 of them: 10 ms against 100 ms).
  const sorted = [...entries].sort((a, b) => compareText(a.name, b.name));
  const result = await describeStagingBatch(ctx, settings, here, sorted);
  // An entry that vanished between listing and lstat was renamed or cleaned: not ours any more.
  return result.filter((entry) => entry.status !== 'missing');
}

/**
 * Stats a batch of staging entries, in listing order, vanished ones included
 * (status 'missing'). Synchronously where the file system allows: no promise
 * per file, which over a million files is most of the cost.
 */
export async function describeStagingBatch(
  ctx: ProbeContext,
  settings: PipelineSettings,
  // In a directory that is also an output directory (this pipeline's or
  // another's), {date}.csv and {date}.{pid}.csv overlap: such a name may be
  // a run's published output.
  here: StagingDirectoryRules,
  entries: ReadonlyArray<{ name: string; match: StagingName }>,
): Promise<StagingEntry[]> {
  // One literal per file, no spreads, and the path by concatenation: over a
  // million files, spreads and path.join were a third of scan's time.
  const base = join(settings.stagingDir, '/');
  const describe = (entry: { name: string; match: StagingName }, looked: PathFacts): StagingEntry => {
    let facts = looked;
    // A name read with U+FFFD for bytes that are not UTF-8 names no file: it is reported, never dropped.
    if (facts.status === 'missing' && entry.name.includes(REPLACEMENT))
      facts = { path: facts.path, status: 'unreadable', error: UNDECODABLE };
    const other = here.publishedAs(entry.name);
    const rules = here.writerRulesFor(entry.name);
    return {
      path: facts.path,
      status: facts.status,
      kind: facts.kind,
      bytes: facts.bytes,
      mtimeMs: facts.mtimeMs,
      ctimeMs: facts.ctimeMs,
      birthtimeMs: facts.birthtimeMs,
      error: facts.error,
      name: entry.name,
      pid: entry.match.pid,
      host: entry.match.host,
      pidCheck: checkPid(entry.match, rules, ctx.processes),
      staleAfterMs: rules.staleAfterMs === settings.staleAfterMs ? undefined : rules.staleAfterMs,
      alsoPublishedAs: other?.runKey,
      alsoPublishedBy: other?.pipeline,
    };
  };
  const lstat = ctx.fs.lstatSync;
  if (lstat) return entries.map((entry) => describe(entry, lstatFactsSync(lstat, base + entry.name)));
  return mapPool(entries, IO_CONCURRENCY, async (entry) =>
    describe(entry, await lstatFacts(ctx.fs, base + entry.name)));
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Where a run's output and marker are looked at when they are not in a local
 * output directory (an S3 output prefix beside a local staging directory):
 * the staging side, and every removal guard, stay the local ones.
 */
export interface OutputSide {
  /** The output or marker `name` as path facts; a missing one is a fact, not an error. */
  facts(name: string): Promise<PathFacts>;
  /** What identifies the output `name` now (undefined: none there), to tell whether it was replaced meanwhile. */
  identity(name: string): Promise<string | undefined>;
}

/**
 * Looks at one run key. Staging is read before the output and the output
 * before its marker, the order a writer creates them in, so a run finishing
 * while we look shows up as its staging file vanishing, not as an output
 * that appears from nowhere.
 */
export async function probeRun(
  ctx: ProbeContext,
  settings: PipelineSettings,
  runKey: string,
  output?: OutputSide,
): Promise<RunEvidence> {
  const staging: StagingEntry[] = [];
  const rest = await probeRunInto(ctx, settings, runKey, output, (entry) => {
    staging.push(entry);
  });
  return { ...rest, staging: staging.sort((a, b) => compareText(a.path, b.path)) };
}

/**
 * probeRun with each staging entry judged as soon as it is looked at, in the
 * order the directory lists them: the evidence but its staging entries, and
 * their fold (classify.ts), which keeps a report for the first `keep` files
 * by path and totals for every one. What a read-only diagnose uses: nothing
 * is held per file but a dead writer's small record, so a crash loop's
 * 100,000 orphans cost their listing and their lstats, and little more.
 */
export async function probeRunFolded(
  ctx: ProbeContext,
  settings: PipelineSettings,
  runKey: string,
  keep: number,
): Promise<{ evidence: Omit<RunEvidence, 'staging'>; fold: StagingFold }> {
  const fold = newStagingFold(keep);
  const rules = { freshWithinMs: settings.freshWithinMs, staleAfterMs: settings.staleAfterMs };
  const evidence = await probeRunInto(ctx, settings, runKey, undefined, (entry) => {
    foldRunEntry(fold, entry, rules, ctx.nowMs);
  });
  return { evidence, fold };
}

/**
 * The look both probes share: each staging entry handed to `onEntry` as soon
 * as it is looked at, in listing order (vanished ones left out), the rest of
 * the evidence returned.
 */
async function probeRunInto(
  ctx: ProbeContext,
  settings: PipelineSettings,
  runKey: string,
  output: OutputSide | undefined,
  onEntry: (entry: StagingEntry) => void,
): Promise<Omit<RunEvidence, 'staging'>> {
  if (!output) await checkDirectory(ctx.fs, settings.outDir, 'output directory');
  await checkDirectory(ctx.fs, settings.stagingDir, 'staging directory');
  const here = await rulesForStagingDirectory(ctx.fs, settings);
  const matcher = settings.staging.matcherFor(runKey);
  // Names that are not UTF-8 but start like this key's are reported, not dropped.
  const prefix = settings.staging.prefixFor(runKey);
  // Read with U+FFFD and starting like this key's names: one the template did not read is looked for
  // by bytes. A rule, not a set of the names met: 100,000 such names would be held twice.
  const undecodableLike = (name: string) =>
    name.includes(REPLACEMENT) && (prefix === '' ? name.includes(runKey) : name.startsWith(prefix));
  let sawSuspect = false;
  const match = (name: string) => {
    // Most of a million names end here, at one startsWith, as in the matcher itself.
    if (prefix !== '' && !name.startsWith(prefix)) return undefined;
    const found = matcher(name);
    if (found === undefined && undecodableLike(name)) sawSuspect = true;
    return found;
  };
  await listInBatches(ctx.fs, settings.stagingDir, 'staging directory', match, async (batch) => {
    for (const entry of await describeStagingBatch(ctx, settings, here, batch)) {
      // An entry that vanished between listing and lstat was renamed or cleaned: not ours any more.
      if (entry.status !== 'missing') onEntry(entry);
    }
  });
  if (sawSuspect) {
    const suspect = (lossy: string) => undecodableLike(lossy) && matcher(lossy) === undefined;
    await undecodableEntries(ctx.fs, settings.stagingDir, suspect, onEntry);
  }
  const finalName = settings.final.nameFor(runKey);
  checkNameLength(finalName, '--final');
  if (settings.marker) checkNameLength(settings.marker.nameFor(runKey, finalName), '--marker');
  const facts = (name: string) => (output ? output.facts(name) : lstatFacts(ctx.fs, join(settings.outDir, name)));
  const final = await facts(finalName);
  const marker = settings.marker ? await facts(settings.marker.nameFor(runKey, finalName)) : null;
  const { staging: _none, ...evidence } = runEvidence(settings, runKey, ctx.nowMs, { final, marker, staging: [] });
  return evidence;
}

/** Assembles what the disk said about one run key with the pipeline's rules, for the classifier. */
export function runEvidence(
  settings: PipelineSettings,
  runKey: string,
  nowMs: number,
  facts: Pick<RunEvidence, 'final' | 'marker' | 'staging'>,
): RunEvidence {
  return {
    runKey,
    nowMs,
    rules: { freshWithinMs: settings.freshWithinMs, staleAfterMs: settings.staleAfterMs },
    finalKeyed: settings.final.keyed,
    ...facts,
  };
}

/**
 * One pass over the staging directory for every run key at once (clean),
 * handed over a batch at a time while listing. A "key" that could not be a
 * run key (spaces, slashes...) means some other file.
 */
export async function listAllStaging(
  fs: FileSystem,
  settings: Pick<PipelineSettings, 'stagingDir' | 'staging'>,
  onBatch: (batch: Array<{ name: string; match: StagingName }>) => void | 'stop' | Promise<void | 'stop'>,
  options: ListingProgress & { readonly batchSize?: number } = {},
): Promise<void> {
  const valid = memoizedRunKeyCheck();
  await listInBatches(fs, settings.stagingDir, 'staging directory', (name) => {
    const match = settings.staging.matchAny(name);
    return match && valid(match.runKey) ? match : undefined;
  }, onBatch, options);
}
