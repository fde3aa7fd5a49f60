// The S3 backend of the store seam against a real S3 HTTP server (s3rver, in
// a child process on 127.0.0.1). What s3rver lacks, and so what is skipped
// here, is listed at the top of test/support/s3-server.ts.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Session, type S3SessionOptions, type S3Store } from '../../src/core/s3-store.js';
import { isStoreError, StoreError, type StoreEntry } from '../../src/core/store.js';
import { getText, putMany, putText, requestsDuring, startUpload, testClient } from '../support/s3-objects.js';
import { useS3Scene } from '../support/s3-scene.js';
import { S3RVER_CREDENTIALS, S3RVER_REGION, startS3Server } from '../support/s3-server.js';

const BUCKET = 'refunds-data';
const scene = useS3Scene(BUCKET, { buckets: ['count-bucket'] });
const { server } = scene;

const sessions: S3Session[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.close()));
});

function session(options: Partial<S3SessionOptions> = {}, endpoint = server().endpoint): S3Session {
  const made = new S3Session({
    settings: { endpoint, region: S3RVER_REGION },
    credentials: S3RVER_CREDENTIALS,
    ...options,
  });
  sessions.push(made);
  return made;
}

async function collect(store: S3Store, namePrefix: string, pageSize?: number): Promise<StoreEntry[][]> {
  const pages: StoreEntry[][] = [];
  for await (const page of store.list(namePrefix, pageSize === undefined ? {} : { pageSize })) pages.push([...page]);
  return pages;
}

function names(pages: readonly (readonly StoreEntry[])[]): string[] {
  return pages.flat().map((e) => e.name).sort();
}

/** What the server keeps on disk for the bucket, contents included: "untouched" means equal before and after. */
function serverDisk(): Promise<string[]> {
  return scene.disk('');
}

async function caught(action: () => Promise<unknown>): Promise<StoreError> {
  try {
    await action();
  } catch (error) {
    if (isStoreError(error)) return error;
    throw error;
  }
  throw new Error('expected a StoreError, got none');
}

