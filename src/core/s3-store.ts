// Only types come from the SDK at the top: the module itself is imported on
// the first request, so a run that touches no s3:// path never loads it.
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { describeEndpoint, resolveS3Connection, type S3Connection, type S3Settings } from './s3-connection.js';
import { S3_OPERATIONS, type S3Operation, storeErrorOf } from './s3-errors.js';
import { parseS3Url, s3UrlOf, type S3Location } from './s3-url.js';
import type {
  CopyOutcome, IncompleteUpload, ListOptions, ObjectStore, RemoveOutcome, StoreEntry, UploadListing,
} from './store.js';
import { checkUnchanged, StoreError } from './store.js';

type Sdk = typeof import('@aws-sdk/client-s3');

export interface S3SessionOptions {
  readonly settings?: S3Settings;
  /** The environment the endpoint is read from (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Bound on each attempt of each request (--timeout). */
  readonly timeoutMs?: number;
  /** Attempts per request, the first included; the SDK's standard retry mode. */
  readonly maxAttempts?: number;
  /** Explicit credentials (tests); otherwise the SDK's standard chain. */
  readonly credentials?: S3ClientConfig['credentials'];
  /** This host's clock (ms since the epoch), which every time read from the server is put on. */
  readonly wallClock?: () => number;
}

export const DEFAULT_S3_TIMEOUT_MS = 30_000;
// S3 serves at most 1,000 keys per page whatever is asked.
const MAX_PAGE_SIZE = 1000;
// The server's Date header has whole seconds and arrives after a network
// trip: a difference within this is its grain, not a skewed clock.
const CLOCK_GRAIN_MS = 2000;

/**
 * One connection to S3 (one lazily created client) serving every prefix of
 * a run: the output, the staging and the quarantine prefix.
 */
export class S3Session {
  readonly connection: S3Connection;
  readonly endpoint: string;
  readonly timeoutMs: number;
  readonly #options: S3SessionOptions;
  readonly #clock: () => number;
  #client: Promise<{ sdk: Sdk; client: S3Client }> | undefined;
  #offsetMs: number | undefined;

  constructor(options: S3SessionOptions = {}) {
    this.#options = options;
    this.connection = resolveS3Connection(options.settings ?? {}, options.env ?? {});
    this.endpoint = describeEndpoint(this.connection);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_S3_TIMEOUT_MS;
    this.#clock = options.wallClock ?? Date.now;
  }

  /**
   * A time the server gave (LastModified, an upload's initiation) on this
   * host's clock, which ages are judged by. The server's clock is the one
   * that dated the object: a host whose clock runs ahead would otherwise read
   * an object written a second ago as hours old, and call its writer dead.
   * The offset is measured once, from the first answer's Date header, so two
   * looks at one object always agree; it errs towards "younger" (the Date
   * header is cut to the second and read after the trip back). It is only
   * ever applied to make objects younger: a host whose clock runs behind
   * reads them as younger than they are, or changed in the future (UNKNOWN),
   * and a Date header that is not the store's own clock (a proxy's) can never
   * make an object look older than this host's clock says.
   */
  onThisClock(serverMs: number): number {
    return serverMs + (this.#offsetMs ?? 0);
  }

  #noteServerDate(date: unknown): void {
    if (this.#offsetMs !== undefined || typeof date !== 'string') return;
    const serverMs = Date.parse(date);
    if (Number.isNaN(serverMs)) return;
    const offset = this.#clock() - serverMs;
    this.#offsetMs = offset <= CLOCK_GRAIN_MS ? 0 : Math.ceil(offset / 1000) * 1000;
  }

  /** A store for `s3://BUCKET/PREFIX/`; a malformed URL is a usage error. */
  store(url: string, role?: string): S3Store {
    return new S3Store(this, parseS3Url(url, role));
  }

  /** Sends one request, mapping any failure to a StoreError that names the bucket and what to check. */
  async send<T>(
    operation: S3Operation,
    bucket: string,
    request: (sdk: Sdk, client: S3Client) => Promise<T>,
    afterPages = 0,
  ): Promise<T> {
    const context = { operation, bucket, endpoint: this.endpoint, timeoutMs: this.timeoutMs, afterPages };
    try {
      const { sdk, client } = await this.#connect();
      return await request(sdk, client);
    } catch (error) {
      throw storeErrorOf(error, context);
    }
  }

  /** Lets go of pooled sockets, so a finished run does not wait on keep-alive. */
  async close(): Promise<void> {
    const pending = this.#client;
    this.#client = undefined;
    if (pending) (await pending).client.destroy();
  }

  #connect(): Promise<{ sdk: Sdk; client: S3Client }> {
    this.#client ??= import('@aws-sdk/client-s3').then((sdk) => ({ sdk, client: this.#newClient(sdk) }));
    return this.#client;
  }

