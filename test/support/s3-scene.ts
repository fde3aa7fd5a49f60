import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { CliIo } from '../../src/cli/io.js';
import { snapshot } from './file-tree.js';
import { crashdiagInProcess } from './in-process.js';
import { ageS3rverObject, putText, s3rverFile, testClient } from './s3-objects.js';
import { type S3TestServer, useS3Server } from './s3-server.js';

/**
 * crashdiag's environment for an S3 test: the server's endpoint and built-in
 * key, and its lock and audit log under the test's scratch directory.
 */
export function s3TestEnv(endpoint: string, scratch: string): Record<string, string> {
  return {
    NO_COLOR: '1',
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    XDG_STATE_HOME: join(scratch, 'state'),
    HOME: scratch,
  };
}

export interface S3SceneOptions {
  /** More buckets for the file, beside `bucket` (which the helpers use unless told another). */
  readonly buckets?: readonly string[];
}

/**
 * A test file's S3 scene: its bucket(s) on the worker's s3rver, a scratch
 * directory (config, crashdiag's state, local sides), a client in the role of
 * a person or a batch job, and the helpers the S3 tests share: objects put
 * and aged, the bucket read back as keys and ETags and as the server's own
 * files, crashdiag run in process. Every S3 test file sets up through here
 * (the examples' harness, through useS3Server, which this builds on).
 */
export function useS3Scene(bucket: string, options: S3SceneOptions = {}) {
  const server = useS3Server([bucket, ...(options.buckets ?? [])]);
  let s3: S3Client | undefined;
  let scratch = '';
  beforeAll(async () => {
    s3 = testClient(server());
    scratch = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), 'crashdiag-s3-scene-')));
  });
  afterAll(async () => {
    s3?.destroy();
    s3 = undefined;
    await fsp.rm(scratch, { recursive: true, force: true });
  });
  const client = (): S3Client => {
    if (!s3) throw new Error('useS3Scene: no client (used outside a test?)');
    return s3;
  };
  let made = 0;
  const env = (endpoint = server().endpoint): Record<string, string> => s3TestEnv(endpoint, scratch);
  /**
   * Sets an object's LastModified `seconds` into the past (negative: the future), as s3rver
   * takes it: from its backing file's mtime.
   */
  const age = (key: string, seconds: number, bytes?: number, inBucket = bucket): Promise<void> =>
    ageS3rverObject(server(), inBucket, key, seconds, bytes);
  /** Puts an object, aged `ageSeconds` (negative: dated in the future). */
  const put = async (key: string, body: string, ageSeconds = 0, inBucket = bucket): Promise<void> => {
    await putText(client(), inBucket, key, body);
    if (ageSeconds !== 0) await age(key, ageSeconds, Buffer.byteLength(body), inBucket);
  };
  /** Keys and ETags under a prefix, as the server lists them (up to 1,000). */
  const keysUnder = async (prefix: string, inBucket = bucket): Promise<string[]> => {
    const answer = await client().send(new ListObjectsV2Command({ Bucket: inBucket, Prefix: prefix }));
    return (answer.Contents ?? []).map((o) => `${o.Key} ${o.ETag}`).sort();
  };
  /** `crashdiag ARGS` in this process, in the scratch directory; its JSON parsed when it printed some. */
  const run = async (args: readonly string[], runEnv = env(), overrides: Partial<CliIo> = {}) => {
    const result = await crashdiagInProcess(args, scratch, { env: runEnv, ...overrides });
    const json = result.stdout.startsWith('{') ? JSON.parse(result.stdout) : undefined;
    return { ...result, json };
  };
  const auditLines = async (
    path = join(scratch, 'state', 'crashdiag', 'audit.jsonl'),
  ): Promise<Array<Record<string, unknown>>> => {
    const text = await fsp.readFile(path, 'utf8');
    return text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  };

  const url = (key: string) => `s3://${bucket}/${key}`;
  /** The flags of a layout under a test root, both sides in the bucket: ROOTout/ and ROOT_staging/. */
  const layoutFlags = (root: string, extra: readonly string[] = []): string[] => [
    '--out-dir', url(`${root}out/`),
    '--staging-dir', url(`${root}_staging/`),
    '--final', 'refunds_{date}.csv',
    ...extra,
  ];

  return {
    bucket,
    server: (): S3TestServer => server(),
    client,
    scratch: () => scratch,
    stateDir: () => join(scratch, 'state', 'crashdiag'),
    /** A fresh test root in the bucket, so tests never see each other's objects. */
    root: (): string => `t${++made}/`,
    env,
    url,
    layoutFlags,
    age,
    put,
    keysUnder,
    /** Where the server keeps an object: its LastModified is that file's mtime, its ETag in FILE.md5. */
    file: (key: string, inBucket = bucket): string => s3rverFile(server(), inBucket, key),
    /** A test root as the server keeps it: every key's bytes, size and time. "Unchanged" means equal. */
    disk: (root: string, inBucket = bucket): Promise<string[]> =>
      snapshot(join(server().directory, inBucket, root.replace(/\/$/, ''))),
    run,
    auditLines,
  };
}
