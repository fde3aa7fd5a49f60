// A local staging directory beside an S3 output prefix (issue 12: "either or
// both"): `diagnose --fix` and `clean` act on it with the local fixer and
// janitor (their lock, audit log, guards and fsync), and only the output's
// facts come from the bucket. Against a real S3 HTTP server (s3rver); every
// refusal asserts the local staging directory AND the bucket unchanged.
import { promises as fsp, lstatSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import type { FileSystem } from '../../src/core/fs.js';
import { changedAtMtimeFs } from '../support/ctime.js';
import { deadPid, deadPids } from '../support/dead-pids.js';
import { snapshot } from '../support/file-tree.js';
import { runBin, useBuiltBin } from '../support/built-bin.js';
import { rerunRecorder } from '../support/in-process.js';
import { useS3Scene } from '../support/s3-scene.js';

const BUCKET = 'mixed-data';
const RUN = '2026-04-24';
const FINAL = `refunds_settled_${RUN}.csv`;
const HOUR = 3600;
const scene = useS3Scene(BUCKET);
const { env: envFor, put } = scene;
const built = useBuiltBin();

let made = 0;
/** A fresh output prefix and local staging directory per test. */
async function layout() {
  made += 1;
  const staging = join(scene.scratch(), `staging-${made}`);
  await fsp.mkdir(staging);
  // Another object beside the output prefix: the bucket's part of the test is never empty, and must stay as it is.
  await put(`m${made}/elsewhere/keep.csv`, 'not this pipeline\'s');
  return { top: `m${made}`, out: `m${made}/out/`, staging };
}
type Layout = Awaited<ReturnType<typeof layout>>;

function layoutFlags(where: Layout): string[] {
  return [
    '--out-dir', `s3://${BUCKET}/${where.out}`,
    '--staging-dir', where.staging,
    '--final', 'refunds_settled_{date}.csv',
  ];
}

/**
 * The janitor sees each local file as last changed at its mtime (changedAtMtimeFs): these
 * tests age orphans with utimes, and no one can set a ctime back. The ctime rule itself is
 * the local janitor's, tested in test/core/clean.test.ts.
 */
function clean(args: readonly string[]) {
  return crashdiag(['clean', ...args], { fs: changedAtMtimeFs(fsp) });
}

function crashdiag(args: readonly string[], overrides: Partial<CliIo> = {}) {
  return scene.run(args, envFor(), overrides);
}

/** A local file `seconds` old (mtime; the ctime stays now, as it must: no one can set it back). */
async function writeAged(path: string, body: string, seconds = 0): Promise<void> {
  await fsp.writeFile(path, body);
  if (seconds === 0) return;
  const then = new Date(Date.now() - seconds * 1000);
  await fsp.utimes(path, then, then);
}

/** The local staging directory and the test's part of the bucket as the server keeps it: bytes, sizes, times. */
async function both(where: Layout): Promise<string[]> {
  return [...(await snapshot(where.staging)), ...(await scene.disk(where.top))];
}

/**
 * Every byte of staging and of the bucket's part as it was. The local fixer's lock
 * directory (<staging>/.crashdiag) may be left behind, empty: no lock, no log line.
 */
async function expectUnchanged(where: Layout, before: readonly string[]): Promise<void> {
  const ownDir = join(where.staging, '.crashdiag');
  expect((await both(where)).filter((line) => !line.startsWith(`${ownDir}/`))).toEqual(before);
  expect(await fsp.readdir(ownDir).catch(() => [])).toEqual([]);
}

async function bucketOnly(where: Layout): Promise<string[]> {
  return scene.disk(where.top);
}

async function auditOps(where: Layout): Promise<Array<Record<string, unknown>>> {
  const text = await fsp.readFile(join(where.staging, '.crashdiag', 'audit.jsonl'), 'utf8');
  return text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('diagnose --fix on a local staging directory beside an S3 output prefix', () => {
  it('D-race: dead local orphans beside the published S3 output and marker: only the orphans go, each intent first, no re-run, the bucket unchanged', async () => {
    const where = await layout();
    const [a, b] = deadPids(2) as [number, number];
    await writeAged(join(where.staging, `${RUN}.${a}.csv`), 'orphan a', HOUR);
    await writeAged(join(where.staging, `${RUN}.${b}.csv`), 'orphan b', HOUR);
    await writeAged(join(where.staging, `2026-04-23.${a}.csv`), 'another run', HOUR);
    await put(`${where.out}${FINAL}`, 'a,b\n');
    await put(`${where.out}${FINAL}.success`, '');
    const bucket = await bucketOnly(where);
    const rerun = rerunRecorder();
    const { code, json } = await crashdiag(
      ['diagnose', RUN, ...layoutFlags(where), '--rerun', 'job --date {date}', '--fix', '--json'],
      { runCommand: rerun.runCommand },
    );
    expect(json.fix.before.state).toBe('D-race');
    expect(json.state).toBe('DONE');
    expect(code).toBe(0);
    expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['deleted', 'deleted']);
    expect(rerun.started).toEqual([]);
    expect((await fsp.readdir(where.staging)).sort()).toEqual(['.crashdiag', `2026-04-23.${a}.csv`]);
    expect(await bucketOnly(where)).toEqual(bucket);
    // Where the local fixer keeps it: beside staging, write-ahead.
    const ops = (await auditOps(where)).map((l) => `${String(l.op)} ${basename(String(l.path))}`);
    expect(ops).toEqual([
      `intent ${RUN}.${a}.csv`, `delete ${RUN}.${a}.csv`, `intent ${RUN}.${b}.csv`, `delete ${RUN}.${b}.csv`,
    ]);
  });

  it('D: dead local orphans, no output in the bucket: the orphans go, then the re-run; the S3 output is what the re-run is judged by', async () => {
    const where = await layout();
    const pid = deadPid();
    await writeAged(join(where.staging, `${RUN}.${pid}.csv`), 'orphan', HOUR);
    const rerun = rerunRecorder();
    const { code, json } = await crashdiag(
      ['diagnose', RUN, ...layoutFlags(where), '--rerun', 'job --date {date}', '--fix', '--json'],
      { runCommand: rerun.runCommand },
    );
    expect(json.fix.before.state).toBe('D');
    expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['deleted']);
    expect(rerun.started).toEqual([['job', '--date', RUN]]);
    // The recorder published nothing: the output is still missing in the bucket.
    expect(json.state).toBe('A/B/C');
    expect(code).toBe(json.exitCode);
    expect(await fsp.readdir(where.staging)).toEqual(['.crashdiag']);
  });

  it('attack: UNPUBLISHED, and another run replaces the S3 output between the plan and the re-run: the re-run is not started', async () => {
    const where = await layout();
    const pid = deadPid();
    const orphan = join(where.staging, `${RUN}.${pid}.csv`);
    await writeAged(orphan, 'orphan', HOUR);
    await put(`${where.out}${FINAL}`, 'first\n');
    const rerun = rerunRecorder();
    // Right after the orphan's unlink (after the plan, before the re-run's last look), another run publishes.
    const fs: FileSystem = {
      ...(fsp as FileSystem),
      lstatSync,
      unlink: async (path) => {
        await fsp.unlink(path);
        if (path === orphan) await put(`${where.out}${FINAL}`, 'second, from another run\n');
      },
    };
    const { json } = await crashdiag(
      ['diagnose', RUN, ...layoutFlags(where), '--rerun', 'job --date {date}', '--fix', '--json'],
      { runCommand: rerun.runCommand, fs },
    );
    expect(json.fix.before.state).toBe('UNPUBLISHED');
    expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['deleted']);
    expect(rerun.started).toEqual([]);
    expect(json.fix.rerunSkipped).toMatch(/output was replaced or rewritten meanwhile/);
    const ops = (await auditOps(where)).map((l) => String(l.op));
    expect(ops).toEqual(['intent', 'delete', 'skip']);
  });

  it('UNPUBLISHED with the S3 output unchanged: the orphan goes, then the re-run', async () => {
    const where = await layout();
    await writeAged(join(where.staging, `${RUN}.${deadPid()}.csv`), 'orphan', HOUR);
    await put(`${where.out}${FINAL}`, 'first\n');
    const bucket = await bucketOnly(where);
    const rerun = rerunRecorder();
    const { json } = await crashdiag(
      ['diagnose', RUN, ...layoutFlags(where), '--rerun', 'job --date {date}', '--fix', '--json'],
      { runCommand: rerun.runCommand },
    );
    expect(json.fix.before.state).toBe('UNPUBLISHED');
    expect(rerun.started).toEqual([['job', '--date', RUN]]);
    expect(await bucketOnly(where)).toEqual(bucket);
  });

  it('attack: a live local writer beside a dead orphan: RUNNING, nothing removed, no re-run, disk and bucket unchanged', async () => {
    const where = await layout();
    await writeAged(join(where.staging, `${RUN}.${process.pid}.csv`), 'still being written');
    await writeAged(join(where.staging, `${RUN}.${deadPid()}.csv`), 'orphan', HOUR);
    const before = await both(where);
    const rerun = rerunRecorder();
    const { code, json, stdout, stderr } = await crashdiag(
      ['diagnose', RUN, ...layoutFlags(where), '--rerun', 'job --date {date}', '--fix', '--json'],
      { runCommand: rerun.runCommand },
    );
    expect(json?.state, stdout + stderr).toBe('RUNNING');
    expect(code).toBe(20);
    expect(json.fix.steps).toEqual([]);
    expect(rerun.started).toEqual([]);
    await expectUnchanged(where, before);
  });

  it('attack: another pipeline of the config publishes report.123.csv (and its marker) into this local staging directory; it fits the staging template for run "report": never deleted', async () => {
    const where = await layout();
    await writeAged(join(where.staging, 'report.123.csv'), 'published by b', HOUR);
    await writeAged(join(where.staging, 'report.123.csv.success'), '', HOUR);
    await writeAged(join(where.staging, `report.${deadPid()}.csv`), 'a\'s real orphan', HOUR);
    const config = join(scene.scratch(), `config-${made}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        a: { outDir: `s3://${BUCKET}/${where.out}`, stagingDir: `${where.staging}/`, final: 'a_{date}.csv' },
        b: { outDir: where.staging, stagingDir: join(scene.scratch(), 'b-staging'), final: '{date}.csv' },
      },
    }));
    const before = await both(where);
    const { code, json } = await crashdiag(['diagnose', 'report', '--config', config, '--pipeline', 'a', '--fix', '--json']);
    expect(json.state).toBe('UNKNOWN');
    expect(code).toBe(30);
    expect(json.fix.steps).toEqual([]);
    expect(JSON.stringify(json.anomalies)).toMatch(/report\.123\.csv.*pipeline b/);
    await expectUnchanged(where, before);
  });

  it('attack: --audit-log whose path spells the S3 output prefix as a local directory: not taken for the output, the log written there', async () => {
    const where = await layout();
    await writeAged(join(where.staging, `${RUN}.${deadPid()}.csv`), 'orphan', HOUR);
    await put(`${where.out}${FINAL}`, 'a,b\n');
    await put(`${where.out}${FINAL}.success`, '');
    const bucket = await bucketOnly(where);
    // resolve('s3://b/p') is <cwd>/s3:/b/p: a path comparison would read this local file as "in the output".
    // The built bin, so that the working directory is the scratch directory for path.resolve too.
    const spelled = join(scene.scratch(), 's3:', BUCKET, where.out);
    await fsp.mkdir(spelled, { recursive: true });
    const { code, stdout, stderr } = await runBin(
      built.bin,
      ['diagnose', RUN, ...layoutFlags(where), '--fix', '--json', '--audit-log', join(spelled, 'audit.jsonl')],
      { cwd: scene.scratch(), env: { ...envFor(), AWS_EC2_METADATA_DISABLED: 'true' } },
    );
    expect(code, stderr).toBe(0);
    const json = JSON.parse(stdout);
    expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['deleted']);
    expect((await fsp.readFile(join(spelled, 'audit.jsonl'), 'utf8')).split('\n').filter(Boolean)).toHaveLength(2);
    expect(await bucketOnly(where)).toEqual(bucket);
  });

  it('--abort-uploads and an S3 quarantine need an S3 staging prefix: refused (exit 2), disk and bucket unchanged', async () => {
    const where = await layout();
    await writeAged(join(where.staging, `${RUN}.${deadPid()}.csv`), 'orphan', HOUR);
    await put(`${where.out}${FINAL}`, 'a,b\n');
    const before = await both(where);
    for (const extra of [['--abort-uploads'], ['--quarantine', `s3://${BUCKET}/${where.top}/q/`]]) {
      const { code, stderr } = await crashdiag(['diagnose', RUN, ...layoutFlags(where), '--fix', ...extra]);
      expect(code).toBe(2);
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(await both(where)).toEqual(before);
    }
  });

  it('a local --quarantine: the orphan is moved there, the bucket unchanged', async () => {
    const where = await layout();
    const pid = deadPid();
    await writeAged(join(where.staging, `${RUN}.${pid}.csv`), 'orphan', HOUR);
    const bucket = await bucketOnly(where);
    const quarantine = join(scene.scratch(), `quarantine-${made}`);
    const { json } = await crashdiag(['diagnose', RUN, ...layoutFlags(where), '--fix', '--json', '--quarantine', quarantine]);
    expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['quarantined']);
    expect(await fsp.readFile(join(quarantine, `${RUN}.${pid}.csv`), 'utf8')).toBe('orphan');
    expect(await bucketOnly(where)).toEqual(bucket);
  });
});

