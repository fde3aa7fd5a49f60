import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { errnoCode, UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import { STATE_DIR } from './lock.js';

export const AUDIT_FILE = 'audit.jsonl';

/**
 * One action --fix or clean took, as one JSON line: on call, memory is
 * unreliable; the log is not. A removal is written ahead: an `intent` line
 * (fsynced) before the file is touched, then its outcome (`delete`,
 * `quarantine`, `gone`: someone else removed it first, or `fail`). After a
 * crash the log may hold an intent without an outcome, never a removal
 * without a line.
 */
export interface AuditRecord {
  readonly time: string;
  readonly user: string;
  readonly host: string;
  /** crashdiag's own PID. */
  readonly pid: number;
  readonly pipeline: string | null;
  readonly run: string;
  readonly op: 'delete' | 'quarantine' | 'rerun' | 'refuse' | 'skip' | 'intent' | 'gone' | 'fail' | 'reset' | 'abort';
  /** With op `intent`: what is about to be done to `path`. */
  readonly intent?: 'delete' | 'quarantine' | 'abort';
  readonly path?: string;
  readonly bytes?: number;
  /**
   * A removal: the file's mtime when it was checked (ISO-8601). The evidence's
   * age, kept once the file is gone; it also matches an orphan to the re-run that left it.
   */
  readonly mtime?: string;
  readonly writerPid?: number;
  readonly to?: string;
  readonly command?: readonly string[];
  readonly exitStatus?: number | null;
  readonly signal?: string | null;
  readonly stateBefore?: string;
  readonly reason?: string;
  // The recovery loop's fields (attempts.ts reads them back).
  /** Re-runs and resets: the staging directory, which names the pipeline whose attempts they are. */
  readonly stagingDir?: string;
  /** A re-run: when it started (ISO-8601) and how long it ran. */
  readonly startedAt?: string;
  readonly durationMs?: number;
  /** A re-run: the PID of the process crashdiag started. */
  readonly childPid?: number;
}

// O_NOFOLLOW: a symlink planted where the log goes (it lives in the shared
// staging directory by default) must not turn our appends into writes to its
// target. O_NONBLOCK: a FIFO there must not hang us.
const APPEND_NO_FOLLOW
  = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export function defaultAuditLog(stagingDir: string): string {
  return join(stagingDir, STATE_DIR, AUDIT_FILE);
}

/** Where a pipeline's actions go: --audit-log, else the config's auditLog, else its staging directory. */
export function auditLogFor(
  flag: string | undefined,
  settings: { readonly auditLog?: string | undefined; readonly stagingDir: string },
  cwd: string,
): string {
  return flag !== undefined ? resolve(cwd, flag) : (settings.auditLog ?? defaultAuditLog(settings.stagingDir));
}

type StatsLike = Pick<Stats, 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isFIFO' | 'isSocket' | 'nlink'>;

/**
 * The one rule for what crashdiag appends to: a regular file with exactly one
 * link. A second link shares the file's bytes with another name (a hard link
 * planted as the log, pointing at a published output), and O_NOFOLLOW does
 * not stop that. Returns what is wrong, or undefined.
 */
export function auditLogProblem(stats: StatsLike): string | undefined {
  if (stats.isSymbolicLink()) return 'a symlink';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (!stats.isFile()) return 'a device file';
  const links = Number(stats.nlink);
  if (links !== 1) return `a file with ${links} hard links (it shares its bytes with another name, perhaps a published output)`;
  return undefined;
}

function refusal(path: string, problem: string): UsageError {
  return new UsageError(
    `The audit log ${path} is ${problem}; crashdiag appends only to a regular file with one link, so nothing was changed.`,
    'Move it away (crashdiag creates the log itself), or pass --audit-log FILE.',
  );
}

function openFailure(path: string, error: unknown): UsageError | undefined {
  const code = errnoCode(error);
  if (!code) return undefined;
  if (code === 'ELOOP') return refusal(path, 'a symlink');
  if (code === 'EISDIR') return refusal(path, 'a directory');
  if (code === 'ENXIO') return refusal(path, 'a FIFO or socket');
  return new UsageError(
    `The audit log ${path} cannot be written (${code}); nothing was changed.`,
    'Fix its directory or permissions, or pass --audit-log FILE.',
  );
}

/** An audit log held open for a run: each append is one write, then an fsync. */
export interface AuditLog {
  readonly path: string;
  append(records: readonly AuditRecord[]): Promise<void>;
  /** The same for lines already made (AuditLines.addRemoval), as text or as AuditLines: one write, then an fsync. */
  appendLines(text: string | AuditLines): Promise<void>;
  /**
   * appendLines in its two steps, for a caller with work to do meanwhile:
   * `written` settles once the write is done and the fsync under way,
   * `durable` once the lines are fsynced; each rejects as appendLines would.
   */
  appendLinesAhead(lines: AuditLines): { readonly written: Promise<void>; readonly durable: Promise<void> };
  close(): Promise<void>;
}

/** What every record of one batch shares: one clock read, one user, host, process and pipeline. */
export type RecordHead = Pick<AuditRecord, 'time' | 'user' | 'host' | 'pid' | 'pipeline'>;

/** A removal's own fields, as its records write them. */
export interface RemovedFileFields {
  readonly path: string;
  readonly bytes: number;
  readonly mtime: string;
  readonly writerPid: number;
}

/** The head of a batch's records, serialised once: `{"time":…,"pipeline":…` without its closing brace. */
export function headText(head: RecordHead): string {
  const { time, user, host, pid, pipeline } = head;
  return JSON.stringify({ time, user, host, pid, pipeline }).slice(0, -1);
}

const MS_PER_DAY = 86_400_000;
/** 10000-01-01T00:00:00.000Z: from there on toISOString writes a six-digit year. */
const YEAR_10000_MS = 253_402_300_800_000;

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * `new Date(ms).toISOString()`, made by arithmetic for the years 1970 to
 * 9999: the builtin formats through snprintf, and the janitor dates each
 * file's record (0.55 against 0.16 µs a call, measured). Any other time, and
 * what is no time at all, goes to the builtin, which says what it says.
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000_MS)) return new Date(ms).toISOString();
  // A Date holds whole milliseconds: toward zero, as new Date() takes them.
  const whole = Math.floor(ms);
  const days = Math.floor(whole / MS_PER_DAY);
  const inDay = whole - days * MS_PER_DAY;
  // Days since 1970-01-01 to a civil date: Howard Hinnant's civil_from_days, for days >= 0.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(inDay / 3_600_000);
  const minutes = Math.floor(inDay / 60_000) % 60;
  const seconds = Math.floor(inDay / 1000) % 60;
  return `${year}-${pad2(month)}-${pad2(day)}T${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(inDay % 1000)}Z`;
}

