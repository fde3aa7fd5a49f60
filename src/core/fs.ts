import type { promises } from 'node:fs';

/**
 * The file-system calls the core makes, passed in so unit tests can hand it a
 * memfs volume. Shaped like node:fs/promises.
 */
export type FileSystem = Pick<
  typeof promises,
  | 'opendir'
  | 'lstat'
  | 'stat'
  | 'realpath'
  | 'unlink'
  | 'rename'
  | 'mkdir'
  | 'open'
  | 'readFile'
  | 'writeFile'
  | 'appendFile'
  | 'rm'
  | 'link'
  | 'copyFile'
  | 'utimes'
>;
