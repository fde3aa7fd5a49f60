// diagnose and diagnose --fix on S3 prefixes, against a real S3 HTTP server
// (s3rver in a child process). What s3rver lacks, and so what is skipped, is
// listed at the top of test/support/s3-server.ts: it cannot list multipart
// uploads (so the uploads can only show up here as "cannot be listed"), and
// it ignores If-Match (so the HEAD re-check is what the attacks exercise).
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deadPid } from '../support/dead-pids.js';
import { requestsDuring } from '../support/s3-objects.js';
import { type ProxyDecision, s3ErrorBody, startS3Proxy } from '../support/s3-proxy.js';
import { useS3Scene } from '../support/s3-scene.js';
import type { LoggedRequest } from '../support/s3-server.js';
import { s3LockPath } from '../../src/core/s3-state.js';

const BUCKET = 'refunds-data';
const RUN = '2026-04-24';
const FINAL = `refunds_settled_${RUN}.csv`;
const scene = useS3Scene(BUCKET);
const { server, env: envFor, age, put, keysUnder, auditLines } = scene;

let made = 0;
/** A fresh pair of prefixes per test, so tests never see each other's objects. */
function layout() {
  made += 1;
  return { out: `t${made}/out/`, staging: `t${made}/_staging/` };
}
type Layout = ReturnType<typeof layout>;

function layoutFlags(where: Layout, extra: { staging?: string } = {}): string[] {
  return [
    '--out-dir', `s3://${BUCKET}/${where.out}`,
    '--staging-dir', `s3://${BUCKET}/${where.staging}`,
    '--final', 'refunds_settled_{date}.csv',
    ...(extra.staging ? ['--staging', extra.staging] : []),
  ];
}

function crashdiag(args: readonly string[], env = envFor()) {
  return scene.run(['diagnose', RUN, ...args], env);
}

/** A test's part of the bucket as the server keeps it: every key's bytes, size and time. "Unchanged" means equal. */
function bucketDisk(where: Layout): Promise<string[]> {
  return scene.disk(where.out.split('/')[0] as string);
}

/** The key prefixes of the ListObjectsV2 requests among `seen`, sorted. */
function listedPrefixes(seen: readonly LoggedRequest[]): string[] {
  return seen
    .filter((r) => r.method === 'GET' && r.url.includes('list-type=2'))
    .map((r) => new URL(r.url, 'http://x').searchParams.get('prefix') ?? '')
    .sort();
}

