// Flat memory for scan and clean on an S3 prefix of very many objects: a
// store behind the seam that makes each page as it is asked for and keeps
// nothing (s3rver is far too slow for hundreds of thousands of keys), and the
// heap measured after a full collection at the first and the last page. A
// record kept per object would grow the heap by its size times the count.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import type { CleanContext } from '../../src/core/clean.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { cleanStorePipeline } from '../../src/core/store-clean.js';
import { scanStorePipeline } from '../../src/core/store-scan.js';
import type { CopyOutcome, ObjectStore, RemoveOutcome, StoreEntry, UploadListing } from '../../src/core/store.js';
import { heapAfterCollection } from '../support/heap.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

// Enough that a record kept per object shows well above FLAT_BYTES (about 16 MB at
// this count when measured so), few enough that the audited clean takes seconds.
const OBJECTS = 120_000;
const PAGE = 1000;
const KEYS = ['2026-04-22', '2026-04-23', '2026-04-24'];
// A record per object (a name of 30-odd characters, a few numbers) is well over 100 bytes: 11 MB and more here.
const FLAT_BYTES = 8 * 1024 * 1024;

/** An S3 prefix of OBJECTS two-day-old orphans, made a page at a time. */
class GeneratedPrefix implements ObjectStore {
  readonly backend = 's3';
  readonly location = 's3://bkt/s/';
  readonly heapAt: number[] = [];
  readonly #mtimeMs = Date.now() - 48 * 3_600_000;
  removed = 0;

  pathOf(name: string): string {
    return `${this.location}${name}`;
  }

  async* list(): AsyncIterable<readonly StoreEntry[]> {
    for (let first = 0; first < OBJECTS; first += PAGE) {
      if (first === 10 * PAGE || first + PAGE >= OBJECTS) this.heapAt.push(heapAfterCollection());
      await Promise.resolve();
      yield Array.from({ length: PAGE }, (_, i) => this.#entry(first + i));
    }
  }

  #entry(n: number): StoreEntry {
    const etag = `"${n.toString(16)}"`;
    // No {host} in the key: an S3 writer is judged by its age (two days), whatever the PID.
    const name = `${KEYS[n % KEYS.length]}.${3_000_000 + n}.csv`;
    return { kind: 'file', name, bytes: 10, mtimeMs: this.#mtimeMs, etag, version: etag };
  }

  async stat(name: string): Promise<StoreEntry | undefined> {
    await Promise.resolve();
    const n = Number(name.split('.')[1]) - 3_000_000;
    return this.#entry(n);
  }

  async removeIfUnchanged(): Promise<RemoveOutcome> {
    await Promise.resolve();
    this.removed += 1;
    return { outcome: 'removed' };
  }

  copy(): Promise<CopyOutcome> {
    return Promise.resolve({ outcome: 'refused', reason: 'not here' });
  }

  listUploads(): Promise<UploadListing> {
    return Promise.resolve({ supported: true, uploads: [] });
  }

  abortUpload(): Promise<'aborted' | 'gone'> {
    return Promise.resolve('gone');
  }
}

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('crashdiag-store-memory-');
});
afterEach(() => removeTempDir(dir));

const settings = () => resolveSettings(
  { outDir: 's3://bkt/out/', stagingDir: 's3://bkt/s/', final: 'refunds_{date}.csv' }, undefined, {}, '/');

function grewBy(store: GeneratedPrefix): number {
  const [first = 0, last = 0] = store.heapAt;
  return last - first;
}

describe(`${OBJECTS.toLocaleString('en')} objects in one S3 staging prefix`, () => {
  it('attack: scan holds totals per run key, not a record per object: the heap does not grow with the listing', async () => {
    const staging = new GeneratedPrefix();
    const ctx = { fs: fsp, processes: createProcessTable(), nowMs: Date.now(), wallClock: () => Date.now() };
    const window = { sinceMs: 30 * 86_400_000, daily: false };
    const result = await scanStorePipeline(ctx, settings(), { out: emptyOut(), staging }, window);
    expect(result.runs.map((r) => r.run).sort()).toEqual(KEYS);
    expect(result.runs.reduce((sum, r) => sum + r.totals.orphanCount, 0)).toBe(OBJECTS);
    expect(staging.heapAt).toHaveLength(2);
    expect(grewBy(staging)).toBeLessThan(FLAT_BYTES);
  }, 120_000);

  it('attack: clean (each object removed, its intent and outcome in the audit log) keeps no record per object either', async () => {
    const staging = new GeneratedPrefix();
    const ctx: CleanContext = {
      fs: fsp,
      processes: createProcessTable(),
      wallClock: () => Date.now(),
      sleep: (ms) => sleep(ms),
      user: 'tester',
      ...realLockRuntime(),
    };
    let streamed = 0;
    const report = await cleanStorePipeline(ctx, settings(), { out: emptyOut(), staging }, {
      olderThanMs: 24 * 3_600_000,
      dryRun: false,
      auditLog: join(dir, 'audit.jsonl'),
      lockTimeoutMs: 1000,
      stateDir: join(dir, 'state'),
      onRemoved: () => {
        streamed += 1;
      },
    });
    expect(report.files).toBe(OBJECTS);
    expect(streamed).toBe(OBJECTS);
    expect(staging.removed).toBe(OBJECTS);
    expect(report.removed).toEqual([]);
    expect(grewBy(staging)).toBeLessThan(FLAT_BYTES);
  }, 240_000);
});

function emptyOut(): ObjectStore {
  return {
    backend: 's3',
    location: 's3://bkt/out/',
    pathOf: (name) => `s3://bkt/out/${name}`,
    async* list() {},
    stat: () => Promise.resolve(undefined),
    removeIfUnchanged: () => Promise.resolve({ outcome: 'gone' }),
    copy: () => Promise.resolve({ outcome: 'refused', reason: 'not here' }),
    listUploads: () => Promise.resolve({ supported: true, uploads: [] }),
    abortUpload: () => Promise.resolve('gone'),
  };
}
