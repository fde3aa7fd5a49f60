import { constants } from 'node:fs';
import { errnoCode } from './errors.js';
import type { FileSystem } from './fs.js';
import type { InputFact } from './recovery.js';

/** An input path for a run key: `{date}` is the run key. */
export function inputPathFor(template: string, runKey: string): string {
  return template.replaceAll('{date}', runKey);
}

async function checkInput(fs: FileSystem, template: string, runKey: string): Promise<InputFact> {
  const path = inputPathFor(template, runKey);
  const fact = (status: InputFact['status'], detail: string): InputFact => ({ template, path, status, detail });
  let stats;
  try {
    // stat, not lstat: an input is only read, never deleted, and a symlink to
    // the day's delivery is an ordinary way to publish one.
    stats = await fs.stat(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return fact('missing', 'does not exist');
    if (code === 'EACCES' || code === 'EPERM') return fact('unreadable', `cannot be read (${code})`);
    throw error;
  }
  if (!stats.isFile()) return fact('not-a-file', stats.isDirectory() ? 'is a directory, not a file' : 'is not a regular file');
  if (stats.size === 0) return fact('empty', 'is empty (0 bytes)');
  try {
    const handle = await fs.open(path, constants.O_RDONLY);
    await handle.close();
  } catch (error) {
    const code = errnoCode(error);
    if (!code) throw error;
    return fact('unreadable', `cannot be read (${code})`);
  }
  return fact('ok', `${stats.size} bytes`);
}

/**
 * Checks each input a re-run would read: it must exist, be a regular file
 * crashdiag can open, and hold at least one byte. A re-run that would read a
 * missing or empty input fails again, or publishes nothing as if it were
 * something. Readability is crashdiag's own: run it as the job's user.
 */
export async function checkInputs(
  fs: FileSystem,
  templates: readonly string[],
  runKey: string,
): Promise<InputFact[]> {
  return Promise.all(templates.map((template) => checkInput(fs, template, runKey)));
}