describe('diagnose names each state on S3', () => {
  it('DONE: the output and its marker, nothing in staging', async () => {
    const where = layout();
    await put(`${where.out}${FINAL}`, 'a,b\n');
    await put(`${where.out}${FINAL}.success`, '');
    const { code, json } = await crashdiag([...layoutFlags(where), '--json']);
    expect(json.state).toBe('DONE');
    expect(code).toBe(0);
    expect(json.final.path).toBe(`s3://${BUCKET}/${where.out}${FINAL}`);
    expect(json.final.marker.path).toBe(`s3://${BUCKET}/${where.out}${FINAL}.success`);
  });

  it('A/B/C: nothing for the run key', async () => {
    const where = layout();
    await put(`${where.staging}2026-04-23.${deadPid()}.csv`, 'another run\n', 3600);
    const { json } = await crashdiag([...layoutFlags(where), '--json']);
    expect(json.state).toBe('A/B/C');
    expect(json.orphans).toEqual([]);
  });

  it('D: a staging object untouched for longer than --stale-after, judged by age (LastModified)', async () => {
    const where = layout();
    const key = `${where.staging}${RUN}.4242.csv`;
    await put(key, 'half a file', 3600);
    const { code, json } = await crashdiag([...layoutFlags(where), '--json']);
    expect(json.state).toBe('D');
    expect(code).toBe(json.exitCode);
    expect(json.orphans).toHaveLength(1);
    expect(json.orphans[0]).toMatchObject({ path: `s3://${BUCKET}/${key}`, bytes: 11, writer: 'dead', writerJudgedBy: 'age' });
    expect(json.orphans[0].writerReason).toMatch(/S3 object whose key names no host/);
    // The server cannot list multipart uploads: that is said, never read as "none".
    expect(json.uploadNotes?.[0]).toMatch(/cannot be listed/);
  });

  it('RUNNING by age: a staging object written just now, whatever its PID', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.${deadPid()}.csv`, 'being written');
    const { json } = await crashdiag([...layoutFlags(where), '--json']);
    expect(json.state).toBe('RUNNING');
    expect(json.orphans[0]).toMatchObject({ writer: 'alive', writerJudgedBy: 'age' });
  });

  it('a key naming this host ({host}) is judged by its PID, as locally: alive, and dead though fresh', async () => {
    const staging = '{date}.{host}.{pid}.csv';
    const live = layout();
    await put(`${live.staging}${RUN}.${hostname()}.${process.pid}.csv`, 'mine', 0);
    const running = await crashdiag([...layoutFlags(live, { staging }), '--json']);
    expect(running.json.state).toBe('RUNNING');
    expect(running.json.orphans[0]).toMatchObject({ writer: 'alive', writerJudgedBy: 'pid' });

    const dead = layout();
    await put(`${dead.staging}${RUN}.${hostname()}.${deadPid()}.csv`, 'fresh but dead');
    const crashed = await crashdiag([...layoutFlags(dead, { staging }), '--json']);
    expect(crashed.json.state).toBe('D');
    expect(crashed.json.orphans[0]).toMatchObject({ writer: 'dead', writerJudgedBy: 'pid' });
  });

  it('UNPUBLISHED: the output without its marker', async () => {
    const where = layout();
    await put(`${where.out}${FINAL}`, 'a,b\n');
    const { json } = await crashdiag([...layoutFlags(where), '--json']);
    expect(json.state).toBe('UNPUBLISHED');
  });

  it('UNKNOWN, with the reason, when the listing fails after its first page', async () => {
    const where = layout();
    // Over one page (1,000 keys) of this run's staging names; the second page is refused.
    const keys = Array.from({ length: 1005 }, (_, i) => `${where.staging}${RUN}.${100000 + i}.csv`);
    await server().seed(BUCKET, keys, 'x');
    const proxy = await startS3Proxy(server().endpoint, (request) =>
      request.url?.includes('continuation-token')
        ? { status: 403, body: s3ErrorBody('AccessDenied', 'Access Denied') }
        : 'forward');
    try {
      const { code, json } = await crashdiag([...layoutFlags(where), '--json', '--now', new Date(Date.now() + 86_400_000).toISOString()],
        envFor(proxy.endpoint));
      expect(json.state).toBe('UNKNOWN');
      expect(code).toBe(json.exitCode);
      const anomaly = json.anomalies.find((a: { path: string }) => a.path === `s3://${BUCKET}/${where.staging}`);
      expect(anomaly?.reason).toMatch(/failed after 1 page.*Access was denied to list keys in bucket refunds-data/);
    } finally {
      await proxy.close();
    }
  });
});

describe('multipart uploads that cannot be listed', () => {
  it('a reader denied ListMultipartUploads still gets the state, with a note, never "none"', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', 3600);
    const proxy = await startS3Proxy(server().endpoint, (request) =>
      /[?&]uploads/.test(request.url ?? '') ? { status: 403, body: s3ErrorBody('AccessDenied', 'Access Denied') } : 'forward');
    try {
      const { json } = await crashdiag([...layoutFlags(where), '--json'], envFor(proxy.endpoint));
      expect(json.state).toBe('D');
      expect(json.uploads).toEqual([]);
      expect(json.uploadNotes.join('\n')).toMatch(/cannot be listed.*Access was denied to list multipart uploads/);
    } finally {
      await proxy.close();
    }
  });
});