/** A removal's own fields, serialised once for its intent and its outcome: `,"path":…,"writerPid":…`. */
export function fileFieldsText(file: RemovedFileFields | Pick<RemovedFileFields, 'path'>): string {
  if (!('bytes' in file)) return `,"path":${JSON.stringify(file.path)}`;
  return `,"path":${JSON.stringify(file.path)},"bytes":${file.bytes},"mtime":${JSON.stringify(file.mtime)},"writerPid":${file.writerPid}`;
}

type RemovalOp = 'intent' | 'delete' | 'quarantine' | 'gone' | 'skip' | 'fail';

/** A removal record's fields between its head and its file's: `,"run":…,"op":…` and the intent, if any. */
function runAndOpText(run: string, op: RemovalOp, intent: 'delete' | 'quarantine' | undefined): string {
  const intentText = intent === undefined ? '' : `,"intent":"${intent}"`;
  return `,"run":${JSON.stringify(run)},"op":"${op}"${intentText}`;
}

/** A removal record's last field, its closing brace and the newline. */
function reasonText(reason: string): string {
  return `,"reason":${JSON.stringify(reason)}}\n`;
}

/**
 * Lines for one append, encoded as they are added: each line's string is
 * garbage at once, and what waits for the write is one buffer. Text joined
 * across a batch (its cons cells) lived through several collections of the
 * young generation before it was encoded to be written: over 100,000 orphans
 * the collector's pauses were 336 ms with it, 172 ms without (measured).
 */
