// Attacks on `diagnose --fix` for S3 prefixes, against a real S3 HTTP server
// (s3rver in a child process, a proxy in front where a fault must be injected).
// Each test is named after the attack; every one asserts the bucket as the
// server keeps it (keys, bytes, times) and, where it matters, the local disk.
// What s3rver lacks (conditional requests, ListMultipartUploads) is listed in
// test/support/s3-server.ts; these tests do not depend on it.
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { CliIo } from '../../src/cli/io.js';
import { s3LockPath } from '../../src/core/s3-state.js';
import { snapshot } from '../support/file-tree.js';
import { type ProxyDecision, s3ErrorBody, startS3Proxy } from '../support/s3-proxy.js';
import { rerunRecorder } from '../support/in-process.js';
import { useS3Scene } from '../support/s3-scene.js';

const BUCKET = 'attack-data';
// 63 characters, dots included: the longest a bucket name may be.
const LONG_BUCKET = `long.bucket.${'x'.repeat(47)}.end`;
const RUN = '2026-04-24';
const FINAL = `refunds_settled_${RUN}.csv`;
const HOUR = 3600;
const scene = useS3Scene(BUCKET, { buckets: [LONG_BUCKET] });
const { server, env: envFor, age } = scene;

let made = 0;
/** A fresh pair of prefixes per test, so tests never see each other's objects. */
function layout() {
  made += 1;
  return { top: `a${made}`, out: `a${made}/out/`, staging: `a${made}/_staging/` };
}
type Layout = ReturnType<typeof layout>;

function layoutFlags(where: Layout, bucket = BUCKET): string[] {
  return [
    '--out-dir', `s3://${bucket}/${where.out}`,
    '--staging-dir', `s3://${bucket}/${where.staging}`,
    '--final', 'refunds_settled_{date}.csv',
  ];
}

function crashdiag(args: readonly string[], env = envFor(), overrides: Partial<CliIo> = {}, runKey = RUN) {
  return scene.run(['diagnose', runKey, ...args], env, overrides);
}

/** Where s3rver keeps an object: its LastModified is that file's mtime. */
function backingFile(key: string, bucket = BUCKET): string {
  return scene.file(key, bucket);
}

function put(key: string, body: string, ageSeconds = 0, bucket = BUCKET): Promise<void> {
  return scene.put(key, body, ageSeconds, bucket);
}

/** A test's part of the bucket as the server keeps it: every key's bytes, size and time. */
function bucketDisk(where: Layout, bucket = BUCKET): Promise<string[]> {
  return scene.disk(where.top, bucket);
}

describe('attacks on the writer judgement', () => {
  it('attack: a staging object uploaded in parts is dated from the upload\'s start (as S3 dates it), while its writer may still be copying it: never deleted', async () => {
    const where = layout();
    const key = `${where.staging}${RUN}.4242.csv`;
    await put(key, 'a large staging file, uploaded in parts\n');
    // What S3 shows for an object a multipart upload made: an ETag of the
    // parts' digests with their count ("...-3"), and the upload's initiation
    // as LastModified, so an upload that took an hour and completed a moment
    // ago reads as an hour old. s3rver makes neither (its multipart objects
    // get a plain MD5, dated at completion): its store is set as S3 would show it.
    await fsp.writeFile(`${backingFile(key)}.md5`, '9b2cf535f27731c974343645a3985328-3');
    await age(key, HOUR);
    const head = await scene.client().send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head.ETag).toMatch(/-3"$/);
    const before = await bucketDisk(where);
    const { code, json } = await crashdiag([...layoutFlags(where), '--fix', '--json']);
    expect(json.fix.steps).toEqual([]);
    expect(json.state).toBe('UNKNOWN');
    expect(code).toBe(30);
    expect(json.orphans[0].writer).toBe('unknown');
    expect(json.orphans[0].writerReason).toMatch(/uploaded in parts/);
    expect(await bucketDisk(where)).toEqual(before);
  });

  it('attack: the fixer\'s clock runs two hours ahead of the server: an object written just now is not read as two hours old', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'being written');
    const before = await bucketDisk(where);
    const ahead = { now: () => Date.now() + 2 * HOUR * 1000 };
    const { code, json } = await crashdiag([...layoutFlags(where), '--fix', '--json'], envFor(), ahead);
    expect(json.fix.steps).toEqual([]);
    expect(json.state).toBe('RUNNING');
    expect(code).toBe(20);
    expect(await bucketDisk(where)).toEqual(before);
  });

  it('attack: the fixer\'s clock runs two hours behind the server: an hour-old orphan reads as changed in the future, UNKNOWN, never touched', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const before = await bucketDisk(where);
    // The server's Date is only ever used to make an object younger: a Date
    // that is not the store's own clock (a proxy's) could otherwise age it.
    const behind = { now: () => Date.now() - 2 * HOUR * 1000 };
    const { code, json } = await crashdiag([...layoutFlags(where), '--fix', '--json'], envFor(), behind);
    expect(json.state).toBe('UNKNOWN');
    expect(code).toBe(30);
    expect(json.orphans[0].writerReason).toMatch(/in the future .*clock skew/);
    expect(json.fix.steps).toEqual([]);
    expect(await bucketDisk(where)).toEqual(before);
  });
});

