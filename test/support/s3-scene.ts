import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { snapshot } from './file-tree.js';
import { crashdiagInProcess } from './in-process.js';
import { ageS3rverObject, putText, testClient } from './s3-objects.js';
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

/**
 * One bucket on a real s3rver for a test file, a scratch directory (config,
 * state, local sides) and the helpers the S3 CLI tests share: objects put and
 * aged, the bucket read back as keys and ETags and as the server's own files.
 */
export function useS3Scene(bucket: string) {
  const server = useS3Server([bucket]);
  let client: S3Client | undefined;
  let scratch = '';
  beforeAll(async () => {
    client = testClient(server());
    scratch = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), 'crashdiag-s3-scene-')));
  });
  afterAll(async () => {
    client?.destroy();
    await fsp.rm(scratch, { recursive: true, force: true });
  });
  let made = 0;
  const env = (endpoint = server().endpoint): Record<string, string> => s3TestEnv(endpoint, scratch);
  /** Sets an object's LastModified into the past: s3rver takes it from its backing file's mtime. */
  const age = (key: string, seconds: number, bytes?: number): Promise<void> =>
    ageS3rverObject(server(), bucket, key, seconds, bytes);

  return {
    bucket,
    server: (): S3TestServer => server(),
    scratch: () => scratch,
    stateDir: () => join(scratch, 'state', 'crashdiag'),
    /** A fresh test root in the bucket, so tests never see each other's objects. */
    root(): string {
      made += 1;
      return `t${made}/`;
    },
    env,
    url: (key: string) => `s3://${bucket}/${key}`,
    age,
    async put(key: string, body: string, ageSeconds = 0): Promise<void> {
      if (!client) throw new Error('useS3Scene: no client');
      await putText(client, bucket, key, body);
      if (ageSeconds > 0) await age(key, ageSeconds, Buffer.byteLength(body));
    },
    /** Keys and ETags under a prefix, as the server lists them (up to 1,000). */
    async keysUnder(prefix: string): Promise<string[]> {
      if (!client) throw new Error('useS3Scene: no client');
      const answer = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (answer.Contents ?? []).map((o) => `${o.Key} ${o.ETag}`).sort();
    },
    /** A test root as the server keeps it: every key's bytes, size and time. "Unchanged" means equal. */
    disk: (root: string): Promise<string[]> => snapshot(join(server().directory, bucket, root.replace(/\/$/, ''))),
    async run(args: readonly string[], runEnv = env()) {
      const result = await crashdiagInProcess(args, scratch, { env: runEnv });
      const json = result.stdout.startsWith('{') ? JSON.parse(result.stdout) : undefined;
      return { ...result, json };
    },
    async auditLines(path = join(scratch, 'state', 'crashdiag', 'audit.jsonl')): Promise<Array<Record<string, unknown>>> {
      const text = await fsp.readFile(path, 'utf8');
      return text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}
