// clean (the orphan janitor) and history on S3 prefixes, against a real S3
// HTTP server (s3rver in a child process). s3rver ignores If-Match on
// DeleteObject (test/support/s3-server.ts), so the race between the HEAD
// re-check and the DELETE cannot be closed or provoked there; the attacks
// below act just before that HEAD, which is what removeIfUnchanged checks.
import { lstatSync, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { s3LockPath } from '../../src/core/s3-state.js';
import { deadPid } from '../support/dead-pids.js';
import { type ProxyDecision, s3ErrorBody, startS3Proxy } from '../support/s3-proxy.js';
import { useS3Scene } from '../support/s3-scene.js';

const BUCKET = 'clean-data';
const scene = useS3Scene(BUCKET);
const HOUR = 3600;

const { layoutFlags } = scene;

interface CleanJson {
  pipelines: Array<{
    removed: Array<{ path: string; bytes: number; pid: number }>;
    kept: Array<{ path: string; reason: string }>;
    failed: Array<{ path: string; reason: string }>;
    files: number;
  }>;
}

const clean = (args: readonly string[], env?: Record<string, string>) =>
  scene.run(['clean', ...args], env) as Promise<{ code: number; stdout: string; stderr: string; json: CleanJson }>;

describe('clean on an S3 staging prefix', () => {
  it('removes only old objects of dead writers, each after its intent in the local audit log; streamed --json; exit 0', async () => {
    const root = scene.root();
    const s = `${root}_staging/`;
    const old1 = `${s}2026-04-20.${deadPid()}.csv`;
    const old2 = `${s}2026-04-21.${deadPid()}.csv`;
    const young = `${s}2026-04-22.${deadPid()}.csv`;
    const fresh = `${s}2026-04-23.${deadPid()}.csv`;
    const stranger = `${s}notes.txt`;
    await scene.put(old1, 'orphan one', 3 * HOUR);
    await scene.put(old2, 'orphan two', 3 * HOUR);
    await scene.put(young, 'dead but young', HOUR / 2);
    await scene.put(fresh, 'being written');
    await scene.put(stranger, 'not a staging name', 3 * HOUR);
    await scene.put(`${root}out/refunds_2026-04-19.csv`, 'published', 3 * HOUR);
    const { code, json } = await clean([...layoutFlags(root), '--older-than', '2h', '--json']);
    expect(code).toBe(0);
    const [report] = json.pipelines;
    expect(report?.removed.map((r) => r.path).sort()).toEqual([scene.url(old1), scene.url(old2)]);
    expect(report?.removed[0]?.bytes).toBe(10);
    const left = (await scene.keysUnder(root)).map((k) => k.split(' ')[0]);
    expect(left).toEqual([`${root}out/refunds_2026-04-19.csv`, young, fresh, stranger].sort());
    const lines = (await scene.auditLines()).filter((l) => String(l.path).startsWith(scene.url(s)));
    for (const key of [old1, old2]) {
      const ops = lines.filter((l) => l.path === scene.url(key)).map((l) => l.op);
      expect(ops).toEqual(['intent', 'delete']);
    }
    expect(lines.find((l) => l.op === 'intent')).toMatchObject({ intent: 'delete', run: '2026-04-20' });
  });

  // The intents are written, then fsynced, before any DELETE: a full disk, a
  // write cut short (it could interleave with another appender's line) or an
  // fsync that fails stops the janitor, and the reason names the log (with
  // --all, or --audit-log elsewhere, which disk to look at).
  const full = () => Promise.reject(Object.assign(new Error('write: no space left on device'), { code: 'ENOSPC' }));
  it.each([
    // The log opens (and its precheck passes); every write to it fails.
    ['a full disk under the audit log (ENOSPC)', { write: full, appendFile: full }, 'ENOSPC'],
    ['the fsync of the intents fails (EIO)', { sync: () => Promise.reject(Object.assign(new Error('sync: I/O error'), { code: 'EIO' })) }, 'EIO'],
    ['the write of the intents is cut short', { write: () => Promise.resolve({ bytesWritten: 1, buffer: Buffer.alloc(0) }) }, 'EIO'],
  ])('attack: %s: nothing removed, each failure names the log', async (_, broken, code) => {
    const root = scene.root();
    const s = `${root}_staging/`;
    const keys = [`${s}2026-04-20.${deadPid()}.csv`, `${s}2026-04-21.${deadPid()}.csv`];
    for (const key of keys) await scene.put(key, 'orphan', 3 * HOUR);
    const before = await scene.disk(root);
    await fsp.mkdir(join(scene.scratch(), 'broken'), { recursive: true });
    const log = join(scene.scratch(), 'broken', 'audit.jsonl');
    const fs = {
      ...fsp,
      lstatSync,
      open: (async (...args: Parameters<typeof fsp.open>) => {
        const handle = await fsp.open(...args);
        return String(args[0]) === log ? Object.assign(Object.create(handle) as FileHandle, broken) : handle;
      }) as typeof fsp.open,
    };
    const ran = await scene.run(
      ['clean', ...layoutFlags(root), '--older-than', '2h', '--audit-log', log, '--json'],
      scene.env(),
      { fs },
    ) as { code: number; json: CleanJson };
    expect(ran.code).toBe(30);
    expect(ran.json.pipelines[0]?.removed).toEqual([]);
    expect(ran.json.pipelines[0]?.failed.map((f) => f.path).sort()).toEqual(keys.map((k) => scene.url(k)).sort());
    for (const failed of ran.json.pipelines[0]?.failed ?? [])
      expect(failed.reason).toBe(`not removed: the audit log ${log} could not be written (${code}); the janitor stopped here`);
    expect(await scene.disk(root)).toEqual(before);
  });

  it('--dry-run lists what would go and changes nothing, takes no lock and writes no audit line', async () => {
    const root = scene.root();
    const key = `${root}_staging/2026-04-20.${deadPid()}.csv`;
    await scene.put(key, 'orphan', 3 * HOUR);
    const before = await scene.disk(root);
    const { code, stdout } = await clean([...layoutFlags(root), '--older-than', '2h', '--dry-run']);
    expect(code).toBe(0);
    expect(stdout).toContain(`would remove ${scene.url(key)}`);
    expect(await scene.disk(root)).toEqual(before);
  });

  it('attack: the object is rewritten between the look and the delete: kept, the bucket as the new writer left it', async () => {
    const root = scene.root();
    const key = `${root}_staging/2026-04-20.4242.csv`;
    await scene.put(key, 'orphan', 3 * HOUR);
    let before: string[] = [];
    let rewritten = false;
    // The HEAD of the staging key is removeIfUnchanged's last look before the DELETE: a new run rewrites it just then.
    const proxy = await startS3Proxy(scene.server().endpoint, async (request): Promise<ProxyDecision> => {
      if (!rewritten && request.method === 'HEAD' && request.url?.includes('2026-04-20.4242.csv')) {
        rewritten = true;
        await scene.put(key, 'a new run writes this, much longer');
        await scene.age(key, 3 * HOUR);
        before = await scene.disk(root);
      }
      return 'forward';
    });
    try {
      const { code, json } = await clean([...layoutFlags(root), '--older-than', '2h', '--json'], scene.env(proxy.endpoint));
      expect(rewritten).toBe(true);
      expect(code).toBe(0);
      expect(json.pipelines[0]?.removed).toEqual([]);
      expect(json.pipelines[0]?.kept[0]?.reason).toMatch(/replaced or rewritten|size changed/);
      expect(await scene.disk(root)).toEqual(before);
      const lines = (await scene.auditLines()).filter((l) => l.path === scene.url(key)).map((l) => l.op);
      expect(lines).toEqual(['intent', 'skip']);
    } finally {
      await proxy.close();
    }
  });

  it('attack: staging prefix == output prefix: a published output (and marker) whose name fits the staging template stays', async () => {
    const root = scene.root();
    const dir = scene.url(`${root}out/`);
    // '{date}.7.csv' is the output's name; under '{date}.{pid}.csv' it reads as a staging file of PID 7.
    await scene.put(`${root}out/2026-04-20.7.csv`, 'published', 3 * HOUR);
    await scene.put(`${root}out/2026-04-20.7.csv.success`, '', 3 * HOUR);
    await scene.put(`${root}out/2026-04-19.7.csv`, 'published, no marker', 3 * HOUR);
    const before = await scene.disk(root);
    const keysBefore = await scene.keysUnder(root);
    const { code, json } = await clean(['--out-dir', dir, '--staging-dir', dir, '--final', '{date}.7.csv', '--older-than', '2h', '--json']);
    expect(code).toBe(0);
    expect(json.pipelines[0]?.removed).toEqual([]);
    expect(await scene.disk(root)).toEqual(before);
    expect(await scene.keysUnder(root)).toEqual(keysBefore);
  });

  it('attack: another pipeline of the config publishes into this staging prefix: its outputs are never removed', async () => {
    const root = scene.root();
    await scene.put(`${root}_staging/2026-04-20.55.csv`, 'the ledger\'s published output', 3 * HOUR);
    await scene.put(`${root}_staging/2026-04-20.${deadPid()}.tmp`, 'not ours either', 3 * HOUR);
    const config = join(scene.scratch(), `shared-${root.replace('/', '')}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: {
        refunds: { outDir: scene.url(`${root}out/`), stagingDir: scene.url(`${root}_staging/`), final: 'refunds_{date}.csv' },
        ledger: { outDir: scene.url(`${root}_staging/`), stagingDir: scene.url(`${root}ledger-staging/`), final: '{date}.55.csv', marker: null },
      },
    }));
    const before = await scene.disk(root);
    const { code, json } = await clean(['--config', config, '--pipeline', 'refunds', '--older-than', '2h', '--json']);
    expect(code).toBe(0);
    expect(json.pipelines[0]?.removed).toEqual([]);
    expect(json.pipelines[0]?.kept.map((k) => k.reason)).toContain('a published output or marker');
    expect(await scene.disk(root)).toEqual(before);
  });

  it('attack: a live writer on this host ({host} in the key): never removed, whatever the threshold', async () => {
    const root = scene.root();
    const s = `${root}_staging/`;
    const mine = `${s}2026-04-20.${hostname()}.${process.pid}.csv`;
    const dead = `${s}2026-04-21.${hostname()}.${deadPid()}.csv`;
    // Written after this process started: its writer is this very process, alive.
    await scene.put(mine, 'still writing');
    await scene.put(dead, 'crashed');
    const flags = layoutFlags(root, ['--staging', '{date}.{host}.{pid}.csv', '--older-than', '0s', '--force-short-threshold', '--json']);
    const { code, json } = await clean(flags);
    expect(code).toBe(0);
    // The dead one goes at once: on this host its PID says so, age need not.
    expect(json.pipelines[0]?.removed.map((r) => r.path)).toEqual([scene.url(dead)]);
    expect(json.pipelines[0]?.kept.find((k) => k.path === scene.url(mine))?.reason).toMatch(/alive/);
    expect((await scene.keysUnder(s)).map((k) => k.split(' ')[0])).toEqual([mine]);
  });

  it('another janitor holds the prefix\'s local lock (named by bucket and prefix): exit 20, the bucket unchanged', async () => {
    const root = scene.root();
    await scene.put(`${root}_staging/2026-04-20.${deadPid()}.csv`, 'orphan', 3 * HOUR);
    const lock = s3LockPath(scene.stateDir(), { bucket: BUCKET, prefix: `${root}_staging/` }, '.clean');
    await fsp.mkdir(join(lock, '..'), { recursive: true });
    await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'other', since: new Date().toISOString() }));
    const before = await scene.disk(root);
    try {
      const { code, stderr } = await clean([...layoutFlags(root), '--older-than', '2h', '--lock-timeout', '0s']);
      expect(code).toBe(20);
      expect(stderr).toMatch(/Another janitor is at work/);
      expect(await scene.disk(root)).toEqual(before);
    } finally {
      await fsp.rm(lock);
    }
  });

  it('DELETEs the server refuses: failures (exit 30); the janitor stops, every intent gets its outcome, the bucket unchanged', async () => {
    const root = scene.root();
    const keys = Array.from({ length: 30 }, (_, i) => `${root}_staging/2026-04-${String(10 + (i % 10))}.${600000 + i}.csv`);
    await scene.server().seed(BUCKET, keys, 'orphan', { ageSeconds: 3 * HOUR });
    const before = await scene.disk(root);
    const proxy = await startS3Proxy(scene.server().endpoint, (request) =>
      request.method === 'DELETE' ? { status: 403, body: s3ErrorBody('AccessDenied', 'Access Denied') } : 'forward');
    try {
      const { code, json } = await clean([...layoutFlags(root), '--older-than', '2h', '--json'], scene.env(proxy.endpoint));
      expect(code).toBe(30);
      expect(json.pipelines[0]?.removed).toEqual([]);
      expect(json.pipelines[0]?.failed).toHaveLength(30);
      const lines = (await scene.auditLines()).filter((l) => String(l.path).startsWith(scene.url(`${root}_staging/`)));
      for (const key of keys) {
        const [intent, outcome, ...more] = lines.filter((l) => l.path === scene.url(key)).map((l) => l.op);
        expect(intent).toBe('intent');
        expect(['fail', 'skip']).toContain(outcome);
        expect(more).toEqual([]);
      }
      // Stopped at the first refusal: those already in flight fail too, the rest are not attempted.
      expect(lines.filter((l) => l.op === 'skip').length).toBeGreaterThan(0);
      expect(await scene.disk(root)).toEqual(before);
    } finally {
      await proxy.close();
    }
  });

  it('attack: the janitor\'s lock is taken from it before its first DELETE: nothing removed, each failure names the lock, the taker\'s lock stays', async () => {
    const root = scene.root();
    const s = `${root}_staging/`;
    const keys = [`${s}2026-04-20.${deadPid()}.csv`, `${s}2026-04-21.${deadPid()}.csv`];
    for (const key of keys) await scene.put(key, 'orphan', 3 * HOUR);
    const before = await scene.disk(root);
    const lock = s3LockPath(scene.stateDir(), { bucket: BUCKET, prefix: s }, '.clean');
    const taker = JSON.stringify({ pid: process.pid, host: hostname(), token: 'taker', since: new Date().toISOString() });
    // While the prefix is listed, the lock the janitor took is someone else's (broken as stale, and taken).
    const proxy = await startS3Proxy(scene.server().endpoint, async (request): Promise<ProxyDecision> => {
      const held = await fsp.readFile(lock, 'utf8').catch(() => undefined);
      if (request.method === 'GET' && held !== undefined && held !== taker) await fsp.writeFile(lock, taker);
      return 'forward';
    });
    try {
      const { code, json } = await clean([...layoutFlags(root), '--older-than', '2h', '--json'], scene.env(proxy.endpoint));
      expect(code).toBe(30);
      expect(json.pipelines[0]?.removed).toEqual([]);
      expect(json.pipelines[0]?.failed.map((f) => f.path).sort()).toEqual(keys.map((k) => scene.url(k)).sort());
      for (const failed of json.pipelines[0]?.failed ?? [])
        expect(failed.reason).toBe(`not removed: the janitor's lock ${lock} was lost; it stopped here`);
      expect(await scene.disk(root)).toEqual(before);
      expect(await fsp.readFile(lock, 'utf8')).toBe(taker);
    } finally {
      await proxy.close();
      await fsp.rm(lock, { force: true });
    }
  });

  it('no such bucket: one sentence, exit 2, no stack', async () => {
    const { code, stderr } = await clean([
      '--out-dir', 's3://no-such-bucket/out/', '--staging-dir', 's3://no-such-bucket/_staging/', '--final', 'x_{date}.csv',
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/bucket no-such-bucket does not exist/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('history of an S3 pipeline', () => {
  it('finds the local audit log of an S3 staging prefix (by --pipeline and by --staging-dir) and shows what --fix did', async () => {
    const root = scene.root();
    const key = `${root}_staging/2026-04-24.${deadPid()}.csv`;
    await scene.put(key, 'orphan', 3 * HOUR);
    const config = join(scene.scratch(), `history-${root.replace('/', '')}.json`);
    await fsp.writeFile(config, JSON.stringify({
      pipelines: { refunds: { outDir: scene.url(`${root}out/`), stagingDir: scene.url(`${root}_staging/`), final: 'refunds_{date}.csv' } },
    }));
    const fixed = await scene.run(['diagnose', '2026-04-24', '--config', config, '--pipeline', 'refunds', '--fix', '--json']);
    expect(fixed.json.fix.steps[0]).toMatchObject({ result: 'deleted' });
    const byPipeline = await scene.run(['history', '--config', config, '--pipeline', 'refunds', '--json']);
    expect(byPipeline.code).toBe(0);
    const shown = JSON.parse(byPipeline.stdout);
    expect(shown.auditLog).toBe(join(scene.stateDir(), 'audit.jsonl'));
    const records = shown.records as Array<{ op: string; path?: string; run: string }>;
    expect(records.filter((r) => r.path === scene.url(key)).map((r) => r.op)).toEqual(['intent', 'delete']);
    // The log is shared by every S3 prefix: --staging-dir shows this prefix's records only.
    const byDir = await scene.run(['history', '--staging-dir', scene.url(`${root}_staging/`), '--json']);
    expect(byDir.code).toBe(0);
    const mine = JSON.parse(byDir.stdout).records as Array<{ op: string; path?: string }>;
    expect(mine.map((r) => `${r.op} ${r.path}`)).toEqual([`intent ${scene.url(key)}`, `delete ${scene.url(key)}`]);
    const table = await scene.run(['history', '--staging-dir', scene.url(`${root}_staging/`)]);
    expect(table.stdout).toMatch(/delete .*2026-04-24\.\d+\.csv/);
  });
});
