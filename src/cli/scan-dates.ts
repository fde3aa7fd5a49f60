import { UsageError } from '../core/errors.js';

const MS_PER_DAY = 86_400_000;

/** Checks an IANA time zone name; an unknown one is a usage error, never a silent UTC. */
export function checkTimeZone(zone: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    throw new UsageError(
      `--tz ${JSON.stringify(zone)} is not a time zone.`,
      'Name one from the tz database, e.g. --tz Europe/Berlin, --tz America/New_York or --tz UTC.',
    );
  }
}

/** The machine's zone: $TZ when set, else what the runtime says. */
export function defaultTimeZone(env: Readonly<Record<string, string | undefined>>): string {
  const fromEnv = env.TZ?.replace(/^:/, '');
  if (fromEnv) {
    try {
      return checkTimeZone(fromEnv);
    } catch {
      // node reads an unknown TZ as UTC; so do we.
      return 'UTC';
    }
  }
  return new Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The calendar date (YYYY-MM-DD) it is at `ms` in `zone`. */
export function dateInZone(ms: number, zone: string): string {
  // en-CA formats dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(ms);
}

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * MS_PER_DAY).toISOString().slice(0, 10);
}

/** --until: a date, `yesterday` (the default: today's run may not be due yet) or `today`. */
export function resolveUntil(flag: string | undefined, today: string): string {
  const value = flag ?? 'yesterday';
  if (value === 'yesterday') return addDays(today, -1);
  if (value === 'today') return today;
  const real = /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`))
    && new Date(`${value}T00:00:00Z`).toISOString().startsWith(value);
  if (!real) {
    throw new UsageError(
      `--until ${JSON.stringify(value)} is not a date.`,
      'Write YYYY-MM-DD, yesterday (the default) or today.',
    );
  }
  return value;
}

/**
 * The dates --daily lists, in `zone`: from the date the window starts on to
 * `until`, never past today there.
 */
export function dailyDates(nowMs: number, sinceMs: number, zone: string, until: string): string[] {
  const today = dateInZone(nowMs, zone);
  const last = until < today ? until : today;
  const dates: string[] = [];
  for (let date = dateInZone(nowMs - sinceMs, zone); date <= last; date = addDays(date, 1)) dates.push(date);
  return dates;
}
