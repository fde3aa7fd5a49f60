import { UsageError } from './errors.js';

/** An S3 "directory": every key that starts with `prefix` in `bucket`. */
export interface S3Location {
  readonly bucket: string;
  /** '' (the whole bucket) or a key prefix ending in '/'. */
  readonly prefix: string;
}

const SCHEME = 's3://';

/** Whether a configured directory names an S3 prefix rather than a local path. */
export function isS3Url(value: string): boolean {
  return value.slice(0, SCHEME.length).toLowerCase() === SCHEME;
}

/** The s3:// URL of a key, as paths are shown in output and JSON. */
export function s3UrlOf(bucket: string, key: string): string {
  return `${SCHEME}${bucket}/${key}`;
}

// General-purpose bucket naming rules (docs: "Bucket naming rules"). Legacy
// us-east-1 buckets may hold capitals and underscores; they are refused here
// rather than guessed at, and the message says which rule failed.
const BUCKET_SHAPE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IP_ADDRESS = /^\d{1,3}(\.\d{1,3}){3}$/;
const RESERVED_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'];
const RESERVED_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'];

/** Why a bucket name breaks the naming rules, or undefined when it keeps them. */
export function bucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < 3 || bucket.length > 63) return 'must be 3 to 63 characters long';
  if (!BUCKET_SHAPE.test(bucket)) {
    return 'may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit';
  }
  if (bucket.includes('..')) return 'must not hold two dots in a row';
  if (IP_ADDRESS.test(bucket)) return 'must not look like an IP address';
  const prefix = RESERVED_PREFIXES.find((p) => bucket.startsWith(p));
  if (prefix) return `must not start with the reserved '${prefix}'`;
  const suffix = RESERVED_SUFFIXES.find((s) => bucket.endsWith(s));
  if (suffix) return `must not end with the reserved '${suffix}'`;
  return undefined;
}

// S3 allows keys of up to 1,024 bytes; the prefix alone may not use them all
// up, since names are appended to it.
const MAX_KEY_BYTES = 1024;

/** Why a key prefix cannot name a directory, or undefined when it can. */
function prefixProblem(prefix: string): string | undefined {
  if (Buffer.byteLength(prefix) >= MAX_KEY_BYTES) return `is ${Buffer.byteLength(prefix)} bytes; a key holds at most ${MAX_KEY_BYTES}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(prefix)) return 'holds a control character';
  const segments = prefix.split('/').slice(0, -1);
  // An empty, '.' or '..' segment is legal in a key but is almost always a
  // typo, and HTTP layers that normalise paths would send a different key.
  if (segments.some((s) => s === '')) return 'holds an empty segment (//)';
  if (segments.some((s) => s === '.' || s === '..')) return 'holds a \'.\' or \'..\' segment';
  return undefined;
}

/**
 * Parses `s3://BUCKET/PREFIX/` into a location. A prefix without its trailing
 * '/' is taken to mean the directory (`s3://b/out` is `s3://b/out/`), since a
 * bare prefix would also match `out-old/` and `outbox/`.
 */
export function parseS3Url(url: string, role = 'directory'): S3Location {
  if (!isS3Url(url)) throw new UsageError(`The ${role} ${url} is not an s3:// URL.`);
  const rest = url.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const rawPrefix = slash === -1 ? '' : rest.slice(slash + 1);
  const hint = 'Write it as s3://BUCKET/PREFIX/, e.g. s3://refunds-data/out/.';
  if (bucket === '') throw new UsageError(`The ${role} ${url} names no bucket.`, hint);
  const bucketProblem = bucketNameProblem(bucket);
  if (bucketProblem) {
    throw new UsageError(`The bucket name '${bucket}' in the ${role} ${url} ${bucketProblem}.`, hint);
  }
  const prefix = rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`;
  const problem = prefixProblem(prefix);
  if (problem) throw new UsageError(`The key prefix '${prefix}' in the ${role} ${url} ${problem}.`, hint);
  return { bucket, prefix };
}

/**
 * The one spelling of an S3 directory in settings: `s3://BUCKET/PREFIX`, no
 * trailing '/', as a local directory is spelled without one. Two spellings
 * of one prefix (`s3://b/out` and `s3://b/out/`) become one string, so for
 * S3 "the same directory" is string equality: same bucket, same prefix.
 */
export function normalS3Dir(url: string, role?: string): string {
  const { bucket, prefix } = parseS3Url(url, role);
  return s3UrlOf(bucket, prefix).replace(/\/$/, '');
}