describe('listing by key prefix', () => {
  it('lists only the names that start with the prefix, with size, time and ETag', async () => {
    await putText(scene.client(), BUCKET, 'list/_staging/2026-04-24.101.csv', 'a,b\n');
    await putText(scene.client(), BUCKET, 'list/_staging/2026-04-24.102.csv', 'a,b,c\n');
    await putText(scene.client(), BUCKET, 'list/_staging/2026-04-23.103.csv', 'old\n');
    await putText(scene.client(), BUCKET, 'list/other/2026-04-24.104.csv', 'elsewhere\n');
    const store = session().store(`s3://${BUCKET}/list/_staging/`);

    const entries = (await collect(store, '2026-04-24.')).flat();

    expect(entries.map((e) => e.name).sort()).toEqual(['2026-04-24.101.csv', '2026-04-24.102.csv']);
    const first = entries.find((e) => e.name === '2026-04-24.101.csv');
    expect(first).toMatchObject({ kind: 'file', bytes: 4, etag: expect.stringMatching(/^"[0-9a-f]{32}"$/) });
    expect(first?.kind === 'file' && Number.isFinite(first.mtimeMs)).toBe(true);
    expect(store.pathOf('2026-04-24.101.csv')).toBe(`s3://${BUCKET}/list/_staging/2026-04-24.101.csv`);
  });

  it('pages through a listing longer than a page without losing or repeating a name', async () => {
    const keys = [1, 2, 3, 4, 5].map((n) => `page/2026-04-24.20${n}.csv`);
    await putMany(scene.client(), BUCKET, keys, 'x');
    const store = session().store(`s3://${BUCKET}/page/`);

    let pages: StoreEntry[][] = [];
    const seen = await requestsDuring(server(), async () => {
      pages = await collect(store, '2026-04-24.', 2);
    });

    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(names(pages)).toEqual(keys.map((k) => k.slice('page/'.length)));
    expect(seen.filter((r) => r.url.includes('list-type=2'))).toHaveLength(3);
  });

  it('costs what matches, not the bucket: 5,000 other keys and 3 matches take one request', async () => {
    const others = Array.from({ length: 5000 }, (_, i) => `_staging/2026-03-${String(i % 28 + 1).padStart(2, '0')}.${10000 + i}.csv`);
    const matches = ['_staging/2026-04-24.301.csv', '_staging/2026-04-24.302.csv', '_staging/2026-04-24.303.csv'];
    await server().seed('count-bucket', [...others, ...matches], 'x');
    const store = session().store('s3://count-bucket/_staging/');

    let pages: StoreEntry[][] = [];
    const seen = await requestsDuring(server(), async () => {
      pages = await collect(store, '2026-04-24.');
    });

    expect(names(pages)).toEqual(['2026-04-24.301.csv', '2026-04-24.302.csv', '2026-04-24.303.csv']);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.method).toBe('GET');
    expect(new URL(seen[0]?.url ?? '', 'http://x').searchParams.get('prefix')).toBe('_staging/2026-04-24.');
  });

  it('shows a deeper key as one directory entry, as readdir would, instead of descending', async () => {
    await putText(scene.client(), BUCKET, 'deep/2026-04-24.401.csv/part-0', 'x');
    await putText(scene.client(), BUCKET, 'deep/2026-04-24.402.csv', 'x');
    const store = session().store(`s3://${BUCKET}/deep/`);

    const entries = (await collect(store, '2026-04-24.')).flat();

    expect(entries).toContainEqual({ kind: 'directory', name: '2026-04-24.401.csv' });
    expect(entries.filter((e) => e.kind === 'file').map((e) => e.name)).toEqual(['2026-04-24.402.csv']);
  });

  it('reports a listing that fails after its first page as partial (afterPages > 0), never as complete', async () => {
    const own = await startS3Server(['partial']);
    const ownClient = testClient(own);
    try {
      await putMany(ownClient, 'partial', ['p/2026-04-24.501.csv', 'p/2026-04-24.502.csv', 'p/2026-04-24.503.csv'], 'x');
      const store = session({ maxAttempts: 1 }, own.endpoint).store('s3://partial/p/');

      const delivered: StoreEntry[] = [];
      const error = await caught(async () => {
        for await (const page of store.list('2026-04-24.', { pageSize: 1 })) {
          delivered.push(...page);
          await own.stop();
        }
      });

      expect(delivered).toHaveLength(1);
      expect(error.afterPages).toBe(1);
      expect(error.failure).toBe('unreachable');
    } finally {
      ownClient.destroy();
      await own.stop();
    }
  });
});

describe('stat', () => {
  it('describes one object exactly as the listing does', async () => {
    await putText(scene.client(), BUCKET, 'stat/2026-04-24.601.csv', 'hello');
    const store = session().store(`s3://${BUCKET}/stat/`);

    const listed = (await collect(store, '2026-04-24.601')).flat()[0];
    const stated = await store.stat('2026-04-24.601.csv');

    expect(stated).toMatchObject({ kind: 'file', name: '2026-04-24.601.csv', bytes: 5 });
    expect(stated?.kind === 'file' && listed?.kind === 'file' && stated.etag === listed.etag).toBe(true);
    expect(stated?.kind === 'file' && listed?.kind === 'file'
      && Math.floor(stated.mtimeMs / 1000) === Math.floor(listed.mtimeMs / 1000)).toBe(true);
  });

  it('answers undefined for a name that is not there', async () => {
    expect(await session().store(`s3://${BUCKET}/stat/`).stat('2026-04-24.nothing.csv')).toBeUndefined();
  });
});