describe('clean on a local staging directory beside an S3 output prefix', () => {
  it('removes only the old dead local orphans; a young one and other files stay; the bucket unchanged', async () => {
    const where = await layout();
    const [old1, old2, young] = deadPids(3) as [number, number, number];
    await writeAged(join(where.staging, `2026-04-20.${old1}.csv`), 'old orphan', 3 * HOUR);
    await writeAged(join(where.staging, `2026-04-21.${old2}.csv`), 'old orphan', 3 * HOUR);
    await writeAged(join(where.staging, `2026-04-22.${young}.csv`), 'young orphan', 60);
    await writeAged(join(where.staging, 'notes.txt'), 'not a staging name', 3 * HOUR);
    await put(`${where.out}refunds_settled_2026-04-20.csv`, 'a,b\n');
    const bucket = await bucketOnly(where);
    const { code, json } = await clean([...layoutFlags(where), '--older-than', '2h', '--json']);
    expect(code).toBe(0);
    const removed = json.pipelines[0].removed.map((r: { path: string }) => basename(r.path)).sort();
    expect(removed).toEqual([`2026-04-20.${old1}.csv`, `2026-04-21.${old2}.csv`]);
    expect((await fsp.readdir(where.staging)).sort()).toEqual([
      '.crashdiag', `2026-04-22.${young}.csv`, 'notes.txt',
    ]);
    expect(await bucketOnly(where)).toEqual(bucket);
    const ops = (await auditOps(where)).map((l) => String(l.op)).sort();
    expect(ops).toEqual(['delete', 'delete', 'intent', 'intent']);
  });

  it('attack: another pipeline publishes into this local staging directory: its old published files are never cleaned', async () => {
    const where = await layout();
    await writeAged(join(where.staging, 'report.20260424.csv'), 'published by b', 3 * 24 * HOUR);
    const orphan = `2026-04-20.${deadPid()}.csv`;
    await writeAged(join(where.staging, orphan), 'orphan', 3 * HOUR);
    const config = join(scene.scratch(), `config-${made}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        a: { outDir: `s3://${BUCKET}/${where.out}`, stagingDir: where.staging, final: 'a_{date}.csv' },
        b: { outDir: where.staging, stagingDir: join(scene.scratch(), 'b-staging'), final: 'report.{date}.csv' },
      },
    }));
    const { code, json } = await clean(['--config', config, '--pipeline', 'a', '--older-than', '2h', '--json']);
    expect(code).toBe(0);
    expect(json.pipelines[0].removed.map((r: { path: string }) => basename(r.path))).toEqual([orphan]);
    expect(await fsp.readFile(join(where.staging, 'report.20260424.csv'), 'utf8')).toBe('published by b');
  });
});