  #newClient(sdk: Sdk): S3Client {
    const client = this.#configuredClient(sdk);
    // Innermost, so every answer's Date header is seen, error answers included.
    client.middlewareStack.add((next) => async (args) => {
      try {
        const result = await next(args);
        this.#noteServerDate(headersOf(result.response)?.date);
        return result;
      } catch (error) {
        this.#noteServerDate(headersOf((error as { $response?: unknown }).$response)?.date);
        throw error;
      }
    }, { step: 'deserialize', priority: 'low', name: 'crashdiagServerClock' });
    return client;
  }

  #configuredClient(sdk: Sdk): S3Client {
    const { endpoint, region, forcePathStyle } = this.connection;
    const timeout = this.timeoutMs;
    return new sdk.S3Client({
      ...(endpoint === undefined ? {} : { endpoint }),
      ...(region === undefined ? {} : { region }),
      forcePathStyle,
      ...(this.#options.credentials === undefined ? {} : { credentials: this.#options.credentials }),
      ...(this.#options.maxAttempts === undefined ? {} : { maxAttempts: this.#options.maxAttempts }),
      // Each attempt is bounded three ways: connecting, the whole exchange,
      // and silence mid-body; the SDK retries a timed-out attempt.
      requestHandler: {
        connectionTimeout: timeout,
        requestTimeout: timeout,
        throwOnRequestTimeout: true,
        socketTimeout: timeout,
      },
      // The tool uploads nothing; checksum trailers only trip up servers
      // (MinIO, Ceph, s3rver) that predate them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }
}

/** `s3://BUCKET/PREFIX/` behind the store seam. */
export class S3Store implements ObjectStore {
  readonly backend = 's3';
  readonly bucket: string;
  readonly prefix: string;
  readonly location: string;
  readonly #session: S3Session;

  constructor(session: S3Session, where: S3Location) {
    this.#session = session;
    this.bucket = where.bucket;
    this.prefix = where.prefix;
    this.location = s3UrlOf(where.bucket, where.prefix);
  }

  pathOf(name: string): string {
    return s3UrlOf(this.bucket, this.prefix + name);
  }

  async* list(namePrefix: string, options: ListOptions = {}): AsyncIterable<readonly StoreEntry[]> {
    const keyPrefix = this.prefix + namePrefix;
    const pageSize = Math.min(options.pageSize ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE);
    let token: string | undefined;
    const tokens = new Set<string>();
    let pages = 0;
    let lastKey: Buffer | undefined;
    do {
      const page = await this.#session.send(S3_OPERATIONS.list, this.bucket, (sdk, client) => client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.bucket,
          // The key's literal start goes to the server: the cost follows the
          // matches, not the size of the bucket.
          Prefix: keyPrefix,
          // One directory level, as readdir sees it; deeper keys come back
          // as one "directory" entry each.
          Delimiter: '/',
          MaxKeys: pageSize,
          ContinuationToken: token,
        }),
      ), pages);
      const entries = [
        ...(page.Contents ?? []).map((o) => this.#fileOf(o.Key, o.Size, o.LastModified, o.ETag, pages)),
        ...(page.CommonPrefixes ?? []).map((common) => this.#directoryOf(common.Prefix, pages)),
      ];
      const keys = page.Contents?.map((o) => o.Key);
      lastKey = this.#keysGoOn(lastKey, keys, page.CommonPrefixes?.map((c) => c.Prefix), pages);
      pages += 1;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token) throw this.#badAnswer('said the listing goes on but gave no continuation token', pages);
      // A server that hands out a token twice would list forever (and grow the list without end).
      if (token !== undefined && tokens.has(token)) {
        throw this.#badAnswer('gave the same continuation token twice, so its listing would never end', pages);
      }
      if (token !== undefined) tokens.add(token);
      if (entries.length > 0) yield entries;
    } while (token !== undefined);
  }

  /**
   * S3 lists keys in ascending UTF-8 byte order, each page after the one
   * before: an object on a page at or before where the last page ended is the
   * server going round (a new token each time, the same keys again), which
   * would list forever, counting every object again. A "directory" (common
   * prefix) may be named again at the start of the next page: some
   * S3-compatible servers do that when a page ends inside one, harmlessly.
   * Returns where this page ends.
   */
  #keysGoOn(
    lastKey: Buffer | undefined,
    keys: ReadonlyArray<string | undefined> | undefined,
    prefixes: ReadonlyArray<string | undefined> | undefined,
    pages: number,
  ): Buffer | undefined {
    let end = lastKey;
    for (const [sorted, repeatable] of [[keys ?? [], false], [prefixes ?? [], true]] as const) {
      const first = sorted[0];
      const last = sorted.at(-1);
      if (first === undefined || last === undefined) continue;
      const order = lastKey === undefined ? 1 : Buffer.compare(Buffer.from(first), lastKey);
      if (order < 0 || (order === 0 && !repeatable)) {
        const again = this.pathOf(first.slice(this.prefix.length));
        throw this.#badAnswer(`listed ${again} again, or went back to it, on page ${pages + 1}, so its listing would never end`, pages);
      }
      const lastBytes = Buffer.from(last);
      if (end === undefined || Buffer.compare(lastBytes, end) > 0) end = lastBytes;
    }
    return end;
  }

  async stat(name: string): Promise<StoreEntry | undefined> {
    const key = this.prefix + name;
    try {
      const head = await this.#session.send(S3_OPERATIONS.stat, this.bucket, (sdk, client) => client.send(
        new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key }),
      ));
      return this.#fileOf(key, head.ContentLength, head.LastModified, head.ETag, 0);
    } catch (error) {
      // HEAD answers carry no body: a missing key and a missing bucket are
      // both a bare 404. Either way no object is there to act on.
      if (answered(error, 404)) return this.#directoryAt(name);
      throw error;
    }
  }

  /**
   * Keys under `name/` make `name` a directory, as readdir would show one:
   * Spark and Hadoop write an output as `NAME/part-00000` and `NAME/_SUCCESS`,
   * and such an output must never read as missing (a re-run would write over it).
   */
  async #directoryAt(name: string): Promise<StoreEntry | undefined> {
    const page = await this.#session.send(S3_OPERATIONS.list, this.bucket, (sdk, client) => client.send(
      new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.prefix}${name}/`, MaxKeys: 1 }),
    ));
    return (page.KeyCount ?? 0) > 0 || (page.Contents ?? []).length > 0 ? { kind: 'directory', name } : undefined;
  }

  async removeIfUnchanged(planned: StoreEntry): Promise<RemoveOutcome> {
    // Before any look: a planned directory that has since vanished is not "gone" work done.
    if (planned.kind !== 'file') return { outcome: 'refused', reason: `it is a ${planned.kind}, not a file` };
    const now = await this.stat(planned.name);
    if (!now) return { outcome: 'gone' };
    const check = checkUnchanged(planned, now, sameSecond);
    if (!check.unchanged) return { outcome: 'refused', reason: check.reason };
    const key = this.prefix + planned.name;
    try {
      await this.#session.send(S3_OPERATIONS.remove, this.bucket, (sdk, client) => client.send(
        // If-Match closes the gap between the HEAD and the DELETE on servers
        // that honour it (AWS since 2024); others ignore it.
        new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key, IfMatch: check.now.etag }),
      ));
      return { outcome: 'removed' };
    } catch (error) {
      if (answered(error, 412)) return { outcome: 'refused', reason: 'it changed between the last check and the delete' };
      if (answered(error, 404)) return { outcome: 'gone' };
      throw error;
    }
  }

  async copy(planned: StoreEntry, destination: ObjectStore, name: string): Promise<CopyOutcome> {
    if (planned.kind !== 'file') return { outcome: 'refused', reason: `it is a ${planned.kind}, not a file` };
    if (!(destination instanceof S3Store)) {
      return { outcome: 'refused', reason: `cannot copy from S3 to ${destination.location}` };
    }
    const now = await this.stat(planned.name);
    if (!now) return { outcome: 'refused', reason: 'it is gone' };
    const check = checkUnchanged(planned, now, sameSecond);
    if (!check.unchanged) return { outcome: 'refused', reason: check.reason };
    // Look first, as well as asking with If-None-Match: servers that ignore
    // the header would otherwise overwrite an earlier quarantine copy.
    if (await destination.stat(name)) return { outcome: 'refused', reason: `${destination.pathOf(name)} already exists` };
    const sourceKey = this.prefix + planned.name;
    try {
      await this.#session.send(S3_OPERATIONS.copy, destination.bucket, (sdk, client) => client.send(
        new sdk.CopyObjectCommand({
          Bucket: destination.bucket,
          Key: destination.prefix + name,
          CopySource: `${this.bucket}/${sourceKey.split('/').map(encodeURIComponent).join('/')}`,
          CopySourceIfMatch: check.now.etag,
          IfNoneMatch: '*',
        }),
      ));
    } catch (error) {
      if (answered(error, 412)) {
        return { outcome: 'refused', reason: 'the source changed, or the target appeared, during the copy' };
      }
      throw error;
    }
    const copied = await destination.stat(name);
    if (copied?.kind !== 'file' || copied.bytes !== check.now.bytes) {
      return { outcome: 'refused', reason: `the copy at ${destination.pathOf(name)} does not match the source` };
    }
    return { outcome: 'copied' };
  }

  async listUploads(namePrefix: string): Promise<UploadListing> {
    const uploads: IncompleteUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    const markers = new Set<string>();
    let pages = 0;
    try {
      do {
        const page = await this.#session.send(S3_OPERATIONS.listUploads, this.bucket, (sdk, client) => client.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.prefix + namePrefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        ));
        for (const upload of page.Uploads ?? []) {
          if (upload.Key === undefined || upload.UploadId === undefined || upload.Initiated === undefined) {
            throw this.#badAnswer('listed a multipart upload without its key, id or start time', 1);
          }
          const name = this.#nameOf(upload.Key, 1);
          const initiatedMs = this.#session.onThisClock(upload.Initiated.getTime());
          uploads.push({ name, uploadId: upload.UploadId, initiatedMs });
        }
        pages += 1;
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
        // A list that goes on without saying where, or from where it was before, is never read as the whole.
        if (page.IsTruncated && !keyMarker) throw this.#badAnswer('said its list of multipart uploads goes on but gave no marker', pages);
        const marker = `${keyMarker ?? ''}\u0000${uploadIdMarker ?? ''}`;
        if (keyMarker !== undefined && markers.has(marker)) {
          throw this.#badAnswer('gave the same multipart upload marker twice, so its list would never end', pages);
        }
        markers.add(marker);
      } while (keyMarker !== undefined);
    } catch (error) {
      if (error instanceof StoreError && error.failure === 'unsupported') return { supported: false, reason: error.message };
      throw error;
    }
    return { supported: true, uploads };
  }

  async abortUpload(upload: IncompleteUpload): Promise<'aborted' | 'gone'> {
    try {
      await this.#session.send(S3_OPERATIONS.abortUpload, this.bucket, (sdk, client) => client.send(
        new sdk.AbortMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.prefix + upload.name,
          UploadId: upload.uploadId,
        }),
      ));
      return 'aborted';
    } catch (error) {
      if (answered(error, 404)) return 'gone';
      throw error;
    }
  }

  #nameOf(key: string | undefined, pages: number): string {
    if (key === undefined || !key.startsWith(this.prefix)) {
      throw this.#badAnswer(`listed the key ${key ?? '(none)'}, outside the prefix asked for`, pages);
    }
    return key.slice(this.prefix.length);
  }

  #fileOf(key: string | undefined, bytes: number | undefined, modified: Date | undefined, etag: string | undefined,
    pages: number): StoreEntry {
    const name = this.#nameOf(key, pages);
    if (bytes === undefined || modified === undefined || etag === undefined) {
      throw this.#badAnswer(`described ${this.pathOf(name)} without its size, time or ETag`, pages);
    }
    const mtimeMs = this.#session.onThisClock(modified.getTime());
    return {
      kind: 'file', name, bytes, mtimeMs, etag, version: etag,
      ...(MULTIPART_ETAG.test(etag) ? { lastChangeUnknown: MULTIPART_DATE } : {}),
    };
  }

  #directoryOf(prefix: string | undefined, pages: number): StoreEntry {
    return { kind: 'directory', name: this.#nameOf(prefix, pages).replace(/\/$/, '') };
  }

  #badAnswer(what: string, pages: number): StoreError {
    return new StoreError(
      'failed',
      `The S3 endpoint ${this.#session.endpoint} ${what} (bucket ${this.bucket}).`,
      'The server does not behave like S3 here; check its version and health.',
      pages,
    );
  }
}