describe('remove if unchanged', () => {
  async function planned(store: S3Store, name: string): Promise<StoreEntry> {
    const entry = (await collect(store, name)).flat().find((e) => e.name === name);
    if (!entry) throw new Error(`${name} not listed`);
    return entry;
  }

  it('deletes the planned object, sending If-Match with the planned ETag after a HEAD', async () => {
    await putText(scene.client(), BUCKET, 'rm/2026-04-24.701.csv', 'orphan');
    const store = session().store(`s3://${BUCKET}/rm/`);
    const entry = await planned(store, '2026-04-24.701.csv');

    let outcome;
    const seen = await requestsDuring(server(), async () => {
      outcome = await store.removeIfUnchanged(entry);
    });

    expect(outcome).toEqual({ outcome: 'removed' });
    expect(seen.map((r) => r.method)).toEqual(['HEAD', 'DELETE']);
    expect(seen[1]?.headers['if-match']).toBe(entry.kind === 'file' ? entry.etag : 'not a file');
    expect(await store.stat('2026-04-24.701.csv')).toBeUndefined();
  });

  it('refuses when the object was overwritten between plan and delete, and the server is untouched', async () => {
    await putText(scene.client(), BUCKET, 'rm/2026-04-24.702.csv', 'orphan of a dead run');
    const store = session().store(`s3://${BUCKET}/rm/`);
    const entry = await planned(store, '2026-04-24.702.csv');
    // A new run with the same name writes between our plan and our delete.
    await putText(scene.client(), BUCKET, 'rm/2026-04-24.702.csv', 'a live run writing');
    const before = await serverDisk();

    const outcome = await store.removeIfUnchanged(entry);

    expect(outcome).toMatchObject({ outcome: 'refused', reason: expect.stringContaining('replaced or rewritten') });
    expect(await serverDisk()).toEqual(before);
    expect(await getText(scene.client(), BUCKET, 'rm/2026-04-24.702.csv')).toBe('a live run writing');
  });

  it('refuses when the same bytes were written again later (same ETag and size, newer LastModified)', async () => {
    await putText(scene.client(), BUCKET, 'rm/2026-04-24.703.csv', 'same');
    const store = session().store(`s3://${BUCKET}/rm/`);
    const entry = await planned(store, '2026-04-24.703.csv');
    if (entry.kind !== 'file') throw new Error('not a file');
    // LastModified moves in whole seconds and no client can set it: stand in
    // for "rewritten later" by a plan that saw it a minute earlier.
    const seenEarlier = { ...entry, mtimeMs: entry.mtimeMs - 60_000 };
    const before = await serverDisk();

    const outcome = await store.removeIfUnchanged(seenEarlier);

    expect(outcome).toMatchObject({ outcome: 'refused', reason: expect.stringContaining('modification time') });
    expect(await serverDisk()).toEqual(before);
  });

  it('refuses a planned entry that is not an object (a "directory" of deeper keys), and the server is untouched', async () => {
    await putText(scene.client(), BUCKET, 'rm/2026-04-24.704.csv/part-0', 'x');
    const store = session().store(`s3://${BUCKET}/rm/`);
    const before = await serverDisk();

    const outcome = await store.removeIfUnchanged({ kind: 'directory', name: '2026-04-24.704.csv' });

    expect(outcome).toMatchObject({ outcome: 'refused' });
    expect(await serverDisk()).toEqual(before);
  });

  it('counts an object someone else already deleted as gone, not as an error', async () => {
    await putText(scene.client(), BUCKET, 'rm/2026-04-24.705.csv', 'x');
    const store = session().store(`s3://${BUCKET}/rm/`);
    const entry = await planned(store, '2026-04-24.705.csv');
    await store.removeIfUnchanged(entry);

    expect(await store.removeIfUnchanged(entry)).toEqual({ outcome: 'gone' });
  });

  it.skip('refuses when the object changes between the HEAD and the DELETE (412 from If-Match): '
    + 's3rver ignores If-Match on DeleteObject, so the race cannot be provoked here', () => {});
});

