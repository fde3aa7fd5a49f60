// Attacks on `clean`, `scan` and `history` for S3 prefixes, against a real S3
// HTTP server (s3rver in a child process, a proxy in front where a fault must
// be injected or a request watched). Each test is named after the attack;
// every one asserts the bucket as the server keeps it (keys, bytes, times)
// and, where it matters, the local disk. The attacks on `diagnose --fix` are
// in attacks-s3.test.ts; these are the janitor's share of them and its own.
import { lstatSync, promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import type { FileSystem } from '../../src/core/fs.js';
import { s3LockPath } from '../../src/core/s3-state.js';
import { changedAtMtimeFs } from '../support/ctime.js';
import { deadPid } from '../support/dead-pids.js';
import { snapshot } from '../support/file-tree.js';
import { crashdiagInProcess } from '../support/in-process.js';
import { type ProxyDecision, s3ErrorBody, startS3Proxy } from '../support/s3-proxy.js';
import { useS3Scene } from '../support/s3-scene.js';

const BUCKET = 'janitor-data';
const scene = useS3Scene(BUCKET);
const HOUR = 3600;

const { layoutFlags } = scene;

interface CleanJson {
  pipelines: Array<{
    pipeline: string | null;
    removed: Array<{ path: string; bytes: number; pid: number }>;
    wouldRemove?: Array<{ path: string }>;
    kept: Array<{ path: string; reason: string }>;
    failed: Array<{ path: string; reason: string }>;
    files: number;
  }>;
  exitCode?: number;
  error?: { message: string };
}

/**
 * `crashdiag clean ARGS` in this process. Local files aged with utimes are
 * seen as last changed then (changedAtMtimeFs): the janitor ages a local file
 * by its ctime, which no test can set back.
 */
async function clean(args: readonly string[], env = scene.env(), overrides: Partial<CliIo> = {}) {
  const fs = changedAtMtimeFs({ ...(fsp as FileSystem), lstatSync });
  const result = await crashdiagInProcess(['clean', ...args], scene.scratch(), { env, fs, ...overrides });
  return { ...result, json: (result.stdout.startsWith('{') ? JSON.parse(result.stdout) : undefined) as CleanJson };
}

/** Requests through a proxy in front of the server, recorded as "METHOD path". */
async function watched(decide: (method: string, url: string) => ProxyDecision | Promise<ProxyDecision> = () => 'forward') {
  const seen: string[] = [];
  const proxy = await startS3Proxy(scene.server().endpoint, (request) => {
    seen.push(`${request.method} ${decodeURIComponent(request.url ?? '')}`);
    return decide(request.method ?? '', decodeURIComponent(request.url ?? ''));
  });
  return { seen, proxy };
}

describe('the writer judgement, as --fix was attacked, now for clean', () => {
  it('attack: a staging object uploaded in parts (dated from its upload\'s start, an hour ago) is never cleaned, whatever --older-than', async () => {
    const root = scene.root();
    const key = `${root}_staging/2026-04-20.${deadPid()}.csv`;
    await scene.put(key, 'a large staging file, uploaded in parts\n');
    // As S3 shows an object a multipart upload made: an ETag "...-N", dated from the upload's start.
    await fsp.writeFile(`${scene.file(key)}.md5`, '9b2cf535f27731c974343645a3985328-3');
    await scene.age(key, 3 * HOUR);
    const before = await scene.disk(root);
    const { code, json } = await clean([...layoutFlags(root), '--older-than', '1h', '--json']);
    expect(code).toBe(0);
    expect(json.pipelines[0]?.removed).toEqual([]);
    expect(json.pipelines[0]?.kept[0]?.reason).toMatch(/uploaded in parts/);
    expect(await scene.disk(root)).toEqual(before);
  });

  it('attack: the janitor\'s clock runs two hours ahead of the server: an object written just now is not older than --older-than 1h', async () => {
    const root = scene.root();
    await scene.put(`${root}_staging/2026-04-20.${deadPid()}.csv`, 'being written');
    const before = await scene.disk(root);
    const { code, json } = await clean([...layoutFlags(root), '--older-than', '1h', '--json'], scene.env(),
      { now: () => Date.now() + 2 * HOUR * 1000 });
    expect(code).toBe(0);
    expect(json.pipelines[0]?.removed).toEqual([]);
    expect(json.pipelines[0]?.kept[0]?.reason).toBe('younger than the threshold');
    expect(await scene.disk(root)).toEqual(before);
  });
});

describe('--dry-run and the audit log', () => {
  it('attack: --dry-run over old orphans of dead writers sends no DELETE (nor any HEAD): only listings reach the server', async () => {
    const root = scene.root();
    for (const day of [20, 21, 22]) await scene.put(`${root}_staging/2026-04-${day}.${deadPid()}.csv`, 'orphan', 3 * HOUR);
    const before = await scene.disk(root);
    const { seen, proxy } = await watched();
    try {
      const { code, json } = await clean([...layoutFlags(root), '--older-than', '2h', '--dry-run', '--json'], scene.env(proxy.endpoint));
      expect(code).toBe(0);
      expect(json.pipelines[0]?.wouldRemove).toHaveLength(3);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.filter((s) => !s.startsWith('GET '))).toEqual([]);
      expect(await scene.disk(root)).toEqual(before);
    } finally {
      await proxy.close();
    }
  });

  it('attack: a kill between the intent and the DELETE: each DELETE reaches the server only after its intent is on disk', async () => {
    const root = scene.root();
    const keys = [20, 21, 22].map((day) => `${root}_staging/2026-04-${day}.${deadPid()}.csv`);
    for (const key of keys) await scene.put(key, 'orphan', 3 * HOUR);
    const auditLog = join(scene.scratch(), `intents-${root.replace('/', '')}.jsonl`);
    const onDiskAtDelete: string[] = [];
    const { proxy } = await watched(async (method, url): Promise<ProxyDecision> => {
      if (method === 'DELETE') {
        // What a SIGKILL at this instant would leave: the log as it is on disk now.
        const text = await fsp.readFile(auditLog, 'utf8');
        const key = url.replace(/^\/[^/]+\//, '').replace(/\?.*$/, '');
        const intents = text.trim().split('\n').map((l) => JSON.parse(l) as { op: string; path: string })
          .filter((r) => r.op === 'intent' && r.path === scene.url(key));
        onDiskAtDelete.push(`${key} ${intents.length}`);
      }
      return 'forward';
    });
    try {
      const { code } = await clean([...layoutFlags(root), '--older-than', '2h', '--audit-log', auditLog], scene.env(proxy.endpoint));
      expect(code).toBe(0);
      // (The SDK may send a DELETE again when the proxy is slow to answer: each time, its intent was there.)
      expect([...new Set(onDiskAtDelete)].sort()).toEqual(keys.map((k) => `${k} 1`).sort());
      expect(await scene.keysUnder(`${root}_staging/`)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});

describe('the lock of an S3 prefix\'s janitor', () => {
  it('attack: another janitor holds the lock under another spelling of the prefix (S3://, no slash, from the config): exit 20, nothing changed', async () => {
    const root = scene.root();
    await scene.put(`${root}_staging/2026-04-20.${deadPid()}.csv`, 'orphan', 3 * HOUR);
    const lock = s3LockPath(scene.stateDir(), { bucket: BUCKET, prefix: `${root}_staging/` }, '.clean');
    await fsp.mkdir(join(lock, '..'), { recursive: true });
    await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'other', since: new Date().toISOString() }));
    const config = join(scene.scratch(), `spelled-${root.replace('/', '')}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        refunds: { outDir: scene.url(`${root}out`), stagingDir: `S3://${BUCKET}/${root}_staging`, final: 'refunds_{date}.csv' },
      },
    }));
    const before = await scene.disk(root);
    try {
      for (const args of [
        ['--out-dir', scene.url(`${root}out/`), '--staging-dir', `S3://${BUCKET}/${root}_staging`, '--final', 'refunds_{date}.csv'],
        ['--config', config, '--pipeline', 'refunds'],
        ['--config', config, '--all'],
      ]) {
        const { code } = await clean([...args, '--older-than', '2h', '--lock-timeout', '0s']);
        expect(code).toBe(20);
      }
      expect(await scene.disk(root)).toEqual(before);
    } finally {
      await fsp.rm(lock);
    }
  });
});

