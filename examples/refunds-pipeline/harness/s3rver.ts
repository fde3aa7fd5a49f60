/*
 * A real S3 HTTP server for the tests, the demo and the S3 crash campaign:
 * s3rver 3.7.1 (pinned in package.json), in a child process on 127.0.0.1, an
 * ephemeral port and a temp directory. test/support/s3-server.ts wraps it for
 * vitest (useS3Server).
 *
 * What s3rver 3.7.1 implements, read from its source (lib/routes.js,
 * lib/controllers/{bucket,object}.js, lib/stores/filesystem.js,
 * lib/middleware/authentication.js) and checked against it:
 *
 * - ListObjectsV2: yes, with Prefix, Delimiter (CommonPrefixes), MaxKeys
 *   (capped at 1000), StartAfter and ContinuationToken. The tokens are
 *   DES-encrypted, which Node 17+ only has under --openssl-legacy-provider:
 *   without it every truncated page answers 500 InternalError. Hence the
 *   child process with that flag (see s3rver-child.mjs).
 *   Order: it walks its on-disk layout, where a key is stored as
 *   "KEY._S3rver_object", so a key that is a proper prefix of another whose
 *   next character sorts below '.' (e.g. 'a' and 'a-1') is listed out of key
 *   order, and pagination by last key can then skip keys. Tests use names
 *   that do not collide this way; real S3 and MinIO list in key order.
 * - ListObjects (v1, marker): yes.
 * - HeadObject: yes; ETag (quoted MD5), Content-Length, Last-Modified from
 *   the backing file's mtime (whole seconds). Missing key or bucket: a bare
 *   404 (HEAD has no body). HEAD/GET honour If-None-Match and
 *   If-Modified-Since, not If-Match.
 * - DeleteObject: yes, unconditional: If-Match is accepted and IGNORED, so
 *   the race between HeadObject and DeleteObject cannot be closed, nor a 412
 *   provoked, here. Deleting a missing key answers 204.
 * - CopyObject: yes (x-amz-copy-source, decoded with decodeURI, so keys with
 *   reserved characters such as '+' or '#' do not round-trip);
 *   x-amz-copy-source-if-* and If-None-Match are IGNORED.
 * - CreateMultipartUpload, UploadPart, CompleteMultipartUpload: yes.
 * - ListMultipartUploads (GET ?uploads): NO, 501 NotImplemented.
 * - AbortMultipartUpload (DELETE ?uploadId): NO, 405 MethodNotAllowed.
 * - ListParts: NO (405).
 * - Versioning, lifecycle rules, object lock: NO (501).
 * - Authentication: the access key must be a known one (S3RVER/S3RVER is
 *   built in; any other is 403 InvalidAccessKeyId); SigV4 signatures are not
 *   verified. Requests without an Authorization header are let through.
 * - Regions: any; it answers as us-east-1.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Site } from './s3-workspace.js';

/** The one key pair s3rver knows. Tests pass it explicitly, never from the machine's environment. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const S3RVER_REGION = 'us-east-1';

export interface LoggedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface SeedOptions {
  /** How far in the past every seeded object is dated (its LastModified). */
  readonly ageSeconds?: number;
}

