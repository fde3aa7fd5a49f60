import { UsageError } from './errors.js';

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses `90s`, `15m`, `6h`, `2d` (also `500ms`, `1h30m`) into milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const trimmed = text.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(trimmed); match !== null; match = part.exec(trimmed)) {
    const [, amount, unit] = match;
    total += Number(amount) * (UNIT_MS[unit ?? ''] ?? Number.NaN);
    consumed = part.lastIndex;
  }
  if (trimmed.length === 0 || consumed !== trimmed.length || !Number.isFinite(total)) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)} is not a duration.`,
      'Write a number and a unit: 90s, 15m, 6h or 2d.',
    );
  }
  return Math.round(total);
}

/** A short human form of an age: `42s`, `15m`, `6h 5m`, `3d 2h`. */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  let rest = Math.round(Math.abs(ms) / 1000);
  if (rest < 60) return `${sign}${rest}s`;
  const days = Math.floor(rest / 86_400);
  rest -= days * 86_400;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const seconds = rest - minutes * 60;
  if (days > 0) return `${sign}${days}d${hours > 0 ? ` ${hours}h` : ''}`;
  if (hours > 0) return `${sign}${hours}h${minutes > 0 ? ` ${minutes}m` : ''}`;
  return `${sign}${minutes}m${seconds > 0 ? ` ${seconds}s` : ''}`;
}

// Run keys are dates written YYYY-MM-DD: an instant outside these years has no
// such name (0000-01-01 minus a day is "-000001-12-31"), and none is a real
// batch run's clock.
const EARLIEST_MS = Date.UTC(1970, 0, 1);
const LATEST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Refuses an instant outside 1970 to 9999: `what` names the flag (and how the instant came about). */
export function checkDateRange(ms: number, what: string): number {
  if (!(ms >= EARLIEST_MS && ms <= LATEST_MS)) {
    throw new UsageError(
      `${what} falls outside the years 1970 to 9999.`,
      'Dates before 1970 or after 9999 have no run keys; give a time, or a window, within them.',
    );
  }
  return ms;
}