describe('a listing that misbehaves', () => {
  it('attack: a server whose listing never ends (the same continuation token again and again): the janitor stops, exit 30, not a hang', async () => {
    const root = scene.root();
    const real = `${root}_staging/2026-04-20.${deadPid()}.csv`;
    await scene.put(real, 'orphan', 3 * HOUR);
    const page = (n: number) => `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${BUCKET}</Name>`
      + `<Prefix>${root}_staging/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>`
      + `<NextContinuationToken>again</NextContinuationToken><Contents><Key>${root}_staging/2026-04-19.${4000 + n}.csv</Key>`
      + '<LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"0f"</ETag><Size>1</Size></Contents></ListBucketResult>';
    let pages = 0;
    const { proxy } = await watched((method, url) => {
      const prefix = new URL(url, 'http://x').searchParams.get('prefix');
      if (method !== 'GET' || !url.includes('list-type=2') || prefix !== `${root}_staging/`) return 'forward';
      pages += 1;
      if (pages > 500) return { status: 500, body: 'the test stops here' };
      return { status: 200, body: page(pages) };
    });
    const before = await scene.disk(root);
    try {
      const { code, json } = await clean([...layoutFlags(root), '--older-than', '2h', '--json'], scene.env(proxy.endpoint));
      expect(pages).toBeLessThanOrEqual(2);
      expect(code).toBe(30);
      expect(JSON.stringify(json.pipelines[0]?.failed)).toMatch(/continuation token/);
      expect(await scene.disk(root)).toEqual(before);
    } finally {
      await proxy.close();
    }
  });
});