describe('attacks on what is taken for the output', () => {
  it('attack: the output written as a directory of parts (out/NAME/part-00000, as Spark writes it) is UNKNOWN, not missing; --fix --rerun starts nothing', async () => {
    const where = layout();
    await put(`${where.out}${FINAL}/part-00000`, 'a,b\n', HOUR);
    await put(`${where.out}${FINAL}/_SUCCESS`, '', HOUR);
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const before = await bucketDisk(where);
    const looked = await crashdiag([...layoutFlags(where), '--json']);
    expect(looked.json.state).toBe('UNKNOWN');
    expect(looked.json.anomalies).toContainEqual({
      path: `s3://${BUCKET}/${where.out}${FINAL}`, reason: 'the output is a directory, not a regular file',
    });
    const rerun = rerunRecorder();
    const { code, json } = await crashdiag([...layoutFlags(where), '--rerun', 'job --date {date}', '--fix', '--json'],
      envFor(), { runCommand: rerun.runCommand });
    expect(json.state).toBe('UNKNOWN');
    expect(code).toBe(30);
    expect(rerun.started).toEqual([]);
    expect(await bucketDisk(where)).toEqual(before);
  });
});

describe('attacks by failures midway', () => {
  it('attack: the output cannot be looked at after the deletions (HEAD denied): the report says what was deleted, exit 30, no re-run, no stack', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    let deleted = false;
    const proxy = await startS3Proxy(server().endpoint, (request): ProxyDecision => {
      if (request.method === 'DELETE') deleted = true;
      if (deleted && request.method === 'HEAD' && request.url?.includes(FINAL)) {
        return { status: 403, body: '' };
      }
      return 'forward';
    });
    const rerun = rerunRecorder();
    try {
      const { code, json, stderr } = await crashdiag([...layoutFlags(where), '--rerun', 'job --date {date}', '--fix', '--json'],
        envFor(proxy.endpoint), { runCommand: rerun.runCommand });
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['deleted']);
      expect(json.state).toBe('UNKNOWN');
      expect(code).toBe(30);
      expect(rerun.started).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('attack: DELETE denied on the second of three orphans: the fix stops, exit 30, JSON says what was done and not, the audit log has it, no stack', async () => {
    const where = layout();
    for (const pid of [4242, 4243, 4244]) await put(`${where.staging}${RUN}.${pid}.csv`, `orphan ${pid}`, HOUR);
    const proxy = await startS3Proxy(server().endpoint, (request): ProxyDecision =>
      request.method === 'DELETE' && request.url?.includes(`${RUN}.4243.csv`)
        ? { status: 403, body: s3ErrorBody('AccessDenied', 'Access Denied') }
        : 'forward');
    try {
      const { code, json, stderr } = await crashdiag([...layoutFlags(where), '--fix', '--json'], envFor(proxy.endpoint));
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(code).toBe(30);
      expect(json.state).toBe('UNKNOWN');
      expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['deleted', 'failed', 'not-attempted']);
      expect(json.fix.stopped).toMatch(/Access was denied to delete an object in bucket attack-data/);
      const keys = (await bucketDisk(where)).join('\n');
      expect(keys).not.toContain(`${RUN}.4242.csv`);
      expect(keys).toContain(`${RUN}.4243.csv`);
      expect(keys).toContain(`${RUN}.4244.csv`);
      const audit = await fsp.readFile(join(scene.scratch(), 'state', 'crashdiag', 'audit.jsonl'), 'utf8');
      const ops = audit.trim().split('\n').map((l) => JSON.parse(l) as { op: string; path?: string })
        .filter((r) => r.path?.includes(where.staging)).map((r) => `${r.op} ${r.path?.slice(-19)}`);
      expect(ops).toEqual([`intent ${RUN}.4242.csv`, `delete ${RUN}.4242.csv`, `intent ${RUN}.4243.csv`, `fail ${RUN}.4243.csv`]);
    } finally {
      await proxy.close();
    }
  });

  it('attack: the listing fails on its second page under --fix: UNKNOWN, nothing deleted from the first page', async () => {
    const where = layout();
    const keys = Array.from({ length: 1003 }, (_, i) => `${where.staging}${RUN}.${100000 + i}.csv`);
    await server().seed(BUCKET, keys, 'x', { ageSeconds: HOUR });
    const before = await bucketDisk(where);
    const proxy = await startS3Proxy(server().endpoint, (request): ProxyDecision =>
      request.url?.includes('continuation-token') ? { status: 500, body: s3ErrorBody('InternalError', 'boom') } : 'forward');
    try {
      const { code, json } = await crashdiag([...layoutFlags(where), '--fix', '--json'], envFor(proxy.endpoint));
      expect(json.state).toBe('UNKNOWN');
      expect(code).toBe(30);
      expect(json.fix.steps).toEqual([]);
      expect(await bucketDisk(where)).toEqual(before);
    } finally {
      await proxy.close();
    }
  });

  it('attack: a server whose listing never ends (the same continuation token again and again): UNKNOWN, not a hang', async () => {
    const where = layout();
    const page = (n: number) => `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${BUCKET}</Name>`
      + `<Prefix>${where.staging}${RUN}.</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>`
      + `<NextContinuationToken>again</NextContinuationToken><Contents><Key>${where.staging}${RUN}.${4000 + n}.csv</Key>`
      + '<LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"0f"</ETag><Size>1</Size></Contents></ListBucketResult>';
    let pages = 0;
    const proxy = await startS3Proxy(server().endpoint, (request): ProxyDecision => {
      const prefix = new URL(request.url ?? '', 'http://x').searchParams.get('prefix') ?? '';
      if (request.method !== 'GET' || !request.url?.includes('list-type=2') || !prefix.startsWith(where.staging)) return 'forward';
      pages += 1;
      // Past a few hundred pages the loop is proven; end it so a failing run does not eat the machine.
      if (pages > 500) return { status: 500, body: s3ErrorBody('InternalError', 'the test stops here') };
      return { status: 200, body: page(pages) };
    });
    try {
      const { json } = await crashdiag([...layoutFlags(where), '--json'], envFor(proxy.endpoint));
      expect(json.state).toBe('UNKNOWN');
      expect(pages).toBeLessThanOrEqual(2);
      expect(JSON.stringify(json.anomalies)).toMatch(/continuation token/);
    } finally {
      await proxy.close();
    }
  });
});

