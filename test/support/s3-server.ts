// s3rver for the tests: the server itself, and what it does and does not
// implement, are in examples/refunds-pipeline/harness/s3rver.ts, shared with
// the demo and the S3 crash campaign. Every test that needs S3 starts it
// through here.
import { afterAll, beforeAll } from 'vitest';
import { startS3Server, type S3TestServer } from '../../examples/refunds-pipeline/harness/s3rver.js';

export {
  type LoggedRequest, S3RVER_CREDENTIALS, S3RVER_REGION, startS3Server, type S3TestServer,
} from '../../examples/refunds-pipeline/harness/s3rver.js';

/** Starts a server with these buckets before the file's tests and stops it after. */
export function useS3Server(buckets: readonly string[]): () => S3TestServer {
  let server: S3TestServer | undefined;
  beforeAll(async () => {
    server = await startS3Server(buckets);
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('useS3Server: the server is not running (used outside a test?)');
    return server;
  };
}
