import { UsageError } from './errors.js';

/**
 * The seam between the core and where a pipeline's files live: a local
 * directory or an S3 prefix. The classifier, the planner and the guards see
 * only names, sizes, ages and opaque versions, never which backend answered.
 *
 * A store is one "directory": names are relative to it (a file name, or a key
 * with the prefix taken off), and listing never descends into sub-directories.
 */
export interface ObjectStore {
  readonly backend: 'local' | 's3';
  /** How the directory is shown to a person and in JSON: a path or an s3:// URL. */
  readonly location: string;
  /** The path or s3:// URL of one name in this directory. */
  pathOf(name: string): string;
  /**
   * Every entry whose name starts with `namePrefix`, in pages. On S3 the
   * prefix is sent to the server, so the cost follows the matches, not the
   * bucket. A failure after the first page throws a StoreError whose
   * `afterPages` is above 0: the caller must not read a part as the whole.
   */
  list(namePrefix: string, options?: ListOptions): AsyncIterable<readonly StoreEntry[]>;
  /** One name, or undefined when nothing is there. */
  stat(name: string): Promise<StoreEntry | undefined>;
  /**
   * Removes the entry only if it is still the one that was planned (same
   * version, size and time). The path guards (template, published output,
   * inside the directory) are the caller's; this is the last look before
   * acting, and it is not a substitute for them.
   */
  removeIfUnchanged(planned: StoreEntry): Promise<RemoveOutcome>;
  /**
   * Copies the planned entry to `name` in `destination` (same backend), only
   * while the source is still the planned one and nothing is at the target.
   */
  copy(planned: StoreEntry, destination: ObjectStore, name: string): Promise<CopyOutcome>;
  /** Uploads started under names with this prefix and never completed. */
  listUploads(namePrefix: string): Promise<UploadListing>;
  /** Aborts one incomplete upload; one that is already gone is not an error. */
  abortUpload(upload: IncompleteUpload): Promise<'aborted' | 'gone'>;
}

export interface ListOptions {
  /** Entries per page; S3 serves at most 1,000. */
  readonly pageSize?: number;
}

export type StoreEntry = StoredFile | StoredOther;

/** A regular file, or an S3 object. */
export interface StoredFile {
  readonly kind: 'file';
  readonly name: string;
  readonly bytes: number;
  /** Local: the mtime. S3: LastModified (which no client can set), on this host's clock. */
  readonly mtimeMs: number;
  /** S3 only: the ETag, quotes included, as the server sent it. */
  readonly etag?: string;
  /** S3: set (why) when mtimeMs is when its upload started, not when it was last written (multipart). */
  readonly lastChangeUnknown?: string;
  /**
   * What must be unchanged for a removal to go ahead, read only by the
   * backend that made it: (dev, ino, ctime) locally, the ETag on S3.
   */
  readonly version: string;
}

/** Anything else where a file was expected: never removed, shown to a person. */
export interface StoredOther {
  readonly kind: 'directory' | 'symlink' | 'other';
  readonly name: string;
}

/** 'gone': someone else removed it first, and the goal is met. */
export type RemoveOutcome
  = | { readonly outcome: 'removed' }
    | { readonly outcome: 'gone' }
    | { readonly outcome: 'refused'; readonly reason: string };

export type CopyOutcome
  = | { readonly outcome: 'copied' }
    | { readonly outcome: 'refused'; readonly reason: string };

export interface IncompleteUpload {
  readonly name: string;
  readonly uploadId: string;
  readonly initiatedMs: number;
}

/**
 * Not every server lists multipart uploads (s3rver does not): "cannot tell"
 * must never read as "none".
 */
export type UploadListing
  = | { readonly supported: true; readonly uploads: readonly IncompleteUpload[] }
    | { readonly supported: false; readonly reason: string };

export type StoreFailure
  = | 'unreachable'
    | 'timeout'
    | 'no-credentials'
    | 'access-denied'
    | 'no-such-bucket'
    | 'no-region'
    | 'unsupported'
    | 'failed';

/**
 * A store that could not answer: one sentence naming the bucket or endpoint
 * and what to check, exit 2, never a stack. Its name stays 'UsageError' so
 * the CLI's check works across separately bundled files.
 */
export class StoreError extends UsageError {
  readonly failure: StoreFailure;
  /** Pages already delivered when a listing failed: above 0 means "partial". */
  readonly afterPages: number;
  /** The HTTP status of the server's answer, when there was one. */
  readonly httpStatus: number | undefined;

  constructor(failure: StoreFailure, message: string, hint: string | undefined, afterPages = 0, httpStatus?: number) {
    super(message, hint);
    this.failure = failure;
    this.afterPages = afterPages;
    this.httpStatus = httpStatus;
  }
}

/** A StoreError, also when thrown by a separately bundled part. */
export function isStoreError(error: unknown): error is StoreError {
  return error instanceof StoreError
    || (error instanceof Error && error.name === 'UsageError' && 'failure' in error && 'afterPages' in error);
}

export type SameTime = (aMs: number, bMs: number) => boolean;

export type UnchangedCheck
  = | { readonly unchanged: true; readonly now: StoredFile }
    | { readonly unchanged: false; readonly reason: string };

/**
 * Whether what is there now is still the planned file: the same version, size
 * and time. `sameTime` is the backend's grain (S3's HTTP dates are whole seconds).
 */
export function checkUnchanged(planned: StoreEntry, now: StoreEntry, sameTime: SameTime): UnchangedCheck {
  if (planned.kind !== 'file') return { unchanged: false, reason: `it was a ${planned.kind} when planned` };
  if (now.kind !== 'file') return { unchanged: false, reason: `it is now a ${now.kind}` };
  if (now.version !== planned.version) {
    return {
      unchanged: false,
      reason: `it was replaced or rewritten since it was planned (version ${planned.version}, now ${now.version})`,
    };
  }
  if (now.bytes !== planned.bytes) {
    return { unchanged: false, reason: `its size changed from ${planned.bytes} to ${now.bytes} bytes` };
  }
  if (!sameTime(now.mtimeMs, planned.mtimeMs)) {
    return { unchanged: false, reason: 'its modification time changed since it was planned' };
  }
  return { unchanged: true, now };
}
