// The audit log: one JSON line per action, appended whole, readable after a crash.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AuditLines,
  type AuditRecord,
  appendAudit,
  checkAuditLog,
  defaultAuditLog,
  fileFieldsText,
  headText,
  isoTime,
  openAuditLog,
  precheckAuditLog,
  lastAuditRecords,
  readAudit,
} from '../../src/core/audit.js';
import type { FileSystem } from '../../src/core/fs.js';
import { UsageError } from '../../src/core/errors.js';
import { fixRun } from '../../src/core/fix.js';
import { deadPids } from '../support/dead-pids.js';
import { exists } from '../support/disk.js';
import { snapshot } from '../support/file-tree.js';
import { fixHarness } from '../support/fix-harness.js';
import { heapAfterCollection } from '../support/heap.js';
import { KEY, settingsFor, stagingPathFor, writeAged } from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';
import { seeded } from '../support/seeded.js';

let root: string;
let layout: Layout;
// MAX_LINE_BYTES in audit.ts: a longer line is passed over.
const MAX_LINE = 1 << 20;

useTempLayout('crashdiag-fix-', (made) => {
  layout = made;
  root = made.root;
});

function record(overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: '2026-04-24T06:08:00.000Z',
    user: 'oncall',
    host: 'batch-1',
    pid: 4242,
    pipeline: 'refunds',
    run: KEY,
    op: 'delete',
    path: `/data/_staging/${KEY}.91247.csv`,
    bytes: 1234,
    writerPid: 91247,
    ...overrides,
  };
}

describe('appendAudit and readAudit', () => {
  it('keeps the log in the staging directory’s .crashdiag by default', () => {
    expect(defaultAuditLog('/data/_staging')).toBe('/data/_staging/.crashdiag/audit.jsonl');
  });

  it('appends one JSON line per record, creating the directories it needs', async () => {
    const log = join(root, 'deep', 'er', 'audit.jsonl');
    await appendAudit(fs, log, [record(), record({ op: 'rerun', command: ['job', KEY], exitStatus: 0 })]);
    await appendAudit(fs, log, [record({ path: '/other' })]);
    const text = await fs.readFile(log, 'utf8');
    const lines = text.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('');
    expect(lines.slice(0, 3).map((l) => JSON.parse(l))).toEqual([
      record(),
      record({ op: 'rerun', command: ['job', KEY], exitStatus: 0 }),
      record({ path: '/other' }),
    ]);
    expect(await readAudit(fs, log)).toEqual([
      record(),
      record({ op: 'rerun', command: ['job', KEY], exitStatus: 0 }),
      record({ path: '/other' }),
    ]);
  });

  it('writes nothing, not even the file, for no records', async () => {
    const log = join(root, 'audit.jsonl');
    await appendAudit(fs, log, []);
    expect(await exists(log)).toBe(false);
  });

  it('never appends through a symlink: its target is left as it was', async () => {
    const victim = join(root, 'victim.txt');
    await fs.writeFile(victim, 'precious\n');
    const log = join(root, 'audit.jsonl');
    await fs.symlink(victim, log);
    await expect(appendAudit(fs, log, [record()])).rejects.toThrow(/is a symlink/);
    await expect(checkAuditLog(fs, log)).rejects.toThrow(UsageError);
    expect(await fs.readFile(victim, 'utf8')).toBe('precious\n');
  });

  it('checkAuditLog creates the log and its directories, and refuses one it cannot write', async () => {
    const log = join(root, 'a', 'b', 'audit.jsonl');
    await checkAuditLog(fs, log);
    expect(await fs.readFile(log, 'utf8')).toBe('');
    await fs.writeFile(join(root, 'file'), '');
    await expect(checkAuditLog(fs, join(root, 'file', 'audit.jsonl'))).rejects.toThrow(UsageError);
  });

  it('reads a missing log as empty', async () => {
    expect(await readAudit(fs, join(root, 'none.jsonl'))).toEqual([]);
  });

  it('never interleaves lines from concurrent appends', async () => {
    const log = join(root, 'audit.jsonl');
    const long = 'x'.repeat(3000);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => appendAudit(fs, log, [record({ pid: i, reason: long })])),
    );
    const records = await readAudit(fs, log);
    expect(records.map((r) => r.pid).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(records.every((r) => r.reason === long)).toBe(true);
  });

  it('reads the whole lines of a log whose last line a crash cut short', async () => {
    const log = join(root, 'audit.jsonl');
    await appendAudit(fs, log, [record()]);
    await fs.appendFile(log, '{"time":"2026-04-24T06:09');
    const records = await readAudit(fs, log);
    expect(records[0]).toEqual(record());
    expect(records[1]).toMatchObject({ op: 'skip', reason: `line 2 of ${log} is not valid JSON` });
  });
});

