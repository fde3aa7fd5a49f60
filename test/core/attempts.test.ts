// Counting a run key's failed attempts, from the disk and a real audit log:
// the count that turns D into CRASH-LOOP must survive orphans being cleaned.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attemptsFromAudit, countAttempts, readRecordedAttempts, retryAfterSeconds } from '../../src/core/attempts.js';
import { type AuditRecord, appendAudit, defaultAuditLog, readAudit } from '../../src/core/audit.js';
import type { Attempt } from '../../src/core/recovery.js';
import { KEY } from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';
import { seeded } from '../support/seeded.js';

let layout: Layout;
useTempLayout('crashdiag-attempts-', (made) => {
  layout = made;
});

const T0 = Date.parse('2026-04-24T06:00:00Z');
const MIN = 60_000;
const at = (minutes: number) => new Date(T0 + minutes * MIN).toISOString();

function record(op: string, minutes: number, extra: Partial<AuditRecord> & Record<string, unknown> = {}): AuditRecord {
  return {
    time: at(minutes),
    user: 'oncall',
    host: 'batch-01',
    pid: 4242,
    pipeline: 'refunds',
    run: KEY,
    op: op as AuditRecord['op'],
    ...extra,
  };
}

const removal = (pid: number, minutes: number, key = KEY, dir?: string) =>
  record('delete', minutes, {
    run: key,
    path: join(dir ?? layout.stagingDir, `${key}.${pid}.csv`),
    bytes: 100 * pid,
    writerPid: pid,
    mtime: at(minutes - 1),
  });

const rerun = (minutes: number, exitStatus: number | null, signal: string | null = null, extra = {}) =>
  record('rerun', minutes, {
    command: ['job', '--date', KEY],
    exitStatus,
    signal,
    stagingDir: layout.stagingDir,
    startedAt: at(minutes - 2),
    durationMs: 2 * MIN,
    ...extra,
  });

const scope = () => ({ runKey: KEY, stagingDir: layout.stagingDir, pipeline: 'refunds' });

async function countFromLog(records: readonly AuditRecord[], extraLines = ''): Promise<Attempt[]> {
  const log = defaultAuditLog(layout.stagingDir);
  await appendAudit(fs, log, records);
  if (extraLines) await fs.appendFile(log, extraLines);
  const recorded = await readRecordedAttempts(fs, log, scope());
  return countAttempts([], recorded);
}

describe('attack: a diagnose reads a log of many run keys, parsing only the lines that name its own', () => {
  // What the count must be: every record read and parsed, then this key's kept.
  async function reference(log: string) {
    return attemptsFromAudit(await readAudit(fs, log, (r) => r.run === KEY), scope());
  }

  it('counts exactly what reading every line counts: other keys, hand-written spacing, a key spelt with \\u escapes, bad lines, lines across read chunks', async () => {
    const log = defaultAuditLog(layout.stagingDir);
    const next = seeded(3);
    const lines: string[] = [];
    // About 6 MB: the reader's 1 MiB chunks end mid-line many times.
    for (let i = 0; i < 24_000; i++) {
      const roll = next(100);
      const key = roll < 20 ? KEY : `2026-03-${String(1 + next(28)).padStart(2, '0')}`;
      const pid = 1000 + next(5000);
      if (roll === 50) lines.push(`{"time": "${at(i)}", "user": "x", "host": "h", "pid": 1, "pipeline": "refunds", "run": "${KEY}", "op": "delete", "path": "${join(layout.stagingDir, `${KEY}.${pid}.csv`)}", "writerPid": ${pid}}`);
      // Every mention of the key spelt with an escape: JSON reads it as the key, the bytes do not show it.
      else if (roll === 51) lines.push(JSON.stringify(removal(pid, i)).split(KEY).join(KEY.replace('-', '\\u002d')));
      else if (roll === 52) lines.push(`{"run":"${KEY}", cut short by a crash`);
      else if (roll === 53) lines.push(JSON.stringify(rerun(i, 1)));
      else if (roll === 54 && i < 8000) lines.push(JSON.stringify(record('reset', i)));
      else lines.push(JSON.stringify(removal(pid, i, key)));
      // Padding of varying length moves the chunk boundaries across the lines.
      if (next(3) === 0) lines[lines.length - 1] += ' '.repeat(next(200));
    }
    await fs.mkdir(join(layout.stagingDir, '.crashdiag'), { recursive: true });
    await fs.writeFile(log, `${lines.join('\n')}\n`);
    const expected = await reference(log);
    expect(expected.recorded.length).toBeGreaterThan(100);
    expect(expected.recorded.some((a) => a.source === 'rerun')).toBe(true);
    const read = await readRecordedAttempts(fs, log, scope());
    expect(read).toEqual(expected);
    // The escaped key was counted: without it the count would be short.
    expect(lines.some((l) => l.includes('\\u002d'))).toBe(true);
  });

  it('attack: a valid key holding U+FFFD, in a log a Latin-1 script wrote: a byte that is no UTF-8 reads as the key', async () => {
    // validateRunKey lets U+FFFD through (it is a symbol), and a key typed
    // in a Latin-1 terminal arrives in argv as one. A raw 0xFF in the log is
    // decoded to U+FFFD: JSON reads the key, the bytes hold no EF BF BD.
    const key = `${KEY}\uFFFD`;
    const inLatin1 = (line: string) => Buffer.concat(line.split('\uFFFD').flatMap((part, i) =>
      i === 0 ? [Buffer.from(part)] : [Buffer.from([0xff]), Buffer.from(part)]));
    const keyScope = { ...scope(), runKey: key };
    const log = defaultAuditLog(layout.stagingDir);
    await fs.mkdir(join(layout.stagingDir, '.crashdiag'), { recursive: true });
    const lines = [
      removal(11, 10, key), removal(12, 20, key),
      { ...record('reset', 30), run: key, stagingDir: layout.stagingDir },
      removal(13, 40, key),
    ].map((r) => inLatin1(`${JSON.stringify(r)}\n`));
    await fs.writeFile(log, Buffer.concat(lines));
    const expected = attemptsFromAudit(await readAudit(fs, log, (r) => r.run === key), keyScope);
    expect(expected.recorded.map((a) => a.pid)).toEqual([13]);
    expect(await readRecordedAttempts(fs, log, keyScope)).toEqual(expected);
  });
});

