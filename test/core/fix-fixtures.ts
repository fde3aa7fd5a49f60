// Real directories and real processes for the --fix tests: every deletion
// test runs against the kernel, not a fake, because symlinks, inodes and PID
// liveness are exactly what the guards are about.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PipelineSettings } from '../../src/core/settings.js';
import {
  compileFinalTemplate,
  compileMarkerTemplate,
  compileStagingTemplate,
} from '../../src/core/template.js';

export const KEY = '2026-04-24';
export const FINAL_TEMPLATE = 'report_{date}.csv';
export const HOUR_MS = 3_600_000;

export interface Layout {
  readonly root: string;
  readonly outDir: string;
  readonly stagingDir: string;
}

/** A fresh temporary directory, resolved: the guards compare realpaths. */
export async function makeRoot(): Promise<string> {
  return fs.realpath(await fs.mkdtemp(join(tmpdir(), 'crashdiag-fix-')));
}

export async function makeLayout(root: string): Promise<Layout> {
  const layout = { root, outDir: join(root, 'out'), stagingDir: join(root, '_staging') };
  await fs.mkdir(layout.outDir, { recursive: true });
  await fs.mkdir(layout.stagingDir, { recursive: true });
  return layout;
}

export function removeRoot(root: string | undefined): Promise<void> {
  return root ? fs.rm(root, { recursive: true, force: true, maxRetries: 3 }) : Promise.resolve();
}

export function settingsFor(layout: Layout, overrides: Partial<PipelineSettings> = {}): PipelineSettings {
  return {
    pipeline: undefined,
    outDir: layout.outDir,
    stagingDir: layout.stagingDir,
    final: compileFinalTemplate(FINAL_TEMPLATE),
    staging: compileStagingTemplate('{date}.{pid}.csv'),
    marker: compileMarkerTemplate('{final}.success'),
    freshWithinMs: 6 * HOUR_MS,
    staleAfterMs: 15 * 60_000,
    pidCheck: true,
    rerun: undefined,
    ...overrides,
  };
}

export function finalPathFor(layout: Layout, key = KEY): string {
  return join(layout.outDir, `report_${key}.csv`);
}

export function markerPathFor(layout: Layout, key = KEY): string {
  return `${finalPathFor(layout, key)}.success`;
}

export function stagingPathFor(layout: Layout, pid: number, key = KEY): string {
  return join(layout.stagingDir, `${key}.${pid}.csv`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** PIDs of processes that ran, exited and were reaped: a crashed writer's PID. */
export function deadPids(count: number): number[] {
  const pids = new Set<number>();
  while (pids.size < count) {
    const { pid } = spawnSync('true');
    if (pid && !isRunning(pid)) pids.add(pid);
  }
  return [...pids];
}

export function deadPid(): number {
  return deadPids(1)[0] as number;
}

/**
 * Writes a file and backdates it: an orphan untouched for a while. Even if its
 * PID were reused, a process started after the last write cannot be its writer.
 */
export async function writeAged(path: string, content: string, ageMs = HOUR_MS): Promise<void> {
  await fs.writeFile(path, content);
  const t = new Date(Date.now() - ageMs);
  await fs.utimes(path, t, t);
}

/** The published output and its marker for a run key. */
export async function publish(layout: Layout, key = KEY, content = `published ${key}\n`): Promise<void> {
  await fs.writeFile(finalPathFor(layout, key), content);
  await fs.writeFile(markerPathFor(layout, key), '');
}

export async function exists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

export interface FileIdentity {
  readonly content: string;
  readonly ino: number;
  readonly mtimeMs: number;
  readonly kind: 'file' | 'directory' | 'symlink' | 'other';
}

/**
 * Every entry under a directory (recursively, never following symlinks) with
 * its bytes, inode and mtime: "nothing changed" means this is deep-equal
 * before and after. Entries under `skip` names (crashdiag's own state dir) are left out.
 */
export async function treeOf(
  dir: string,
  skip: readonly string[] = ['.crashdiag'],
): Promise<Record<string, FileIdentity>> {
  const result: Record<string, FileIdentity> = {};
  const walk = async (at: string, prefix: string): Promise<void> => {
    for (const name of (await fs.readdir(at)).sort()) {
      if (skip.includes(name)) continue;
      const path = join(at, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const stats = await fs.lstat(path);
      const kind = stats.isSymbolicLink()
        ? 'symlink'
        : stats.isDirectory()
          ? 'directory'
          : stats.isFile()
            ? 'file'
            : 'other';
      const content
        = kind === 'file' ? await fs.readFile(path, 'utf8') : kind === 'symlink' ? await fs.readlink(path) : '';
      // A directory's mtime moves whenever crashdiag creates its own state directory; its entries are what count.
      result[rel] = { content, ino: stats.ino, mtimeMs: kind === 'directory' ? 0 : stats.mtimeMs, kind };
      if (kind === 'directory') await walk(path, rel);
    }
  };
  await walk(dir, '');
  return result;
}

export interface LiveProcess {
  readonly pid: number;
  stop(): Promise<void>;
}

/** A process that stays alive until stopped: a writer still at work. */
export async function startLiveProcess(): Promise<LiveProcess> {
  const child: ChildProcess = spawn('sleep', ['120'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the live process has no PID');
  return {
    pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
