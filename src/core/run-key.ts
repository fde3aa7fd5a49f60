import { UsageError } from './errors.js';

const MAX_RUN_KEY_LENGTH = 128;

// A run key becomes part of file names and of a re-run command line, so
// anything that could leave a directory, act as a glob, or mean something to a
// shell is refused outright rather than escaped.
const FORBIDDEN: ReadonlyArray<[RegExp, string]> = [
  [/[/\\]/, 'a path separator'],
  [/\.\./, '".."'],
  [/[*?[\]{}]/, 'a glob character'],
  // eslint-disable-next-line no-control-regex -- control characters are exactly what we refuse
  [/[\s\u0000-\u001f\u007f-\u009f\u2028\u2029]/u, 'whitespace or a control character'],
  // Cf: bidi overrides and isolates (U+202E, U+2066-2069), zero-width
  // characters (U+200B, U+FEFF), the soft hyphen... They make a key look like
  // another one in a terminal, a log or a file name. Cs: a lone surrogate,
  // which no file name can hold.
  [/[\p{Cf}\p{Cs}]/u, 'an invisible or bidi format character'],
  [/[;|&$<>'"`!#~%^()=,]/, 'a shell metacharacter'],
];

export function validateRunKey(key: string): string {
  if (key.length === 0) {
    throw new UsageError('The run key is empty.', 'Pass the run key as the first argument, e.g. 2026-04-24.');
  }
  if (key.length > MAX_RUN_KEY_LENGTH) {
    throw new UsageError(
      `The run key is ${key.length} characters long; at most ${MAX_RUN_KEY_LENGTH} are allowed.`,
    );
  }
  if (key === '.' || key.startsWith('-')) {
    throw new UsageError(`The run key ${JSON.stringify(key)} is not a usable name.`);
  }
  for (const [pattern, what] of FORBIDDEN) {
    if (pattern.test(key)) {
      throw new UsageError(
        `The run key ${JSON.stringify(key)} contains ${what}.`,
        'A run key may use letters, digits and . _ + : @ - (usually the run date, e.g. 2026-04-24).',
      );
    }
  }
  return key;
}

/** The same rules, as a question: for names found on disk, where a bad key just means "not ours". */
export function isValidRunKey(key: string): boolean {
  try {
    validateRunKey(key);
    return true;
  } catch {
    return false;
  }
}

/**
 * isValidRunKey with a memory, for names found on disk: a million staging
 * entries carry a few thousand distinct keys.
 */
export function memoizedRunKeyCheck(): (key: string) => boolean {
  const known = new Map<string, boolean>();
  return (key) => {
    let valid = known.get(key);
    if (valid === undefined) {
      valid = isValidRunKey(key);
      known.set(key, valid);
    }
    return valid;
  };
}
