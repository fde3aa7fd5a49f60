// The refunds pipeline's S3 mode against a real S3 server (s3rver): the
// staging-rename of object stores, step by step, and what each self-kill
// point leaves in the bucket. Real processes, real SIGKILL, real HTTP.
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRefundsCsv } from '../../examples/refunds-pipeline/generate-input.js';
import { S3_CRASH_POINT_OUTCOMES } from '../../examples/refunds-pipeline/harness/expected-states.js';
import { siteOf } from '../../examples/refunds-pipeline/harness/s3rver.js';
import {
  closeS3Clients, createS3Workspace, s3StagingObjects,
} from '../../examples/refunds-pipeline/harness/s3-workspace.js';
import { diagnose, fix, runPipelineProcess } from '../../examples/refunds-pipeline/harness/tools.js';
import {
  describeDisk, hasMarker, makeTempRoot, readOutput, removeTree, stagingFilesFor, type Workspace,
} from '../../examples/refunds-pipeline/harness/workspace.js';
import { lastStep, readJournal, S3_STEPS } from '../../examples/refunds-pipeline/journal.js';
import { finalName, markerName, s3StagingName } from '../../examples/refunds-pipeline/names.js';
import { S3_CRASH_POINTS } from '../../examples/refunds-pipeline/pipeline.js';
import { settleRefundsCsv } from '../../examples/refunds-pipeline/transform.js';
import { requestsDuring } from '../support/s3-objects.js';
import { useS3Server } from '../support/s3-server.js';
import { builtPipelineInProcessCrashdiag } from './dist.js';

const KEY = '2026-04-24';
const BUCKET = 'refunds';
// crashdiag in process (its built bin on S3 is s3-bundle.test.ts's); the job is the built pipeline, a real process.
const tools = builtPipelineInProcessCrashdiag();
const server = useS3Server([BUCKET]);
let root: string;
let input: string;
let workspaces = 0;

beforeAll(async () => {
  root = await makeTempRoot('refunds-s3-pipeline-');
  input = generateRefundsCsv({ seed: 's3-pipeline', runDate: KEY });
  await writeFile(`${root}/input.csv`, input);
});
afterAll(async () => {
  await closeS3Clients();
  await removeTree(root);
});

/** A fresh pair of prefixes in the shared bucket for each test. */
function workspace(): Promise<Workspace> {
  const name = `ws-${++workspaces}`;
  return createS3Workspace(`${root}/${name}`, siteOf(server(), BUCKET), name, `${root}/input.csv`);
}

