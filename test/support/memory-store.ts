import { checkUnchanged, type CopyOutcome, type IncompleteUpload, type ObjectStore, type RemoveOutcome,
  type StoreEntry, type StoredFile, type UploadListing } from '../../src/core/store.js';

/**
 * An S3 prefix kept in memory, behind the store seam: for what the test S3
 * server cannot do (s3rver lists no multipart uploads). Not a mocked SDK
 * client: it keeps the seam's contract (the same unchanged check as the real
 * backends), and the tests read its contents back as the bucket's.
 */
export class MemoryStore implements ObjectStore {
  readonly backend = 's3';
  readonly location: string;
  readonly objects = new Map<string, StoredFile>();
  readonly uploads: IncompleteUpload[] = [];
  readonly aborted: string[] = [];
  #etag = 0;

  constructor(location: string) {
    this.location = location;
  }

  pathOf(name: string): string {
    return `${this.location}${name}`;
  }

  put(name: string, bytes: number, mtimeMs: number): void {
    const etag = `"${++this.#etag}"`;
    this.objects.set(name, { kind: 'file', name, bytes, mtimeMs, etag, version: etag });
  }

  async* list(namePrefix: string): AsyncIterable<readonly StoreEntry[]> {
    await Promise.resolve();
    yield [...this.objects.values()].filter((o) => o.name.startsWith(namePrefix));
  }

  async stat(name: string): Promise<StoreEntry | undefined> {
    await Promise.resolve();
    return this.objects.get(name);
  }

  async removeIfUnchanged(planned: StoreEntry): Promise<RemoveOutcome> {
    const now = await this.stat(planned.name);
    if (!now) return { outcome: 'gone' };
    const check = checkUnchanged(planned, now, (a, b) => a === b);
    if (!check.unchanged) return { outcome: 'refused', reason: check.reason };
    this.objects.delete(planned.name);
    return { outcome: 'removed' };
  }

  copy(): Promise<CopyOutcome> {
    return Promise.resolve({ outcome: 'refused', reason: 'not kept in memory' });
  }

  listUploads(namePrefix: string): Promise<UploadListing> {
    return Promise.resolve({ supported: true, uploads: this.uploads.filter((u) => u.name.startsWith(namePrefix)) });
  }

  abortUpload(upload: IncompleteUpload): Promise<'aborted' | 'gone'> {
    const at = this.uploads.findIndex((u) => u.uploadId === upload.uploadId);
    if (at === -1) return Promise.resolve('gone');
    this.uploads.splice(at, 1);
    this.aborted.push(upload.uploadId);
    return Promise.resolve('aborted');
  }
}
