// Every default a user meets: in --help, the man page, parsing and the
// README (test/core/defaults.test.ts holds the README to these). One home, so
// the help text cannot promise one value while the parser uses another.

export const DEFAULT_STAGING = '{date}.{pid}.csv';
export const DEFAULT_MARKER = '{final}.success';
export const DEFAULT_FRESH_WITHIN = '6h';
export const DEFAULT_STALE_AFTER = '15m';
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_CONFIG_NAME = 'crashdiag.config.json';
/** How long --fix and clean wait for another fixer or janitor. */
export const DEFAULT_LOCK_TIMEOUT = '30s';
/** --timeout: each attempt of each S3 request (the SDK retries on top). */
export const DEFAULT_S3_TIMEOUT = '30s';
/** --timeout at most: twice it must still fit a Node timer (2^31-1 ms). */
export const MAX_S3_TIMEOUT = '24h';
/** scan: runs whose output or marker changed within this window. */
export const DEFAULT_SINCE = '7d';
/** clean: orphans untouched this long. */
export const DEFAULT_OLDER_THAN = '24h';
/** history: the last N actions. */
export const DEFAULT_HISTORY_LIMIT = 50;
