import { constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { errnoCode, UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import { STATE_DIR } from './lock.js';

export const AUDIT_FILE = 'audit.jsonl';

/** One action --fix or clean took, as one JSON line: on call, memory is unreliable; the log is not. */
export interface AuditRecord {
  readonly time: string;
  readonly user: string;
  readonly host: string;
  /** crashdiag's own PID. */
  readonly pid: number;
  readonly pipeline: string | null;
  readonly run: string;
  readonly op: 'delete' | 'quarantine' | 'rerun' | 'refuse' | 'skip';
  readonly path?: string;
  readonly bytes?: number;
  readonly writerPid?: number;
  readonly to?: string;
  readonly command?: readonly string[];
  readonly exitStatus?: number | null;
  readonly signal?: string | null;
  readonly stateBefore?: string;
  readonly reason?: string;
}

// O_NOFOLLOW: a symlink planted where the log goes (it lives in the shared
// staging directory by default) must not turn our appends into writes to its target.
// O_NONBLOCK: a FIFO planted there must not hang the fix in open().
const APPEND_NO_FOLLOW
  = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Opens the log for appending, and keeps it only when it is a regular file
 * with one link: O_NOFOLLOW stops a symlink, not a hard link, and a hard
 * link planted as the log (it lives in the shared staging directory) to a
 * published output would turn every record into a line appended to that output.
 */
async function openAuditLog(fs: FileSystem, path: string): Promise<Awaited<ReturnType<FileSystem['open']>>> {
  const handle = await fs.open(path, APPEND_NO_FOLLOW, 0o644);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new UsageError(
        `The audit log ${path} is ${stats.isDirectory() ? 'a directory' : 'a special file'}, not a regular file; crashdiag writes only to a file of its own. Nothing was changed.`,
        'Move it away, or pass --audit-log FILE.',
      );
    }
    if (stats.nlink !== 1) {
      throw new UsageError(
        `The audit log ${path} has ${stats.nlink} links: another name shares its contents, and crashdiag appends only to a file of its own. Nothing was changed.`,
        'Move it away (it may be a hard link to a published output), or pass --audit-log FILE.',
      );
    }
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

export function defaultAuditLog(stagingDir: string): string {
  return join(stagingDir, STATE_DIR, AUDIT_FILE);
}

/** Where a pipeline's actions go: --audit-log, else the config's auditLog, else its staging directory. */
export function auditLogFor(
  flag: string | undefined,
  settings: { readonly auditLog?: string | undefined; readonly stagingDir: string },
  cwd: string,
): string {
  return flag !== undefined ? resolve(cwd, flag) : (settings.auditLog ?? defaultAuditLog(settings.stagingDir));
}

export async function appendAudit(
  fs: FileSystem,
  path: string,
  records: readonly AuditRecord[],
): Promise<void> {
  if (records.length === 0) return;
  await fs.mkdir(dirname(path), { recursive: true });
  // One write per batch, with O_APPEND: concurrent fixers' lines never interleave mid-line.
  const handle = await openAuditLog(fs, path);
  try {
    await handle.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Opens the log for appending before anything is done: an unwritable log
 * must stop a fix before its first action, not leave that action unrecorded
 * and the rest of the fix undone.
 */
export async function checkAuditLog(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.mkdir(dirname(path), { recursive: true });
    const handle = await openAuditLog(fs, path);
    await handle.close();
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = errnoCode(error);
    if (!code) throw error;
    if (code === 'ENXIO') {
      throw new UsageError(
        `The audit log ${path} is a special file (a FIFO with no reader), not a regular file; crashdiag writes only to a file of its own. Nothing was changed.`,
        'Move it away, or pass --audit-log FILE.',
      );
    }
    if (code === 'ELOOP') {
      throw new UsageError(
        `The audit log ${path} is a symlink; crashdiag never writes through one. Nothing was changed.`,
        'Pass the real path with --audit-log FILE.',
      );
    }
    throw new UsageError(
      `The audit log ${path} cannot be written (${code}); nothing was changed.`,
      'Fix its directory or permissions, or pass --audit-log FILE.',
    );
  }
}

export async function readAudit(fs: FileSystem, path: string): Promise<AuditRecord[]> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return [];
    if (code === 'EACCES' || code === 'EPERM')
      throw new UsageError(`The audit log ${path} cannot be read (permission denied).`);
    throw error;
  }
  const records: AuditRecord[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      records.push(JSON.parse(line) as AuditRecord);
    } catch {
      // A line cut short by a crash mid-append; the others still count.
      records.push({
        time: '',
        user: '',
        host: '',
        pid: 0,
        pipeline: null,
        run: '',
        op: 'skip',
        reason: `line ${index + 1} of ${path} is not valid JSON`,
      });
    }
  }
  return records;
}
