import { outDirsOf, type StagingDirectoryRules } from './directory-rules.js';
import { UsageError } from './errors.js';
import { fileRefusal, type GuardContext, nameRefusal } from './guards.js';
import { isS3Url, normalS3Dir } from './s3-url.js';
import type { PipelineSettings } from './settings.js';
import { storePidCheck } from './store-probe.js';
import type { ObjectStore, StoredFile, StoreEntry } from './store.js';

export type StoreGuardVerdict
  = | { readonly ok: true; readonly entry: StoredFile }
    | { readonly ok: false; readonly reason: string };

/**
 * Every guard a removal from a store must pass, on the entry as planned: a
 * name directly in the staging prefix (no '/'), the name and file rules every
 * backend shares (nameRefusal, fileRefusal: template, published names, a
 * regular file, a dead writer). What is there right before the delete must
 * still be this entry: removeIfUnchanged checks that, after this.
 */
export function guardStoreRemoval(
  ctx: Pick<GuardContext, 'settings' | 'runKey' | 'nowMs' | 'processes'>,
  here: StagingDirectoryRules,
  staging: ObjectStore,
  entry: StoreEntry,
): StoreGuardVerdict {
  if (entry.name === '' || entry.name.includes('/')) {
    return { ok: false, reason: `it is not directly inside the staging prefix ${staging.location}` };
  }
  const named = nameRefusal(ctx, here, entry.name);
  if ('reason' in named) return { ok: false, reason: named.reason };
  const times = entry.kind === 'file'
    ? { mtimeMs: entry.mtimeMs, ctimeMs: entry.mtimeMs, lastChangeUnknown: entry.lastChangeUnknown }
    : { mtimeMs: 0, ctimeMs: 0 };
  const refused = fileRefusal(ctx, here, entry.name, named.match, entry.kind, times,
    (rules) => storePidCheck(staging.backend, named.match, rules, ctx.processes));
  if (refused) return { ok: false, reason: refused };
  if (entry.kind !== 'file') return { ok: false, reason: `it is a ${entry.kind}, not a regular file` };
  return { ok: true, entry };
}

/** Whether `dir` is `ancestor` or lies beneath it: for S3, by bucket and prefix. */
function s3Within(dir: string, ancestor: string): boolean {
  return dir === ancestor || dir.startsWith(`${ancestor}/`);
}

/**
 * Refuses a quarantine prefix that is not fit for an S3 staging prefix's
 * orphans: not S3 (a copy never leaves the store), the staging prefix itself,
 * or at or under any output prefix of the config (published files live
 * there, and a copy must never land beside them or replace one).
 */
export function checkStoreQuarantine(
  settings: Pick<PipelineSettings, 'outDir' | 'stagingDir' | 'neighbours'>,
  quarantine: string,
): string {
  if (!isS3Url(quarantine)) {
    throw new UsageError(
      `The quarantine ${quarantine} is not an S3 prefix, but the staging prefix ${settings.stagingDir} is; a quarantine copy stays in the object store.`,
      'Give --quarantine as s3://BUCKET/PREFIX/.',
    );
  }
  const dir = normalS3Dir(quarantine, 'quarantine');
  if (dir === settings.stagingDir) {
    throw new UsageError(`The quarantine ${dir} is the staging prefix itself; nothing was changed.`, 'Pick another prefix.');
  }
  for (const out of outDirsOf(settings)) {
    if (isS3Url(out) && s3Within(dir, normalS3Dir(out))) {
      throw new UsageError(
        `The quarantine ${dir} is at or under the output prefix ${out}, where published files live; crashdiag never writes there, and nothing was changed.`,
        'Pick a prefix outside every output prefix, e.g. s3://BUCKET/_quarantine/.',
      );
    }
  }
  return dir;
}