describe('listing cost follows the matches, not the bucket', () => {
  it('lists only PREFIX + the key\'s literal start: one ListObjectsV2 for 2 matches among 1,500 other keys', async () => {
    const where = layout();
    const others = Array.from({ length: 1500 }, (_, i) => `${where.staging}2026-03-${String(i % 28 + 1).padStart(2, '0')}.${200000 + i}.csv`);
    await server().seed(BUCKET, others, 'old');
    await put(`${where.staging}${RUN}.4242.csv`, 'a', 3600);
    await put(`${where.staging}${RUN}.4243.csv`, 'b', 3600);
    let json: { state: string; orphans: unknown[]; orphanTotals: { count: number; listed: number } } | undefined;
    const seen = await requestsDuring(server(), async () => {
      json = (await crashdiag([...layoutFlags(where), '--json'])).json;
    });
    expect(json?.state).toBe('D');
    expect(json?.orphans).toHaveLength(2);
    const prefixes = listedPrefixes(seen);
    // One for the staging names; one each, a key at most, for whether the
    // missing output and marker are "directories" of parts.
    expect(prefixes).toEqual([`${where.staging}${RUN}.`, `${where.out}${FINAL}.success/`, `${where.out}${FINAL}/`]);
  });
});

describe('diagnose --fix on S3', () => {
  it('deletes the dead orphans, each after a write-ahead intent in the local audit log', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan one', 3600);
    await put(`${where.staging}${RUN}.4243.csv`, 'orphan two', 3600);
    await put(`${where.staging}2026-04-23.4244.csv`, 'another run', 3600);
    const { json } = await crashdiag([...layoutFlags(where), '--fix', '--json']);
    expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['deleted', 'deleted']);
    expect(json.state).toBe('A/B/C');
    expect(await keysUnder(where.staging)).toEqual([expect.stringContaining(`${where.staging}2026-04-23.4244.csv`)]);
    const lines = (await auditLines()).filter((l) => String(l.path).includes(where.staging));
    const path = `s3://${BUCKET}/${where.staging}${RUN}.4242.csv`;
    const ops = lines.filter((l) => l.path === path).map((l) => l.op);
    expect(ops).toEqual(['intent', 'delete']);
  });

  it('quarantine: copies to the quarantine prefix, then deletes', async () => {
    const where = layout();
    const key = `${where.staging}${RUN}.4242.csv`;
    await put(key, 'evidence', 3600);
    const quarantine = `s3://${BUCKET}/${where.staging.replace('_staging', '_quarantine')}`;
    const { json } = await crashdiag([...layoutFlags(where), '--fix', '--json', '--quarantine', quarantine]);
    expect(json.fix.steps[0]).toMatchObject({ result: 'quarantined', to: `${quarantine}${RUN}.4242.csv` });
    expect(await keysUnder(where.staging)).toEqual([]);
    expect(await keysUnder(where.staging.replace('_staging', '_quarantine'))).toHaveLength(1);
  });

  it('attack: the object is rewritten between the plan and the delete: refused, the bucket as the writer left it', async () => {
    const where = layout();
    const key = `${where.staging}${RUN}.4242.csv`;
    await put(key, 'orphan', 3600);
    let before: string[] = [];
    // The first HEAD of the staging key is the last look before the DELETE: a new run rewrites it just then.
    let rewritten = false;
    const proxy = await startS3Proxy(server().endpoint, async (request): Promise<ProxyDecision> => {
      if (!rewritten && request.method === 'HEAD' && request.url?.includes(`${RUN}.4242.csv`)) {
        rewritten = true;
        await put(key, 'a new run writes this, much longer');
        await age(key, 3600);
        before = await bucketDisk(where);
      }
      return 'forward';
    });
    try {
      const { json } = await crashdiag([...layoutFlags(where), '--fix', '--json'], envFor(proxy.endpoint));
      expect(rewritten).toBe(true);
      expect(json.fix.steps[0]).toMatchObject({ result: 'left-alone' });
      expect(json.fix.steps[0].reason).toMatch(/replaced or rewritten|size changed/);
      expect(await bucketDisk(where)).toEqual(before);
    } finally {
      await proxy.close();
    }
  });

  it('staging prefix == output prefix: the published output that fits the staging template is never planned nor deleted', async () => {
    const where = layout();
    const shared = { out: where.out, staging: where.out };
    // The output's own name reads as a staging name of PID 7 under '{date}.{pid}.csv'.
    await put(`${where.out}${RUN}.7.csv`, 'published', 3600);
    await put(`${where.out}${RUN}.7.csv.success`, '', 3600);
    const before = await bucketDisk(where);
    const { json } = await crashdiag([
      '--out-dir', `s3://${BUCKET}/${shared.out}`, '--staging-dir', `s3://${BUCKET}/${shared.staging}`,
      '--final', '{date}.7.csv', '--fix', '--json',
    ]);
    expect(json.fix.steps.filter((s: { result: string }) => s.result === 'deleted')).toEqual([]);
    expect(json.state).not.toBe('D');
    expect(await bucketDisk(where)).toEqual(before);
  });

  it('attack: a quarantine under the output prefix is refused before anything is done (exit 2)', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', 3600);
    const before = await bucketDisk(where);
    const { code, stderr } = await crashdiag([
      ...layoutFlags(where), '--fix', '--quarantine', `s3://${BUCKET}/${where.out}quarantine/`,
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/under the output prefix/);
    expect(await bucketDisk(where)).toEqual(before);
  });

  it('attack: the staging prefix as quarantine is refused, the bucket unchanged', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', 3600);
    const before = await bucketDisk(where);
    const { code, stderr } = await crashdiag([...layoutFlags(where), '--fix', '--quarantine', `s3://${BUCKET}/${where.staging}`]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/staging prefix itself/);
    expect(await bucketDisk(where)).toEqual(before);
  });

  it('a live writer on this host ({host}) is never touched by --fix', async () => {
    const where = layout();
    const staging = '{date}.{host}.{pid}.csv';
    // Written after this process started: its writer, alive.
    await put(`${where.staging}${RUN}.${hostname()}.${process.pid}.csv`, 'mine');
    const before = await bucketDisk(where);
    const { json } = await crashdiag([...layoutFlags(where, { staging }), '--fix', '--json']);
    expect(json.state).toBe('RUNNING');
    expect(json.fix.steps).toEqual([]);
    expect(await bucketDisk(where)).toEqual(before);
  });

  it('--dry-run plans the deletes and changes nothing', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', 3600);
    const before = await bucketDisk(where);
    const { json } = await crashdiag([...layoutFlags(where), '--fix', '--dry-run', '--json']);
    expect(json.fix.steps.map((s: { result: string }) => s.result)).toEqual(['planned']);
    expect(await bucketDisk(where)).toEqual(before);
  });
});

