import { basename, dirname, resolve } from 'node:path';
import { type AuditRecord, defaultAuditLog, readAudit } from '../../core/audit.js';
import { shellJoin } from '../../core/command-words.js';
import { pickPipeline } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { validateRunKey } from '../../core/run-key.js';
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
  const limit = flags.limit ?? 50;
  records = records.slice(-limit);
  if (flags.json) {
    io.stdout.write(`${JSON.stringify({ schemaVersion: 1, auditLog: path, records }, null, 2)}\n`);
    return 0;
  }
  if (records.length === 0) {
    io.stdout.write(`No actions recorded in ${path}.\n`);
    return 0;
  }
  const { fitTable, chalkFor, formatBytes, formatLocalTime } = await import('../../render/human.js');
  const chalk = chalkFor(io.stdout, io.env);
  const timeZone = flags.utc ? 'UTC' : (io.env.TZ || undefined);
  // Each directory once: the paths of one pipeline's log nearly always share one.
  const dirs = new Set(records.flatMap((r) => (r.path === undefined ? [] : [dirname(r.path)])));
  const [onlyDir] = dirs;
  const lines = [`audit log: ${path}`];
  if (dirs.size === 1 && onlyDir !== undefined) lines.push(`directory: ${onlyDir}`);
  const shown = (record: AuditRecord) =>
    dirs.size === 1 && record.path !== undefined ? { ...record, path: basename(record.path) } : record;
  const rows = records.map((r) => [
    formatLocalTime(Date.parse(r.time), timeZone),
    `${r.user}@${r.host}`,
    r.run,
    r.op === 'refuse' || r.op === 'skip' ? { text: r.op, style: chalk.red } : r.op,
    detail(shown(r)),
    r.bytes === undefined ? '' : formatBytes(r.bytes),
    r.writerPid === undefined ? '' : String(r.writerPid),
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