export interface S3TestServer {
  /** e.g. http://127.0.0.1:41234 */
  readonly endpoint: string;
  readonly port: number;
  /** Where s3rver keeps buckets and objects. */
  readonly directory: string;
  /** The server's process: what it still holds open can be asked of /proc. */
  readonly pid: number;
  createBucket(name: string): Promise<void>;
  /** Removes a bucket and every object in it, straight from the store. */
  removeBucket(name: string): Promise<void>;
  /** The requests the server has seen, in arrival order: all of them, or those from the `from`th on. */
  requests(from?: number): Promise<readonly LoggedRequest[]>;
  /** How many requests the server has seen. */
  requestCount(): Promise<number>;
  /**
   * Writes objects straight into the server's store, for setting up
   * thousands of keys without thousands of requests. Not logged as requests.
   * Each object is on disk and closed when this resolves.
   */
  seed(bucket: string, keys: readonly string[], body: string, options?: SeedOptions): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Beside this file in the source tree. A bundle (dist-dev/) cannot find it
 * from its own URL and passes the path (Tools.s3rverChild); the child is not
 * bundled: it runs s3rver from node_modules, as installed.
 */
const CHILD = fileURLToPath(new URL('./s3rver-child.mjs', import.meta.url));

export async function startS3Server(
  buckets: readonly string[] = [],
  childScript: string = CHILD,
): Promise<S3TestServer> {
  const directory = await realpath(await mkdtemp(join(tmpdir(), 'crashdiag-s3rver-')));
  const child = fork(childScript, [directory], {
    execArgv: ['--openssl-legacy-provider'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let port: number;
  try {
    port = await listeningPort(child);
  } catch (error) {
    child.kill('SIGKILL');
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  let asked = 0;
  const server: S3TestServer = {
    endpoint,
    port,
    directory,
    pid: child.pid as number,
    async createBucket(name) {
      // s3rver lets unsigned requests through; no client is needed to set up.
      const response = await fetch(`${endpoint}/${name}`, { method: 'PUT' });
      if (!response.ok) throw new Error(`s3rver: creating bucket ${name}: HTTP ${response.status}`);
    },
    async removeBucket(name) {
      // s3rver keeps no bucket list besides its store's directories.
      await rm(join(directory, name), { recursive: true, force: true });
    },
    async requests(from = 0) {
      const id = ++asked;
      const reply = await replyFrom(child, { type: 'requests', id, from }, (m) => m.type === 'requests' && m.id === id);
      return reply.requests ?? [];
    },
    async requestCount() {
      const id = ++asked;
      // Asked from the end: only the count comes back, not the log.
      const ask = { type: 'requests', id, from: Number.MAX_SAFE_INTEGER };
      const reply = await replyFrom(child, ask, (m) => m.type === 'requests' && m.id === id);
      return reply.total ?? 0;
    },
    async seed(bucket, keys, body, options = {}) {
      const id = ++asked;
      const mtimeMs = options.ageSeconds === undefined ? undefined : Date.now() - options.ageSeconds * 1000;
      await replyFrom(child, { type: 'seed', id, bucket, keys, body, mtimeMs }, (m) => m.type === 'seeded' && m.id === id);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        if (child.connected) child.send({ type: 'stop' });
        else child.kill('SIGKILL');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
  try {
    for (const bucket of buckets) await server.createBucket(bucket);
  } catch (error) {
    // Nobody else holds the server yet: a failed start must not leave it, or its store, behind.
    await server.stop();
    throw error;
  }
  return server;
}

interface ChildMessage {
  readonly type: string;
  readonly id?: number;
  readonly port?: number;
  readonly from?: number;
  readonly requests?: readonly LoggedRequest[];
  readonly total?: number;
  readonly bucket?: string;
  readonly keys?: readonly string[];
  readonly body?: string;
  readonly mtimeMs?: number | undefined;
}

function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`s3rver exited (${code}) before listening`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.on('message', function onMessage(message: ChildMessage) {
      if (message.type !== 'listening' || message.port === undefined) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message.port);
    });
  });
}

type IsReply = (message: ChildMessage) => boolean;

function replyFrom(child: ChildProcess, ask: ChildMessage, isReply: IsReply): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const onExit = () => reject(new Error('s3rver exited'));
    child.once('exit', onExit);
    child.on('message', function onMessage(message: ChildMessage) {
      if (!isReply(message)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    });
    child.send(ask);
  });
}

/** The harness's view of one bucket on this server. */
export function siteOf(server: S3TestServer, bucket: string): S3Site {
  return { endpoint: server.endpoint, bucket, credentials: { ...S3RVER_CREDENTIALS }, region: S3RVER_REGION };
}