describe('clean --all mixing local and S3 pipelines', () => {
  it('attack: a local pipeline is cleaned, then an S3 pipeline\'s bucket does not exist: not "exit 2, nothing was changed"; the rest still cleaned', async () => {
    const root = scene.root();
    const local = await fsp.realpath(await fsp.mkdtemp(join(scene.scratch(), 'mixed-')));
    await fsp.mkdir(join(local, 'out'));
    await fsp.mkdir(join(local, '_staging'));
    const localOrphan = join(local, '_staging', `2026-04-20.${deadPid()}.csv`);
    await fsp.writeFile(localOrphan, 'local orphan');
    const then = new Date(Date.now() - 3 * HOUR * 1000);
    await fsp.utimes(localOrphan, then, then);
    const s3Orphan = `${root}_staging/2026-04-20.${deadPid()}.csv`;
    await scene.put(s3Orphan, 's3 orphan', 3 * HOUR);
    const s3 = (bucket: string) => ({
      outDir: `s3://${bucket}/${root}out/`, stagingDir: `s3://${bucket}/${root}_staging/`, final: 'refunds_{date}.csv',
    });
    const config = join(local, 'crashdiag.json');
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        ledger: { outDir: join(local, 'out'), stagingDir: join(local, '_staging'), final: 'ledger_{date}.csv' },
        lost: s3('no-such-bucket'),
        refunds: s3(BUCKET),
      },
    }));
    const { code, json, stderr } = await clean(['--all', '--config', config, '--older-than', '2h', '--json']);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).toMatch(/pipeline lost .*no-such-bucket does not exist/);
    // Something was changed (the ledger's orphan is gone), and something could not be done: a person looks.
    expect(code).toBe(30);
    const byName = Object.fromEntries(json.pipelines.map((p: CleanJson['pipelines'][number]) => [p.pipeline, p]));
    expect(byName.ledger?.removed.map((r: { path: string }) => r.path)).toEqual([localOrphan]);
    expect(byName.lost?.failed[0]?.reason).toMatch(/no-such-bucket does not exist/);
    expect(byName.refunds?.removed.map((r: { path: string }) => r.path)).toEqual([scene.url(s3Orphan)]);
    await expect(fsp.access(localOrphan)).rejects.toThrow(/ENOENT/);
  });

  it('attack: the S3 pipeline of --all cannot have a local lock (HOME unset): refused before the local pipeline\'s orphans go, exit 2, nothing changed', async () => {
    const root = scene.root();
    const local = await fsp.realpath(await fsp.mkdtemp(join(scene.scratch(), 'nohome-')));
    await fsp.mkdir(join(local, 'out'));
    await fsp.mkdir(join(local, '_staging'));
    const localOrphan = join(local, '_staging', `2026-04-20.${deadPid()}.csv`);
    await fsp.writeFile(localOrphan, 'local orphan');
    const then = new Date(Date.now() - 3 * HOUR * 1000);
    await fsp.utimes(localOrphan, then, then);
    await scene.put(`${root}_staging/2026-04-20.${deadPid()}.csv`, 's3 orphan', 3 * HOUR);
    const config = join(local, 'crashdiag.json');
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        ledger: { outDir: join(local, 'out'), stagingDir: join(local, '_staging'), final: 'ledger_{date}.csv' },
        refunds: { outDir: scene.url(`${root}out/`), stagingDir: scene.url(`${root}_staging/`), final: 'refunds_{date}.csv' },
      },
    }));
    const before = [...(await snapshot(local)), ...(await scene.disk(root))];
    const env: Record<string, string> = { ...scene.env(), HOME: 'relative/home' };
    delete env.XDG_STATE_HOME;
    const { code, stderr } = await clean(['--all', '--config', config, '--older-than', '2h'], env);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).toMatch(/HOME/);
    expect(code).toBe(2);
    expect([...(await snapshot(local)), ...(await scene.disk(root))]).toEqual(before);
  });
});

