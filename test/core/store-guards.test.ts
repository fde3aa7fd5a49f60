// The guards of a removal from an S3 prefix: the rules every backend shares
// (nameRefusal, fileRefusal) asked through guardStoreRemoval, and the
// quarantine's place. Pure: no server is needed to judge a planned entry.
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/pipeline-options.js';
import { rulesForStagingDirectory } from '../../src/core/directory-rules.js';
import type { FileSystem } from '../../src/core/fs.js';
import type { ProcessTable } from '../../src/core/process-table.js';
import { checkStoreQuarantine, guardStoreRemoval } from '../../src/core/store-guards.js';
import type { ObjectStore, StoreEntry } from '../../src/core/store.js';

const NOW = Date.parse('2026-04-24T06:08:00Z');
const HOUR = 3_600_000;
// No file system is asked about s3:// directories: any call is a bug.
const noFs = new Proxy({}, { get: () => () => Promise.reject(new Error('fs used for an S3 prefix')) }) as FileSystem;
const processes: ProcessTable = {
  hostname: 'here',
  inspect: () => ({ exists: false, zombie: false }),
};

function settingsFor(out: string, staging: string, final = 'refunds_settled_{date}.csv') {
  return resolveSettings({ outDir: out, stagingDir: staging, final }, undefined, {}, '/');
}

function store(location: string): ObjectStore {
  return { backend: 's3', location, pathOf: (name: string) => `${location}${name}` } as unknown as ObjectStore;
}

function object(name: string, ageMs = HOUR): StoreEntry {
  return { kind: 'file', name, bytes: 10, mtimeMs: NOW - ageMs, etag: '"e"', version: '"e"' };
}

async function guard(settings: ReturnType<typeof settingsFor>, entry: StoreEntry) {
  const here = await rulesForStagingDirectory(noFs, settings);
  return guardStoreRemoval({ settings, runKey: '2026-04-24', nowMs: NOW, processes }, here, store('s3://bkt/s/'), entry);
}

describe('guardStoreRemoval', () => {
  it('passes a dead orphan directly in the staging prefix', async () => {
    const verdict = await guard(settingsFor('s3://bkt/out/', 's3://bkt/s/'), object('2026-04-24.4242.csv'));
    expect(verdict.ok).toBe(true);
  });

  it.each([
    ['a key below the prefix', object('2026-04-24.4242.csv/part-0'), /not directly inside/],
    ['another run key', object('2026-04-23.4242.csv'), /does not match the staging template/],
    ['a young object (writer may be alive)', object('2026-04-24.4242.csv', 1000), /writer is alive/],
    ['a "directory" of keys', { kind: 'directory' as const, name: '2026-04-24.4242.csv' }, /not a regular file/],
  ])('refuses %s', async (_, entry, reason) => {
    const verdict = await guard(settingsFor('s3://bkt/out/', 's3://bkt/s/'), entry);
    expect(verdict).toMatchObject({ ok: false, reason: expect.stringMatching(reason) });
  });

  it('attack: staging prefix == output prefix (two spellings), the output fits the staging template: refused', async () => {
    const settings = settingsFor('s3://bkt/s', 's3://bkt/s/', '{date}.7.csv');
    const verdict = await guard(settings, object('2026-04-24.7.csv'));
    expect(verdict).toMatchObject({ ok: false, reason: expect.stringMatching(/published output/) });
  });
});

describe('checkStoreQuarantine', () => {
  const settings = settingsFor('s3://bkt/out/', 's3://bkt/s/');
  it.each([
    ['under the output prefix', 's3://bkt/out/q/', /under the output prefix/],
    ['the output prefix itself', 's3://bkt/out', /at or under the output prefix/],
    ['the staging prefix', 's3://bkt/s', /staging prefix itself/],
    ['a local directory', '/tmp/q', /not an S3 prefix/],
  ])('refuses %s', (_, quarantine, reason) => {
    expect(() => checkStoreQuarantine(settings, quarantine)).toThrow(reason);
  });

  it('accepts a prefix beside them, in its one spelling', () => {
    expect(checkStoreQuarantine(settings, 's3://bkt/outbox/')).toBe('s3://bkt/outbox');
  });
});
