// `crashdiag scan | head -1`: the reader goes away after the first line. The
// rest of the output has nowhere to go; that is no error of crashdiag's, and
// it must not end in a stack trace or lose the command's exit code.
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { useBuiltBin } from '../support/built-bin.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

const built = useBuiltBin();
let root: string;
beforeEach(async () => {
  root = await makeTempDir('crashdiag-pipe-');
  for (const dir of ['out', 'stg']) await mkdir(join(root, dir));
});
afterEach(() => removeTempDir(root));

it('a reader that closes the pipe early gets no stack trace, and the exit code stays the state\'s', async () => {
  // Thousands of missed dates: far more JSON than a pipe buffer holds.
  const args = ['scan', '--out-dir', 'out', '--staging-dir', 'stg', '--final', 'r_{date}.csv', '--daily', '--since', '3000d', '--json'];
  const child = spawn(process.execPath, [built.bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // Like head -1: take the first chunk, then close our end.
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.once('close', (exit) => resolve(exit)));
  expect(stderr).not.toMatch(/EPIPE|unexpected error|\n\s+at /);
  // Every date without an output is A/B/C.
  expect(code).toBe(10);
});
