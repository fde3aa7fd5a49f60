// s3rver for the tests: the server itself, and what it does and does not
// implement, are in examples/refunds-pipeline/harness/s3rver.ts, shared with
// the demo and the S3 crash campaign. Every test that needs S3 starts it
// through here.
import { afterAll, beforeAll } from 'vitest';
import { startS3Server, type S3TestServer } from '../../examples/refunds-pipeline/harness/s3rver.js';

export {
  type LoggedRequest, S3RVER_CREDENTIALS, S3RVER_REGION, startS3Server, type S3TestServer,
} from '../../examples/refunds-pipeline/harness/s3rver.js';

let workerServer: Promise<S3TestServer> | undefined;

/**
 * This worker's server: started by the first test file that asks for one,
 * then shared by every later file the worker runs. A worker runs its files
 * one after another, and keeps this module between them (isolate: false), so
 * one file's requests never mix with another's. A start is a node process
 * loading s3rver (about 0.3 CPU-s), and ten files each started one. Nothing
 * stops it: when the worker exits, the server sees its parent go and
 * removes its store.
 */
function sharedServer(): Promise<S3TestServer> {
  workerServer ??= startS3Server().catch((error: unknown) => {
    workerServer = undefined;
    throw error;
  });
  return workerServer;
}

/**
 * The worker's server, with these buckets, empty, for the file's tests: made
 * before them and removed, with all they hold, after them. A bucket is the
 * file's alone.
 */
export function useS3Server(buckets: readonly string[]): () => S3TestServer {
  let server: S3TestServer | undefined;
  const made: string[] = [];
  beforeAll(async () => {
    const shared = await sharedServer();
    for (const bucket of buckets) {
      await shared.createBucket(bucket);
      made.push(bucket);
    }
    server = shared;
  });
  afterAll(async () => {
    // The buckets made, even if the file's set-up failed after one of them.
    const shared = made.length > 0 ? await workerServer : undefined;
    for (const bucket of made.splice(0)) await shared?.removeBucket(bucket);
    server = undefined;
  });
  return () => {
    if (!server) throw new Error('useS3Server: the server is not running (used outside a test?)');
    return server;
  };
}
