import type { Deps } from './deps.js';
import { basename, dirname, isAbsolute, relative, sep } from 'node:path';
import {
  outDirectoryIdentities,
  publishedReason,
  rulesForStagingDirectory,
  type StagingDirectoryRules,
  type WriterRules,
} from './directory-rules.js';
import type { EntryKind, PidCheck } from './evidence.js';
import { errnoCode } from './errors.js';
import type { FileSystem } from './fs.js';
import { type Identity, type OwnedMode, ownedModeOf, quarantinePermitted, removalPermitted } from './permission.js';
import type { PlannedRemoval } from './plan.js';
import { checkPid, kindOf } from './probe.js';
import { type DirectoryIdentity, directoryIdentity, sameIdentity } from './same-directory.js';
import { isS3Url } from './s3-url.js';
import type { PipelineSettings } from './settings.js';
import type { StagingName } from './template.js';
import { judgeWriter } from './writer.js';

/** The guards' narrowing of Deps (`nowMs`: the wall clock, read right before the removal) and what is removed. */
export interface GuardContext extends Pick<Deps, 'fs' | 'processes' | 'nowMs' | 'identity'> {
  readonly settings: PipelineSettings;
  readonly runKey: string;
}

/** The identity a file had when every guard passed; the last re-check compares against it. */
export interface FileSnapshot {
  readonly dev: number;
  readonly ino: number;
  readonly bytes: number;
  readonly mtimeMs: number;
  /** A write that restores the mtime (cp -p, touch -d) still moves the ctime. */
  readonly ctimeMs: number;
}

export interface Refusal {
  readonly path: string;
  readonly reason: string;
}

export type GuardVerdict
  = | { readonly ok: true; readonly snapshot: FileSnapshot }
    | { readonly ok: false; readonly reason: string };

export function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The resolved directories every path is held against, read once per fix. */
export interface Boundaries {
  readonly realStaging: string;
  /** Undefined for an S3 output prefix: no local path is ever inside it. */
  readonly realOut: string | undefined;
  /** The staging directory itself: a file's parent must be it, whatever path leads there. */
  readonly stagingIdentity: DirectoryIdentity | undefined;
  /** Every output directory of the config (this pipeline's first): nothing of staging's may end up in one. */
  readonly outIdentities: readonly DirectoryIdentity[];
  /** What every pipeline of the config says about names in the staging directory. */
  readonly here: StagingDirectoryRules;
  /** The staging directory's owner and mode: who may remove from it. */
  readonly stagingAccess: OwnedMode;
  /** With --quarantine, the quarantine directory's (or the ancestor it will be created in) owner and mode. */
  readonly quarantineAccess?: OwnedMode;
}

export async function readBoundaries(ctx: GuardContext): Promise<Boundaries> {
  const { fs, settings } = ctx;
  const realStaging = await fs.realpath(settings.stagingDir);
  return {
    realStaging,
    realOut: isS3Url(settings.outDir) ? undefined : await fs.realpath(settings.outDir),
    stagingIdentity: await directoryIdentity(fs, settings.stagingDir),
    outIdentities: await outDirectoryIdentities(fs, settings),
    here: await rulesForStagingDirectory(fs, settings),
    stagingAccess: ownedModeOf(await fs.lstat(realStaging)),
  };
}

/**
 * Every guard a removal must pass, on the file as it is now: an absolute
 * path, directly inside the real staging directory, named by the staging
 * template for this run key, not a published name, a regular file by lstat
 * (a symlink is never followed), a dead writer by the diagnose rules, and a
 * removal (or move into quarantine) the acting user is permitted.
 */
export async function guardRemoval(
  ctx: GuardContext,
  bounds: Boundaries,
  removal: Pick<PlannedRemoval, 'path'>,
): Promise<GuardVerdict> {
  const { path } = removal;
  if (!isAbsolute(path)) return { ok: false, reason: 'not an absolute path' };
  const name = basename(path);
  const parent = await directoryIdentity(ctx.fs, dirname(path));
  if (parent === undefined) return { ok: false, reason: 'its directory cannot be examined' };
  if (!sameIdentity(parent, bounds.stagingIdentity)) {
    return { ok: false, reason: `it is not directly inside the staging directory ${bounds.realStaging}` };
  }
  const named = nameRefusal(ctx, bounds.here, name);
  if ('reason' in named) return { ok: false, reason: named.reason };
  let stats: Awaited<ReturnType<FileSystem['lstat']>>;
  try {
    stats = await ctx.fs.lstat(path);
  } catch (error) {
    return { ok: false, reason: `it cannot be examined (${errnoCode(error) ?? String(error)})` };
  }
  const times = { mtimeMs: Number(stats.mtimeMs), ctimeMs: Number(stats.ctimeMs) };
  const refused = fileRefusal(ctx, bounds.here, name, named.match, kindOf(stats), times,
    (rules) => checkPid(named.match, rules, ctx.processes));
  if (refused) return { ok: false, reason: refused };
  const denied = permissionDenied(ctx.identity, bounds, ownedModeOf(stats));
  if (denied) return { ok: false, reason: denied };
  return { ok: true, snapshot: snapshotOf(stats) };
}

