import { resolve } from 'node:path';
import { type AuditRecord, lastAuditRecords } from '../../core/audit.js';
import { pickPipeline } from '../../core/config.js';
import { DEFAULT_HISTORY_LIMIT } from '../../core/defaults.js';
import { UsageError } from '../../core/errors.js';
import { validateRunKey } from '../../core/run-key.js';
import { renderHistoryJson, renderNoHistory } from '../../render/history.js';
import { type CliIo, terminalWidth } from '../io.js';
import { readConfigFor } from '../pipeline-options.js';
import { auditLogOf } from '../s3-options.js';
import { isS3Url, normalS3Dir } from '../../core/s3-url.js';

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

/** A staging directory as given: an s3:// prefix as it is, a local path resolved. */
function stagingDirOf(flag: string, io: CliIo): string {
  return isS3Url(flag) ? flag : resolve(io.cwd, flag);
}

/**
 * The log to read and, where it is the local log every S3 staging prefix
 * shares, the prefix whose records are this pipeline's: a pipeline's history
 * never shows another prefix's deletions (fixed from flags, or by a pipeline
 * of the same name in another config).
 */
async function auditLogPath(flags: HistoryFlags, io: CliIo): Promise<{ path: string; prefix?: string }> {
  if (flags.auditLog !== undefined) return { path: resolve(io.cwd, flags.auditLog) };
  const stagingDir = await stagingDirFor(flags, io);
  if (typeof stagingDir !== 'string') return stagingDir;
  const path = auditLogOf(undefined, { stagingDir }, io);
  return isS3Url(stagingDir) ? { path, prefix: normalS3Dir(stagingDir) } : { path };
}

/** The staging directory whose default log is read, or the pipeline's own log when its config names one. */
async function stagingDirFor(flags: HistoryFlags, io: CliIo): Promise<string | { path: string }> {
  if (flags.pipeline !== undefined) {
    const { path, config } = await readConfigFor(flags, io, true);
    const pipeline = pickPipeline(config, flags.pipeline, path);
    if (pipeline.auditLog) return { path: pipeline.auditLog };
    const stagingDir
      = flags.stagingDir !== undefined ? stagingDirOf(flags.stagingDir, io) : pipeline.stagingDir;
    if (stagingDir === undefined) {
      throw new UsageError(
        `Pipeline "${flags.pipeline}" sets no stagingDir, so its audit log cannot be found.`,
      );
    }
    return stagingDir;
  }
  if (flags.stagingDir !== undefined) return stagingDirOf(flags.stagingDir, io);
  throw new UsageError('Name the audit log: --pipeline NAME, --staging-dir DIR or --audit-log FILE.');
}

/**
 * Every S3 staging prefix shares one local audit log: --staging-dir picks
 * the records about its own objects (and its re-runs and resets).
 */
function aboutPrefix(dir: string): (record: AuditRecord) => boolean {
  return (record) => record.path?.startsWith(`${dir}/`) === true || record.stagingDir === dir;
}

/** The audit log as a table (or JSON lines as an array): what was done, by whom, when. */
export async function historyCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as HistoryFlags;
  if (flags.run !== undefined) validateRunKey(flags.run);
  if (flags.limit !== undefined && (!Number.isSafeInteger(flags.limit) || flags.limit < 1)) {
    throw new UsageError('--limit takes a whole number of at least 1.');
  }
  const { path, prefix } = await auditLogPath(flags, io);
  const about = prefix === undefined ? undefined : aboutPrefix(prefix);
  const keep = (r: AuditRecord) =>
    (flags.run === undefined || r.run === flags.run)
    && (flags.pipeline === undefined || r.pipeline === null || r.pipeline === flags.pipeline)
    && (about === undefined || about(r));
  // Read as a stream, the last --limit kept: a clean of a million orphans writes two million lines.
  // A person reads outcomes; an intent stays in view only when no outcome followed it.
  const records = await lastAuditRecords(io.fs, path, {
    keep,
    limit: flags.limit ?? DEFAULT_HISTORY_LIMIT,
    unsettledOnly: !flags.json,
    // --run: a line that does not name the key is not parsed.
    ...(flags.run === undefined ? {} : { mentioning: flags.run }),
  });
  if (flags.json) {
    io.stdout.write(renderHistoryJson(path, records));
    return 0;
  }
  if (records.length === 0) {
    io.stdout.write(renderNoHistory(path));
    return 0;
  }
  const { chalkFor, renderHistoryHuman } = await import('../../render/human.js');
  const view = {
    chalk: chalkFor(io.stdout, io.env),
    timeZone: flags.utc ? 'UTC' : (io.env.TZ || undefined),
    width: terminalWidth(io),
  };
  io.stdout.write(renderHistoryHuman(path, records, view));
  return 0;
}