describe('attacks on the local lock and audit log of an S3 prefix', () => {
  it('attack: a 63-character bucket with dots, a long prefix and a 128-character run key: the lock name still fits a file name', async () => {
    const where = { ...layout(), staging: '' };
    const longKey = `${RUN}_${'k'.repeat(128 - RUN.length - 1)}`;
    where.staging = `${where.top}/${'p'.repeat(120)}/`;
    await put(`${where.staging}${longKey}.4242.csv`, 'orphan', HOUR, LONG_BUCKET);
    const { code, json, stderr } = await crashdiag([...layoutFlags(where, LONG_BUCKET), '--fix', '--json'], envFor(), {}, longKey);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['deleted']);
    expect(code).toBe(10);
  });

  it('attack: HOME empty and XDG_STATE_HOME unset: refused in one sentence, no lock or log left in the working directory', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const before = [...(await bucketDisk(where)), ...(await snapshot(scene.scratch())).filter((l) => !l.includes('/state/'))];
    const env: Record<string, string> = { ...envFor(), HOME: '' };
    delete env.XDG_STATE_HOME;
    const { code, stderr } = await crashdiag([...layoutFlags(where), '--fix'], env);
    expect(code).toBe(2);
    expect(stderr).toMatch(/HOME/);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect([...(await bucketDisk(where)), ...(await snapshot(scene.scratch())).filter((l) => !l.includes('/state/'))]).toEqual(before);
  });

  it('attack: XDG_STATE_HOME under a regular file (no lock or log can be made there): one sentence, exit 2, the bucket unchanged', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const file = join(scene.scratch(), `not-a-directory-${made}`);
    await fsp.writeFile(file, 'x');
    const before = await bucketDisk(where);
    const { code, stderr } = await crashdiag([...layoutFlags(where), '--fix'], { ...envFor(), XDG_STATE_HOME: join(file, 'state') });
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).not.toMatch(/unexpected/);
    expect(code).toBe(2);
    expect(await bucketDisk(where)).toEqual(before);
    expect(await fsp.readFile(file, 'utf8')).toBe('x');
  });

  it('attack: the same prefix spelled four ways (S3://, no trailing slash, config, flags) takes one lock: a second fixer waits', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const lock = s3LockPath(join(scene.scratch(), 'state', 'crashdiag'), { bucket: BUCKET, prefix: where.staging }, RUN);
    await fsp.mkdir(join(lock, '..'), { recursive: true });
    await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'other', since: new Date().toISOString() }));
    const config = join(scene.scratch(), `config-${made}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        refunds: { outDir: `s3://${BUCKET}/${where.out}`, stagingDir: `S3://${BUCKET}/${where.staging.replace(/\/$/, '')}`, final: 'refunds_settled_{date}.csv' },
      },
    }));
    const before = await bucketDisk(where);
    try {
      for (const args of [
        ['--out-dir', `s3://${BUCKET}/${where.out}`, '--staging-dir', `S3://${BUCKET}/${where.staging}`, '--final', 'refunds_settled_{date}.csv'],
        ['--out-dir', `s3://${BUCKET}/${where.out}`, '--staging-dir', `s3://${BUCKET}/${where.staging.replace(/\/$/, '')}`, '--final', 'refunds_settled_{date}.csv'],
        ['--config', config, '--pipeline', 'refunds'],
      ]) {
        const { code, json } = await crashdiag([...args, '--fix', '--json', '--lock-timeout', '0s']);
        expect(json.lock?.path).toBe(lock);
        expect(code).toBe(20);
      }
      expect(await bucketDisk(where)).toEqual(before);
    } finally {
      await fsp.rm(lock);
    }
  });
});