export class AuditLines {
  #buffer = Buffer.allocUnsafe(1 << 16);
  #length = 0;
  /** The last reason written, and its text: a batch's records mostly give one. */
  #reason: string | undefined;
  #reasonText = '';

  /**
   * One removal record (an intent or its outcome) as its JSON line: exactly
   * `JSON.stringify({ ...head, run, op, intent, ...file, reason })`, from
   * parts serialised once (JSON.stringify of each record was a sixth of the
   * janitor's time over 100,000 orphans), made and encoded at once (a part at
   * a time was slower, measured).
   */
  addRemoval(
    head: string,
    run: string,
    op: RemovalOp,
    intent: 'delete' | 'quarantine' | undefined,
    file: string,
    reason: string,
  ): void {
    if (reason !== this.#reason) {
      this.#reason = reason;
      this.#reasonText = reasonText(reason);
    }
    this.add(head + runAndOpText(run, op, intent) + file + this.#reasonText);
  }

  /** Text as it is, a line or part of one. */
  add(text: string): void {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8.
    const most = text.length * 3;
    if (this.#length + most > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.#buffer.length, this.#length + most));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    this.#length += this.#buffer.write(text, this.#length);
  }

  /** The lines added so far, as UTF-8. */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }
}

/**
 * Opens the log for appending, creating it (and its directory) if need be,
 * and checks what was opened, on the open handle: a check by name first would
 * leave a moment to swap the name.
 */
export async function openAuditLog(fs: FileSystem, path: string): Promise<AuditLog> {
  let handle: FileHandle;
  try {
    await fs.mkdir(dirname(path), { recursive: true });
    handle = await fs.open(path, APPEND_NO_FOLLOW, 0o644);
  } catch (error) {
    throw openFailure(path, error) ?? error;
  }
  try {
    const problem = auditLogProblem(await handle.stat());
    if (problem) throw refusal(path, problem);
  } catch (error) {
    await handle.close();
    throw error;
  }
  const write = async (text: string | Buffer): Promise<{ bytesWritten: number; bytes: number }> =>
    typeof text === 'string'
      ? { bytesWritten: (await handle.write(text)).bytesWritten, bytes: Buffer.byteLength(text) }
      : { bytesWritten: (await handle.write(text)).bytesWritten, bytes: text.length };
  const writeAll = async (text: string | Buffer) => {
    // One write per batch, with O_APPEND: concurrent fixers' lines never interleave mid-line.
    const { bytesWritten, bytes } = await write(text);
    // Writing the rest separately could interleave with another appender's line: a short write is a failure.
    if (bytesWritten !== bytes) {
      throw Object.assign(new Error(`short write to the audit log ${path}`), { code: 'EIO' });
    }
  };
  const appendLines = async (lines: string | AuditLines) => {
    const text = typeof lines === 'string' ? lines : lines.bytes();
    if (text.length === 0) return;
    await writeAll(text);
    await handle.sync();
  };
  const appendLinesAhead = (lines: AuditLines) => {
    const text = lines.bytes();
    if (text.length === 0) {
      const done = Promise.resolve();
      return { written: done, durable: done };
    }
    const written = writeAll(text);
    return { written, durable: written.then(() => handle.sync()) };
  };
  return {
    path,
    append: (records) => appendLines(records.map((r) => `${JSON.stringify(r)}\n`).join('')),
    appendLines,
    appendLinesAhead,
    close: () => handle.close(),
  };
}

export async function appendAudit(
  fs: FileSystem,
  path: string,
  records: readonly AuditRecord[],
): Promise<void> {
  if (records.length === 0) return;
  const log = await openAuditLog(fs, path);
  try {
    await log.append(records);
  } finally {
    await log.close();
  }
}

/**
 * Opens the log for appending before anything is done: an unwritable log
 * must stop a fix before its first action, not leave that action unrecorded
 * and the rest of the fix undone.
 */
export async function checkAuditLog(fs: FileSystem, path: string): Promise<void> {
  await (await openAuditLog(fs, path)).close();
}

/**
 * The same rule by name, creating nothing: lets a caller refuse a planted log
 * before it takes its lock or makes its state directory, so a refusal leaves
 * the disk as it was. The open handle is checked again when the log is opened.
 */
export async function precheckAuditLog(fs: FileSystem, path: string): Promise<void> {
  let stats: Awaited<ReturnType<FileSystem['lstat']>>;
  try {
    stats = await fs.lstat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw openFailure(path, error) ?? error;
  }
  const problem = auditLogProblem(stats);
  if (problem) throw refusal(path, problem);
}

// O_NONBLOCK: a FIFO planted as the log must not hang a diagnosis that counts attempts.
const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

// A record is a few hundred bytes: a longer line is not one crashdiag wrote,
// and is passed over without being held in memory.
const MAX_LINE_BYTES = 1 << 20;
const READ_CHUNK_BYTES = 1 << 20;

/**
 * The log's lines, read without following a symlink or blocking on a FIFO
 * (none when there is no log yet), chunk by chunk: a log grown past what one
 * string can hold (512 MiB: a clean of a million orphans writes about that)
 * is read all the same, and memory holds one chunk and one line at a time.
 * A line over MAX_LINE_BYTES comes as undefined. With `mentioning`, a line
 * that holds neither those bytes nor a JSON escape (`\u`) is passed over
 * without being decoded (see eachAuditRecord).
 */
async function readAuditLines(
  fs: FileSystem,
  path: string,
  onLine: (line: string | undefined, lineNumber: number) => void,
  mentioning?: Buffer,
): Promise<void> {
  let handle: Awaited<ReturnType<FileSystem['open']>>;
  try {
    handle = await fs.open(path, READ_NO_FOLLOW);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return;
    if (code === 'EACCES' || code === 'EPERM')
      throw new UsageError(`The audit log ${path} cannot be read (permission denied).`);
    if (code === 'ELOOP') throw new UsageError(`The audit log ${path} is a symlink; crashdiag never reads through one.`);
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile())
      throw new UsageError(`The audit log ${path} is not a regular file; crashdiag reads only a log of its own.`);
    const chunk = Buffer.alloc(READ_CHUNK_BYTES);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let lineNumber = 0;
    const endLine = (tail: Buffer) => {
      lineNumber++;
      const long = pendingBytes + tail.length > MAX_LINE_BYTES;
      onLine(long ? undefined : Buffer.concat([...pending, tail]).toString('utf8'), lineNumber);
      pending = [];
      pendingBytes = 0;
    };
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      let start = 0;
      for (let end = chunk.indexOf(10, start); end >= 0 && end < bytesRead; end = chunk.indexOf(10, start)) {
        const line = chunk.subarray(start, end);
        if (mentioning && pendingBytes === 0 && !mentions(line, mentioning)) lineNumber++;
        else endLine(line);
        start = end + 1;
      }
      const rest = chunk.subarray(start, bytesRead);
      // Past the limit only the length is kept: the line is passed over whole.
      if (pendingBytes + rest.length <= MAX_LINE_BYTES) pending.push(Buffer.from(rest));
      pendingBytes += rest.length;
    }
    if (pendingBytes > 0) endLine(Buffer.alloc(0));
  } finally {
    await handle.close();
  }
}

