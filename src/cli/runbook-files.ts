import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The installed file of a runbook (`runbooks/D.md` → an absolute path). The
 * bundle lives in dist/, one level below the package root; this source file
 * in src/cli/, two levels below. The nearer root is tried first, so nothing
 * above the package is ever read.
 */
export function installedPath(relative: string): string {
  const candidates = ['../', '../../'].map((up) => fileURLToPath(new URL(up + relative, import.meta.url)));
  return candidates.find((path) => existsSync(path)) ?? (candidates[0] as string);
}