describe('attack: readAudit `mentioning` a value, against reading every line', () => {
  const keepKey = (r: AuditRecord) => r.run === KEY;

  it('a value JSON may write with the \\/ escape: the line that spells it so is still read', async () => {
    const log = join(root, 'audit.jsonl');
    // Not a valid run key, but `mentioning` takes any value a field may hold (a path is full of /).
    const value = 'refunds/2026-04-24';
    await fs.writeFile(log, `${JSON.stringify(record({ run: value }))}\n{"run":"refunds\\/2026-04-24","op":"reset"}\n`);
    const keep = (r: AuditRecord) => r.run === value;
    const everything = await readAudit(fs, log, keep);
    expect(everything).toHaveLength(2);
    expect(await readAudit(fs, log, keep, value)).toEqual(everything);
  });

  it('the same records and the same line numbers: CRLF, empty lines, lines cut short, lines over 1 MiB, across read chunks, no final newline', async () => {
    const log = join(root, 'audit.jsonl');
    const next = seeded(11);
    const lines: string[] = [];
    for (let i = 0; i < 12_000; i++) {
      const roll = next(100);
      const reason = `r${i}${' '.repeat(next(300))}`;
      if (roll < 25) lines.push(JSON.stringify(record({ reason })));
      // Keys the key is a part of, and the key in another field: read, then not kept.
      else if (roll < 30) lines.push(JSON.stringify(record({ run: `${KEY}0`, reason: `${KEY} ${reason}` })));
      else if (roll < 32) lines.push(`${JSON.stringify(record({ reason }))}\r`);
      else if (roll < 34) lines.push(['', ' ', '\r', '\t'][next(4)] as string);
      // Every bad line names the key, so each is reported either way, at its own line number.
      else if (roll < 35 && next(3) === 0) lines.push(`{"run":"${KEY}","op":"delete", cut short`);
      else if (roll < 36 && i % 40 === 0) lines.push(`{"run":"${KEY}","reason":"${'x'.repeat(MAX_LINE + next(1000))}"}`);
      else lines.push(JSON.stringify(record({ run: `2026-03-${String(1 + next(28)).padStart(2, '0')}`, reason })));
    }
    // The last line, without its newline, is the key's.
    await fs.writeFile(log, `${lines.join('\n')}\n${JSON.stringify(record({ reason: 'last' }))}`);
    const everything = await readAudit(fs, log, keepKey);
    const bad = everything.filter((r) => r.op === 'skip' && r.run === '');
    expect(bad.length).toBeGreaterThan(10);
    expect(bad.length).toBeLessThan(100);
    expect(bad.some((r) => r.reason?.includes('longer than any record'))).toBe(true);
    expect(everything.at(-1)?.reason).toBe('last');
    expect(await readAudit(fs, log, keepKey, KEY)).toEqual(everything);
  });
});