type FieldType = 'string' | 'number' | 'string|null' | 'number|null' | 'string[]';

// The type of each field crashdiag writes. Anyone who can write the log can
// put any JSON there; a field of another type is dropped as it is read, so no
// reader (attempt counting, history) meets a number where a path goes.
const FIELD_TYPES: Readonly<Record<string, FieldType>> = {
  time: 'string', user: 'string', host: 'string', pid: 'number', pipeline: 'string|null', run: 'string',
  op: 'string', intent: 'string', path: 'string', bytes: 'number', mtime: 'string', writerPid: 'number',
  to: 'string', command: 'string[]', exitStatus: 'number|null', signal: 'string|null', stateBefore: 'string',
  reason: 'string', stagingDir: 'string', startedAt: 'string', durationMs: 'number', childPid: 'number',
};

function hasType(value: unknown, type: FieldType): boolean {
  if (value === null) return type.endsWith('|null');
  if (type === 'string[]') return Array.isArray(value) && value.every((word) => typeof word === 'string');
  return typeof value === type.replace('|null', '');
}

/** One parsed line as a record: fields of the wrong type dropped; undefined when it is no JSON object at all. */
function recordOf(value: unknown): AuditRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record: Record<string, unknown> = {};
  for (const [field, fieldValue] of Object.entries(value)) {
    const type = FIELD_TYPES[field];
    if (type === undefined || hasType(fieldValue, type)) record[field] = fieldValue;
  }
  return record as unknown as AuditRecord;
}