describe('the refunds pipeline on S3, run clean', () => {
  it('puts the staging object, copies it to the final key, deletes it and puts the marker, in that order', async () => {
    const ws = await workspace();
    let run: Awaited<ReturnType<typeof runPipelineProcess>> | undefined;
    const requests = await requestsDuring(server(), async () => {
      run = await runPipelineProcess(tools, ws, KEY, { journal: true });
    });
    expect(run?.stderr).toBe('');
    expect(run?.code).toBe(0);
    const staging = `/${BUCKET}/ws-${workspaces}/_staging/${s3StagingName(KEY, hostname(), run?.pid ?? 0)}`;
    const final = `/${BUCKET}/ws-${workspaces}/out/${finalName(KEY)}`;
    expect(requests.map((r) => `${r.method} ${decodeURI(r.url.split('?')[0] ?? '')}`)).toEqual([
      `PUT ${staging}`,
      `PUT ${final}`,
      `DELETE ${staging}`,
      `PUT /${BUCKET}/ws-${workspaces}/out/${markerName(KEY)}`,
    ]);
    // The first PUT may only create (a reused PID's orphan is never overwritten); the second is a server-side copy.
    expect(requests[0]?.headers['if-none-match']).toBe('*');
    expect(decodeURIComponent(String(requests[1]?.headers['x-amz-copy-source']))).toBe(staging.slice(1));

    expect((await readOutput(ws, KEY))?.toString('utf8')).toBe(settleRefundsCsv(input, KEY));
    expect(await hasMarker(ws, KEY)).toBe(true);
    expect(await stagingFilesFor(ws, KEY)).toEqual([]);
    const journal = await readJournal(ws.journalPath);
    expect(journal.map((e) => e.step)).toEqual([...S3_STEPS]);
    expect(new Set(journal.map((e) => e.pid))).toEqual(new Set([run?.pid]));
  });

  it('gives byte-identical output when re-run for the same key', async () => {
    const ws = await workspace();
    expect((await runPipelineProcess(tools, ws, KEY)).code).toBe(0);
    const first = await readOutput(ws, KEY);
    const rerun = await runPipelineProcess(tools, ws, KEY);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(await readOutput(ws, KEY)).toEqual(first);
    expect(await stagingFilesFor(ws, KEY)).toEqual([]);
  });

  it('refuses a local-only crash point in S3 mode instead of running clean', async () => {
    const ws = await workspace();
    const run = await runPipelineProcess(tools, ws, KEY, { env: { REFUNDS_CRASH_AT: 'mid-write' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('REFUNDS_CRASH_AT="mid-write" is not one of before-staging, after-staging');
    expect(await describeDisk(ws)).toBe(`  ${ws.outDir}  (empty)\n  ${ws.stagingDir}  (empty)`);
  });

  it('refuses one directory on S3 and the other local', async () => {
    const ws = await workspace();
    const run = await runPipelineProcess(tools, { ...ws, stagingDir: `${ws.dir}/_staging` }, KEY);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--out-dir and --staging-dir must both be s3:// URLs, or both local directories');
  });

  it('fails in one sentence, without a stack, when the bucket does not exist', async () => {
    const ws = await workspace();
    const missing = { ...ws, outDir: 's3://no-such-bucket/out/', stagingDir: 's3://no-such-bucket/_staging/' };
    const run = await runPipelineProcess(tools, missing, KEY);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^refunds-pipeline: S3 NoSuchBucket: .*\n$/);
  });
});

describe.each(S3_CRASH_POINTS)('on S3, REFUNDS_CRASH_AT=%s', (point) => {
  const expected = S3_CRASH_POINT_OUTCOMES[point];

  it(`leaves ${expected.state}, and --fix --rerun ends DONE with the clean bytes`, async () => {
    const ws = await workspace();
    const run = await runPipelineProcess(tools, ws, KEY, { journal: true, env: { REFUNDS_CRASH_AT: point } });
    expect(run.signal).toBe('SIGKILL');
    expect(lastStep(await readJournal(ws.journalPath))).toBe(expected.lastStep);
    expect(await stagingFilesFor(ws, KEY)).toEqual(
      expected.orphans === 0 ? [] : [s3StagingName(KEY, hostname(), run.pid)],
    );
    const output = await readOutput(ws, KEY);
    const published = ['after-copy', 'after-delete', 'after-marker'].includes(point);
    expect(output?.toString('utf8')).toBe(published ? settleRefundsCsv(input, KEY) : undefined);
    expect(await hasMarker(ws, KEY)).toBe(point === 'after-marker');

    const { finished, report } = await diagnose(tools, ws, KEY);
    expect(report?.state, finished.stdout + finished.stderr).toBe(expected.state);
    expect(finished.code).toBe(expected.exitCode);
    expect(report?.action).toBe(expected.action);
    // {host} in the key is this host, so the PID is asked about, as locally.
    expect(report?.orphans.map((o) => [o.path, o.pid, o.writer])).toEqual(
      Array.from({ length: expected.orphans }, () => [
        `${ws.stagingDir}${s3StagingName(KEY, hostname(), run.pid)}`, run.pid, 'dead',
      ]),
    );

    let fixed: Awaited<ReturnType<typeof fix>> | undefined;
    const requests = await requestsDuring(server(), async () => {
      fixed = await fix(tools, ws, KEY);
    });
    expect(fixed?.code, `${fixed?.stdout}${fixed?.stderr}`).toBe(0);
    // DONE is left exactly as it was: --fix sends no request that writes.
    const writes = requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    if (expected.action === 'none') expect(writes).toEqual([]);
    else expect(writes.length).toBeGreaterThan(0);
    expect((await readOutput(ws, KEY))?.toString('utf8')).toBe(settleRefundsCsv(input, KEY));
    expect(await hasMarker(ws, KEY)).toBe(true);
    expect(await s3StagingObjects(ws.s3 as NonNullable<Workspace['s3']>)).toEqual([]);
    expect((await diagnose(tools, ws, KEY)).report?.state).toBe('DONE');
  });
});
