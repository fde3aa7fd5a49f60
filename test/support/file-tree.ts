import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

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
      } else if (!stats.isFile()) {
        // A FIFO, socket or device: reading it could block, or never end.
        lines.push(`${path} (special, mode ${stats.mode.toString(8)}, ino ${stats.ino})`);
      } else lines.push(`${path} ${stats.size} ${stats.mtimeMs} ${await fsp.readFile(path, 'utf8')}`);
    }
  };
  await walk(dir);
  return lines;
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
    for (const name of (await fsp.readdir(at)).sort()) {
      if (skip.includes(name)) continue;
      const path = join(at, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const stats = await fsp.lstat(path);
      const kind = stats.isSymbolicLink()
        ? 'symlink'
        : stats.isDirectory()
          ? 'directory'
          : stats.isFile()
            ? 'file'
            : 'other';
      const content
        = kind === 'file' ? await fsp.readFile(path, 'utf8') : kind === 'symlink' ? await fsp.readlink(path) : '';
      // A directory's mtime moves whenever crashdiag creates its own state directory; its entries are what count.
      result[rel] = { content, ino: stats.ino, mtimeMs: kind === 'directory' ? 0 : stats.mtimeMs, kind };
      if (kind === 'directory') await walk(path, rel);
    }
  };
  await walk(dir, '');
  return result;
}