// Lines that are no record are each reported up to this many times: a log
// full of garbage must not become a list as long as itself.
const MAX_REPORTED_BAD_LINES = 100;

const JSON_ESCAPE = Buffer.from('\\u');

/** Whether a line may hold a field whose text is `text`: it has those bytes, or an escape that could spell them. */
function mentions(line: Buffer, text: Buffer): boolean {
  return line.includes(text) || line.includes(JSON_ESCAPE);
}

/**
 * The text a field with this value has in every line that holds it, when
 * there is one: the value's own bytes, where JSON writes it unescaped (a
 * valid run key, as crashdiag writes it: `"run":"2026-04-24"`). A line
 * without those bytes cannot hold the value, unless it spells it with a
 * `\u` escape, and such lines are always read. None for a value with a `/`
 * (JSON may write it `\/`, which JSON.stringify never does) or a U+FFFD
 * (what a byte that is no UTF-8 decodes to: a log a Latin-1 script wrote
 * spells it 0xFF; validateRunKey lets it through).
 */
function literalOf(value: string): Buffer | undefined {
  if (value === '' || /[/\uFFFD]/.test(value)) return undefined;
  return JSON.stringify(value) === `"${value}"` ? Buffer.from(value) : undefined;
}

/**
 * Hands over the log's records, oldest first, as they are read: none is
 * held. A line that is no record is handed over as a `skip` record saying
 * so (`bad`), up to MAX_REPORTED_BAD_LINES of them. With `mentioning`, only
 * the records that may have a field of that value are: the others are
 * passed over without being parsed (a diagnose wants one run key's, in a log
 * a clean of a million orphans wrote two million lines to).
 */
export async function eachAuditRecord(
  fs: FileSystem,
  path: string,
  onRecord: (record: AuditRecord, bad: boolean) => void,
  mentioning?: string,
): Promise<void> {
  let bad = 0;
  const literal = mentioning === undefined ? undefined : literalOf(mentioning);
  await readAuditLines(fs, path, (line, lineNumber) => {
    if (line !== undefined && line.trim() === '') return;
    let record: AuditRecord | undefined;
    let problem = 'is longer than any record crashdiag writes';
    if (line !== undefined) {
      problem = 'is not a JSON object';
      try {
        record = recordOf(JSON.parse(line));
      } catch {
        // A line cut short by a crash mid-append; the others still count.
        problem = 'is not valid JSON';
      }
    }
    if (record !== undefined) {
      onRecord(record, false);
      return;
    }
    if (++bad > MAX_REPORTED_BAD_LINES) return;
    onRecord({
      time: '',
      user: '',
      host: '',
      pid: 0,
      pipeline: null,
      run: '',
      op: 'skip',
      reason: `line ${lineNumber} of ${path} ${problem}`,
    }, true);
  }, literal);
}

/**
 * The log's records, oldest first. `keep` picks the ones wanted as they are
 * read (attempt counting wants one run key's), so memory holds those only.
 * Lines that are no record are kept, as records saying so.
 */