describe('attacks through another pipeline of the config', () => {
  it('attack: pipeline a stages where pipeline b publishes (spelled differently); b\'s published report.123.csv fits a\'s template for run "report": UNKNOWN, never deleted', async () => {
    const where = layout();
    const shared = `${where.top}/shared`;
    await put(`${shared}/report.123.csv`, 'published by b', HOUR);
    await put(`${shared}/report.123.csv.success`, '', HOUR);
    await put(`${shared}/report.4242.csv`, 'a\'s real orphan', HOUR);
    const config = join(scene.scratch(), `config-${made}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        a: { outDir: `s3://${BUCKET}/${where.out}`, stagingDir: `s3://${BUCKET}/${shared}`, final: 'a_{date}.csv' },
        b: { outDir: `S3://${BUCKET}/${shared}/`, stagingDir: `s3://${BUCKET}/${where.top}/b-staging/`, final: '{date}.csv' },
      },
    }));
    const before = await bucketDisk(where);
    const { code, json } = await crashdiag(['--config', config, '--pipeline', 'a', '--fix', '--json'], envFor(), {}, 'report');
    // As on disk: a published name in staging is a finding for a person, never an orphan, and nothing is removed.
    expect(json.state).toBe('UNKNOWN');
    expect(code).toBe(30);
    expect(json.fix.steps).toEqual([]);
    expect(JSON.stringify(json.anomalies)).toMatch(/report\.123\.csv.*published name for run report\.123 of pipeline b/);
    expect(await bucketDisk(where)).toEqual(before);
  });
});