describe('what the audit log may be', () => {
  /** A published output, and a hard link to it planted where the audit log goes. */
  async function plantHardLink(log: string) {
    const output = join(layout.outDir, `refunds_settled_${KEY}.csv`);
    await fs.writeFile(output, 'id,amount\n1,10\n');
    await fs.mkdir(dirname(log), { recursive: true });
    await fs.link(output, log);
    return output;
  }

  it('a hard link planted as the audit log, pointing at a published output, is refused: the output is unchanged', async () => {
    const log = defaultAuditLog(layout.stagingDir);
    const output = await plantHardLink(log);
    const before = await snapshot(root);
    for (const attempt of [() => checkAuditLog(fs, log), () => appendAudit(fs, log, [record()])]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(
        `The audit log ${log} is a file with 2 hard links (it shares its bytes with another name, perhaps a published output); crashdiag appends only to a regular file with one link, so nothing was changed.`,
      );
    }
    expect(await fs.readFile(output, 'utf8')).toBe('id,amount\n1,10\n');
    expect(await snapshot(root)).toEqual(before);
  });

  it('checks the file it opened, not the name: a lie from lstat does not let a hard link through', async () => {
    const log = join(root, 'audit.jsonl');
    const output = await plantHardLink(log);
    const lying: FileSystem = {
      ...fs,
      lstat: (async () => fs.lstat(join(root, 'out'))) as unknown as FileSystem['lstat'],
    };
    await expect(openAuditLog(lying, log)).rejects.toThrow(/2 hard links/);
    expect(await fs.readFile(output, 'utf8')).toBe('id,amount\n1,10\n');
  });

  it('a directory, or a FIFO, as the audit log: refused in one sentence, without blocking', async () => {
    const dir = join(root, 'somedir');
    await fs.mkdir(dir);
    await expect(checkAuditLog(fs, dir)).rejects.toThrow(`The audit log ${dir} is a directory;`);
    await expect(precheckAuditLog(fs, dir)).rejects.toThrow(`The audit log ${dir} is a directory;`);
    const fifo = join(root, 'fifo.jsonl');
    execFileSync('mkfifo', [fifo]);
    await expect(checkAuditLog(fs, fifo)).rejects.toThrow(`The audit log ${fifo} is a FIFO`);
    await expect(precheckAuditLog(fs, fifo)).rejects.toThrow(`The audit log ${fifo} is a FIFO`);
  });

  it('precheckAuditLog creates nothing, and passes a missing log or a log of its own', async () => {
    const log = join(root, 'a', 'audit.jsonl');
    await precheckAuditLog(fs, log);
    expect(await exists(join(root, 'a'))).toBe(false);
    await checkAuditLog(fs, log);
    await precheckAuditLog(fs, log);
  });

  it('a --fix with a hard link planted as its audit log removes nothing and re-runs nothing', async () => {
    const log = defaultAuditLog(layout.stagingDir);
    const [pid = 0] = deadPids(1);
    await writeAged(stagingPathFor(layout, pid), 'partial\n');
    await plantHardLink(log);
    const before = await snapshot(root);
    const harness = fixHarness(layout, { progress: () => {} });
    const error = await fixRun(harness.ctx, settingsFor(layout, { rerun: ['job', '{date}'] }), KEY, {
      dryRun: false,
      quarantineDir: undefined,
      lockTimeoutMs: 2000,
      auditLog: log,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect(harness.commands).toEqual([]);
    expect(await snapshot(root)).toEqual(before);
  });
});

/**
 * What history showed before it streamed, kept as the reference: every
 * record read, then the intents followed by their outcome (same host, PID
 * and path) dropped, then the last `limit`.
 */
function unsettledIntentsOnly(records: readonly AuditRecord[]): AuditRecord[] {
  const settled = new Set<number>();
  const open = new Map<string, number>();
  const keyOf = (r: AuditRecord) => `${r.host}\0${r.pid}\0${r.path ?? ''}`;
  records.forEach((r, index) => {
    if (r.op === 'intent') open.set(keyOf(r), index);
    else if (r.path !== undefined) {
      const at = open.get(keyOf(r));
      if (at !== undefined) {
        settled.add(at);
        open.delete(keyOf(r));
      }
    }
  });
  return records.filter((_, index) => !settled.has(index));
}

async function writeLog(records: readonly AuditRecord[]): Promise<string> {
  const log = join(root, 'history.jsonl');
  await fs.writeFile(log, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return log;
}

describe('lastAuditRecords: the last records of a log of any size, as a person reads them', () => {
  const intent = (path: string, pid = 1) => record({ op: 'intent', intent: 'delete', path, pid });
  const all = () => true;

  it('drops an intent once its outcome follows, and keeps one left without (a crash in between)', async () => {
    const records = [
      intent('/s/a'),
      intent('/s/b'),
      record({ path: '/s/a', pid: 1 }),
      record({ op: 'fail', path: '/s/b', reason: 'EPERM', pid: 1 }),
      intent('/s/c'),
      record({ op: 'rerun', command: ['job'] }),
    ];
    const log = await writeLog(records);
    expect(await lastAuditRecords(fs, log, { keep: all, limit: 50, unsettledOnly: true })).toEqual([
      records[2], records[3], records[4], records[5],
    ]);
    expect(await lastAuditRecords(fs, log, { keep: all, limit: 50, unsettledOnly: false })).toEqual(records);
  });

  // A fixed generator (no randomness in tests): logs where intents, outcomes,
  // second intents for one file, other PIDs and records without a path meet
  // in every order, against the whole-list reference, for every limit.
  it('attack: 200 generated logs, every limit from 1 to 12: exactly the reference, with and without intents dropped', async () => {
    const next = seeded(7);
    for (let trial = 0; trial < 200; trial++) {
      const records: AuditRecord[] = [];
      for (let i = 0, n = 1 + next(40); i < n; i++) {
        const path = `/s/${next(4)}`;
        const pid = 1 + next(2);
        const roll = next(10);
        if (roll < 4) records.push(intent(path, pid));
        else if (roll < 7) records.push(record({ path, pid, reason: `r${i}` }));
        else if (roll < 8) records.push(record({ op: 'fail', path, pid, reason: `f${i}` }));
        else records.push(record({ op: 'rerun', command: ['job'], reason: `x${i}`, pid }));
      }
      const log = await writeLog(records);
      const keep = (r: AuditRecord) => r.pid !== 2 || r.op !== 'rerun';
      for (let limit = 1; limit <= 12; limit++) {
        const kept = records.filter(keep);
        expect(await lastAuditRecords(fs, log, { keep, limit, unsettledOnly: true }))
          .toEqual(unsettledIntentsOnly(kept).slice(-limit));
        expect(await lastAuditRecords(fs, log, { keep, limit, unsettledOnly: false })).toEqual(kept.slice(-limit));
      }
    }
  });
});

/**
 * Writes `lines` as a log and shows its last 50 as history does, with the heap
 * measured as the first record is read and as the last one is: what reading
 * the log holds on to.
 */
async function showLastWithHeap(name: string, lines: string[]): Promise<{ shown: AuditRecord[]; grewBy: number }> {
  const log = join(root, name);
  await fs.writeFile(log, `${lines.join('\n')}\n`);
  const total = lines.length;
  lines.length = 0;
  const heapAt: number[] = [];
  let seen = 0;
  const keep = () => {
    if (++seen === 1 || seen === total) heapAt.push(heapAfterCollection());
    return true;
  };
  const shown = await lastAuditRecords(fs, log, { keep, limit: 50, unsettledOnly: true });
  const [first = 0, last = 0] = heapAt;
  return { shown, grewBy: last - first };
}

describe('attack: history of a log a clean of 100,000 orphans wrote (200,000 lines)', () => {
  it('holds about --limit records while it reads, not the log', async () => {
    const path = (i: number) => `/s/2026-04-24.${i}.csv`;
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      lines.push(JSON.stringify(record({ op: 'intent', intent: 'delete', path: path(i) })));
      lines.push(JSON.stringify(record({ op: 'delete', path: path(i) })));
    }
    const { shown, grewBy } = await showLastWithHeap('big.jsonl', lines);
    expect(shown).toHaveLength(50);
    expect(shown.every((r) => r.op === 'delete')).toBe(true);
    // 200,000 records held would be tens of MB.
    expect(grewBy).toBeLessThan(8 * 1024 * 1024);
  });
});

describe('attack: history of a janitor that crash-looped: 200,000 intents, no outcome ever written', () => {
  // Each killed clean leaves its first batch's intents (1024) without outcomes,
  // under its own PID: no later record settles them, none is shown after them.
  it('holds about --limit records while it reads, not every intent still waiting', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      const path = `/s/2026-04-24.${i}.csv`;
      lines.push(JSON.stringify(record({ op: 'intent', intent: 'delete', path, pid: 1000 + Math.floor(i / 1024) })));
    }
    const { shown, grewBy } = await showLastWithHeap('intents.jsonl', lines);
    expect(shown.map((r) => r.path)).toEqual(
      Array.from({ length: 50 }, (_, i) => `/s/2026-04-24.${199_950 + i}.csv`),
    );
    // 200,000 intents held would be tens of MB.
    expect(grewBy).toBeLessThan(8 * 1024 * 1024);
  });
});