export async function readAudit(
  fs: FileSystem,
  path: string,
  keep: (record: AuditRecord) => boolean = () => true,
  /** A value every record `keep` wants has in some field: lines without it are not parsed. */
  mentioning?: string,
): Promise<AuditRecord[]> {
  const records: AuditRecord[] = [];
  await eachAuditRecord(fs, path, (record, bad) => {
    if (bad || keep(record)) records.push(record);
  }, mentioning);
  return records;
}

/** One record met in the log, with its place in it. */
interface Placed {
  readonly at: number;
  readonly record: AuditRecord;
}

/** An intent not yet followed by its outcome, and how many shown records were met before it. */
interface OpenIntent extends Placed {
  readonly shownBefore: number;
}

/**
 * The last `limit` records `keep` accepts, oldest first, read as a stream:
 * memory holds about `limit` records and at most `limit` intents waiting for
 * their outcome, whatever the size of the log (a clean of a million orphans
 * writes two million lines). With `unsettledOnly`, as a person reads it: an
 * intent followed by its outcome (same host, PID and path) says no more than
 * the outcome, so only intents left without one (the process was killed
 * between the two, or wrote a second intent for the file) are kept.
 */
export async function lastAuditRecords(
  fs: FileSystem,
  path: string,
  options: {
    keep: (record: AuditRecord) => boolean;
    limit: number;
    unsettledOnly: boolean;
    /** A value every record `keep` wants has in some field (eachAuditRecord). */
    mentioning?: string;
  },
): Promise<AuditRecord[]> {
  const { keep, limit, unsettledOnly } = options;
  const last = new LastShown(limit);
  const open = new Map<string, OpenIntent>();
  let at = 0;
  await eachAuditRecord(fs, path, (record) => {
    if (!keep(record)) return;
    const placed = { at: at++, record };
    if (unsettledOnly && record.op === 'intent') {
      // A second intent for the same file leaves the first without an outcome for good.
      const key = intentKey(record);
      const before = open.get(key);
      if (before) last.addEarlier(before);
      // Deleted first, so the map stays in the log's order.
      open.delete(key);
      open.set(key, { ...placed, shownBefore: last.shownSoFar });
    } else {
      if (unsettledOnly && record.path !== undefined) open.delete(intentKey(record));
      last.add(placed);
    }
    // An intent with `limit` records after it that will be shown can no
    // longer be among the last. Each intent still open after it will be one:
    // itself, or the outcome that settles it (an outcome settles one intent).
    // Counting them bounds the open intents by `limit`: a janitor killed
    // after each first batch leaves a log of intents and nothing else.
    let openAfter = open.size;
    for (const [key, intent] of open) {
      openAfter--;
      if (last.shownSoFar - intent.shownBefore + openAfter < limit) break;
      open.delete(key);
    }
  }, options.mentioning);
  return [...last.placed(), ...open.values()]
    .sort((a, b) => a.at - b.at)
    .slice(-limit)
    .map((p) => p.record);
}

const intentKey = (r: AuditRecord) => `${r.host}\0${r.pid}\0${r.path ?? ''}`;

/** The last `limit` records shown, by their place in the log; a record may come in late (an intent left open). */
class LastShown {
  readonly #limit: number;
  #held: Placed[] = [];
  /** Records added in the log's order so far: what an open intent counts from. */
  shownSoFar = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  add(placed: Placed): void {
    this.shownSoFar++;
    this.#hold(placed);
  }

  /** A record from earlier in the log: not counted, it may come before or after an open intent. */
  addEarlier(placed: Placed): void {
    this.#hold(placed);
  }

  placed(): Placed[] {
    return this.#cut();
  }

  #hold(placed: Placed): void {
    this.#held.push(placed);
    if (this.#held.length >= 2 * this.#limit) this.#held = this.#cut();
  }

  #cut(): Placed[] {
    return this.#held.sort((a, b) => a.at - b.at).slice(-this.#limit);
  }
}