// An object a multipart upload made has an ETag of its parts' digests and
// their count ("...-3"), and S3 dates it from the upload's initiation, not its
// completion ("Working with object metadata": Last-Modified). An upload that
// took an hour and completed a second ago reads as an hour old, while its
// writer may be copying it to the output key.
const MULTIPART_ETAG = /-\d+"?$/;
const MULTIPART_DATE = 'it was uploaded in parts, and S3 dates such an object from the start of its upload, so when it was last written is not known';

/** The raw answer's headers, where the SDK kept them. */
function headersOf(response: unknown): Record<string, string> | undefined {
  const headers = (response as { headers?: unknown } | undefined)?.headers;
  return typeof headers === 'object' && headers !== null ? headers as Record<string, string> : undefined;
}

/**
 * Whether a request failed with this HTTP status for the object itself. A
 * missing bucket is never "gone": it is the user's to fix.
 */
function answered(error: unknown, status: number): boolean {
  return error instanceof StoreError && error.httpStatus === status && error.failure !== 'no-such-bucket';
}

// HTTP dates (HeadObject's Last-Modified) carry whole seconds, listings carry
// milliseconds: compare at the coarser grain.
function sameSecond(a: number, b: number): boolean {
  return Math.floor(a / 1000) === Math.floor(b / 1000);
}
