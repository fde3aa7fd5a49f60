// Build time only (scripts/build.mjs): runs the bundle once on a command
// given, as the bin would, and writes V8's code cache of everything that run
// compiled. Usage: node code-cache-writer.cjs BUNDLE CACHE -- ARGS...
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { compileBundle, packCodeCache, runBundle } from './code-cache.js';

const [bundle, cache, separator, ...args] = process.argv.slice(2);
if (!bundle || !cache || separator !== '--') throw new Error('usage: code-cache-writer BUNDLE CACHE -- ARGS...');
const bytes = readFileSync(bundle);
const script = compileBundle(bytes.toString('utf8'));
process.argv = [process.argv[0] ?? 'node', bundle, ...args];
// After the command has run: the cache then holds the functions it compiled, not only the top level.
process.on('exit', () => {
  writeFileSync(cache, packCodeCache(script.createCachedData(), bytes));
});
runBundle(script, bundle, dirname(bundle));
