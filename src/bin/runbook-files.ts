import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { RunbookFiles } from '../cli/io.js';

/**
 * The installed file of a runbook (`runbooks/D.md` → an absolute path). The
 * bundle lives in dist/, one level below the package root; this source file
 * in src/bin/, two levels below. The nearer root is tried first, so nothing
 * above the package is ever read.
 */
function installedPath(relative: string): string {
  const candidates = ['../', '../../'].map((up) => fileURLToPath(new URL(up + relative, import.meta.url)));
  return candidates.find((path) => existsSync(path)) ?? (candidates[0] as string);
}

/** The runbooks shipped with the package, beside the bin. */
export function installedRunbooks(): RunbookFiles {
  return {
    pathOf: installedPath,
    read: (relative) => readFile(installedPath(relative), 'utf8'),
  };
}