describe('attacks on the quarantine', () => {
  it('attack: the copy is made, then the DELETE is denied: the fix stops (exit 30) and says where the copy is', async () => {
    const where = layout();
    const key = `${where.staging}${RUN}.4242.csv`;
    await put(key, 'evidence', HOUR);
    const quarantine = `s3://${BUCKET}/${where.top}/_quarantine/`;
    const proxy = await startS3Proxy(server().endpoint, (request): ProxyDecision =>
      request.method === 'DELETE' ? { status: 403, body: s3ErrorBody('AccessDenied', 'Access Denied') } : 'forward');
    try {
      const { code, json } = await crashdiag([...layoutFlags(where), '--fix', '--json', '--quarantine', quarantine],
        envFor(proxy.endpoint));
      expect(code).toBe(30);
      expect(json.fix.steps[0]).toMatchObject({ result: 'failed', to: `${quarantine}${RUN}.4242.csv` });
      expect(json.fix.steps[0].reason).toMatch(new RegExp(`Access was denied.*a copy of it as planned is at ${quarantine}`));
      const disk = (await bucketDisk(where)).join('\n');
      expect(disk).toContain(`_staging/${RUN}.4242.csv._S3rver_object`);
      expect(disk).toContain(`_quarantine/${RUN}.4242.csv._S3rver_object`);
    } finally {
      await proxy.close();
    }
  });

  it('attack: a quarantine copy of that name already exists: never overwritten, the orphan left alone, no re-run', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'this orphan', HOUR);
    await put(`${where.top}/_quarantine/${RUN}.4242.csv`, 'an earlier quarantined copy', HOUR);
    const before = await bucketDisk(where);
    const rerun = rerunRecorder();
    const { code, json } = await crashdiag([...layoutFlags(where), '--rerun', 'job --date {date}', '--fix', '--json',
      '--quarantine', `s3://${BUCKET}/${where.top}/_quarantine`], envFor(), { runCommand: rerun.runCommand });
    expect(json.fix.steps[0]).toMatchObject({ result: 'left-alone' });
    expect(json.fix.steps[0].reason).toMatch(/already exists/);
    expect(json.state).toBe('D');
    expect(code).toBe(11);
    expect(rerun.started).toEqual([]);
    expect(await bucketDisk(where)).toEqual(before);
  });

  it('attack: the quarantine in another bucket (with dots): the copy lands there, byte for byte, then the orphan goes', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'evidence', HOUR);
    const { json } = await crashdiag([...layoutFlags(where), '--fix', '--json', '--quarantine', `s3://${LONG_BUCKET}/${where.top}/q/`]);
    expect(json.fix.steps[0]).toMatchObject({ result: 'quarantined', to: `s3://${LONG_BUCKET}/${where.top}/q/${RUN}.4242.csv` });
    expect(await fsp.readFile(backingFile(`${where.top}/q/${RUN}.4242.csv`, LONG_BUCKET), 'utf8')).toBe('evidence');
    await expect(fsp.access(backingFile(`${where.staging}${RUN}.4242.csv`))).rejects.toThrow(/ENOENT/);
  });

  it('attack: the quarantine is another pipeline\'s output prefix (config, another spelling): refused before anything is done', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const config = join(scene.scratch(), `config-${made}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        a: { outDir: `s3://${BUCKET}/${where.out}`, stagingDir: `s3://${BUCKET}/${where.staging}`, final: 'refunds_settled_{date}.csv' },
        b: { outDir: `s3://${BUCKET}/${where.top}/b-out`, stagingDir: `s3://${BUCKET}/${where.top}/b-staging/`, final: 'b_{date}.csv' },
      },
    }));
    const before = await bucketDisk(where);
    const { code, stderr } = await crashdiag(['--config', config, '--pipeline', 'a', '--fix',
      '--quarantine', `S3://${BUCKET}/${where.top}/b-out/quarantine`]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/under the output prefix s3:\/\/attack-data\/a\d+\/b-out/);
    expect(await bucketDisk(where)).toEqual(before);
  });
});

describe('attacks through timeouts', () => {
  it('attack: the server never answers a DELETE (--timeout 1s): the fix stops, exit 30, the bucket untouched', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const before = await bucketDisk(where);
    const proxy = await startS3Proxy(server().endpoint, (request) =>
      request.method === 'DELETE' ? new Promise<ProxyDecision>(() => undefined) : 'forward');
    try {
      const { code, json, stderr } = await crashdiag([...layoutFlags(where), '--fix', '--json', '--timeout', '1s'],
        envFor(proxy.endpoint));
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(code).toBe(30);
      expect(json.fix.steps[0]).toMatchObject({ result: 'failed' });
      expect(json.fix.steps[0].reason).toMatch(/did not answer within 1s/);
      expect(await bucketDisk(where)).toEqual(before);
    } finally {
      await proxy.close();
    }
  });
});

