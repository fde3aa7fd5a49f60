import { type AttemptScope, readRecordedAttempts } from './attempts.js';
import type { FileSystem } from './fs.js';
import { checkInputs } from './inputs.js';
import { DEFAULT_MAX_ATTEMPTS } from './defaults.js';
import { type RecoveryEvidence, type RerunOutcome } from './recovery.js';
import type { PipelineSettings } from './settings.js';

export interface RecoveryRequest {
  /** The audit log earlier attempts are read from. */
  readonly auditLog: string;
  /** --retry: the cause is declared fixed; every attempt before now is forgiven. */
  readonly retry: boolean;
  /** The re-run this --fix just started, once it has ended. */
  readonly rerun?: RerunOutcome | null;
  readonly nowMs: number;
}

export function attemptScopeOf(settings: PipelineSettings, runKey: string): AttemptScope {
  return { runKey, stagingDir: settings.stagingDir, pipeline: settings.pipeline ?? null };
}

/** Reads what the recovery loop judges by: earlier attempts, the inputs, the backoff. */
export async function gatherRecovery(
  fs: FileSystem,
  settings: PipelineSettings,
  runKey: string,
  request: RecoveryRequest,
): Promise<RecoveryEvidence> {
  const { recorded, sinceMs, note } = request.retry
    ? { recorded: [], sinceMs: request.nowMs, note: undefined }
    : await readRecordedAttempts(fs, request.auditLog, attemptScopeOf(settings, runKey));
  return {
    maxAttempts: settings.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    recorded,
    sinceMs,
    backoffMs: settings.retryBackoffMs ?? 0,
    inputs: await checkInputs(fs, settings.inputs ?? [], runKey),
    rerun: request.rerun ?? null,
    ...(note === undefined ? {} : { auditNote: note }),
  };
}
