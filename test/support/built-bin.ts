import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
/** The example pipeline, the demo and the campaign: built beside dist/, never shipped. */
const DIST_DEV = fileURLToPath(new URL('../../dist-dev/', import.meta.url));

/**
 * A private copy of the built bundle (and of dist-dev/, the example pipeline) (`npm run build` makes it; the bundle is
 * self-contained), so a rebuild swapping dist/ mid-test cannot pull a chunk
 * out from under a running crashdiag.
 */
export async function copyBuiltBin(): Promise<{ bin: string; dir: string }> {
  const dir = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), 'crashdiag-bin-')));
  for (let attempt = 0; ; attempt++) {
    try {
      await fsp.cp(DIST, join(dir, 'dist'), { recursive: true });
      await fsp.cp(DIST_DEV, join(dir, 'dist-dev'), { recursive: true });
      const bin = join(dir, 'dist', 'crashdiag.cjs');
      await fsp.access(bin);
      return { bin, dir };
    } catch (error) {
      await fsp.rm(join(dir, 'dist'), { recursive: true, force: true });
      await fsp.rm(join(dir, 'dist-dev'), { recursive: true, force: true });
      if (attempt >= 50) {
        throw new Error(`${DIST} cannot be copied: run \`npm run build\` first`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** A private copy of the built bin for the tests of the calling file: copied before them all, removed after. */
export function useBuiltBin(): { readonly bin: string } {
  let copy: { bin: string; dir: string } | undefined;
  beforeAll(async () => {
    copy = await copyBuiltBin();
  });
  afterAll(async () => {
    if (copy) await fsp.rm(copy.dir, { recursive: true, force: true, maxRetries: 3 });
  });
  return {
    get bin() {
      if (copy === undefined) throw new Error('the bin is copied in beforeAll');
      return copy.bin;
    },
  };
}

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Exited extends Finished {
  readonly signal: NodeJS.Signals | null;
}

/**
 * A child's exit and everything it wrote, once it is reaped and its pipes are
 * drained ('close'); with `killAfterMs`, a child still running by then is SIGKILLed.
 */
export function collectOutput(child: ChildProcess, killAfterMs?: number): Promise<Exited> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs the built bin as a user would: its own process, NO_COLOR=1, stdout not a TTY. */
export async function runBin(
  bin: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Finished> {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { code, stdout, stderr } = await collectOutput(child);
  return { code, stdout, stderr };
}
