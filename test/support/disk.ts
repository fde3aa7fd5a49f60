import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

/** PIDs of children that ran, exited and were reaped: really dead, as a crashed writer's are. */
export function deadPids(count: number): number[] {
  const pids: number[] = [];
  while (pids.length < count) {
    const { pid } = spawnSync('/bin/sh', ['-c', 'exit 0']);
    if (pid === undefined) throw new Error('could not spawn /bin/sh');
    try {
      process.kill(pid, 0);
    } catch {
      pids.push(pid);
    }
  }
  return pids;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes a file whose last change was `ageMs` before `nowMs`. */
export async function put(path: string, content: string, nowMs: number, ageMs: number): Promise<void> {
  await fsp.writeFile(path, content);
  await age(path, nowMs, ageMs);
}

/** Sets a path's times to `ageMs` before `nowMs`. */
export async function age(path: string, nowMs: number, ageMs: number): Promise<void> {
  const t = (nowMs - ageMs) / 1000;
  await fsp.utimes(path, t, t);
}

/** Every entry under `dir`: kind, size, mtime, content or link target. What "untouched" means. */
export async function snapshot(dir: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (at: string) => {
    for (const name of (await fsp.readdir(at)).sort()) {
      const path = join(at, name);
      const stats = await fsp.lstat(path);
      if (stats.isSymbolicLink()) lines.push(`${path} -> ${await fsp.readlink(path)}`);
      else if (stats.isDirectory()) {
        lines.push(`${path}/`);
        await walk(path);
      } else lines.push(`${path} ${stats.size} ${stats.mtimeMs} ${await fsp.readFile(path, 'utf8')}`);
    }
  };
  await walk(dir);
  return lines;
}

/** The UTC date `days` after the day of `ms` (negative: before), as a run key. */
export function dateKey(ms: number, days: number): string {
  return new Date(ms + days * 86_400_000).toISOString().slice(0, 10);
}
