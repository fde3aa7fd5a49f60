// The bin starts from a V8 code cache the build made (src/bin/code-cache.ts).
// The cache must never change what runs: an edited bundle runs the edit, a
// damaged or missing cache only costs the time it saves.
import { execFileSync, spawn } from 'node:child_process';
import { promises as fsp, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileBundle, packCodeCache, unpackCodeCache } from '../../src/bin/code-cache.js';
import { collectOutput, runBin, useBuiltBin } from '../support/built-bin.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

/** The checkout's bin, where the build put it. */
const DIST = join(realpathSync(fileURLToPath(new URL('../../', import.meta.url))), 'dist');

describe('unpackCodeCache: the data only from a whole file made from these bundle bytes', () => {
  const bundle = Buffer.from('#!/usr/bin/env node\nconsole.log("the bundle");\n');
  const data = Buffer.from('v8 code cache data, any bytes: \x00\x01\x02');
  const packed = packCodeCache(data, bundle);
  const flipped = (at: number) => {
    const copy = Buffer.from(packed);
    copy[at] = (copy[at] ?? 0) ^ 0x5a;
    return copy;
  };
  const edited = Buffer.from(bundle.toString().replace('the bundle', 'THE BUNDLE'));

  it('gives back the data of an intact file', () => {
    expect(unpackCodeCache(packed, bundle)).toEqual(data);
  });

  it.each([
    ['no file', undefined, bundle],
    ['an empty file', Buffer.alloc(0), bundle],
    ['a file cut short by one byte', packed.subarray(0, packed.length - 1), bundle],
    ['a file with a byte too many', Buffer.concat([packed, Buffer.from('x')]), bundle],
    ['a length that runs past the end', Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0x7f]), packed.subarray(4)]), bundle],
    ['a byte flipped in the first copy of the data', flipped(4 + 3), bundle],
    ['a byte flipped in the second copy of the data', flipped(4 + data.length + 3), bundle],
    ['a byte flipped in the copy of the bundle', flipped(4 + 2 * data.length + 5), bundle],
    ['a bundle edited to the same length', packed, edited],
    ['another bundle', packed, Buffer.from('something else')],
  ])('gives nothing for %s', (_case, file, against) => {
    expect(edited.length).toBe(bundle.length);
    expect(unpackCodeCache(file, against)).toBeUndefined();
  });

  it('every cut of the file gives nothing', () => {
    for (let cut = 0; cut < packed.length; cut++) {
      expect(unpackCodeCache(packed.subarray(0, cut), bundle)).toBeUndefined();
    }
  });
});

