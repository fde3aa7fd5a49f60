import { constants, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from './errors.js';
import type { FileSystem } from './fs.js';
import type { CopyOutcome, IncompleteUpload, ListOptions, ObjectStore, RemoveOutcome, StoreEntry, UploadListing }
  from './store.js';
import { checkUnchanged } from './store.js';

// Entries per page when the caller does not say: the same order of size as
// an S3 page, so callers see one shape of work whichever backend answers.
const DEFAULT_PAGE_SIZE = 1000;

/**
 * A local directory behind the store seam. Thin on purpose: the local probe
 * keeps its own tuned code path; this backend exists so the S3 side has a
 * twin with the same answers to test against and to plan with.
 */
export class LocalStore implements ObjectStore {
  readonly backend = 'local';
  readonly location: string;
  readonly #fs: FileSystem;

  constructor(fs: FileSystem, dir: string) {
    this.#fs = fs;
    this.location = dir;
  }

  pathOf(name: string): string {
    return join(this.location, name);
  }

  async* list(namePrefix: string, options: ListOptions = {}): AsyncIterable<readonly StoreEntry[]> {
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    let page: StoreEntry[] = [];
    for await (const dirent of await this.#fs.opendir(this.location, { bufferSize: 256 })) {
      if (!dirent.name.startsWith(namePrefix)) continue;
      const entry = await this.stat(dirent.name);
      if (!entry) continue;
      page.push(entry);
      if (page.length >= pageSize) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  async stat(name: string): Promise<StoreEntry | undefined> {
    try {
      return entryOf(name, await this.#fs.lstat(this.pathOf(name), { bigint: true }));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  async removeIfUnchanged(planned: StoreEntry): Promise<RemoveOutcome> {
    // Before any look: a planned directory that has since vanished is not "gone" work done.
    if (planned.kind !== 'file') return { outcome: 'refused', reason: `it is a ${planned.kind}, not a file` };
    const now = await this.stat(planned.name);
    if (!now) return { outcome: 'gone' };
    const check = checkUnchanged(planned, now, (a, b) => a === b);
    if (!check.unchanged) return { outcome: 'refused', reason: check.reason };
    try {
      await this.#fs.unlink(this.pathOf(planned.name));
      return { outcome: 'removed' };
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return { outcome: 'gone' };
      throw error;
    }
  }

  async copy(planned: StoreEntry, destination: ObjectStore, name: string): Promise<CopyOutcome> {
    if (planned.kind !== 'file') return { outcome: 'refused', reason: `it is a ${planned.kind}, not a file` };
    if (!(destination instanceof LocalStore)) {
      return { outcome: 'refused', reason: `cannot copy from a local directory to ${destination.location}` };
    }
    const now = await this.stat(planned.name);
    if (!now) return { outcome: 'refused', reason: 'it is gone' };
    const check = checkUnchanged(planned, now, (a, b) => a === b);
    if (!check.unchanged) return { outcome: 'refused', reason: check.reason };
    try {
      // EXCL: a quarantine copy never overwrites an earlier one.
      await this.#fs.copyFile(this.pathOf(planned.name), destination.pathOf(name), constants.COPYFILE_EXCL);
      return { outcome: 'copied' };
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') return { outcome: 'refused', reason: `${destination.pathOf(name)} already exists` };
      throw error;
    }
  }

  listUploads(): Promise<UploadListing> {
    // A local directory has no multipart uploads: none is the true answer.
    return Promise.resolve({ supported: true, uploads: [] });
  }

  abortUpload(_upload: IncompleteUpload): Promise<'aborted' | 'gone'> {
    return Promise.resolve('gone');
  }
}

function entryOf(name: string, stats: BigIntStats): StoreEntry {
  if (stats.isSymbolicLink()) return { kind: 'symlink', name };
  if (stats.isDirectory()) return { kind: 'directory', name };
  if (!stats.isFile()) return { kind: 'other', name };
  return {
    kind: 'file',
    name,
    bytes: Number(stats.size),
    mtimeMs: Number(stats.mtimeMs),
    // ctime in ns: any write, rename, link or utime moves it, and no user can
    // set it back, so a rewritten file never looks like the planned one.
    version: `${stats.dev}:${stats.ino}:${stats.ctimeNs}`,
  };
}
