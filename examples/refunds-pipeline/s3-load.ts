import type { Journal, Step } from './journal.js';
import { finalName, markerName, s3StagingName } from './names.js';
import type { CrashPoint } from './pipeline.js';
import { type ObjectWriter, parseS3Prefix, s3UrlOf } from './s3-objects.js';

export interface S3Load {
  runDate: string;
  outDir: string;
  stagingDir: string;
  pid: number;
  host: string;
  objects: ObjectWriter;
  journal: Journal;
  crashAt?: CrashPoint | undefined;
  crash: () => never;
  /** Journals a step, then paces. */
  step: (name: Step, details?: Record<string, unknown>) => Promise<void>;
  pause: () => Promise<void>;
}

/**
 * Load, the object-store way: S3 has no rename, so the job puts a staging
 * object, copies it to the final key (readers see the old object or the new
 * one, never a part), deletes the staging object, then puts the marker.
 */
export async function loadToS3(load: S3Load, output: Buffer): Promise<{ finalPath: string; markerPath: string }> {
  const { runDate, objects, journal, crashAt, crash } = load;
  const staging = parseS3Prefix(load.stagingDir);
  const out = parseS3Prefix(load.outDir);
  const stagingKey = `${staging.prefix}${s3StagingName(runDate, load.host, load.pid)}`;
  const finalKey = `${out.prefix}${finalName(runDate)}`;
  const markerKey = `${out.prefix}${markerName(runDate)}`;

  // If-None-Match, like open(..., 'wx') locally: an object under this PID's
  // key is a reused PID's orphan, never ours to overwrite. A PutObject that
  // fails leaves no object behind, so there is nothing to clean up here.
  await objects.putNew(staging.bucket, stagingKey, output);
  await load.step('staged', { path: s3UrlOf(staging.bucket, stagingKey), bytes: output.length });
  if (crashAt === 'after-staging') crash();

  try {
    await objects.copy(staging.bucket, stagingKey, out.bucket, finalKey);
  } catch (error) {
    // A failure we can see cleans up after itself; only a kill leaves an orphan behind.
    await objects.remove(staging.bucket, stagingKey).catch(() => {});
    throw error;
  }
  const finalPath = s3UrlOf(out.bucket, finalKey);
  await journal.record('copied', { path: finalPath });
  if (crashAt === 'after-copy') crash();
  await load.pause();

  await objects.remove(staging.bucket, stagingKey);
  await journal.record('staging-deleted');
  if (crashAt === 'after-delete') crash();
  await load.pause();

  // The marker comes last, as locally: a marker whose output is missing
  // would tell downstream to read what is not there.
  await objects.put(out.bucket, markerKey, new Uint8Array(0));
  const markerPath = s3UrlOf(out.bucket, markerKey);
  await journal.record('marked', { path: markerPath });
  if (crashAt === 'after-marker') crash();
  await load.pause();

  await journal.record('done');
  return { finalPath, markerPath };
}
