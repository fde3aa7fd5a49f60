import { promises as fsp } from 'node:fs';

/** Whether anything (a symlink included, never followed) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
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

/** The UTC date `days` after the day of `ms` (negative: before), as a run key. */
export function dateKey(ms: number, days: number): string {
  return new Date(ms + days * 86_400_000).toISOString().slice(0, 10);
}

/** Waits (polling the file, not a fixed sleep) until its last change is at least `ms` old. */
export async function untilQuietFor(path: string, ms: number): Promise<void> {
  for (;;) {
    const stats = await fsp.stat(path);
    const quietMs = Date.now() - Math.max(stats.mtimeMs, stats.ctimeMs);
    if (quietMs >= ms) return;
    await new Promise((resolve) => setTimeout(resolve, ms - quietMs + 10));
  }
}