describe('--json when the janitor cannot start', () => {
  it('attack: clean --json on a bucket that does not exist: stdout is one JSON document (the error), not an empty list and then the error', async () => {
    const { code, stdout } = await clean(['--out-dir', 's3://no-such-bucket/out/', '--staging-dir', 's3://no-such-bucket/_staging/',
      '--final', 'x_{date}.csv', '--json']);
    expect(code).toBe(2);
    const parsed = JSON.parse(stdout) as { exitCode: number; error: { message: string } };
    expect(parsed.exitCode).toBe(2);
    expect(parsed.error.message).toMatch(/no-such-bucket does not exist/);
  });
});

describe('history of one S3 pipeline', () => {
  it('attack: history --pipeline of an S3 pipeline shows only its prefix\'s records, not those of another prefix (out vs out-x) in the shared log', async () => {
    const root = scene.root();
    const mine = `${root}stg/2026-04-20.${deadPid()}.csv`;
    const theirs = `${root}stg-x/2026-04-20.${deadPid()}.csv`;
    await scene.put(mine, 'orphan', 3 * HOUR);
    await scene.put(theirs, 'another prefix\'s orphan', 3 * HOUR);
    const config = join(scene.scratch(), `history-${root.replace('/', '')}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: { refunds: { outDir: scene.url(`${root}out`), stagingDir: scene.url(`${root}stg`), final: 'refunds_{date}.csv' } },
    }));
    const cleaned = await clean(['--config', config, '--pipeline', 'refunds', '--older-than', '2h']);
    expect(cleaned.code).toBe(0);
    // Another prefix, cleaned from flags (pipeline null), into the same local log.
    const other = await clean(['--out-dir', scene.url(`${root}out-x`), '--staging-dir', scene.url(`${root}stg-x`),
      '--final', 'refunds_{date}.csv', '--older-than', '2h']);
    expect(other.code).toBe(0);
    const shown = await scene.run(['history', '--config', config, '--pipeline', 'refunds', '--json']);
    expect(shown.code).toBe(0);
    const paths = (JSON.parse(shown.stdout).records as Array<{ path?: string }>).map((r) => r.path);
    expect(paths).toContain(scene.url(mine));
    expect(paths).not.toContain(scene.url(theirs));
  });
});

describe('scan\'s view of an output written as a folder of parts', () => {
  it('attack: yesterday\'s output written as out/NAME/part-00000 (as Spark writes it): scan shows the run UNKNOWN, as diagnose does, never leaves it out (exit 0)', async () => {
    const root = scene.root();
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    await scene.put(`${root}out/refunds_${yesterday}.csv/part-00000`, 'a,b\n');
    await scene.put(`${root}out/refunds_${yesterday}.csv/_SUCCESS`, '');
    const diagnosed = await scene.run(['diagnose', yesterday, ...layoutFlags(root), '--json']);
    expect(diagnosed.json.state).toBe('UNKNOWN');
    for (const window of [['--since', '30d'], ['--daily', '--since', '3d']]) {
      const scanned = await scene.run(['scan', ...layoutFlags(root), ...window, '--json']);
      const rows = scanned.json.runs as Array<{ run: string; state: string }>;
      expect(rows.find((r) => r.run === yesterday)?.state).toBe('UNKNOWN');
      expect(scanned.code).toBe(30);
    }
  });
});

describe('what the janitor takes for a published output', () => {
  it('attack: neighbours by spelling and nesting: b publishes into S3://…/stg (no slash), c into stg/nested/, d into stg-x/: only a\'s own orphan goes', async () => {
    const root = scene.root();
    const own = `${root}stg/2026-04-20.${deadPid()}.csv`;
    await scene.put(own, 'a\'s orphan', 3 * HOUR);
    // Each fits a's staging template '{date}.{pid}.csv'; each is another pipeline's published output.
    await scene.put(`${root}stg/2026-04-20.55.csv`, 'b\'s published output', 3 * HOUR);
    await scene.put(`${root}stg/2026-04-20.55.csv.success`, '', 3 * HOUR);
    await scene.put(`${root}stg/nested/2026-04-20.66.csv`, 'c\'s published output', 3 * HOUR);
    await scene.put(`${root}stg-x/2026-04-20.77.csv`, 'd\'s published output', 3 * HOUR);
    const config = join(scene.scratch(), `neighbours-${root.replace('/', '')}.json`);
    const other = (outDir: string, final: string) => ({ outDir, stagingDir: scene.url(`${root}other-staging/`), final });
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        a: { outDir: scene.url(`${root}out/`), stagingDir: scene.url(`${root}stg`), final: 'a_{date}.csv' },
        b: other(`S3://${BUCKET}/${root}stg`, '{date}.55.csv'),
        c: other(scene.url(`${root}stg/nested/`), '{date}.66.csv'),
        d: other(scene.url(`${root}stg-x/`), '{date}.77.csv'),
      },
    }));
    const before = (await scene.disk(root)).filter((l) => !l.includes(own.split('/').pop() as string));
    const { code, json } = await clean(['--config', config, '--pipeline', 'a', '--older-than', '2h', '--json']);
    expect(code).toBe(0);
    expect(json.pipelines[0]?.removed.map((r) => r.path)).toEqual([scene.url(own)]);
    expect(await scene.disk(root)).toEqual(before);
  });

  it('attack: an output written as a folder of parts in a prefix that is staging too, and a folder named like a staging file: neither touched', async () => {
    const root = scene.root();
    const dir = `${root}data/`;
    await scene.put(`${dir}2026-04-20.7.csv/part-00000`, 'a,b\n', 3 * HOUR);
    await scene.put(`${dir}2026-04-20.7.csv/_SUCCESS`, '', 3 * HOUR);
    await scene.put(`${dir}2026-04-19.${deadPid()}.csv/part-00000`, 'a folder, not an orphan', 3 * HOUR);
    const before = await scene.disk(root);
    const { code, json } = await clean(['--out-dir', scene.url(dir), '--staging-dir', scene.url(dir), '--final', '{date}.7.csv',
      '--older-than', '2h', '--json']);
    expect(code).toBe(0);
    expect(json.pipelines[0]?.removed).toEqual([]);
    expect(await scene.disk(root)).toEqual(before);
  });

  it('attack: clean --timeout 30d, past what a timer can hold: refused in one sentence before any request, the bucket unchanged', async () => {
    const root = scene.root();
    await scene.put(`${root}_staging/2026-04-20.${deadPid()}.csv`, 'orphan', 3 * HOUR);
    const before = await scene.disk(root);
    const { code, stderr } = await clean([...layoutFlags(root), '--older-than', '2h', '--timeout', '30d']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--timeout 30d is longer than 24h/);
    expect(await scene.disk(root)).toEqual(before);
  });
});