describe('the audit trail of a fix', () => {
  async function fixD(auditLog: string) {
    const pids = deadPids(2).sort();
    const paths = pids.map((pid) => stagingPathFor(layout, pid)).sort();
    for (const path of paths) await writeAged(path, 'partial\n');
    const started = Date.now();
    const report = await fixRun(
      fixHarness(layout, { user: 'oncall', progress: () => {} }).ctx,
      settingsFor(layout, { rerun: ['job', '--date', '{date}'] }),
      KEY,
      { dryRun: false, quarantineDir: undefined, lockTimeoutMs: 2000, auditLog },
    );
    return { report, paths, started, ended: Date.now() };
  }

  it('records each deletion and the re-run: path, bytes, writer PID, time, user, host, command, status', async () => {
    const log = defaultAuditLog(layout.stagingDir);
    const { report, paths, started, ended } = await fixD(log);
    expect(report.exitCode).toBe(0);
    const records = await readAudit(fs, log);
    const common = {
      user: 'oncall',
      host: hostname(),
      pid: process.pid,
      pipeline: null,
      run: KEY,
      stateBefore: 'D',
    };
    const ISO_TIME = expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    const file = (path: string) => ({ path, bytes: 'partial\n'.length, writerPid: Number(path.split('.').at(-2)) });
    expect(records).toEqual([
      // Write-ahead: each removal's intent, then its outcome, which keeps the file's own time
      // (checked exactly in test/core/fix.test.ts).
      ...paths.flatMap((path) => [
        { ...common, time: expect.any(String), op: 'intent', intent: 'delete', ...file(path), mtime: ISO_TIME },
        { ...common, time: expect.any(String), op: 'delete', ...file(path), mtime: ISO_TIME },
      ]),
      {
        ...common,
        time: expect.any(String),
        op: 'rerun',
        command: ['job', '--date', KEY],
        exitStatus: 0,
        signal: null,
        stagingDir: layout.stagingDir,
        startedAt: expect.any(String),
        durationMs: expect.any(Number),
      },
    ]);
    for (const r of records) {
      expect(new Date(r.time).toISOString()).toBe(r.time);
      expect(Date.parse(r.time)).toBeGreaterThanOrEqual(started);
      expect(Date.parse(r.time)).toBeLessThanOrEqual(ended);
    }
  });

  it('goes where --audit-log says, and nowhere else', async () => {
    const log = join(root, 'elsewhere', 'fix-audit.jsonl');
    await fixD(log);
    expect((await readAudit(fs, log)).map((r) => r.op)).toEqual(['intent', 'delete', 'intent', 'delete', 'rerun']);
    expect(await exists(defaultAuditLog(layout.stagingDir))).toBe(false);
  });
});

