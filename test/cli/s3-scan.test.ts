// scan and its metrics on S3 prefixes, against a real S3 HTTP server (s3rver
// in a child process). What s3rver lacks is listed at the top of
// test/support/s3-server.ts: it cannot list multipart uploads, so they show
// up here only as the note that says they cannot be listed.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { datesBetween } from '../../src/core/scan.js';
import { deadPid } from '../support/dead-pids.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';
import { requestsDuring } from '../support/s3-objects.js';
import { s3ErrorBody, startS3Proxy } from '../support/s3-proxy.js';
import { useS3Scene } from '../support/s3-scene.js';

const BUCKET = 'scan-data';
const scene = useS3Scene(BUCKET);
const DAY = 86_400_000;

interface Row {
  pipeline: string;
  run: string;
  state: string;
  exitCode: number;
  orphanCount: number;
  orphanBytes: number;
  liveWriters: number;
}

const { layoutFlags } = scene;

/** One run key in each state, and `done` more DONE keys. */
async function everyState(root: string, done = 0): Promise<Record<string, string>> {
  const out = `${root}out/`;
  const staging = `${root}_staging/`;
  const keys = datesBetween(Date.now() - (done + 10) * DAY, Date.now() - DAY);
  type Keys = [string, string, string, string, string, ...string[]];
  const [kDone, kD, kRace, kRunning, kUnpublished, ...more] = keys as Keys;
  const published = async (key: string) => {
    await scene.put(`${out}refunds_${key}.csv`, 'a,b\n');
    await scene.put(`${out}refunds_${key}.csv.success`, '');
  };
  await published(kDone);
  await scene.put(`${staging}${kD}.${deadPid()}.csv`, 'half', 3600);
  await published(kRace);
  await scene.put(`${staging}${kRace}.${deadPid()}.csv`, 'older attempt', 3600);
  await scene.put(`${staging}${kRunning}.${deadPid()}.csv`, 'being written');
  await scene.put(`${out}refunds_${kUnpublished}.csv`, 'a,b\n');
  const doneKeys = more.slice(0, done);
  await scene.server().seed(BUCKET, doneKeys.flatMap((k) => [`${out}refunds_${k}.csv`, `${out}refunds_${k}.csv.success`]), 'x');
  return { kDone, kD, kRace, kRunning, kUnpublished };
}

