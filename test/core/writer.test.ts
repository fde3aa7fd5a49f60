import { describe, expect, it } from 'vitest';
import type { PidCheck } from '../../src/core/evidence.js';
import { judgeWriter, lastChangeMs, type WriterVerdict } from '../../src/core/writer.js';
import {
  DAY,
  GONE,
  HOUR,
  MINUTE,
  NO_PID_CHECK,
  NOW,
  RULES,
  RUNNING_NO_START,
  runningSince,
  SECOND,
  ZOMBIE,
} from '../support/run-evidence.js';

interface Row {
  readonly situation: string;
  /** How long ago the mtime and the ctime are (negative: ahead); ctime absent means the source has none. */
  readonly mtimeAgo: number;
  readonly ctimeAgo?: number;
  /** Its times say when it was started, not last written (an S3 object made by a multipart upload). */
  readonly lastChangeUnknown?: string;
  readonly pidCheck: PidCheck;
  readonly writer: WriterVerdict;
  readonly by: 'pid' | 'age';
  readonly reason: RegExp;
}

const ROWS: readonly Row[] = [
  // The attack of issue 9, item 1: cp -p, curl -R, rsync -t, tar x, wget -N.
  {
    situation: 'a live writer whose mtime was set a day back, changed just now, is alive',
    mtimeAgo: DAY,
    ctimeAgo: 0,
    pidCheck: runningSince(NOW - MINUTE),
    writer: 'alive',
    by: 'pid',
    reason: /PID 91247 is running and started 1m before the file's last change \(mtime 1d ago, ctime 0s ago\)/,
  },
  {
    situation: 'a live PID that started after the last change, but the file changed within --stale-after, is alive',
    mtimeAgo: DAY,
    ctimeAgo: 5 * MINUTE,
    pidCheck: runningSince(NOW - MINUTE),
    writer: 'alive',
    by: 'pid',
    reason: /started 4m after the file's last change \(mtime 1d ago, ctime 5m ago\), but the file changed within 15m, so it may still be its writer/,
  },
  {
    situation: 'a reused PID: started after the last change, and the file quiet for longer than --stale-after',
    mtimeAgo: DAY,
    ctimeAgo: 20 * MINUTE,
    pidCheck: runningSince(NOW - MINUTE),
    writer: 'dead',
    by: 'pid',
    reason: /started 19m after the file's last change \(mtime 1d ago, ctime 20m ago\), and the file has been quiet for 20m, over 15m: a reused PID/,
  },
  {
    situation: 'a reused PID, mtime and ctime agreeing',
    mtimeAgo: HOUR,
    ctimeAgo: HOUR,
    pidCheck: runningSince(NOW - MINUTE),
    writer: 'dead',
    by: 'pid',
    reason: /started 59m after the file's last change \(1h ago\), and the file has been quiet for 1h, over 15m: a reused PID/,
  },
  {
    situation: 'quiet exactly --stale-after is not yet provably quiet',
    mtimeAgo: 15 * MINUTE,
    ctimeAgo: 15 * MINUTE,
    pidCheck: runningSince(NOW - MINUTE),
    writer: 'alive',
    by: 'pid',
    reason: /may still be its writer/,
  },
  {
    situation: 'started within the clock slack after the last change is still the writer',
    mtimeAgo: HOUR,
    ctimeAgo: HOUR,
    pidCheck: runningSince(NOW - HOUR + SECOND),
    writer: 'alive',
    by: 'pid',
    reason: /started within 1s of the file's last change/,
  },
  {
    situation: 'just beyond the slack, quiet: a reused PID',
    mtimeAgo: HOUR,
    ctimeAgo: HOUR,
    pidCheck: runningSince(NOW - HOUR + SECOND + 1),
    writer: 'dead',
    by: 'pid',
    reason: /started 1s after .* a reused PID/,
  },
  {
    situation: 'a ctime later than the mtime saves a writer the mtime alone would call reused',
    mtimeAgo: 3 * HOUR,
    ctimeAgo: 30 * MINUTE,
    pidCheck: runningSince(NOW - HOUR),
    writer: 'alive',
    by: 'pid',
    reason: /started 30m before the file's last change \(mtime 3h ago, ctime 30m ago\)/,
  },
  {
    situation: 'without a ctime the mtime is the last change',
    mtimeAgo: HOUR,
    pidCheck: runningSince(NOW - MINUTE),
    writer: 'dead',
    by: 'pid',
    reason: /a reused PID/,
  },
  {
    situation: 'a long-running writer whose file is days old is alive (PID beats age)',
    mtimeAgo: 3 * DAY,
    ctimeAgo: 3 * DAY,
    pidCheck: runningSince(NOW - 4 * DAY),
    writer: 'alive',
    by: 'pid',
    reason: /started 1d before/,
  },
  {
    situation: 'a PID not running is dead whatever the times',
    mtimeAgo: DAY,
    ctimeAgo: 0,
    pidCheck: GONE,
    writer: 'dead',
    by: 'pid',
    reason: /PID 91247 is not running/,
  },
  {
    situation: 'a zombie is dead',
    mtimeAgo: 0,
    ctimeAgo: 0,
    pidCheck: ZOMBIE,
    writer: 'dead',
    by: 'pid',
    reason: /zombie/,
  },
  // Judged by age: the last change, not the mtime.
  {
    situation: 'by age: an old mtime with a young ctime is alive',
    mtimeAgo: DAY,
    ctimeAgo: MINUTE,
    pidCheck: NO_PID_CHECK,
    writer: 'alive',
    by: 'age',
    reason: /--no-pid-check.*modified 1m ago \(mtime 1d ago, ctime 1m ago: the later counts\), within 15m/,
  },
  {
    situation: 'by age: quiet for longer than --stale-after is dead',
    mtimeAgo: DAY,
    ctimeAgo: 20 * MINUTE,
    pidCheck: NO_PID_CHECK,
    writer: 'dead',
    by: 'age',
    reason: /untouched for 20m \(mtime 1d ago, ctime 20m ago: the later counts\), over 15m/,
  },
  {
    situation: 'by age, start time unreadable: the last change decides',
    mtimeAgo: DAY,
    ctimeAgo: 2 * MINUTE,
    pidCheck: RUNNING_NO_START,
    writer: 'alive',
    by: 'age',
    reason: /start time cannot be read; modified 2m ago/,
  },
  {
    situation: 'by age: a last change in the future beyond --stale-after cannot be judged',
    mtimeAgo: DAY,
    ctimeAgo: -DAY,
    pidCheck: NO_PID_CHECK,
    writer: 'unknown',
    by: 'age',
    reason: /1d in the future/,
  },
  // An S3 object a multipart upload made is dated from the upload's start: it
  // may have been completed a second ago, and its writer be copying it now.
  {
    situation: 'dated from its upload\'s start an hour ago, no PID to ask: cannot be judged, never dead',
    mtimeAgo: HOUR,
    ctimeAgo: HOUR,
    lastChangeUnknown: 'it was uploaded in parts',
    pidCheck: NO_PID_CHECK,
    writer: 'unknown',
    by: 'age',
    reason: /started 1h ago, but it was uploaded in parts, so its age cannot rule out a live writer/,
  },
  {
    situation: 'dated from its upload\'s start a minute ago, no PID to ask: alive, as any young file',
    mtimeAgo: MINUTE,
    ctimeAgo: MINUTE,
    lastChangeUnknown: 'it was uploaded in parts',
    pidCheck: NO_PID_CHECK,
    writer: 'alive',
    by: 'age',
    reason: /modified 1m ago, within 15m/,
  },
  {
    situation: 'dated from its upload\'s start, a live PID that started after it: may be its writer, alive',
    mtimeAgo: DAY,
    ctimeAgo: DAY,
    lastChangeUnknown: 'it was uploaded in parts',
    pidCheck: runningSince(NOW - HOUR),
    writer: 'alive',
    by: 'pid',
    reason: /PID 91247 is running, and it was uploaded in parts/,
  },
  {
    situation: 'dated from its upload\'s start, its PID gone: dead, as any file',
    mtimeAgo: SECOND,
    ctimeAgo: SECOND,
    lastChangeUnknown: 'it was uploaded in parts',
    pidCheck: GONE,
    writer: 'dead',
    by: 'pid',
    reason: /PID 91247 is not running/,
  },
];

describe('judgeWriter', () => {
  it.each(ROWS)('$situation', (row) => {
    const judgement = judgeWriter(
      {
        pid: 91247,
        mtimeMs: NOW - row.mtimeAgo,
        ...(row.ctimeAgo === undefined ? {} : { ctimeMs: NOW - row.ctimeAgo }),
        ...(row.lastChangeUnknown === undefined ? {} : { lastChangeUnknown: row.lastChangeUnknown }),
        pidCheck: row.pidCheck,
      },
      RULES,
      NOW,
    );
    expect(judgement.writer).toBe(row.writer);
    expect(judgement.by).toBe(row.by);
    expect(judgement.reason).toMatch(row.reason);
  });

  it('takes the later of mtime and ctime as the last change', () => {
    expect(lastChangeMs({ mtimeMs: 5, ctimeMs: 9 })).toBe(9);
    expect(lastChangeMs({ mtimeMs: 9, ctimeMs: 5 })).toBe(9);
    expect(lastChangeMs({ mtimeMs: 5 })).toBe(5);
    expect(lastChangeMs({})).toBeUndefined();
  });
});