describe('AuditLines.addRemoval: the janitor\'s records, serialised from parts', () => {
  // Quotes, backslashes, control and bidi characters, a lone surrogate, non-ASCII: what a path on disk may hold.
  const odd = '/data/_st"ag\\ing/2026-04-24.\u001b[2J\u202e\ud800é.91247.csv';
  const head = { time: '2026-04-24T06:08:00.000Z', user: 'ops "on call"', host: 'batch-01', pid: 4242, pipeline: null };

  it.each([
    ['intent', 'delete', { path: odd, bytes: 18234, mtime: '2026-04-24T06:02:11.000Z', writerPid: 91247 }],
    ['delete', undefined, { path: odd, bytes: 0, mtime: '2026-04-24T06:02:11.000Z', writerPid: 91247 }],
    ['gone', undefined, { path: odd }],
    ['fail', undefined, { path: odd, bytes: 7, mtime: '2026-04-24T06:02:11.000Z', writerPid: 1 }],
  ] as const)('a %s record is the line JSON.stringify makes of it', (op, intent, file) => {
    const run = '2026-04-24\u202e';
    const reason = 'janitor: older than 86400s \\ "quoted"';
    const record = { ...head, run, op, ...(intent === undefined ? {} : { intent }), ...file, reason };
    const line = `${JSON.stringify(record)}\n`;
    const one = new AuditLines();
    one.addRemoval(headText(head), run, op, intent, fileFieldsText(file), reason);
    expect(one.bytes().toString('utf8')).toBe(line);
    expect(JSON.parse(one.bytes().toString('utf8'))).toEqual(record);
    // The janitor's batches: the same line's bytes, written part by part into one buffer (twice: it grows).
    const lines = new AuditLines();
    for (let i = 0; i < 400; i++) lines.addRemoval(headText(head), run, op, intent, fileFieldsText(file), reason);
    expect(lines.bytes()).toEqual(Buffer.from(line.repeat(400)));
  });
});

