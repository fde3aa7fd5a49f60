#!/usr/bin/env node
// The crashdiag bin: the bundle beside it (crashdiag-main.cjs), compiled from
// the code cache the build made for it where that cache was made from these
// very bytes and V8 accepts it (code-cache.ts). Anything wrong with the cache
// costs only the time it saves.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileBundle, runBundle, unpackCodeCache } from './code-cache.js';

const here = dirname(fileURLToPath(import.meta.url));
const bundle = join(here, 'crashdiag-main.cjs');
const bytes = readFileSync(bundle);
let cache: Buffer | undefined;
try {
  cache = readFileSync(`${bundle}.cache`);
} catch {
  // No cache (a build that could not make one): compiled from source.
}
runBundle(compileBundle(bundle, bytes.toString('utf8'), unpackCodeCache(cache, bytes)), bundle, here);