describe('scan on S3 prefixes', () => {
  it('names every state over many keys, from one listing per prefix, with the local scan\'s rows and exit code', async () => {
    const root = scene.root();
    const k = await everyState(root, 400);
    const { code, json } = await scene.run(['scan', ...layoutFlags(root), '--since', '30d', '--json']);
    const rows = json.runs as Row[];
    const stateOf = (key: string | undefined) => rows.find((r) => r.run === key)?.state;
    expect(stateOf(k.kDone)).toBe('DONE');
    expect(stateOf(k.kD)).toBe('D');
    expect(stateOf(k.kRace)).toBe('D-race');
    expect(stateOf(k.kRunning)).toBe('RUNNING');
    expect(stateOf(k.kUnpublished)).toBe('UNPUBLISHED');
    // Seeded outputs are new: every DONE key is in the 30-day window.
    expect(rows.filter((r) => r.state === 'DONE').length).toBeGreaterThanOrEqual(2);
    expect(rows.find((r) => r.run === k.kD)).toMatchObject({ orphanCount: 1, orphanBytes: 4 });
    expect(code).toBe(Math.max(...rows.filter((r) => r.state !== 'RUNNING').map((r) => r.exitCode)));
    expect(json.pipelines[0].notes[0]).toMatch(/multipart uploads under .* cannot be listed/);
  });

  it('a marker every key shares (_SUCCESS) beside keyed outputs: the state diagnose names (DONE), not UNPUBLISHED', async () => {
    const root = scene.root();
    const key = datesBetween(Date.now() - 2 * DAY, Date.now() - DAY)[0] as string;
    await scene.put(`${root}out/refunds_${key}.csv`, 'a,b\n', 60);
    await scene.put(`${root}out/_SUCCESS`, '');
    const flags = [...layoutFlags(root), '--marker', '_SUCCESS'];
    const scanned = await scene.run(['scan', ...flags, '--since', '30d', '--json']);
    const diagnosed = await scene.run(['diagnose', key, ...flags, '--json']);
    expect(diagnosed.json.state).toBe('DONE');
    expect((scanned.json.runs as Row[]).map((r) => [r.run, r.state])).toEqual([[key, 'DONE']]);
    expect(scanned.code).toBe(0);
  });

  it('cost follows the prefixes, not the bucket: two listings, each of the pipeline\'s prefix and literal start, no HEAD per key', async () => {
    const root = scene.root();
    await everyState(root, 50);
    // Another pipeline's 1,500 objects in the same bucket.
    const other = Array.from({ length: 1500 }, (_, i) => `${root}other/_staging/2026-03-01.${100000 + i}.csv`);
    await scene.server().seed(BUCKET, other, 'x');
    let rows: Row[] = [];
    const seen = await requestsDuring(scene.server(), async () => {
      rows = (await scene.run(['scan', ...layoutFlags(root), '--since', '90d', '--json'])).json.runs;
    });
    expect(rows.length).toBeGreaterThan(5);
    const lists = seen.filter((r) => r.method === 'GET' && r.url.includes('list-type=2'));
    const prefixes = lists.map((r) => new URL(r.url, 'http://x').searchParams.get('prefix')).sort();
    expect(prefixes).toEqual([`${root}_staging/`, `${root}out/refunds_`]);
    expect(seen.filter((r) => r.method === 'HEAD')).toEqual([]);
  });

  it('a staging prefix of 1,005 objects is listed over two pages and folded per key, never a row per object', async () => {
    const root = scene.root();
    const keys = Array.from({ length: 1005 }, (_, i) => `${root}_staging/2026-04-${String(i % 20 + 1).padStart(2, '0')}.${400000 + i}.csv`);
    await scene.server().seed(BUCKET, keys, 'xy');
    const later = new Date(Date.now() + DAY).toISOString();
    const { json, stdout } = await scene.run(['scan', ...layoutFlags(root), '--json', '--now', later]);
    expect(stdout).toContain('"runs"');
    const rows = json.runs as Row[];
    expect(rows).toHaveLength(20);
    expect(rows.reduce((n, r) => n + r.orphanCount, 0)).toBe(1005);
    expect(rows.reduce((n, r) => n + r.orphanBytes, 0)).toBe(2010);
    expect(new Set(rows.map((r) => r.state))).toEqual(new Set(['D']));
  });

  it('a listing that fails after its first page: the pipeline is not scanned, with the reason (exit 2), never judged on a part', async () => {
    const root = scene.root();
    const keys = Array.from({ length: 1005 }, (_, i) => `${root}_staging/2026-04-24.${500000 + i}.csv`);
    await scene.server().seed(BUCKET, keys, 'x');
    const proxy = await startS3Proxy(scene.server().endpoint, (request) =>
      request.url?.includes('continuation-token') ? { status: 403, body: s3ErrorBody('AccessDenied', 'Access Denied') } : 'forward');
    try {
      const { code, json } = await scene.run(['scan', ...layoutFlags(root), '--json'], scene.env(proxy.endpoint));
      expect(code).toBe(2);
      expect(json.runs).toBeUndefined();
      expect(json.error.message).toMatch(/listing of the staging prefix s3:\/\/scan-data\/t\d+\/_staging\/ failed after 1 page, so what it holds is not known/);
    } finally {
      await proxy.close();
    }
  });

  it('the table: one row per run, and the note that the uploads cannot be listed (never "none")', async () => {
    const root = scene.root();
    const k = await everyState(root);
    const { stdout } = await scene.run(['scan', ...layoutFlags(root), '--since', '30d']);
    expect(stdout).toMatch(new RegExp(`${k.kD}\\s.*\\sD\\s`));
    expect(stdout).toMatch(/5 runs: /);
    expect(stdout).toMatch(/note \(default\): incomplete multipart uploads under s3:\/\/scan-data\/t\d+\/_staging\/ cannot be listed/);
  });

  it('metrics: orphan count and bytes of an S3 pipeline, from the same listings', async () => {
    const root = scene.root();
    await everyState(root);
    const { code, stdout } = await scene.run(['scan', ...layoutFlags(root), '--since', '30d', '--format', 'prom']);
    expect(code).toBeGreaterThan(0);
    const parsed = parsePrometheusText(stdout);
    expect(sampleValue(parsed, 'crashdiag_orphan_files', { pipeline: 'default' })).toBe(2);
    expect(sampleValue(parsed, 'crashdiag_orphan_bytes', { pipeline: 'default' })).toBe('half'.length + 'older attempt'.length);
    expect(sampleValue(parsed, 'crashdiag_runs', { pipeline: 'default', state: 'D' })).toBe(1);
  });
});