describe('attempts recorded in a real audit log', () => {
  it('counts each removed orphan of the key once per writer PID, oldest first', async () => {
    const attempts = await countFromLog([removal(11, 10), removal(12, 20), removal(13, 30)]);
    expect(attempts.map((a) => [a.pid, a.bytes, a.source])).toEqual([
      [11, 1100, 'removed-orphan'],
      [12, 1200, 'removed-orphan'],
      [13, 1300, 'removed-orphan'],
    ]);
    expect(attempts[0]?.atMs).toBe(T0 + 9 * MIN);
  });

  it('does not count another key’s, or another staging directory’s, orphans', async () => {
    const attempts = await countFromLog([
      removal(11, 10, '2026-04-23'),
      removal(12, 20, KEY, join(layout.root, 'other-staging')),
      removal(13, 30),
    ]);
    expect(attempts.map((a) => a.pid)).toEqual([13]);
  });

  it('counts a write-ahead intent and its outcome for one orphan once, and passes over ops it does not know', async () => {
    const intent = { ...removal(11, 10), op: 'intent' as AuditRecord['op'] };
    const attempts = await countFromLog([
      intent,
      removal(11, 10),
      record('some-future-op', 15),
      { ...record('deleted-ok', 16), note: 'unknown shape' } as AuditRecord,
    ]);
    expect(attempts.map((a) => a.pid)).toEqual([11]);
  });

  it('survives a line cut short by a crash mid-append', async () => {
    const attempts = await countFromLog([removal(11, 10)], '{"time":"2026-04-24T06:3');
    expect(attempts.map((a) => a.pid)).toEqual([11]);
  });

  it('counts failed re-runs, and forgets everything before a reset (--retry)', async () => {
    expect(
      (await countFromLog([removal(11, 10), rerun(20, 1), rerun(30, null, 'SIGKILL')])).map((a) => a.ended),
    ).toEqual([null, 'exit 1', 'SIGKILL']);
    await fs.rm(defaultAuditLog(layout.stagingDir));
    const afterReset = await countFromLog([
      removal(11, 10),
      rerun(20, 1),
      record('reset', 25, { stagingDir: layout.stagingDir }),
      rerun(30, 1),
    ]);
    expect(afterReset.map((a) => [a.source, a.ended])).toEqual([['rerun', 'exit 1']]);
  });

  it('forgets everything before a successful re-run: the key was DONE then', async () => {
    const attempts = await countFromLog([removal(11, 10), rerun(20, 1), rerun(30, 0), removal(12, 40)]);
    expect(attempts.map((a) => a.pid)).toEqual([12]);
  });

  it('ignores a reset of another pipeline’s run key', async () => {
    const attempts = await countFromLog([
      removal(11, 10),
      record('reset', 25, { stagingDir: join(layout.root, 'elsewhere') }),
    ]);
    expect(attempts.map((a) => a.pid)).toEqual([11]);
  });

  it('reads a missing log as no attempts', async () => {
    const recorded = await readRecordedAttempts(fs, join(layout.root, 'nope.jsonl'), scope());
    expect(recorded).toEqual({ recorded: [], sinceMs: null });
  });
});