describe('copy (quarantine)', () => {
  it('copies the planned object to the quarantine prefix and leaves the source in place', async () => {
    await putText(scene.client(), BUCKET, 'cp/_staging/2026-04-24.801.csv', 'forensic bytes');
    const s = session();
    const staging = s.store(`s3://${BUCKET}/cp/_staging/`);
    const quarantine = s.store(`s3://${BUCKET}/cp/_quarantine/`);
    const entry = (await collect(staging, '2026-04-24.801')).flat()[0];
    if (!entry) throw new Error('not listed');

    expect(await staging.copy(entry, quarantine, 'run-1/2026-04-24.801.csv')).toEqual({ outcome: 'copied' });
    expect(await getText(scene.client(), BUCKET, 'cp/_quarantine/run-1/2026-04-24.801.csv')).toBe('forensic bytes');
    expect(await getText(scene.client(), BUCKET, 'cp/_staging/2026-04-24.801.csv')).toBe('forensic bytes');
  });

  it('refuses to overwrite an earlier quarantine copy, and the server is untouched', async () => {
    await putText(scene.client(), BUCKET, 'cp/_staging/2026-04-24.802.csv', 'second');
    await putText(scene.client(), BUCKET, 'cp/_quarantine/2026-04-24.802.csv', 'first, kept');
    const s = session();
    const staging = s.store(`s3://${BUCKET}/cp/_staging/`);
    const entry = (await collect(staging, '2026-04-24.802')).flat()[0];
    if (!entry) throw new Error('not listed');
    const before = await serverDisk();

    const outcome = await staging.copy(entry, s.store(`s3://${BUCKET}/cp/_quarantine/`), '2026-04-24.802.csv');

    expect(outcome).toMatchObject({ outcome: 'refused', reason: expect.stringContaining('already exists') });
    expect(await serverDisk()).toEqual(before);
  });

  it('refuses to copy a source overwritten since the plan, and the server is untouched', async () => {
    await putText(scene.client(), BUCKET, 'cp/_staging/2026-04-24.803.csv', 'planned');
    const s = session();
    const staging = s.store(`s3://${BUCKET}/cp/_staging/`);
    const entry = (await collect(staging, '2026-04-24.803')).flat()[0];
    if (!entry) throw new Error('not listed');
    await putText(scene.client(), BUCKET, 'cp/_staging/2026-04-24.803.csv', 'rewritten');
    const before = await serverDisk();

    const outcome = await staging.copy(entry, s.store(`s3://${BUCKET}/cp/_quarantine/`), '2026-04-24.803.csv');

    expect(outcome).toMatchObject({ outcome: 'refused' });
    expect(await serverDisk()).toEqual(before);
  });
});

describe('incomplete multipart uploads', () => {
  it('says it cannot tell, rather than "none", when the server does not list uploads', async () => {
    await startUpload(scene.client(), BUCKET, 'mpu/_staging/2026-04-24.901.csv');
    const store = session().store(`s3://${BUCKET}/mpu/_staging/`);

    const listing = await store.listUploads('2026-04-24.');

    // s3rver 3.7.1 answers ListMultipartUploads with 501 NotImplemented.
    expect(listing).toEqual({
      supported: false,
      reason: expect.stringContaining('does not support ListMultipartUploads'),
    });
  });

  it('lists an upload started under the prefix with its key and start time (where the server lists them)',
    async (context) => {
      const id = await startUpload(scene.client(), BUCKET, 'mpu/_staging/2026-04-24.902.csv');
      const listing = await session().store(`s3://${BUCKET}/mpu/_staging/`).listUploads('2026-04-24.902');
      context.skip(!listing.supported, 's3rver 3.7.1 does not implement ListMultipartUploads (501)');
      expect(listing.supported && listing.uploads).toEqual([
        { name: '2026-04-24.902.csv', uploadId: id, initiatedMs: expect.any(Number) },
      ]);
    });

  it('names the missing operation when the server cannot abort an upload (s3rver: 405), and the server is untouched',
    async () => {
      const uploadId = await startUpload(scene.client(), BUCKET, 'mpu/_staging/2026-04-24.903.csv');
      const store = session().store(`s3://${BUCKET}/mpu/_staging/`);
      const before = await serverDisk();

      const error = await caught(() => store.abortUpload({ name: '2026-04-24.903.csv', uploadId, initiatedMs: 0 }));

      expect(error.failure).toBe('unsupported');
      expect(error.message).toContain('AbortMultipartUpload');
      expect(await serverDisk()).toEqual(before);
    });
});

