// The shared s3rver launcher (examples/refunds-pipeline/harness/s3rver.ts):
// a start that fails half-way must not leave its server or its store behind,
// and what it seeds is what a PUT stores.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { s3rverFile, s3rverObjectLanded } from '../support/s3-objects.js';
import { startS3Server } from '../support/s3-server.js';

const S3RVER_CHILD = fileURLToPath(new URL('../../examples/refunds-pipeline/harness/s3rver-child.mjs', import.meta.url));

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

describe('a server its parent never stopped', () => {
  it('removes its store and exits once the parent is gone (a test worker sharing one server exits so)', async () => {
    const store = await mkdtemp(join(scratch, 'store-'));
    // A parent that starts the server and exits as soon as it listens, without a word to it.
    const parent = spawnSync(process.execPath, ['-e', `
      const child = require('node:child_process').fork(process.argv[1], [process.argv[2]], {
        execArgv: ['--openssl-legacy-provider'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      child.on('message', (m) => { if (m.type === 'listening') { console.log(child.pid); process.exit(0); } });
    `, S3RVER_CHILD, store], { encoding: 'utf8', timeout: 20_000 });
    expect(parent.status, parent.stderr).toBe(0);
    const pid = Number(parent.stdout.trim());
    // The server is not our child: its exit is seen as /proc/PID going away (or being another process).
    while (await readFile(`/proc/${pid}/cmdline`, 'utf8').then((c) => c.includes('s3rver-child'), () => false)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await readdir(scratch)).toEqual([]);
  });
});

describe('seed', () => {
  it('leaves in the store what a PUT of the same bytes leaves: the object, its digest and its metadata, dated as asked', async () => {
    const server = await startS3Server(['seeded']);
    try {
      const body = 'a,b\n1,2\n';
      const put = await fetch(`${server.endpoint}/seeded/put/2026-04-24.1.csv`, { method: 'PUT', body: Buffer.from(body) });
      expect(put.status).toBe(200);
      await s3rverObjectLanded(server, 'seeded', 'put/2026-04-24.1.csv', body.length);
      const start = Date.now();
      await server.seed('seeded', ['seed/2026-04-24.1.csv', 'seed/deeper/2026-04-24.2.csv'], body, { ageSeconds: 3600 });
      const end = Date.now();
      const files = (key: string) => {
        const object = s3rverFile(server, 'seeded', key);
        return Promise.all([object, `${object}.md5`, object.replace(/_object$/, '_metadata.json')]
          .map((file) => readFile(file, 'utf8')));
      };
      const putFiles = await files('put/2026-04-24.1.csv');
      expect(putFiles[0]).toBe(body);
      expect(await files('seed/2026-04-24.1.csv')).toEqual(putFiles);
      expect(await files('seed/deeper/2026-04-24.2.csv')).toEqual(putFiles);
      // Dated an hour before the call, to the millisecond (utimes takes seconds as a float).
      const { mtimeMs } = await stat(s3rverFile(server, 'seeded', 'seed/deeper/2026-04-24.2.csv'));
      expect(mtimeMs).toBeGreaterThanOrEqual(start - 3_600_000 - 1);
      expect(mtimeMs).toBeLessThanOrEqual(end - 3_600_000 + 1);
    } finally {
      await server.stop();
    }
  });
});
