// The shared s3rver launcher (examples/refunds-pipeline/harness/s3rver.ts):
// a start that fails half-way must not leave its server or its store behind.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startS3Server } from '../support/s3-server.js';

let scratch: string;
let savedTmpdir: string | undefined;
beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 's3rver-launcher-'));
  savedTmpdir = process.env.TMPDIR;
  // os.tmpdir() reads TMPDIR on each call: the server's store goes where this test can see it.
  process.env.TMPDIR = scratch;
});
afterEach(async () => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  await rm(scratch, { recursive: true, force: true });
});

describe('startS3Server', () => {
  it('removes its store when a bucket it was asked for cannot be created', async () => {
    // 'b' is too short for a bucket name: s3rver answers 400.
    await expect(startS3Server(['b'])).rejects.toThrow('s3rver: creating bucket b: HTTP 400');
    expect(await readdir(scratch)).toEqual([]);
  });
});