/**
 * The rules on a name, whatever holds it (a directory or an S3 prefix): named
 * by the staging template for this run key, and no pipeline's published
 * output or marker. The one home of these rules: guardRemoval and
 * guardStoreRemoval both ask it.
 */
export function nameRefusal(
  ctx: Pick<GuardContext, 'settings' | 'runKey'>,
  here: StagingDirectoryRules,
  name: string,
): { readonly match: StagingName } | { readonly reason: string } {
  const match = ctx.settings.staging.matcherFor(ctx.runKey)(name);
  if (!match) return { reason: `its name does not match the staging template for run ${ctx.runKey}` };
  // Where staging is also an output directory (this pipeline's or another's,
  // under any path), a name that could be any run's published output or
  // marker is never removed, even if it also fits the staging template
  // ({date}.csv and {date}.{pid}.csv overlap). This run's own output and
  // marker are among them whenever staging is its own output directory.
  const published = here.publishedAs(name);
  if (published !== undefined) return { reason: publishedReason(published) };
  return { match };
}

/**
 * The rules on the file itself, whatever holds it: a regular file (a symlink
 * is never followed), and a dead writer by the diagnose rules. `pidCheckOf`
 * is the backend's answer to whether the PID in the name can be asked about.
 */
/** The furthest a Date reaches either side of 1970 (ECMA-262's time value range). */
const MAX_DATE_MS = 8.64e15;

/**
 * Why a file whose mtime no Date can hold (tmpfs and btrfs keep 64-bit
 * seconds) is never removed: its record could not say the evidence's age.
 * Asked by fileRefusal (the fixers) and by the janitor.
 */
export function unrecordableTime(mtimeMs: number): string | undefined {
  return Math.abs(mtimeMs) <= MAX_DATE_MS ? undefined : 'its mtime is beyond any date a record can hold: left for a person';
}

export function fileRefusal(
  ctx: Pick<GuardContext, 'settings' | 'nowMs'>,
  here: StagingDirectoryRules,
  name: string,
  match: StagingName,
  kind: EntryKind,
  times: { readonly mtimeMs: number; readonly ctimeMs: number; readonly lastChangeUnknown?: string | undefined },
  pidCheckOf: (rules: WriterRules) => PidCheck,
): string | undefined {
  if (kind !== 'file') return `it is a ${kind}, not a regular file`;
  const unrecordable = unrecordableTime(times.mtimeMs);
  if (unrecordable) return unrecordable;
  const rules = here.writerRulesFor(name);
  const judgement = judgeWriter(
    { pid: match.pid, ...times, pidCheck: pidCheckOf(rules) },
    { ...ctx.settings, staleAfterMs: rules.staleAfterMs },
    ctx.nowMs,
  );
  if (judgement.writer !== 'dead') return `its writer is ${judgement.writer}: ${judgement.reason}`;
  return undefined;
}

function permissionDenied(who: Identity, bounds: Boundaries, file: OwnedMode): string | undefined {
  return (
    removalPermitted(bounds.stagingAccess, file, who)
    ?? (bounds.quarantineAccess ? quarantinePermitted(bounds.quarantineAccess, file, who) : undefined)
  );
}

/**
 * The last look right before a removal: all guards again, and the file must
 * be the very one that passed them (same inode, size, mtime and ctime). Anything
 * else means someone touched it since, and it is left alone.
 */
export async function recheckRemoval(
  ctx: GuardContext,
  bounds: Boundaries,
  removal: Pick<PlannedRemoval, 'path'>,
  before: FileSnapshot,
): Promise<GuardVerdict | { readonly ok: 'gone' }> {
  try {
    await ctx.fs.lstat(removal.path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { ok: 'gone' };
  }
  const verdict = await guardRemoval(ctx, bounds, removal);
  if (!verdict.ok) return verdict;
  const changed = changeSince(before, verdict.snapshot);
  return changed === undefined ? verdict : { ok: false, reason: changed };
}

/**
 * The one answer to "is this still the very file that was checked" (same
 * inode, size, mtime and ctime), asked right before a removal by --fix and
 * clean alike: what changed, or undefined.
 */
export function changeSince(before: FileSnapshot, now: FileSnapshot): string | undefined {
  if (now.dev !== before.dev || now.ino !== before.ino) return 'it was replaced since it was checked';
  if (now.bytes !== before.bytes || now.mtimeMs !== before.mtimeMs || now.ctimeMs !== before.ctimeMs)
    return 'it changed since it was checked: someone is writing it';
  return undefined;
}

/** What identifies a file for that last look, from its lstat. */
export function snapshotOf(stats: Awaited<ReturnType<FileSystem['lstat']>>): FileSnapshot {
  return {
    dev: Number(stats.dev),
    ino: Number(stats.ino),
    bytes: Number(stats.size),
    mtimeMs: Number(stats.mtimeMs),
    ctimeMs: Number(stats.ctimeMs),
  };
}