describe('the local lock of an S3 prefix', () => {
  it('another fixer on this host holds the run\'s lock (named by bucket and prefix): wait (RUNNING), the bucket unchanged', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', 3600);
    const lock = s3LockPath(join(scene.scratch(), 'state', 'crashdiag'), { bucket: BUCKET, prefix: where.staging }, RUN);
    expect(lock).toContain(`s3-${BUCKET}-t${made}__staging-`);
    await fsp.mkdir(join(lock, '..'), { recursive: true });
    await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'other', since: new Date().toISOString() }));
    const before = await bucketDisk(where);
    try {
      const { code, json } = await crashdiag([...layoutFlags(where), '--fix', '--json', '--lock-timeout', '0s']);
      expect(json.state).toBe('RUNNING');
      expect(json.lock.path).toBe(lock);
      expect(code).toBe(json.exitCode);
      expect(await bucketDisk(where)).toEqual(before);
    } finally {
      await fsp.rm(lock);
    }
  });
});

describe('pagination', () => {
  it('lists every match across pages: 1,005 orphans in two ListObjectsV2 requests', async () => {
    const where = layout();
    const keys = Array.from({ length: 1005 }, (_, i) => `${where.staging}${RUN}.${300000 + i}.csv`);
    await server().seed(BUCKET, keys, 'x');
    let json: { state: string; orphans: unknown[]; orphanTotals: { count: number; listed: number } } | undefined;
    const seen = await requestsDuring(server(), async () => {
      json = (await crashdiag([...layoutFlags(where), '--json', '--now', new Date(Date.now() + 86_400_000).toISOString()])).json;
    });
    // 1,005 dead writers of one run key are 1,005 failed attempts: a crash loop.
    expect(json?.state).toBe('CRASH-LOOP');
    // The JSON lists the first 1,000 and counts them all.
    expect(json?.orphanTotals).toMatchObject({ count: 1005, listed: 1000 });
    expect(json?.orphans).toHaveLength(1000);
    expect(listedPrefixes(seen).filter((p) => p.startsWith(where.staging))).toHaveLength(2);
  });
});

