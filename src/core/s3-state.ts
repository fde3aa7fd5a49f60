import { createHash } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import type { S3Location } from './s3-url.js';

/**
 * Where crashdiag keeps its own state for pipelines that have no local
 * staging directory to keep it in (S3): $XDG_STATE_HOME/crashdiag, or
 * ~/.local/state/crashdiag, as the XDG base directory spec says (a relative
 * XDG_STATE_HOME is invalid there and is ignored).
 */
export function localStateDir(env: Readonly<Record<string, string | undefined>>, home: string): string {
  const xdg = env.XDG_STATE_HOME;
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(home, '.local', 'state');
  return join(base, 'crashdiag');
}

// Room for the readable part of a lock name; the hash keeps it unique, so
// cutting it short never merges two prefixes into one lock.
const READABLE_PREFIX_CHARS = 80;

/**
 * The local lock for one run of one S3 staging prefix. Bucket and prefix are
 * in the name, readable for a person and hashed exactly: 'a/b/' and 'a_b/'
 * read alike once made file-safe but are different prefixes, so different
 * locks.
 */
export function s3LockPath(stateDir: string, staging: S3Location, runKey: string): string {
  const exact = createHash('sha256').update(`${staging.bucket}/${staging.prefix}`).digest('hex').slice(0, 16);
  const readable = staging.prefix.replace(/\/$/, '').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, READABLE_PREFIX_CHARS);
  return join(stateDir, 'locks', `s3-${staging.bucket}-${readable || '_'}-${exact}-${runKey}.lock`);
}

/** The default audit log for S3 pipelines: one local file, like the lock. */
export function s3AuditLogPath(stateDir: string): string {
  return join(stateDir, 'audit.jsonl');
}