describe('the built bin and its code cache', () => {
  const built = useBuiltBin();
  const KEY = '2026-04-24';

  async function withLayout<T>(use: (args: string[]) => Promise<T>): Promise<T> {
    const dir = await makeTempDir('crashdiag-code-cache-');
    try {
      await fsp.mkdir(join(dir, 'out'));
      await fsp.mkdir(join(dir, 'staging'));
      await fsp.writeFile(join(dir, 'out', `r_${KEY}.csv`), 'id\n');
      await fsp.writeFile(join(dir, 'out', `r_${KEY}.csv.success`), '');
      return await use(['diagnose', KEY, '--out-dir', join(dir, 'out'), '--staging-dir', join(dir, 'staging'), '--final', 'r_{date}.csv', '--json']);
    } finally {
      await removeTempDir(dir);
    }
  }

  const paths = () => {
    const bundle = join(built.bin, '..', 'crashdiag-main.cjs');
    return { bundle, cache: `${bundle}.cache` };
  };

  it('ships a cache made from the bundle beside it, which this node accepts in a copy anywhere', async () => {
    for (const bundle of [join(DIST, 'crashdiag-main.cjs'), paths().bundle]) {
      const bytes = await fsp.readFile(bundle);
      const data = unpackCodeCache(await fsp.readFile(`${bundle}.cache`), bytes);
      expect(data).toBeDefined();
      expect(compileBundle(bytes.toString('utf8'), data).cachedDataRejected).toBe(false);
    }
  });

  it('runs an edit of the bundle that keeps its length, not the cached code (V8 checks only the length)', async () => {
    const { bundle } = paths();
    const original = await fsp.readFile(bundle, 'utf8');
    const patched = original.replace('this run completed.', 'THIS RUN COMPLETED.');
    expect(patched).not.toBe(original);
    expect(Buffer.byteLength(patched)).toBe(Buffer.byteLength(original));
    await fsp.writeFile(bundle, patched);
    try {
      await withLayout(async (args) => {
        const ran = await runBin(built.bin, args);
        expect(ran.stderr).toBe('');
        expect(ran.code).toBe(0);
        expect(JSON.parse(ran.stdout)).toMatchObject({ state: 'DONE', summary: expect.stringContaining('THIS RUN COMPLETED.') });
      });
    } finally {
      await fsp.writeFile(bundle, original);
    }
  });

  it('attack: run through npm\'s bin symlink with --preserve-symlinks-main, it still finds its bundle', async () => {
    const links = await makeTempDir('crashdiag-code-cache-link-');
    try {
      const link = join(links, 'crashdiag');
      await fsp.symlink(built.bin, link);
      await withLayout(async (args) => {
        const ran = await runBin(link, args, { env: { NODE_OPTIONS: '--preserve-symlinks-main' } });
        expect(ran.stderr).toBe('');
        expect(ran.code).toBe(0);
        expect(JSON.parse(ran.stdout)).toMatchObject({ state: 'DONE' });
      });
    } finally {
      await removeTempDir(links);
    }
  });

  it('starts the same from a damaged, foreign or missing cache: only slower', async () => {
    const { cache } = paths();
    const intact = await fsp.readFile(cache);
    const size = intact.readUInt32LE(0);
    const damaged = Buffer.from(intact);
    // Spread over the first copy of V8's data: a release V8 does not check its checksum, and died on this.
    for (let at = 4 + 100; at < 4 + size; at += 997) damaged[at] = (damaged[at] ?? 0) ^ 0x5a;
    const caches: Array<[string, Buffer | 'fifo' | 'directory' | null]> = [
      ['intact', intact],
      ['damaged', damaged],
      ['garbage', Buffer.from('not a code cache at all')],
      ['empty', Buffer.alloc(0)],
      ['cut in half', intact.subarray(0, intact.length >> 1)],
      ['missing', null],
      // Reading a FIFO waits for a writer that never comes: the bin must not.
      ['a FIFO', 'fifo'],
      ['a directory', 'directory'],
    ];
    try {
      await withLayout(async (args) => {
        const outputs: string[] = [];
        for (const [name, contents] of caches) {
          await fsp.rm(cache, { force: true, recursive: true });
          if (contents === 'fifo') execFileSync('mkfifo', [cache]);
          else if (contents === 'directory') await fsp.mkdir(cache);
          else if (contents) await fsp.writeFile(cache, contents);
          const child = spawn(process.execPath, [built.bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
          const ran = await collectOutput(child, 10_000);
          expect({ name, code: ran.code, stderr: ran.stderr }).toEqual({ name, code: 0, stderr: '' });
          // Ages tick between runs; everything else must be the same.
          outputs.push(JSON.stringify(JSON.parse(ran.stdout), (k, v: unknown) => (k === 'ageSeconds' ? undefined : v)));
        }
        for (const output of outputs) expect(output).toBe(outputs[0]);
      });
    } finally {
      await fsp.rm(cache, { force: true, recursive: true });
      await fsp.writeFile(cache, intact);
    }
  });
});

describe('attack: a stack trace from a bin that started from its code cache', () => {
  const built = useBuiltBin();

  it('names the bundle by its place in the package, the same in every copy and with or without the cache; never the directory the build made the cache in (V8 on node 20 keeps the name a cache was made under)', async () => {
    const dir = await makeTempDir('crashdiag-code-cache-stack-');
    const cache = join(built.bin, '..', 'crashdiag-main.cjs.cache');
    const intact = await fsp.readFile(cache);
    try {
      // A bug, as the bin meets one: a call that throws what no one expects, with a stack through the bundle.
      const fault = join(dir, 'fault.cjs');
      await fsp.writeFile(fault, 'require(\'node:fs\').promises.opendir = async () => { throw new TypeError(\'injected fault\'); };\n');
      await fsp.mkdir(join(dir, 'out'));
      await fsp.mkdir(join(dir, 'staging'));
      const args = ['diagnose', '2026-04-24', '--out-dir', join(dir, 'out'), '--staging-dir', join(dir, 'staging'), '--final', 'r_{date}.csv'];
      const stacks: string[] = [];
      // The checkout's own bin, a copy elsewhere (as npm installs it), and that copy without its cache.
      for (const [bin, withCache] of [[join(DIST, 'crashdiag.cjs'), true], [built.bin, true], [built.bin, false]] as const) {
        if (!withCache) await fsp.rm(cache);
        const ran = await runBin(bin, args, { env: { NODE_OPTIONS: `--require ${fault}` } });
        expect(ran.code).toBe(1);
        expect(ran.stderr).toContain('TypeError: injected fault');
        const frames = ran.stderr.split('\n').filter((line) => line.includes('crashdiag-main.cjs'));
        expect(frames.length).toBeGreaterThan(0);
        for (const frame of frames) expect(frame).toMatch(/\(crashdiag\/dist\/crashdiag-main\.cjs:\d+:\d+\)$/);
        stacks.push(frames.join('\n'));
      }
      for (const stack of stacks) expect(stack).toBe(stacks[0]);
    } finally {
      await fsp.writeFile(cache, intact);
      await removeTempDir(dir);
    }
  });
});
