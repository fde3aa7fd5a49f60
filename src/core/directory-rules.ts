import { UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import { dirname, resolve } from 'node:path';
import { isS3Url } from './s3-url.js';
import { type DirectoryIdentity, directoryIdentity, sameDirectory, sameIdentity } from './same-directory.js';
import type { Neighbour, PipelineSettings } from './settings.js';
import { type FinalTemplate, type MarkerTemplate, publishedRunOf } from './template.js';

/** A name that is some run's published output or marker. */
export interface PublishedName {
  /**
   * The run it belongs to ('' for a fixed name); undefined when the pipeline
   * publishing here leaves its output's name to flags, so any name may be its output.
   */
  readonly runKey: string | undefined;
  /** The config pipeline that publishes it; undefined for the pipeline acted on. */
  readonly pipeline: string | undefined;
}

/** How a staging file's writer is judged: the most cautious rules of every pipeline whose staging name fits it. */
export interface WriterRules {
  readonly pidCheck: boolean;
  readonly staleAfterMs: number;
  /** The pipeline whose rules turned PID checks off for this file, when it is not the one acted on. */
  readonly pidCheckOffBy?: string;
  /** Why, when it is not that pipeline's pidCheck false: its reading of the name names another writer. */
  readonly pidCheckOffWhy?: string;
}

/** What every pipeline of the config says about the names in one staging directory. */
export interface StagingDirectoryRules {
  /** Whether staging is the acted-on pipeline's own output directory too. */
  readonly sharedWithOwnOutput: boolean;
  /**
   * The run (and pipeline) whose published output or marker `name` is, in a
   * staging directory that is also an output directory. Such a name is never
   * an orphan, whatever staging template it also fits.
   */
  publishedAs(name: string): PublishedName | undefined;
  /** The liveness rules that apply to the staging file `name`. */
  writerRulesFor(name: string): WriterRules;
}

interface Publisher {
  readonly pipeline: string | undefined;
  readonly final: FinalTemplate;
  readonly marker: MarkerTemplate | null;
}

/** The pipelines that publish into, or stage in, one staging directory. */
interface DirectoryNeighbours {
  readonly sharedWithOwnOutput: boolean;
  readonly publishers: readonly Publisher[];
  /**
   * A pipeline that publishes here under names only its flags give: any name
   * here may be its published output, so none is ever an orphan.
   */
  readonly namesUnknownOf: string | undefined;
  readonly stagers: readonly Neighbour[];
}

/** Who publishes into and who stages in the staging directory, every directory compared by identity. */
async function neighboursOfStaging(fs: FileSystem, settings: PipelineSettings): Promise<DirectoryNeighbours> {
  const here = await directoryIdentity(fs, settings.stagingDir);
  const isHere = async (dir: string | undefined): Promise<boolean> => {
    if (dir === undefined) return false;
    if (here === undefined) return sameDirectory(fs, dir, settings.stagingDir);
    return dir === settings.stagingDir || sameIdentity(here, await directoryIdentity(fs, dir));
  };
  const sharedWithOwnOutput = await isHere(settings.outDir);
  const publishers: Publisher[] = sharedWithOwnOutput
    ? [{ pipeline: undefined, final: settings.final, marker: settings.marker }]
    : [];
  const stagers: Neighbour[] = [];
  let namesUnknownOf: string | undefined;
  for (const neighbour of settings.neighbours ?? []) {
    if (await isHere(neighbour.outDir)) {
      if (neighbour.final) {
        publishers.push({ pipeline: neighbour.pipeline, final: neighbour.final, marker: neighbour.marker });
      } else namesUnknownOf ??= neighbour.pipeline;
    }
    if (await isHere(neighbour.stagingDir)) stagers.push(neighbour);
  }
  return { sharedWithOwnOutput, publishers, namesUnknownOf, stagers };
}

/** The most cautious of `own` and the rules of every other pipeline whose staging name fits `name`. */
function strictestWriterRules(
  settings: PipelineSettings,
  own: WriterRules,
  stagers: readonly Neighbour[],
  name: string,
): WriterRules {
  let rules = own;
  let mine: ReturnType<PipelineSettings['staging']['matchAny']> | null = null;
  for (const other of stagers) {
    const theirs = other.staging.matchAny(name);
    if (!theirs) continue;
    mine ??= settings.staging.matchAny(name);
    // Where the other pipeline reads the name as another writer (another
    // PID, or one on a host), this host's process table says nothing
    // about it: only age can rule that writer out.
    const otherWriter = mine !== undefined && (theirs.pid !== mine.pid || theirs.host !== mine.host);
    const pidCheck = other.pidCheck && !otherWriter;
    const turnedOff = rules.pidCheck && !pidCheck;
    const why = turnedOff && otherWriter
      ? `pipeline ${other.pipeline} stages files of this name in the same directory and reads it as PID ${theirs.pid}${theirs.host === undefined ? '' : ` on host ${theirs.host}`}, a writer this process table cannot rule out`
      : rules.pidCheckOffWhy;
    const offBy = turnedOff ? other.pipeline : rules.pidCheckOffBy;
    rules = {
      pidCheck: rules.pidCheck && pidCheck,
      staleAfterMs: Math.max(rules.staleAfterMs, other.staleAfterMs),
      ...(offBy === undefined ? {} : { pidCheckOffBy: offBy }),
      ...(why === undefined ? {} : { pidCheckOffWhy: why }),
    };
  }
  return rules;
}

/**
 * The one home of "is this name a published output or marker of any
 * pipeline here" and "which liveness rules apply to this file": probe, scan,
 * guards and clean all ask it. Directories are compared by identity, so a
 * pipeline whose output directory is this staging directory under another
 * name (bind mount, symlink, a second NFS path) counts.
 */
export async function rulesForStagingDirectory(
  fs: FileSystem,
  settings: PipelineSettings,
): Promise<StagingDirectoryRules> {
  const { sharedWithOwnOutput, publishers, namesUnknownOf, stagers } = await neighboursOfStaging(fs, settings);
  const ownRules: WriterRules = { pidCheck: settings.pidCheck, staleAfterMs: settings.staleAfterMs };
  return {
    sharedWithOwnOutput,
    publishedAs(name) {
      for (const publisher of publishers) {
        const runKey = publishedRunOf(publisher.final, publisher.marker, name);
        if (runKey !== undefined) return { runKey, pipeline: publisher.pipeline };
      }
      return namesUnknownOf === undefined ? undefined : { runKey: undefined, pipeline: namesUnknownOf };
    },
    // Asked once per file of a million-file scan: with no other pipeline
    // staging here (the usual case) the answer is the pipeline's own rules.
    writerRulesFor: (name) =>
      stagers.length === 0 ? ownRules : strictestWriterRules(settings, ownRules, stagers, name),
  };
}

/** Why a published name is never removed, in words for a refusal or a kept file. */
export function publishedReason(published: PublishedName): string {
  if (published.runKey === undefined) {
    return `it may be a published output of pipeline ${published.pipeline}, which publishes into this directory under a name the config does not give (no final)`;
  }
  const whose = published.pipeline === undefined ? '' : ` of pipeline ${published.pipeline}`;
  return `it is the published output or its marker${whose}`;
}

/** The output directories of a pipeline and of every other pipeline of its config, as given. */
export function outDirsOf(settings: Pick<PipelineSettings, 'outDir' | 'neighbours'>): string[] {
  const dirs = [settings.outDir];
  for (const neighbour of settings.neighbours ?? [])
    if (neighbour.outDir !== undefined) dirs.push(neighbour.outDir);
  return dirs;
}

/** The identities of every output directory of the config that exists. */
export async function outDirectoryIdentities(
  fs: FileSystem,
  settings: Pick<PipelineSettings, 'outDir' | 'neighbours'>,
): Promise<DirectoryIdentity[]> {
  const found: DirectoryIdentity[] = [];
  for (const dir of outDirsOf(settings)) {
    const identity = await directoryIdentity(fs, dir);
    if (identity) found.push(identity);
  }
  return found;
}

/**
 * Refuses a file crashdiag itself writes (its audit log, a lock, a metrics file)
 * whose directory is an output directory of any pipeline in play, by
 * identity: published files live there, and an append or a rename onto one
 * would corrupt or replace a published output.
 */
export async function refuseWriteIntoOutputDirectory(
  fs: FileSystem,
  path: string,
  pipelines: ReadonlyArray<Pick<PipelineSettings, 'outDir' | 'neighbours'>>,
  what: string,
  hint = 'Put it somewhere else (the default is <staging-dir>/.crashdiag/).',
): Promise<void> {
  const target = resolve(path);
  const parent = await directoryIdentity(fs, dirname(target));
  for (const dir of pipelines.flatMap(outDirsOf)) {
    // An S3 output prefix holds no local path: only its identity ({dev: 's3'}) is compared, and never matches.
    const byPath = !isS3Url(dir) && dirname(target) === resolve(dir);
    if (byPath || sameIdentity(parent, await directoryIdentity(fs, dir))) {
      throw new UsageError(
        `The ${what} ${target} is inside the output directory ${dir}, where published files live; crashdiag never writes there, and nothing was changed.`,
        hint,
      );
    }
  }
}

/** One directory that two pipelines of a config both use. */
export interface DirectoryOverlap {
  readonly first: { readonly pipeline: string; readonly role: 'outDir' | 'stagingDir'; readonly dir: string };
  readonly second: { readonly pipeline: string; readonly role: 'outDir' | 'stagingDir'; readonly dir: string };
}

/**
 * Every pair of pipelines that share a directory (by identity, or by path
 * when it does not exist yet): the layouts where one pipeline's published
 * files or live writers sit in another's staging directory.
 */
export async function directoryOverlaps(
  fs: FileSystem,
  pipelines: ReadonlyArray<Pick<Neighbour, 'pipeline' | 'outDir' | 'stagingDir'>>,
): Promise<DirectoryOverlap[]> {
  const dirs: Array<DirectoryOverlap['first'] & { identity: DirectoryIdentity | undefined }> = [];
  for (const { pipeline, outDir, stagingDir } of pipelines) {
    for (const [role, dir] of [['outDir', outDir], ['stagingDir', stagingDir]] as const) {
      if (dir !== undefined) dirs.push({ pipeline, role, dir, identity: await directoryIdentity(fs, dir) });
    }
  }
  const overlaps: DirectoryOverlap[] = [];
  for (const [i, a] of dirs.entries()) {
    for (const b of dirs.slice(i + 1)) {
      if (a.pipeline === b.pipeline) continue;
      if (resolve(a.dir) !== resolve(b.dir) && !sameIdentity(a.identity, b.identity)) continue;
      overlaps.push({
        first: { pipeline: a.pipeline, role: a.role, dir: a.dir },
        second: { pipeline: b.pipeline, role: b.role, dir: b.dir },
      });
    }
  }
  return overlaps;
}

/**
 * Refuses a lock whose directory (<staging-dir>/.crashdiag) is an output
 * directory under another name (a bind mount on it): a lock is created,
 * taken over and removed there, and a published output may bear its name.
 */
export function refuseLockInOutputDirectory(
  fs: FileSystem,
  lockPath: string,
  settings: Pick<PipelineSettings, 'outDir' | 'neighbours'>,
): Promise<void> {
  return refuseWriteIntoOutputDirectory(
    fs,
    lockPath,
    [settings],
    'lock file',
    `Unmount or move what is at ${dirname(lockPath)}; crashdiag creates that directory itself.`,
  );
}
