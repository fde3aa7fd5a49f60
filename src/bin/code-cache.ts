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
// - The V8 of node 20 keeps the file name a cache was made under, whatever
//   name it is then compiled under: stack traces named the build's scratch
//   directory (dist.PID/), gone since. The bundle is compiled, with a cache
//   or without, under one name that holds in every copy (BUNDLE_NAME), so an
//   installed copy starts from the cache too and every stack trace reads the same.
import Module from 'node:module';
import { Script } from 'node:vm';

/**
 * What stack traces call the bundle, wherever it is: its place in the
 * package. (Its real path is the module's __filename, which its require
 * resolves from; V8's name for it is only ever shown.)
 */
export const BUNDLE_NAME = 'crashdiag/dist/crashdiag-main.cjs';

/** The bundle's main function: CommonJS's wrapper around its source. */
type ModuleFunction = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
) => void;

// A cache file: the V8 data's length (4 bytes, little-endian), the V8 data
// twice, then the bundle's bytes it was made from.
const LENGTH_BYTES = 4;

/** A cache file's contents for V8's `data`, made from `bundle`. */
export function packCodeCache(data: Buffer, bundle: Buffer): Buffer {
  const length = Buffer.alloc(LENGTH_BYTES);
  length.writeUInt32LE(data.length);
  return Buffer.concat([length, data, data, bundle]);
}

/** V8's data in a cache file, if the file is whole and was made from exactly these bundle bytes. */
export function unpackCodeCache(file: Buffer | undefined, bundle: Buffer): Buffer | undefined {
  if (!file || file.length < LENGTH_BYTES) return undefined;
  const size = file.readUInt32LE(0);
  const end = LENGTH_BYTES + 2 * size;
  if (end + bundle.length !== file.length) return undefined;
  const data = file.subarray(LENGTH_BYTES, LENGTH_BYTES + size);
  if (!data.equals(file.subarray(LENGTH_BYTES + size, end)) || !file.subarray(end).equals(bundle)) return undefined;
  return data;
}

/**
 * The bundle compiled as node compiles a CommonJS file, under BUNDLE_NAME,
 * from `cachedData` where V8 accepts it. The `#!` line stays as a comment of
 * the same length: line and column numbers in stack traces are the file's.
 */
export function compileBundle(source: string, cachedData?: Buffer): Script {
  const body = source.startsWith('#!') ? `//${source.slice(2)}` : source;
  return new Script(Module.wrap(body), { filename: BUNDLE_NAME, ...(cachedData ? { cachedData } : {}) });
}

/** Runs a compiled bundle as the module `file`: its require resolves beside it, as node's own would. */
export function runBundle(script: Script, file: string, dirname: string): void {
  const main = script.runInThisContext() as ModuleFunction;
  const module = { exports: {} };
  main.call(module.exports, module.exports, Module.createRequire(file), module, file, dirname);
}