describe('mixed layouts', () => {
  it('a local output directory beside an S3 staging prefix: diagnose and --fix', async () => {
    const where = layout();
    const out = await fsp.mkdtemp(join(scene.scratch(), 'out-'));
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', 3600);
    await fsp.writeFile(join(out, FINAL), 'a,b\n');
    const flags = ['--out-dir', out, '--staging-dir', `s3://${BUCKET}/${where.staging}`, '--final', 'refunds_settled_{date}.csv', '--no-marker'];
    const looked = await crashdiag([...flags, '--json']);
    expect(looked.json.state).toBe('D-race');
    expect(looked.json.final.path).toBe(join(out, FINAL));
    const fixed = await crashdiag([...flags, '--fix', '--json']);
    expect(fixed.json.state).toBe('DONE');
    expect(await keysUnder(where.staging)).toEqual([]);
    expect(await fsp.readFile(join(out, FINAL), 'utf8')).toBe('a,b\n');
  });
});

describe('the human view and the config', () => {
  it('shows s3:// paths and says the uploads cannot be listed, never "none"', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', 3600);
    const { stdout } = await crashdiag(layoutFlags(where));
    expect(stdout).toContain(`s3://${BUCKET}/${where.staging}${RUN}.4242.csv`);
    expect(stdout).toMatch(/Incomplete multipart uploads: 0\n.*note: incomplete multipart uploads under .* cannot be listed/);
  });

  it('a pipeline of the config with s3:// directories and the endpoint from its s3 block', async () => {
    const where = layout();
    await put(`${where.staging}${RUN}.4242.csv`, 'orphan', 3600);
    const config = join(scene.scratch(), `config-${made}.json`);
    await fsp.writeFile(config, JSON.stringify({
      s3: { endpoint: server().endpoint, region: 'us-east-1' },
      pipelines: {
        refunds: {
          outDir: `s3://${BUCKET}/${where.out}`,
          stagingDir: `s3://${BUCKET}/${where.staging.replace(/\/$/, '')}`,
          final: 'refunds_settled_{date}.csv',
        },
      },
    }));
    const env = { ...envFor(), AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' };
    const { json } = await crashdiag(['--config', config, '--pipeline', 'refunds', '--json'], env);
    expect(json.state).toBe('D');
    expect(json.orphans[0].path).toBe(`s3://${BUCKET}/${where.staging}${RUN}.4242.csv`);
  });
});

describe('errors are one sentence naming the bucket or endpoint, exit 2', () => {
  it('no such bucket', async () => {
    const { code, stderr } = await crashdiag([
      '--out-dir', 's3://no-such-bucket/out/', '--staging-dir', 's3://no-such-bucket/_staging/', '--final', 'x_{date}.csv',
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/bucket no-such-bucket does not exist/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('access denied (a key id the server does not know)', async () => {
    const where = layout();
    const { code, stderr } = await crashdiag(layoutFlags(where), { ...envFor(), AWS_ACCESS_KEY_ID: 'NOBODY' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/Access was denied .* bucket refunds-data/);
  });

  it('endpoint unreachable', async () => {
    const where = layout();
    const { code, stderr } = await crashdiag([...layoutFlags(where), '--timeout', '5s'], envFor('http://127.0.0.1:9'));
    expect(code).toBe(2);
    expect(stderr).toMatch(/Cannot reach the S3 endpoint http:\/\/127\.0\.0\.1:9/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