describe('attacks through --timeout', () => {
  it('attack: --timeout 30d, past what a timer can hold: refused in one sentence, never a 1 ms timeout on every request', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const refused = await crashdiag([...layoutFlags(where), '--timeout', '30d']);
    expect(refused.stderr).not.toMatch(/did not answer/);
    expect(refused.stderr).toMatch(/--timeout 30d is longer than 24h/);
    expect(refused.code).toBe(2);
    const longest = await crashdiag([...layoutFlags(where), '--json', '--timeout', '24h']);
    expect(longest.json.state).toBe('D');
  });
});

describe('attacks through names and prefixes', () => {
  it('attack: run keys with +, : and a non-ASCII letter, beside a key with a space where the + is: only this run\'s objects go', async () => {
    const where = layout();
    const runKey = '2026-04-24+r1:é';
    await put(`${where.staging}${runKey}.4242.csv`, 'orphan', HOUR);
    await put(`${where.staging}2026-04-24 r1:é.4243.csv`, 'not this run\'s: a space, not a +', HOUR);
    await put(`${where.staging}2026-04-24%2Br1:é.4244.csv`, 'not this run\'s: the + percent-encoded', HOUR);
    const { json } = await crashdiag([...layoutFlags(where), '--fix', '--json'], envFor(), {}, runKey);
    expect(json.fix.steps).toEqual([
      { path: `s3://${BUCKET}/${where.staging}${runKey}.4242.csv`, bytes: 6, pid: 4242, result: 'deleted' },
    ]);
    const disk = (await bucketDisk(where)).join('\n');
    expect(disk).not.toContain('4242.csv');
    expect(disk).toContain('4243.csv');
    expect(disk).toContain('4244.csv');
  });

  it('attack: --staging-dir s3://b/stg (no slash) beside stg-x/ and stgKEY objects: neither is listed nor removed', async () => {
    const where = layout();
    const staging = `${where.top}/stg`;
    await put(`${staging}-x/${RUN}.4242.csv`, 'another prefix', HOUR);
    await put(`${staging}${RUN}.4243.csv`, 'a key that only starts like the prefix', HOUR);
    const before = await bucketDisk(where);
    const { json } = await crashdiag(['--out-dir', `s3://${BUCKET}/${where.out}`, '--staging-dir', `s3://${BUCKET}/${staging}`,
      '--final', 'refunds_settled_{date}.csv', '--fix', '--json']);
    expect(json.state).toBe('A/B/C');
    expect(json.fix.steps).toEqual([]);
    expect(await bucketDisk(where)).toEqual(before);
  });

  it('attack: a "directory" named like a staging file (stg/KEY.123.csv/part-0) beside a dead orphan: UNKNOWN, nothing removed', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.123.csv/part-0`, 'a deeper key', HOUR);
    await put(`${where.staging}${RUN}.4242.csv`, '', HOUR);
    const before = await bucketDisk(where);
    const { code, json } = await crashdiag([...layoutFlags(where), '--fix', '--json']);
    expect(json.state).toBe('UNKNOWN');
    expect(code).toBe(30);
    expect(json.anomalies).toContainEqual({
      path: `s3://${BUCKET}/${where.staging}${RUN}.123.csv`,
      reason: 'a directory where a staging file should be; it is never followed or deleted',
    });
    expect(json.fix.steps).toEqual([]);
    expect(await bucketDisk(where)).toEqual(before);
  });
});

describe('attacks on crashdiag\'s own writes beside an S3 staging prefix', () => {
  it('attack: --audit-log inside the local output directory of a mixed layout: refused (exit 2), the published file and the bucket unchanged', async () => {
    const where = layout();
    const out = await fsp.mkdtemp(join(scene.scratch(), 'out-'));
    await fsp.writeFile(join(out, FINAL), 'a,b\n');
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', HOUR);
    const before = [...(await snapshot(out)), ...(await bucketDisk(where))];
    const { code, stderr } = await crashdiag(['--out-dir', out, '--staging-dir', `s3://${BUCKET}/${where.staging}`,
      '--final', 'refunds_settled_{date}.csv', '--no-marker', '--fix', '--audit-log', join(out, FINAL)]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/audit log .* is inside the output directory/);
    expect([...(await snapshot(out)), ...(await bucketDisk(where))]).toEqual(before);
  });
});
