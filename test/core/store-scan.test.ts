// scan through the store seam, for what s3rver cannot do (list multipart
// uploads, see test/support/s3-server.ts): a MemoryStore that keeps the
// seam's contract stands for the S3 prefixes.
import { promises as fsp } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { commonStart } from '../../src/core/store-names.js';
import { scanStorePipeline } from '../../src/core/store-scan.js';
import { MemoryStore } from '../support/memory-store.js';

const HOUR = 3_600_000;
const now = Date.parse('2026-04-25T06:00:00Z');

function scan(out: MemoryStore, staging: MemoryStore, flags: Record<string, unknown> = {}) {
  const settings = resolveSettings(
    { outDir: out.location, stagingDir: staging.location, final: 'refunds_{date}.csv', ...flags }, undefined, {}, '/');
  const ctx = { fs: fsp, processes: createProcessTable(), nowMs: now, wallClock: () => now };
  return scanStorePipeline(ctx, settings, { out, staging }, { sinceMs: 30 * 24 * HOUR, daily: false });
}

describe('commonStart: the literal a listing by prefix may send', () => {
  it.each([
    [['2026-04-24.', '2026-04-25.'], '2026-04-2'],
    [['refunds_0.csv', 'refunds_1.csv', 'refunds_0.csv.success'], 'refunds_'],
    [['a', ''], ''],
    [[], ''],
  ])('%j -> %j', (names, start) => {
    expect(commonStart(names)).toBe(start);
  });
});

describe('scan through the store seam', () => {
  it('incomplete multipart uploads are evidence of their run key (staging and output names), counted per run', async () => {
    const out = new MemoryStore('s3://bkt/out/');
    const staging = new MemoryStore('s3://bkt/s/');
    staging.put('2026-04-24.4242.csv', 10, now - 2 * HOUR);
    staging.uploads.push({ name: '2026-04-24.4243.csv', uploadId: 'u1', initiatedMs: now - 3 * HOUR });
    out.uploads.push({ name: 'refunds_2026-04-24.csv', uploadId: 'u2', initiatedMs: now - HOUR });
    out.uploads.push({ name: 'unrelated.bin', uploadId: 'u3', initiatedMs: now - HOUR });
    const result = await scan(out, staging);
    const [run] = result.runs;
    expect(run?.run).toBe('2026-04-24');
    expect(run?.state).toBe('D');
    expect(run?.uploads?.map((u) => u.uploadId).sort()).toEqual(['u1', 'u2']);
    expect(run?.uploads?.every((u) => u.stale)).toBe(true);
    expect(result.notes).toBeUndefined();
  });

  it('one prefix for staging and output: listed once; the published output that fits the staging template is a finding, never an orphan', async () => {
    const both = new MemoryStore('s3://bkt/data/');
    both.put('2026-04-24.7.csv', 5, now - 2 * HOUR);
    both.put('2026-04-24.7.csv.success', 0, now - 2 * HOUR);
    both.put('2026-04-23.99.csv', 3, now - 2 * HOUR);
    let listings = 0;
    const list = both.list.bind(both);
    both.list = (prefix: string) => {
      listings += 1;
      return list(prefix);
    };
    const result = await scan(both, both, { final: '{date}.7.csv' });
    expect(listings).toBe(1);
    const byRun = Object.fromEntries(result.runs.map((r) => [r.run, r.state]));
    // As the local scan judges the same directory: a name that is both is a finding for a person, never an orphan.
    expect(byRun).toEqual({ '2026-04-24': 'UNKNOWN', '2026-04-23': 'D' });
    expect(result.runs.find((r) => r.run === '2026-04-24')?.totals.orphanCount).toBe(0);
  });

  it('one prefix whose staging names start otherwise than its outputs: the one listing is sent with what both share', async () => {
    const both = new MemoryStore('s3://bkt/data/');
    both.put('refunds_2026-04-24.csv', 5, now - 2 * HOUR);
    both.put('refunds_2026-04-24.csv.success', 0, now - 2 * HOUR);
    both.put('tmp_2026-04-23.99.csv', 3, now - 2 * HOUR);
    const asked: string[] = [];
    const list = both.list.bind(both);
    both.list = (prefix: string) => {
      asked.push(prefix);
      return list(prefix);
    };
    const result = await scan(both, both, { staging: 'tmp_{date}.{pid}.csv' });
    expect(asked).toEqual(['']);
    const byRun = Object.fromEntries(result.runs.map((r) => [r.run, r.state]));
    expect(byRun).toEqual({ '2026-04-24': 'DONE', '2026-04-23': 'D' });
  });
});