describe('failures are one sentence naming the bucket or endpoint and what to check', () => {
  function expectOneSentence(error: StoreError): void {
    expect(error.message).toMatch(/^[A-Z].*\.$/);
    expect(error.message).not.toContain('\n');
    expect(error.message).not.toMatch(/ at .*:\d+:\d+/);
    expect(error.hint).toBeTruthy();
  }

  it('an endpoint where nothing listens: "cannot reach", naming the endpoint and the bucket', async () => {
    const closedPort = await freePort();
    const store = session({}, `http://127.0.0.1:${closedPort}`).store(`s3://${BUCKET}/x/`);

    const error = await caught(() => collect(store, ''));

    expect(error.failure).toBe('unreachable');
    expect(error.afterPages).toBe(0);
    expect(error.message).toBe(
      `Cannot reach the S3 endpoint http://127.0.0.1:${closedPort} to list keys in bucket ${BUCKET} (ECONNREFUSED).`,
    );
    expectOneSentence(error);
  });

  it('a bucket that does not exist: "does not exist", naming the bucket and the endpoint', async () => {
    const error = await caught(() => collect(session().store('s3://no-such-bucket/x/'), ''));

    expect(error.failure).toBe('no-such-bucket');
    expect(error.message).toBe(`The bucket no-such-bucket does not exist at ${server().endpoint}.`);
    expectOneSentence(error);
  });

  it('credentials the server does not know: "access denied", naming the permission to check', async () => {
    const store = session({ credentials: { accessKeyId: 'NOT-KNOWN', secretAccessKey: 'x' } }).store(`s3://${BUCKET}/x/`);

    const error = await caught(() => collect(store, ''));

    expect(error.failure).toBe('access-denied');
    expect(error.message).toContain(`bucket ${BUCKET}`);
    expect(error.hint).toContain('s3:ListBucket');
    expectOneSentence(error);
  });

  it('no credentials anywhere in the chain: "no credentials", naming the bucket and where to set them', async () => {
    // What the SDK's default chain throws when every provider comes up empty;
    // the real chain is not run here, since it would read this machine's
    // environment and probe the instance metadata address.
    const emptyChain = () => Promise.reject(Object.assign(
      new Error('Could not load credentials from any providers'),
      { name: 'CredentialsProviderError' },
    ));
    const store = session({ credentials: emptyChain }).store(`s3://${BUCKET}/x/`);

    const error = await caught(() => collect(store, ''));

    expect(error.failure).toBe('no-credentials');
    expect(error.message).toBe(`No AWS credentials were found to list keys in bucket ${BUCKET}.`);
    expect(error.hint).toContain('AWS_ACCESS_KEY_ID');
    expectOneSentence(error);
  });

  describe('an endpoint that accepts connections and never answers', () => {
    let silent: Server;
    const sockets: Socket[] = [];
    beforeAll(async () => {
      silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });

    it('gives up after the timeout on every attempt, with the SDK\'s retries, and says so in one sentence', async () => {
      const address = silent.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      const store = session({ timeoutMs: 300, maxAttempts: 2 }, `http://127.0.0.1:${address.port}`)
        .store(`s3://${BUCKET}/x/`);

      const error = await caught(() => collect(store, ''));

      expect(error.failure).toBe('timeout');
      expect(error.message).toBe(
        `The S3 endpoint http://127.0.0.1:${address.port} did not answer within 0.3s when asked to list keys in bucket ${BUCKET}.`,
      );
      expect(sockets).toHaveLength(2);
      expectOneSentence(error);
    });
  });
});

/** A port nothing listens on: bound by us, then released. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('sessions', () => {
  it('make no request and read no credentials until the first operation', async () => {
    const credentials = () => Promise.reject(new Error('read too early'));
    const seen = await requestsDuring(server(), () => {
      const s = session({ credentials });
      s.store(`s3://${BUCKET}/a/`);
      s.store(`s3://${BUCKET}/b/`);
      return Promise.resolve();
    });
    expect(seen).toEqual([]);
  });
});
