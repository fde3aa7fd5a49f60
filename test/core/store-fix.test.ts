// --abort-uploads, through the store seam: s3rver cannot list multipart
// uploads (test/support/s3-server.ts), so the uploads live in a MemoryStore
// that keeps the seam's contract. The lock and audit log are real local files.
import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import type { FixContext } from '../../src/core/fix.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { fixStoreRun } from '../../src/core/store-fix.js';
import { ownIdentity } from '../support/identity.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { MemoryStore } from '../support/memory-store.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

const RUN = '2026-04-24';
const HOUR = 3_600_000;
let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('crashdiag-store-fix-');
});
afterEach(() => removeTempDir(dir));

function context(): FixContext {
  return {
    fs: fsp,
    processes: createProcessTable(),
    wallClock: () => Date.now(),
    sleep: (ms) => sleep(ms),
    runCommand: () => Promise.resolve({ exitStatus: null, signal: null, error: 'no commands here' }),
    user: 'tester',
    identity: ownIdentity(),
    ...realLockRuntime(),
    progress: () => {},
  };
}

function run(staging: MemoryStore, out: MemoryStore, abortUploads: boolean) {
  const settings = resolveSettings(
    { outDir: 's3://bkt/out/', stagingDir: 's3://bkt/s/', final: 'refunds_settled_{date}.csv' }, undefined, {}, '/');
  return fixStoreRun(context(), settings, { out, staging }, RUN, {
    dryRun: false,
    quarantineDir: undefined,
    lockTimeoutMs: 1000,
    auditLog: join(dir, 'audit.jsonl'),
    abortUploads,
    stateDir: join(dir, 'state'),
  });
}

async function audit(): Promise<Array<Record<string, unknown>>> {
  const text = await fsp.readFile(join(dir, 'audit.jsonl'), 'utf8');
  return text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function stores() {
  const staging = new MemoryStore('s3://bkt/s/');
  const out = new MemoryStore('s3://bkt/out/');
  const now = Date.now();
  staging.put(`${RUN}.4242.csv`, 10, now - HOUR);
  staging.uploads.push(
    { name: `${RUN}.4243.csv`, uploadId: 'stale', initiatedMs: now - HOUR },
    { name: `${RUN}.4244.csv`, uploadId: 'recent', initiatedMs: now },
    { name: `2026-04-23.4245.csv`, uploadId: 'other-run', initiatedMs: now - HOUR },
  );
  return { staging, out };
}

describe('--abort-uploads', () => {
  it('aborts this run\'s stale uploads only, each after its intent is on record, and reports them', async () => {
    const { staging, out } = stores();
    const report = await run(staging, out, true);
    expect(staging.aborted).toEqual(['stale']);
    expect(report.steps.map((s) => s.result)).toEqual(['deleted', 'aborted']);
    expect(staging.uploads.map((u) => u.uploadId).sort()).toEqual(['other-run', 'recent']);
    expect(report.before.uploads?.map((u) => [u.path, u.stale])).toEqual([
      [`s3://bkt/s/${RUN}.4243.csv`, true],
      [`s3://bkt/s/${RUN}.4244.csv`, false],
    ]);
    const ops = (await audit()).filter((r) => r.path === `s3://bkt/s/${RUN}.4243.csv`).map((r) => r.op);
    expect(ops).toEqual(['intent', 'abort']);
    expect(staging.objects.size).toBe(0);
  });

  it('without the flag, no upload is aborted (the orphan is still deleted)', async () => {
    const { staging, out } = stores();
    await run(staging, out, false);
    expect(staging.aborted).toEqual([]);
    expect(staging.uploads).toHaveLength(3);
    expect(staging.objects.size).toBe(0);
  });

  it('while a writer of the run is alive (RUNNING), none is aborted: it may still be uploading parts', async () => {
    const { staging, out } = stores();
    staging.put(`${RUN}.4246.csv`, 10, Date.now());
    const report = await run(staging, out, true);
    expect(report.before.state).toBe('RUNNING');
    expect(staging.aborted).toEqual([]);
  });
});