describe('scan --all mixes local and S3 pipelines', () => {
  it('scans the local and the S3 pipeline; one without a bucket and one unreachable are each reported alone', async () => {
    const root = scene.root();
    await scene.put(`${root}_staging/2026-04-24.${deadPid()}.csv`, 'orphan', 3600);
    const local = await fsp.mkdtemp(join(scene.scratch(), 'local-'));
    await fsp.mkdir(join(local, 'out'));
    await fsp.mkdir(join(local, '_staging'));
    await fsp.writeFile(join(local, 'out', 'ledger_2026-04-23.csv'), 'x\n');
    const config = join(local, 'crashdiag.json');
    const s3 = (bucket: string) => ({
      outDir: `s3://${bucket}/${root}out/`,
      stagingDir: `s3://${bucket}/${root}_staging/`,
      final: 'refunds_{date}.csv',
    });
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        ledger: { outDir: join(local, 'out'), stagingDir: join(local, '_staging'), final: 'ledger_{date}.csv', marker: null },
        refunds: s3(BUCKET),
        lost: s3('no-such-bucket'),
      },
    }));
    const { code, json } = await scene.run(['scan', '--all', '--config', config, '--since', '30d', '--json']);
    type Scanned = { pipeline: string; scanned: boolean };
    const scanned = Object.fromEntries(json.pipelines.map((p: Scanned) => [p.pipeline, p.scanned]));
    expect(scanned).toEqual({ ledger: true, lost: false, refunds: true });
    expect(json.pipelines.find((p: { pipeline: string }) => p.pipeline === 'lost').error.message).toMatch(/no-such-bucket does not exist/);
    const runs = json.runs as Row[];
    expect(runs.find((r) => r.pipeline === 'refunds')).toMatchObject({ run: '2026-04-24', state: 'D' });
    expect(runs.find((r) => r.pipeline === 'ledger')).toMatchObject({ run: '2026-04-23', state: 'DONE' });
    expect(code).toBe(runs.find((r) => r.pipeline === 'refunds')?.exitCode);

    // The endpoint unreachable: every S3 pipeline is reported alone, the local one still scanned.
    const away = await scene.run(['scan', '--all', '--config', config, '--since', '30d', '--json', '--timeout', '5s'],
      scene.env('http://127.0.0.1:9'));
    const flags = Object.fromEntries(away.json.pipelines.map((p: Scanned) => [p.pipeline, p.scanned]));
    expect(flags).toEqual({ ledger: true, lost: false, refunds: false });
    expect(away.code).toBe(2);
    expect(away.stderr).toMatch(/pipeline refunds was not scanned: Cannot reach the S3 endpoint/);
  });
});

describe('mixed layouts', () => {
  it('a local staging directory beside an S3 output prefix: the local listing and lstat, the outputs from the prefix', async () => {
    const root = scene.root();
    const staging = await fsp.mkdtemp(join(scene.scratch(), 'staging-'));
    const orphan = join(staging, `2026-04-22.${deadPid()}.csv`);
    await fsp.writeFile(orphan, 'orphan');
    const then = new Date(Date.now() - 3_600_000);
    await fsp.utimes(orphan, then, then);
    await scene.put(`${root}out/refunds_2026-04-23.csv`, 'a,b\n');
    await scene.put(`${root}out/refunds_2026-04-23.csv.success`, '');
    const flags = ['--out-dir', scene.url(`${root}out/`), '--staging-dir', staging, '--final', 'refunds_{date}.csv'];
    const { json } = await scene.run(['scan', ...flags, '--since', '30d', '--json']);
    const byRun = Object.fromEntries((json.runs as Row[]).map((r) => [r.run, r.state]));
    expect(byRun).toEqual({ '2026-04-22': 'D', '2026-04-23': 'DONE' });
  });
});