describe('countAttempts: disk and log together, one attempt per writer', () => {
  it('attack: a writer that left two files is one attempt, last seen at its latest write, with all its bytes, in any order', () => {
    const files = [
      { pid: 31, bytes: 5, mtimeMs: T0 + 2 * MIN },
      { pid: 32, bytes: 7, mtimeMs: T0 + MIN },
      { pid: 31, bytes: 11, mtimeMs: T0 + 4 * MIN },
    ];
    const expected = [
      { atMs: T0 + MIN, pid: 32, bytes: 7, ended: null, source: 'orphan' },
      { atMs: T0 + 4 * MIN, pid: 31, bytes: 16, ended: null, source: 'orphan' },
    ];
    expect(countAttempts(files, { recorded: [], sinceMs: null })).toEqual(expected);
    expect(countAttempts([...files].reverse(), { recorded: [], sinceMs: null })).toEqual(expected);
  });

  it('an orphan still on disk whose removal was also recorded (left alone, or re-created) counts once', () => {
    const { recorded, sinceMs } = attemptsFromAudit([removal(11, 10)], scope());
    const attempts = countAttempts([{ pid: 11, bytes: 5, mtimeMs: T0 }, { pid: 12, bytes: 6, mtimeMs: T0 }], {
      recorded,
      sinceMs,
    });
    expect(attempts.map((a) => a.pid).sort()).toEqual([11, 12]);
  });

  it('a failed re-run and the orphan it left count once: same PID, or written while it ran', () => {
    const { recorded } = attemptsFromAudit(
      [rerun(10, null, 'SIGKILL', { childPid: 21 }), rerun(30, 1)],
      scope(),
    );
    const attempts = countAttempts(
      [
        { pid: 21, bytes: 5, mtimeMs: T0 + 9 * MIN },
        // The second re-run's job was a wrapper: its writer had another PID, but wrote while it ran.
        { pid: 22, bytes: 6, mtimeMs: T0 + 29 * MIN },
      ],
      { recorded, sinceMs: null },
    );
    expect(attempts.map((a) => [a.pid, a.ended])).toEqual([
      [21, 'SIGKILL'],
      [22, 'exit 1'],
    ]);
  });

  it('an orphan written just before a re-run started is not the re-run’s: the re-run’s own PID wins', () => {
    // Found in the demo: the scheduled run died, --fix started the re-run half a second later.
    const { recorded } = attemptsFromAudit([rerun(10, null, 'SIGKILL', { childPid: 42 })], scope());
    const startedAt = T0 + 8 * MIN;
    const attempts = countAttempts(
      [
        { pid: 41, bytes: 5, mtimeMs: startedAt - 500 },
        { pid: 42, bytes: 5, mtimeMs: startedAt + 500 },
      ],
      { recorded, sinceMs: null },
    );
    expect(attempts.map((a) => [a.pid, a.ended])).toEqual([
      [41, null],
      [42, 'SIGKILL'],
    ]);
  });

  it('a failed re-run matched to an orphan the log says was removed counts once', () => {
    const { recorded } = attemptsFromAudit([rerun(10, null, 'SIGKILL'), removal(31, 11)], scope());
    // removal(31, 11) was written at minute 10, while the re-run ran (minutes 8 to 10).
    expect(countAttempts([], { recorded, sinceMs: null }).map((a) => [a.pid, a.ended])).toEqual([[31, 'SIGKILL']]);
  });

  it('does not count orphans last written before the reset', () => {
    const attempts = countAttempts([{ pid: 11, bytes: 5, mtimeMs: T0 }], { recorded: [], sinceMs: T0 + MIN });
    expect(attempts).toEqual([]);
  });
});

describe('retryAfterSeconds: DURATION after the first failure, 5x after the second, 25x after the third', () => {
  const attempt = (minutes: number): Attempt => ({
    atMs: T0 + minutes * MIN,
    pid: 1,
    bytes: 1,
    ended: null,
    source: 'orphan',
  });
  it.each([
    [[0], 5, 5 * 60],
    [[0], 10, 0],
    [[0, 10], 10, (10 + 50 - 10) * 60],
    [[0, 10, 20], 20, (20 + 250 - 20) * 60],
    [[0, 10], 61, 0],
  ])('attempts at %j min, now at %i min: wait %is (backoff 10m)', (minutes, now, wait) => {
    expect(retryAfterSeconds(minutes.map(attempt), 10 * MIN, T0 + now * MIN)).toBe(wait);
  });
  it('is off at 0 and without attempts', () => {
    expect(retryAfterSeconds([attempt(0)], 0, T0)).toBe(0);
    expect(retryAfterSeconds([], 10 * MIN, T0)).toBe(0);
  });
});
