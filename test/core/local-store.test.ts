import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/core/local-store.js';
import type { StoreEntry } from '../../src/core/store.js';
import { snapshot } from '../support/file-tree.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

let dir: string;
let staging: string;
let store: LocalStore;
beforeEach(async () => {
  dir = await makeTempDir('crashdiag-local-store-');
  staging = join(dir, '_staging');
  await fsp.mkdir(staging);
  store = new LocalStore(fsp, staging);
});
afterEach(() => removeTempDir(dir));

async function listAll(namePrefix: string, pageSize?: number): Promise<StoreEntry[][]> {
  const pages: StoreEntry[][] = [];
  for await (const page of store.list(namePrefix, pageSize === undefined ? {} : { pageSize })) pages.push([...page]);
  return pages;
}

async function planned(name: string): Promise<StoreEntry> {
  const entry = await store.stat(name);
  if (!entry) throw new Error(`${name} missing`);
  return entry;
}

describe('LocalStore', () => {
  it('lists the names with the prefix in pages, with kind, size and time', async () => {
    for (const n of [1, 2, 3]) await fsp.writeFile(join(staging, `2026-04-24.${n}.csv`), 'x'.repeat(n));
    await fsp.writeFile(join(staging, '2026-04-23.9.csv'), 'old');
    await fsp.mkdir(join(staging, '2026-04-24.dir'));

    const pages = await listAll('2026-04-24.', 2);

    expect(pages.map((p) => p.length)).toEqual([2, 2]);
    const entries = pages.flat().sort((a, b) => a.name.localeCompare(b.name));
    expect(entries.map((e) => [e.name, e.kind])).toEqual([
      ['2026-04-24.1.csv', 'file'], ['2026-04-24.2.csv', 'file'], ['2026-04-24.3.csv', 'file'], ['2026-04-24.dir', 'directory'],
    ]);
    expect(entries[2]).toMatchObject({ bytes: 3 });
    expect(store.pathOf('2026-04-24.1.csv')).toBe(join(staging, '2026-04-24.1.csv'));
  });

  it('removes the planned file', async () => {
    await fsp.writeFile(join(staging, '2026-04-24.1.csv'), 'orphan');
    expect(await store.removeIfUnchanged(await planned('2026-04-24.1.csv'))).toEqual({ outcome: 'removed' });
    expect(await store.stat('2026-04-24.1.csv')).toBeUndefined();
  });

  it('refuses a file replaced by another of the same size and time after the plan, and the disk is untouched', async () => {
    const path = join(staging, '2026-04-24.1.csv');
    await fsp.writeFile(path, 'orphan');
    const entry = await planned('2026-04-24.1.csv');
    // Same bytes count and mtime, different file: only (dev, ino) tells.
    await fsp.writeFile(`${path}.new`, 'live!!');
    const { mtime } = await fsp.lstat(path);
    await fsp.utimes(`${path}.new`, mtime, mtime);
    await fsp.rename(`${path}.new`, path);
    const before = await snapshot(dir);

    expect(await store.removeIfUnchanged(entry)).toMatchObject({ outcome: 'refused' });
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses a file rewritten in place with its mtime set back (cp -p), and the disk is untouched', async () => {
    const path = join(staging, '2026-04-24.1.csv');
    await fsp.writeFile(path, 'orphan');
    const entry = await planned('2026-04-24.1.csv');
    const { atime, mtime } = await fsp.lstat(path);
    await fsp.writeFile(path, 'writer');
    await fsp.utimes(path, atime, mtime);
    const before = await snapshot(dir);

    expect(await store.removeIfUnchanged(entry)).toMatchObject({ outcome: 'refused' });
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses a symlink where the planned file was, and the disk is untouched', async () => {
    const path = join(staging, '2026-04-24.1.csv');
    await fsp.writeFile(path, 'orphan');
    const entry = await planned('2026-04-24.1.csv');
    await fsp.writeFile(join(dir, 'published.csv'), 'published');
    await fsp.rm(path);
    await fsp.symlink(join(dir, 'published.csv'), path);
    const before = await snapshot(dir);

    expect(await store.removeIfUnchanged(entry)).toMatchObject({ outcome: 'refused', reason: 'it is now a symlink' });
    expect(await snapshot(dir)).toEqual(before);
  });

  it('counts a file someone else removed as gone', async () => {
    await fsp.writeFile(join(staging, '2026-04-24.1.csv'), 'orphan');
    const entry = await planned('2026-04-24.1.csv');
    await fsp.rm(join(staging, '2026-04-24.1.csv'));
    expect(await store.removeIfUnchanged(entry)).toEqual({ outcome: 'gone' });
  });

  it('copies to quarantine, never over an earlier copy', async () => {
    await fsp.mkdir(join(dir, '_quarantine'));
    const quarantine = new LocalStore(fsp, join(dir, '_quarantine'));
    await fsp.writeFile(join(staging, '2026-04-24.1.csv'), 'forensic');
    const entry = await planned('2026-04-24.1.csv');

    expect(await store.copy(entry, quarantine, '2026-04-24.1.csv')).toEqual({ outcome: 'copied' });
    const before = await snapshot(dir);
    expect(await store.copy(entry, quarantine, '2026-04-24.1.csv')).toMatchObject({ outcome: 'refused' });
    expect(await snapshot(dir)).toEqual(before);
    expect(await fsp.readFile(join(dir, '_quarantine', '2026-04-24.1.csv'), 'utf8')).toBe('forensic');
  });

  it('has no incomplete uploads to report', async () => {
    expect(await store.listUploads()).toEqual({ supported: true, uploads: [] });
  });
});
