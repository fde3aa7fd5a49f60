import { auditLogFor } from '../core/audit.js';
import { DEFAULT_S3_TIMEOUT, MAX_S3_TIMEOUT } from '../core/defaults.js';
import { parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import { localStateDir, s3AuditLogPath } from '../core/s3-state.js';
import { isS3Url } from '../core/s3-url.js';
import type { PipelineSettings } from '../core/settings.js';
import type { CliIo } from './io.js';

/** Whether a pipeline has a directory behind the store seam: then the S3 part is loaded for it. */
export function hasS3Side(settings: Pick<PipelineSettings, 'outDir' | 'stagingDir'>): boolean {
  return isS3Url(settings.outDir) || isS3Url(settings.stagingDir);
}

/** The S3 part (the AWS SDK inside), loaded only for a pipeline with an s3:// directory. */
export function loadS3Part(io: Pick<CliIo, 'loadS3'>): Promise<typeof import('../core/s3-run.js')> {
  return (io.loadS3 ?? (() => import('../core/s3-run.js')))();
}

/** --timeout: the bound on each attempt of each S3 request. */
export function s3TimeoutOf(flag: string | undefined): number {
  const ms = parseDuration(flag ?? DEFAULT_S3_TIMEOUT, '--timeout');
  if (ms <= 0) throw new UsageError('--timeout must be longer than zero.');
  // Node's timers hold 2^31-1 ms (24.8 days), and the SDK sets some at twice
  // the timeout: past that they fire after 1 ms, and every request "timed out".
  if (ms > parseDuration(MAX_S3_TIMEOUT, '--timeout')) {
    throw new UsageError(
      `--timeout ${flag ?? ''} is longer than ${MAX_S3_TIMEOUT}, the most a request is waited for.`,
      `Give at most --timeout ${MAX_S3_TIMEOUT}.`,
    );
  }
  return ms;
}

/** Where crashdiag keeps its lock and audit log for an S3 staging prefix: $XDG_STATE_HOME/crashdiag. */
export function stateDirOf(io: Pick<CliIo, 'env'>): string {
  // Both unset, or relative, is refused there: a lock relative to the working directory excludes no one.
  return localStateDir(io.env, io.env.HOME);
}

/**
 * The audit log of a pipeline: --audit-log, else the config's, else beside a
 * local staging directory, else (an S3 staging prefix) one local file under
 * the state directory, never in S3. diagnose, clean and history all ask here.
 */
export function auditLogOf(
  flag: string | undefined,
  settings: { readonly auditLog?: string | undefined; readonly stagingDir: string },
  io: Pick<CliIo, 'env' | 'cwd'>,
): string {
  if (flag !== undefined || settings.auditLog !== undefined || !isS3Url(settings.stagingDir))
    return auditLogFor(flag, settings, io.cwd);
  return s3AuditLogPath(stateDirOf(io));
}
