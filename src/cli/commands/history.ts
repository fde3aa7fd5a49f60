import { basename, dirname, resolve } from 'node:path';
import { type AuditRecord, defaultAuditLog, readAudit, unsettledIntentsOnly } from '../../core/audit.js';
import { shellJoin } from '../../core/command-words.js';
import { pickPipeline } from '../../core/config.js';
import { DEFAULT_HISTORY_LIMIT } from '../../core/defaults.js';
import { UsageError } from '../../core/errors.js';
import { validateRunKey } from '../../core/run-key.js';
import { SCHEMA_VERSION } from '../../core/states.js';
import { type CliIo, terminalWidth } from '../io.js';
import { readConfigFor } from '../pipeline-options.js';

interface HistoryFlags {
  pipeline?: string;
  config?: string;
  stagingDir?: string;
  auditLog?: string;
  run?: string;
  limit?: number;
  json?: boolean;
  utc?: boolean;
}

async function auditLogPath(flags: HistoryFlags, io: CliIo): Promise<string> {
  if (flags.auditLog !== undefined) return resolve(io.cwd, flags.auditLog);
  if (flags.pipeline !== undefined) {
    const { path, config } = await readConfigFor(flags, io, true);
    const pipeline = pickPipeline(config, flags.pipeline, path);
    if (pipeline.auditLog) return pipeline.auditLog;
    const stagingDir
      = flags.stagingDir !== undefined ? resolve(io.cwd, flags.stagingDir) : pipeline.stagingDir;
    if (stagingDir === undefined) {
      throw new UsageError(
        `Pipeline "${flags.pipeline}" sets no stagingDir, so its audit log cannot be found.`,
      );
    }
    return defaultAuditLog(stagingDir);
  }
  if (flags.stagingDir !== undefined) return defaultAuditLog(resolve(io.cwd, flags.stagingDir));
  throw new UsageError('Name the audit log: --pipeline NAME, --staging-dir DIR or --audit-log FILE.');
}

function detail(record: AuditRecord): string {
  if (record.op === 'rerun') {
    const how = record.signal ? `killed by ${record.signal}` : `exit ${record.exitStatus ?? '?'}`;
    return `${shellJoin(record.command ?? [])} (${record.reason ? `could not start: ${record.reason}` : how})`;
  }
  const parts = [record.path ?? ''];
  if (record.op === 'intent') parts.push(`(about to ${record.intent ?? 'remove'}; no outcome recorded: stopped or killed midway?)`);
  if (record.to) parts.push(`-> ${record.to}`);
  if (record.reason) parts.push(`(${record.reason})`);
  return parts.join(' ');
}

/** The audit log as a table (or JSON lines as an array): what was done, by whom, when. */
export async function historyCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as HistoryFlags;
  if (flags.run !== undefined) validateRunKey(flags.run);
  if (flags.limit !== undefined && (!Number.isSafeInteger(flags.limit) || flags.limit < 1)) {
    throw new UsageError('--limit takes a whole number of at least 1.');
  }
  const path = await auditLogPath(flags, io);
  let records = await readAudit(io.fs, path);
  if (flags.run !== undefined) records = records.filter((r) => r.run === flags.run);
  if (flags.pipeline !== undefined)
    records = records.filter((r) => r.pipeline === null || r.pipeline === flags.pipeline);
  // A person reads outcomes; an intent stays in view only when no outcome followed it.
  if (!flags.json) records = unsettledIntentsOnly(records);
  const limit = flags.limit ?? DEFAULT_HISTORY_LIMIT;
  records = records.slice(-limit);
  if (flags.json) {
    io.stdout.write(`${JSON.stringify({ schemaVersion: SCHEMA_VERSION, auditLog: path, records }, null, 2)}\n`);
    return 0;
  }
  if (records.length === 0) {
    const { escapeText } = await import('../../render/format.js');
    io.stdout.write(`No actions recorded in ${escapeText(path)}.\n`);
    return 0;
  }
  const { fitTable, chalkFor, escapeText, formatBytes, formatLocalTime } = await import('../../render/human.js');
  const chalk = chalkFor(io.stdout, io.env);
  const timeZone = flags.utc ? 'UTC' : (io.env.TZ || undefined);
  // Each directory once: the paths of one pipeline's log nearly always share one.
  const dirs = new Set(records.flatMap((r) => (r.path === undefined ? [] : [dirname(r.path)])));
  const [onlyDir] = dirs;
  // Every field is the audit log's text, which anyone who can write the file
  // controls: escaped, a record cannot drive the terminal.
  const lines = [`audit log: ${escapeText(path)}`];
  if (dirs.size === 1 && onlyDir !== undefined) lines.push(`directory: ${escapeText(onlyDir)}`);
  const shown = (record: AuditRecord) =>
    dirs.size === 1 && record.path !== undefined ? { ...record, path: basename(record.path) } : record;
  const cell = (value: unknown) => (value === undefined || value === null ? '' : escapeText(String(value)));
  const rows = records.map((r) => [
    // A time that is not one (a hand-edited or planted line) is shown as written, escaped.
    Number.isNaN(Date.parse(r.time)) ? cell(r.time) : formatLocalTime(Date.parse(r.time), timeZone),
    cell(`${r.user}@${r.host}`),
    cell(r.run),
    ['refuse', 'skip', 'fail', 'intent'].includes(r.op) ? { text: cell(r.op), style: chalk.red } : cell(r.op),
    cell(detail(shown(r))),
    typeof r.bytes === 'number' ? formatBytes(r.bytes) : cell(r.bytes),
    cell(r.writerPid),
  ]);
  const table = fitTable(
    [
      { head: 'time' },
      { head: 'who', shrink: 'middle', dropOrder: 1 },
      { head: 'run' },
      { head: 'action' },
      { head: 'what', shrink: 'wrap', min: 12 },
      { head: 'size' },
      { head: 'writer', dropOrder: 2 },
    ],
    rows,
    chalk,
    terminalWidth(io),
  );
  io.stdout.write(`${lines.join('\n')}\n${table}\n`);
  return 0;
}