describe('a listing that goes round in circles', () => {
  it('attack: a server that hands out a new continuation token each time but the same keys again: scan and clean stop at the second page, not after the test\'s cap', async () => {
    const root = scene.root();
    const page = (n: number) => `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${BUCKET}</Name>`
      + `<Prefix>${root}_staging/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>`
      + `<NextContinuationToken>token-${n}</NextContinuationToken><Contents><Key>${root}_staging/2026-04-19.4000.csv</Key>`
      + '<LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"0f"</ETag><Size>1</Size></Contents></ListBucketResult>';
    let pages = 0;
    const { proxy } = await watched((method, url) => {
      const prefix = new URL(url, 'http://x').searchParams.get('prefix');
      if (method !== 'GET' || !url.includes('list-type=2') || prefix !== `${root}_staging/`) return 'forward';
      pages += 1;
      // Past a few dozen pages the loop is proven; end it so a failing run does not run forever.
      if (pages > 50) return { status: 500, body: 'the test stops here' };
      return { status: 200, body: page(pages) };
    });
    try {
      const scanned = await scene.run(['scan', ...layoutFlags(root), '--since', '30d', '--json'], scene.env(proxy.endpoint));
      expect(pages).toBeLessThanOrEqual(2);
      expect(scanned.code).toBe(2);
      expect(scanned.stderr).toMatch(/listed .* again|back/);
      pages = 0;
      const cleaned = await clean([...layoutFlags(root), '--older-than', '2h', '--json'], scene.env(proxy.endpoint));
      expect(pages).toBeLessThanOrEqual(2);
      expect(cleaned.code).toBe(30);
    } finally {
      await proxy.close();
    }
  });
});

