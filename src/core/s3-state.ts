import { isAbsolute, join } from 'node:path';
import { UsageError } from './errors.js';
import type { S3Location } from './s3-url.js';

/**
 * Where crashdiag keeps its own state for pipelines that have no local
 * staging directory to keep it in (S3): $XDG_STATE_HOME/crashdiag, or
 * ~/.local/state/crashdiag, as the XDG base directory spec says (a relative
 * XDG_STATE_HOME is invalid there and is ignored). A HOME that is empty or
 * relative is refused, never used: the lock would land wherever the command
 * was started, and two fixers started in two directories would not see each
 * other's lock.
 */
export function localStateDir(env: Readonly<Record<string, string | undefined>>, home: string | undefined): string {
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'crashdiag');
  if (home !== undefined && isAbsolute(home)) return join(home, '.local', 'state', 'crashdiag');
  throw new UsageError(
    `Neither XDG_STATE_HOME nor HOME is an absolute path (${JSON.stringify(xdg ?? null)}, ${JSON.stringify(home ?? null)}), so there is no one local place for the lock and audit log of an S3 staging prefix; nothing was changed.`,
    'Set XDG_STATE_HOME (or HOME) to an absolute path, the same for everyone who fixes this pipeline on this host.',
  );
}

// Room for the readable part of a lock name; the hash keeps it unique, so
// cutting it short never merges two prefixes into one lock.
const READABLE_PREFIX_CHARS = 80;
// A file name holds 255 bytes, and the lock's own files beside it
// (NAME.stale.PID.TOKEN, NAME.takeover.ID) add to its name: keep room for them.
const MAX_LOCK_NAME_BYTES = 200;
// A run key longer than this (up to 128 characters, each up to 4 bytes) is cut and hashed in the name.
const MAX_KEY_BYTES = 96;

function hashOf(text: string): string {
  // node:crypto on demand: it is in the main bundle, and a local run never names an S3 lock.
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** `text` cut to at most `bytes` bytes of UTF-8, never inside a character. */
function cutToBytes(text: string, bytes: number): string {
  let cut = '';
  for (const char of text) {
    if (Buffer.byteLength(cut + char) > bytes) break;
    cut += char;
  }
  return cut;
}

/**
 * The local lock for one run of one S3 staging prefix. Bucket and prefix are
 * in the name, readable for a person and hashed exactly: 'a/b/' and 'a_b/'
 * read alike once made file-safe but are different prefixes, so different
 * locks. The name fits a file name whatever the bucket, prefix and run key.
 */
export function s3LockPath(stateDir: string, staging: S3Location, runKey: string): string {
  const exact = hashOf(`${staging.bucket}/${staging.prefix}`);
  const key = Buffer.byteLength(runKey) <= MAX_KEY_BYTES
    ? runKey
    : `${cutToBytes(runKey, MAX_KEY_BYTES - 17)}-${hashOf(runKey)}`;
  const fixed = Buffer.byteLength(`s3-${staging.bucket}--${exact}-${key}.lock`);
  const room = Math.min(READABLE_PREFIX_CHARS, MAX_LOCK_NAME_BYTES - fixed);
  const readable = staging.prefix.replace(/\/$/, '').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, room);
  return join(stateDir, 'locks', `s3-${staging.bucket}-${readable || '_'}-${exact}-${key}.lock`);
}

/** The default audit log for S3 pipelines: one local file, like the lock. */
export function s3AuditLogPath(stateDir: string): string {
  return join(stateDir, 'audit.jsonl');
}
