import type { Diagnosis } from '../core/diagnosis.js';
import type { FixReport } from '../core/fix.js';
import type { LockTimeoutError } from '../core/lock.js';
import { EXIT_CODES, RUNBOOKS, SCHEMA_VERSION } from '../core/states.js';
import { JSON_LISTED } from './format.js';

/** The first JSON_LISTED orphans (by path), and the totals of all of them, listed or not. */
function boundedOrphans(diagnosis: Diagnosis) {
  const { orphans, orphanTotals } = diagnosis;
  const listed = Math.min(orphanTotals.listed, JSON_LISTED);
  return {
    orphans: orphans.length > listed ? orphans.slice(0, listed) : orphans,
    orphanTotals: { ...orphanTotals, listed },
  };
}

/** The first JSON_LISTED of a list the model may already hold only the first of, and how many there are in all. */
function boundedList<T>(list: readonly T[], unlisted = 0) {
  const listed = Math.min(list.length, JSON_LISTED);
  return { list: list.slice(0, listed), totals: { count: list.length + unlisted, listed } };
}

/**
 * The model's long lists the JSON bounds like the orphans, each followed by
 * its totals, and where the model counts what it holds no longer.
 */
const COUNTED_LISTS = {
  anomalies: { totals: 'anomalyTotals', unlisted: 'unlistedAnomalies' },
  causes: { totals: 'causeTotals', unlisted: 'unlistedCauses' },
  // An S3 crash loop can leave an incomplete multipart upload per attempt.
  uploads: { totals: 'uploadTotals', unlisted: undefined },
} as const;

const isCountedList = (key: string): key is keyof typeof COUNTED_LISTS => key in COUNTED_LISTS;

/** The model's own counts: told through the totals, never as fields of their own. */
const MODEL_COUNTS = new Set<string>(['orphanTotals', ...Object.values(COUNTED_LISTS).flatMap((l) => l.unlisted ?? [])]);

/** The JSON's view of the model: the same fields in the same order, long lists bounded, each with its total. */
function diagnosisBody(diagnosis: Diagnosis, runbookPath: RunbookPath) {
  // Field order is the documented one: orphans and their totals where orphans
  // always were; findings, causes and uploads the same.
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries({ schemaVersion: SCHEMA_VERSION, ...diagnosis })) {
    if (key === 'orphans') Object.assign(body, boundedOrphans(diagnosis));
    else if (MODEL_COUNTS.has(key)) continue;
    else if (isCountedList(key) && Array.isArray(value)) {
      const { totals: totalsKey, unlisted } = COUNTED_LISTS[key];
      const { list, totals } = boundedList(value, unlisted === undefined ? 0 : diagnosis[unlisted]);
      Object.assign(body, { [key]: list, [totalsKey]: totals });
    } else if (key === 'attempts' && diagnosis.attempts) {
      const { count, max, list, ...note } = diagnosis.attempts;
      const bounded = boundedList(list);
      body.attempts = { count, max, list: bounded.list, listed: bounded.totals.listed, ...note };
    } else body[key] = key === 'runbook' ? runbookPath(diagnosis.runbook) : value;
  }
  return body;
}

/** The --json form of a diagnosis: one object, stable field order, sorted paths. */
export function renderDiagnosisJson(diagnosis: Diagnosis, runbookPath: RunbookPath = (r) => r): string {
  return `${JSON.stringify(diagnosisBody(diagnosis, runbookPath), null, 2)}\n`;
}

/** Where a runbook (`runbooks/D.md`) is installed: JSON names the file itself, readable from any directory. */
export type RunbookPath = (relative: string) => string;

/**
 * --fix --json: the diagnosis after the fix (what the exit code reports), and
 * under `fix` what was found before, what was planned and what was done.
 */
export function renderFixJson(report: FixReport, runbookPath: RunbookPath = (r) => r): string {
  const { before, plan } = report;
  const fix = {
    dryRun: report.dryRun,
    before: { state: before.state, action: before.action, exitCode: before.exitCode },
    steps: report.steps,
    refused: report.refused,
    stopped: report.stopped,
    quarantine: plan.quarantineDir ?? null,
    rerun: report.rerun
      ? {
          argv: report.rerun.argv,
          exitStatus: report.rerun.result?.exitStatus ?? null,
          signal: report.rerun.result?.signal ?? null,
          error: report.rerun.result?.error ?? null,
          startedAt: report.rerun.startedAt ?? null,
          durationMs: report.rerun.durationMs ?? null,
          pid: report.rerun.result?.pid ?? null,
          stderrTail: report.rerun.result?.stderrTail ?? [],
        }
      : null,
    rerunSkipped: report.rerunSkipped,
    rerunMissing: plan.rerunMissing,
  };
  const after = { ...diagnosisBody(report.after, runbookPath), exitCode: report.exitCode, fix };
  return `${JSON.stringify(after, null, 2)}\n`;
}

/** --fix --json when another fixer held the run's lock past --lock-timeout: "wait", and who holds it. */
export function renderLockTimeoutJson(
  runKey: string,
  error: LockTimeoutError,
  runbookPath: RunbookPath = (r) => r,
): string {
  const body = {
    schemaVersion: SCHEMA_VERSION,
    run: runKey,
    state: 'RUNNING',
    action: 'wait',
    exitCode: EXIT_CODES.RUNNING,
    summary: `${error.message} Nothing was changed.`,
    lock: {
      path: error.path,
      holder: error.holder
        ? { pid: error.holder.pid, host: error.holder.host, since: error.holder.since }
        : null,
      waitedSeconds: Math.round(error.waitedMs / 1000),
    },
    runbook: runbookPath(RUNBOOKS.RUNNING),
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}