describe('isoTime: toISOString\'s text, made by arithmetic', () => {
  it('is the builtin\'s text for every kind of time: epoch, leap days, century rules, the last millisecond of 9999, fractions, before 1970, after 9999', () => {
    const times = [
      0, 1, 999, 1000, 59_999, 86_399_999, 86_400_000,
      Date.UTC(1972, 1, 29), Date.UTC(1999, 11, 31, 23, 59, 59, 999), Date.UTC(2000, 1, 29, 12),
      Date.UTC(2000, 2, 1), Date.UTC(2100, 1, 28, 23, 59, 59, 999), Date.UTC(2100, 2, 1), Date.UTC(2400, 1, 29),
      Date.UTC(2026, 3, 24, 6, 8, 0, 7), Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      // Fractions of a millisecond (lstat's mtimeMs has them) are cut, as a Date cuts them.
      1_777_000_000_123.75, 0.5,
      // Outside 1970-9999: the builtin's own text.
      -1, -86_400_000.5, Date.UTC(1969, 11, 31, 23, 59, 59, 999), Date.UTC(10_000, 0, 1), 8.64e15,
    ];
    // And a spread of 20,000 times across the whole range, seeded so a failure repeats.
    let seed = 42;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      times.push((seed / 2_147_483_648) * 253_402_300_800_000 + (i % 7) / 8);
    }
    for (const ms of times) expect({ ms, text: isoTime(ms) }).toEqual({ ms, text: new Date(ms).toISOString() });
  });

  it('throws as the builtin does for what is no time', () => {
    for (const ms of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1])
      expect(() => isoTime(ms)).toThrow(RangeError);
  });
});
