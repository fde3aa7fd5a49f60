#!/usr/bin/env node
// The crashdiag bin: the bundle beside it (crashdiag-main.cjs), compiled from
// the code cache the build made for it where that cache was made from these
// very bytes and V8 accepts it (code-cache.ts). Anything wrong with the cache
// costs only the time it saves.
import { closeSync, constants, fstatSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileBundle, runBundle, unpackCodeCache } from './code-cache.js';

/**
 * The cache file's bytes when it is a regular file of a sane size: never
 * waits on a FIFO put in its place, nor reads a runaway file whole.
 */
function readCache(path: string, bundleBytes: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    // No cache (a build that could not make one): compiled from source.
    return undefined;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size > 8 * bundleBytes) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

// Through the symlink npm makes for the bin: node resolves it, except under
// --preserve-symlinks-main, and the bundle is beside the file, not the link.
const here = dirname(realpathSync.native(fileURLToPath(import.meta.url)));
const bundle = join(here, 'crashdiag-main.cjs');
const bytes = readFileSync(bundle);
const cache = readCache(`${bundle}.cache`, bytes.length);
runBundle(compileBundle(bytes.toString('utf8'), unpackCodeCache(cache, bytes)), bundle, here);