describe('a listing that names a "directory" again', () => {
  it('a server that names the last page\'s common prefix again at the start of the next (as some S3-compatible ones do): no false alarm', async () => {
    const root = scene.root();
    const p = `${root}_staging/`;
    const head = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${BUCKET}</Name><Prefix>${p}</Prefix><MaxKeys>1000</MaxKeys>`;
    const folder = `<CommonPrefixes><Prefix>${p}2026-04-19.4000.csv/</Prefix></CommonPrefixes>`;
    const first = `${head}<KeyCount>1</KeyCount><IsTruncated>true</IsTruncated>`
      + `<NextContinuationToken>t1</NextContinuationToken>${folder}</ListBucketResult>`;
    const second = `${head}<KeyCount>2</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>${p}2026-04-20.4001.csv</Key>`
      + `<LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"0f"</ETag><Size>1</Size></Contents>${folder}</ListBucketResult>`;
    const { proxy } = await watched((method, url) => {
      const query = new URL(url, 'http://x').searchParams;
      if (method !== 'GET' || !url.includes('list-type=2') || query.get('prefix') !== p) return 'forward';
      return { status: 200, body: query.get('continuation-token') === 't1' ? second : first };
    });
    try {
      const scanned = await scene.run(['scan', ...layoutFlags(root), '--since', '30d', '--json'], scene.env(proxy.endpoint));
      const rows = scanned.json.runs as Array<{ run: string; state: string }>;
      const byRun = Object.fromEntries(rows.map((r) => [r.run, r.state]));
      expect(byRun).toEqual({ '2026-04-19': 'UNKNOWN', '2026-04-20': 'D' });
      expect(scanned.code).toBe(30);
    } finally {
      await proxy.close();
    }
  });
});

describe('an upload listing that goes round in circles', () => {
  it('attack: ListMultipartUploads answers the same NextKeyMarker again and again: scan stops at the second page with a note, not after the test\'s cap', async () => {
    const root = scene.root();
    await scene.put(`${root}_staging/2026-04-20.${deadPid()}.csv`, 'orphan', 3 * HOUR);
    const page = (n: number) => `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${BUCKET}</Bucket>`
      + `<NextKeyMarker>${root}_staging/2026-04-20.4000.csv</NextKeyMarker><NextUploadIdMarker>same</NextUploadIdMarker>`
      + '<MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>'
      + `<Upload><Key>${root}_staging/2026-04-20.${4000 + n}.csv</Key><UploadId>u${n}</UploadId>`
      + '<Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload></ListMultipartUploadsResult>';
    let pages = 0;
    const { proxy } = await watched((method, url) => {
      if (method !== 'GET' || !/[?&]uploads(=|&|$)/.test(url)) return 'forward';
      pages += 1;
      if (pages > 50) return { status: 500, body: 'the test stops here' };
      return { status: 200, body: page(pages) };
    });
    try {
      const scanned = await scene.run(['scan', ...layoutFlags(root), '--since', '30d', '--json'], scene.env(proxy.endpoint));
      expect(pages).toBeLessThanOrEqual(3);
      expect(JSON.stringify(scanned.json.pipelines)).toMatch(/cannot be listed/);
      expect((scanned.json.runs as Array<{ state: string }>)[0]?.state).toBe('D');
    } finally {
      await proxy.close();
    }
  });

  it('attack: ListMultipartUploads says it goes on but gives no marker: never read as the whole list', async () => {
    const root = scene.root();
    await scene.put(`${root}_staging/2026-04-20.${deadPid()}.csv`, 'orphan', 3 * HOUR);
    // One page for each prefix asked, within it, that says more follow and not where.
    const body = (prefix: string) => `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${BUCKET}</Bucket>`
      + '<MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>'
      + `<Upload><Key>${prefix}2026-04-20.4001.csv</Key><UploadId>u1</UploadId>`
      + '<Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload></ListMultipartUploadsResult>';
    const { proxy } = await watched((method, url) => method === 'GET' && /[?&]uploads(=|&|$)/.test(url)
      ? { status: 200, body: body(new URL(url, 'http://x').searchParams.get('prefix') ?? '') }
      : 'forward');
    try {
      const scanned = await scene.run(['scan', ...layoutFlags(root), '--since', '30d', '--json'], scene.env(proxy.endpoint));
      const notes = JSON.stringify(scanned.json.pipelines);
      expect(notes).toMatch(new RegExp(`uploads under s3://${BUCKET}/${root}_staging/ cannot be listed`));
      expect(notes).toMatch(new RegExp(`uploads under s3://${BUCKET}/${root}out/ cannot be listed`));
    } finally {
      await proxy.close();
    }
  });
});

