/**
 * A moment as a person on call reads it: local wall-clock time with its
 * offset from UTC, so two people in two zones can compare lines
 * ("2026-04-24 08:08:00 +02:00"). `timeZone` is an IANA name; undefined is
 * the machine's own zone.
 */
export function formatLocalTime(ms: number, timeZone: string | undefined): string {
  if (!Number.isFinite(ms)) return '-';
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    });
  } catch {
    // An unknown TZ: node itself falls back to UTC, and so do we.
    return formatLocalTime(ms, 'UTC');
  }
  const parts = Object.fromEntries(format.formatToParts(ms).map((p) => [p.type, p.value]));
  const offset = /^GMT([+-]\d{2}:\d{2})$/.exec(parts.timeZoneName ?? '')?.[1] ?? '+00:00';
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${offset}`;
}
