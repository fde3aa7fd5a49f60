import type { ChalkInstance } from 'chalk';
import { LISTED_FILES } from '../core/diagnosis.js';
import { SCHEMA_VERSION } from '../core/states.js';

/**
 * The most staging files, and failed attempts, a diagnosis' JSON lists; past
 * that it lists the first ones and says how many there are. A crash loop left
 * alone for weeks has 100,000 of each: 40 MB of JSON that took longer to write
 * than the diagnosis took to make, for a gate that reads the state.
 */
export const JSON_LISTED = LISTED_FILES;

/** What a human view's "... and N more" says --json shows of a list of `count`. */
export function jsonLists(count: number): string {
  return count <= JSON_LISTED ? '--json lists every one' : `--json lists the first ${JSON_LISTED} and the totals`;
}

/** The house table look: bold head and grey rules at a terminal, no rule between rows. */
export function tableOptions(chalk: ChalkInstance) {
  return {
    style: { head: chalk.level > 0 ? ['bold'] : [], border: chalk.level > 0 ? ['grey'] : [] },
    chars: { 'mid': '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  };
}

/** Byte counts for people: 1023 B, 12.3 KiB, 4.0 MiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

// Control characters (C0, DEL, C1: ESC starts a terminal escape sequence),
// format characters (bidi overrides and isolates, zero-width characters),
// lone surrogates and the line and paragraph separators.
const UNSAFE_TEXT = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu;

/**
 * Text read from disk or from the audit log, made safe to print to a
 * terminal: every control, bidi or invisible format character is shown as
 * an escape (`\x1b`, `\u{202e}`), so a file name or a record cannot move the
 * cursor, recolour the screen, or make one name read as another. The one
 * escaping function of every human view.
 */
export function escapeText(text: string): string {
  return text.replace(UNSAFE_TEXT, (char) => {
    const code = char.codePointAt(0) ?? 0;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/** "1 file", "2 files": a count with its noun. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

/** What a --json command failed with: the error's kind, its sentence and a hint. */
export interface JsonError {
  readonly code: string;
  readonly message: string;
  readonly hint: string | null;
}

/**
 * The one object a --json command prints when it fails, so a script parsing
 * stdout never meets an empty stream: the same exit code, and why.
 */
export function renderErrorJson(exitCode: number, error: JsonError): string {
  return `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, exitCode, error }, null, 2)}\n`;
}