describe('clean --all: what the exit code may hide', () => {
  it('attack: the first pipeline\'s DELETE is refused (a failure), the second is locked by another janitor: exit 30, not 20 ("nothing was changed")', async () => {
    const root = scene.root();
    const first = `${root}a-stg/2026-04-20.${deadPid()}.csv`;
    await scene.put(first, 'a\'s orphan', 3 * HOUR);
    await scene.put(`${root}b-stg/2026-04-20.${deadPid()}.csv`, 'b\'s orphan', 3 * HOUR);
    const lock = s3LockPath(scene.stateDir(), { bucket: BUCKET, prefix: `${root}b-stg/` }, '.clean');
    await fsp.mkdir(join(lock, '..'), { recursive: true });
    await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'other', since: new Date().toISOString() }));
    const config = join(scene.scratch(), `locked-${root.replace('/', '')}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        a: { outDir: scene.url(`${root}a-out/`), stagingDir: scene.url(`${root}a-stg/`), final: 'a_{date}.csv' },
        b: { outDir: scene.url(`${root}b-out/`), stagingDir: scene.url(`${root}b-stg/`), final: 'b_{date}.csv' },
      },
    }));
    const before = await scene.disk(root);
    const { proxy } = await watched((method) =>
      method === 'DELETE' ? { status: 403, body: s3ErrorBody('AccessDenied', 'Access Denied') } : 'forward');
    try {
      const { code, json } = await clean(['--all', '--config', config, '--older-than', '2h', '--lock-timeout', '0s', '--json'],
        scene.env(proxy.endpoint));
      expect(json.pipelines[0]?.failed[0]?.path).toBe(scene.url(first));
      expect(json.exitCode).toBe(30);
      expect(code).toBe(30);
      expect(await scene.disk(root)).toEqual(before);
    } finally {
      await proxy.close();
      await fsp.rm(lock);
    }
  });
});
