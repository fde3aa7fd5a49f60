// Start-up (issue 11): the bin's bundle compiled from a V8 code cache made
// when it was built. Parsing the bundle and compiling the functions a plain
// diagnose runs were about 9 ms of a 73 ms start against 56 ms for
// `node -e 0`; from the cache, 66 ms (BENCHMARKS.md).
//
// The cache is only ever a hint, used where it is certainly the one made
// from this bundle, and intact:
// - V8 checks it against its own version and flags, and compiles from
//   source where it does not fit (another node, --cpu-prof).
// - Of the source, V8 checks only the length: an edit of the bundle that
//   keeps its length (a hand patch of a guard on a host) ran the cached code,
//   not the edit. The cache file carries a copy of the bundle it was made
//   from, and is used only where that copy and the bundle are the same bytes.
// - A release V8 does not check its cache's checksum: one flipped byte in
//   the data stopped node with a fatal error in V8's deserializer, on every
//   run. The data is stored twice and used only where both copies agree.
//   Two memcmps cost less than loading a hash (node:crypto, node:zlib or
//   node:v8's checksum flag: 1.3-2.5 ms each, measured).
// - The V8 of node 20 keeps the file name the cache was made under: every
//   stack trace of a bin started from it named the build's scratch directory
//   (dist.PID/), gone since. The cache file ends with the path it was made
//   for, and is used only by the bundle at that path; a copy elsewhere (an
//   npm install) compiles from source, and its stack traces name it.
import Module from 'node:module';
import { Script } from 'node:vm';

/** The bundle's main function: CommonJS's wrapper around its source. */
type ModuleFunction = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
) => void;

// A cache file: the V8 data's length (4 bytes, little-endian), the V8 data
// twice, the bundle's bytes it was made from, then the path (UTF-8) it was made for.
const LENGTH_BYTES = 4;

/** A cache file's contents for V8's `data`, made from `bundle` compiled as the file at `path`. */
export function packCodeCache(data: Buffer, bundle: Buffer, path: string): Buffer {
  const length = Buffer.alloc(LENGTH_BYTES);
  length.writeUInt32LE(data.length);
  return Buffer.concat([length, data, data, bundle, Buffer.from(path)]);
}

/** V8's data in a cache file, if the file is whole and was made from exactly these bundle bytes, at this path. */
export function unpackCodeCache(file: Buffer | undefined, bundle: Buffer, path: string): Buffer | undefined {
  if (!file || file.length < LENGTH_BYTES) return undefined;
  const size = file.readUInt32LE(0);
  const end = LENGTH_BYTES + 2 * size;
  const madeFor = Buffer.from(path);
  if (end + bundle.length + madeFor.length !== file.length) return undefined;
  const data = file.subarray(LENGTH_BYTES, LENGTH_BYTES + size);
  if (!data.equals(file.subarray(LENGTH_BYTES + size, end))) return undefined;
  const madeFrom = file.subarray(end, end + bundle.length);
  if (!madeFrom.equals(bundle) || !file.subarray(end + bundle.length).equals(madeFor)) return undefined;
  return data;
}

/**
 * The bundle at `file`, compiled as node compiles a CommonJS file, from
 * `cachedData` where V8 accepts it. The `#!` line stays as a comment of the
 * same length: line and column numbers in stack traces are the file's.
 */
export function compileBundle(file: string, source: string, cachedData?: Buffer): Script {
  const body = source.startsWith('#!') ? `//${source.slice(2)}` : source;
  return new Script(Module.wrap(body), { filename: file, ...(cachedData ? { cachedData } : {}) });
}

/** Runs a compiled bundle as the module `file`: its require resolves beside it, as node's own would. */
export function runBundle(script: Script, file: string, dirname: string): void {
  const main = script.runInThisContext() as ModuleFunction;
  const module = { exports: {} };
  main.call(module.exports, module.exports, Module.createRequire(file), module, file, dirname);
}
