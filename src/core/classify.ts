import type { DeadOrphan } from './attempts.js';
import { judgeRecovery } from './classify-recovery.js';
import type { Anomaly, Diagnosis, OrphanTotals, StagingFileReport } from './diagnosis.js';
import { formatDuration } from './duration.js';
import type { JudgementRules, PathFacts, RunEvidence, StagingEntry } from './evidence.js';
import { EXIT_CODES, RUNBOOKS } from './states.js';
import { CLOCK_SLACK_MS, judgeWriter } from './writer.js';

const KIND_WORDS = {
  file: 'a regular file',
  directory: 'a directory',
  symlink: 'a symlink',
  other: 'a special file',
};

function ageSeconds(facts: PathFacts, nowMs: number): number | null {
  return facts.mtimeMs === undefined ? null : Math.round((nowMs - facts.mtimeMs) / 1000);
}

function isRegularFile(facts: PathFacts | null): boolean {
  return facts?.status === 'present' && facts.kind === 'file';
}

/** What the model cannot explain about the output and its marker. */
function outputAnomalies(evidence: Pick<RunEvidence, 'final' | 'marker'>): Anomaly[] {
  const found: Anomaly[] = [];
  const { final, marker } = evidence;
  for (const [facts, role] of [
    [final, 'output'],
    [marker, 'success marker'],
  ] as const) {
    if (!facts) continue;
    if (facts.status === 'unreadable')
      found.push({ path: facts.path, reason: `the ${role} cannot be read (${facts.error})` });
    else if (facts.status === 'present' && facts.kind !== 'file') {
      found.push({
        path: facts.path,
        reason: `the ${role} is ${KIND_WORDS[facts.kind ?? 'other']}, not a regular file`,
      });
    }
  }
  if (marker?.status === 'present' && final.status === 'missing') {
    found.push({
      path: marker.path,
      reason: 'a success marker without its output: downstream may consume a file that is not there',
    });
  }
  return found;
}

/** Anomalies kept per run key beyond their count where files are only counted (scan): the first this many met. */
export const KEPT_ANOMALIES = 20;
// The RUNNING summary names this many live PIDs, then says how many more.
const NAMED_LIVE_PIDS = 20;

/** One staging entry judged on its own: a finding, a staging file with its writer's verdict, or both. */
export interface JudgedStagingEntry {
  readonly anomaly?: Anomaly;
  readonly file?: StagingFileReport;
}

/**
 * The judgement on one staging entry, by the rules of its run. The per-file
 * half of the classifier: diagnose keeps every result, scan folds each into a
 * StagingSummary and drops it, and both are classified by the same rules.
 */
export function judgeStagingEntry(entry: StagingEntry, rules: JudgementRules, nowMs: number): JudgedStagingEntry {
  if (entry.status === 'unreadable')
    return { anomaly: { path: entry.path, reason: `a staging entry that cannot be read (${entry.error})` } };
  if (entry.alsoPublishedAs === undefined && entry.alsoPublishedBy !== undefined) {
    return {
      anomaly: {
        path: entry.path,
        reason: `the name fits the staging template, and pipeline ${entry.alsoPublishedBy} publishes into this directory under names the config does not give (no final): it may be its output, and is never treated as an orphan`,
      },
    };
  }
  if (entry.alsoPublishedAs !== undefined) {
    return {
      anomaly: {
        path: entry.path,
        reason: `the name fits the staging template and is also the published name for ${entry.alsoPublishedAs === '' ? 'every run (a fixed name)' : `run ${entry.alsoPublishedAs}`}${entry.alsoPublishedBy === undefined ? '' : ` of pipeline ${entry.alsoPublishedBy}`} (staging and output share a directory): it is never treated as an orphan`,
      },
    };
  }
  if (entry.kind !== 'file') {
    return {
      anomaly: {
        path: entry.path,
        reason: `${KIND_WORDS[entry.kind ?? 'other']} where a staging file should be; it is never followed or deleted`,
      },
    };
  }
  const { writer, reason, by } = judgeWriter(
    entry,
    entry.staleAfterMs === undefined ? rules : { ...rules, staleAfterMs: entry.staleAfterMs },
    nowMs,
  );
  const file: { -readonly [K in keyof StagingFileReport]: StagingFileReport[K] } = {
    path: entry.path,
    pid: entry.pid,
    host: entry.host ?? null,
    bytes: entry.bytes ?? 0,
    ageSeconds: ageSeconds(entry, nowMs) ?? 0,
    writer,
    writerReason: reason,
    writerJudgedBy: by,
  };
  // What the live process says it is, so a stray `sleep` holding a reused PID is not taken for the job.
  // (Added, not spread: a spread per file was a tenth of judging 100,000 of them.)
  if (entry.pidCheck.checked && entry.pidCheck.facts.command !== undefined)
    file.writerCommand = entry.pidCheck.facts.command;
  return writer === 'unknown'
    ? { file, anomaly: { path: entry.path, reason: `the writer cannot be judged: ${reason}` } }
    : { file };
}

/**
 * What a run's staging entries add up to: all the classifier needs of them.
 * Memory is flat whatever the number of files: counts, sums, and only
 * the first findings by path (under twice their cap) and NAMED_LIVE_PIDS PIDs.
 */
export interface StagingSummary {
  deadCount: number;
  deadBytes: number;
  /** The oldest dead-writer file's age (by its mtime); null without one. */
  oldestDeadAgeSeconds: number | null;
  aliveCount: number;
  /** The lowest live writers' PIDs (NAMED_LIVE_PIDS at most), in order, for the summary line. */
  alivePids: number[];
  anomalyCount: number;
  /** The first findings by path (KEPT_ANOMALIES, or as many as a diagnose lists), whatever the order they come in. */
  readonly anomalies: FirstByPath<Anomaly>;
}

export function emptyStagingSummary(anomalyCap = KEPT_ANOMALIES): StagingSummary {
  return {
    deadCount: 0,
    deadBytes: 0,
    oldestDeadAgeSeconds: null,
    aliveCount: 0,
    alivePids: [],
    anomalyCount: 0,
    anomalies: new FirstByPath(anomalyCap),
  };
}

const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * The first `cap` of what is added, by path, whatever the order it comes in
 * (a directory lists in hash order): held unsorted and cut to `cap` each time
 * twice as many are held, so memory stays under twice `cap`, and no sort of
 * everything met. One added past the last one kept is not held.
 */
export class FirstByPath<T extends { readonly path: string }> {
  readonly cap: number;
  #held: T[] = [];
  /** Once cut: the last path kept. */
  #cutAt: string | undefined;

  constructor(cap: number) {
    this.cap = cap;
  }

  add(item: T): void {
    if (this.#cutAt !== undefined && item.path >= this.#cutAt) return;
    this.#held.push(item);
    if (this.#held.length >= 2 * this.cap) this.#cut();
  }

  /** The first `cap` added, sorted by path. */
  first(): T[] {
    this.#cut();
    return [...this.#held];
  }

  #cut(): void {
    this.#held.sort(byPath);
    if (this.#held.length > this.cap) {
      this.#held.length = this.cap;
      this.#cutAt = this.#held.at(-1)?.path;
    }
  }
}

/** Adds one judged entry to a run's summary. */
export function foldStagingEntry(summary: StagingSummary, judged: JudgedStagingEntry): void {
  if (judged.anomaly) {
    summary.anomalyCount++;
    summary.anomalies.add(judged.anomaly);
  }
  const file = judged.file;
  if (!file) return;
  if (file.writer === 'dead') {
    summary.deadCount++;
    summary.deadBytes += file.bytes;
    summary.oldestDeadAgeSeconds = Math.max(summary.oldestDeadAgeSeconds ?? file.ageSeconds, file.ageSeconds);
  } else if (file.writer === 'alive') {
    summary.aliveCount++;
    // The lowest PIDs, in order, whatever order the files come in: the same summary from every listing.
    const named = summary.alivePids;
    if (named.length < NAMED_LIVE_PIDS || file.pid < (named.at(-1) ?? 0)) {
      named.push(file.pid);
      named.sort((a, b) => a - b);
      if (named.length > NAMED_LIVE_PIDS) named.pop();
    }
  }
}

/** What one run's staging files add up to, as scan reports them. */
export interface StagingTotals {
  readonly orphanCount: number;
  readonly orphanBytes: number;
  readonly oldestOrphanAgeSeconds: number | null;
  readonly liveWriters: number;
  /** Every finding, also those beyond the ones kept in `anomalies`. */
  readonly anomalyCount: number;
}

/** A run judged from its staging summary: a Diagnosis without the per-file list. */
export type RunVerdict = Omit<Diagnosis, 'orphans' | 'orphanTotals'> & { readonly totals: StagingTotals };

/** The evidence for one run with its staging entries already folded into a summary. */
export type SummarisedRunEvidence = Omit<RunEvidence, 'staging' | 'recovery'> & { readonly staging: StagingSummary };

/**
 * A run's staging files as they are judged one by one, in any order: the
 * summary the state rules read, the reports of the first `keep` files by
 * path, every file's totals, and what the recovery loop counts of each dead
 * writer's file. Memory grows with `keep` and the dead orphans' small
 * records, not with a report per file: a crash loop's 100,000 orphans are
 * folded as the probe looks at them.
 */
export interface StagingFold {
  readonly summary: StagingSummary;
  /** Reports of the first `keep` files by path. */
  readonly files: FirstByPath<StagingFileReport>;
  /** Every file's; how many are listed is `files` once cut. */
  readonly totals: { -readonly [K in Exclude<keyof OrphanTotals, 'listed'>]: OrphanTotals[K] };
  readonly deadOrphans: DeadOrphan[];
}

/** An empty fold that keeps a report for the first `keep` files by path. */
export function newStagingFold(keep = Number.POSITIVE_INFINITY): StagingFold {
  return {
    // The findings too: the first `keep` by path, and a count of the rest.
    summary: emptyStagingSummary(keep),
    files: new FirstByPath(keep),
    totals: { count: 0, bytes: 0, dead: 0, alive: 0, unknown: 0 },
    deadOrphans: [],
  };
}

/** The fold's totals in the documented order, with how many files it lists. */
function orphanTotalsOfFold({ totals }: StagingFold, listed: number): OrphanTotals {
  const { count, bytes, dead, alive, unknown } = totals;
  return { count, listed, bytes, dead, alive, unknown };
}

/** Judges one staging entry and adds it to the fold. Pure. */
export function foldRunEntry(fold: StagingFold, entry: StagingEntry, rules: JudgementRules, nowMs: number): void {
  const judged = judgeStagingEntry(entry, rules, nowMs);
  foldStagingEntry(fold.summary, judged);
  const file = judged.file;
  if (!file) return;
  const { totals } = fold;
  totals.count++;
  totals.bytes += file.bytes;
  totals[file.writer]++;
  fold.files.add(file);
  // What the recovery loop counts as failed attempts, met on the way: no second pass over 100,000 files.
  if (file.writer === 'dead') {
    fold.deadOrphans.push({
      pid: file.pid,
      bytes: file.bytes,
      mtimeMs: entry.mtimeMs ?? nowMs,
      bornMs: entry.birthtimeMs,
    });
  }
}

/**
 * Names the state a run key is in. Pure: every fact, the clock included, is
 * in the evidence, so the same evidence always gets the same answer. The
 * per-file judgements are folded into the same summary scan classifies.
 */
export function classifyRun(evidence: RunEvidence): Diagnosis {
  const fold = newStagingFold();
  for (const entry of evidence.staging) foldRunEntry(fold, entry, evidence.rules, evidence.nowMs);
  return classifyFolded(evidence, fold);
}

/** classifyRun over staging entries already folded, as the probe looked at them. Pure. */
export function classifyFolded(evidence: Omit<RunEvidence, 'staging'>, fold: StagingFold): Diagnosis {
  const files = fold.files.first();
  const verdict = classifySummary({ ...evidence, staging: fold.summary });
  let { state, action, summary: text, exitCode } = verdict;
  let recovered: Partial<Diagnosis> = {};
  // Hook: the recovery loop (classify-recovery.ts). RUNNING and UNKNOWN win over it.
  if (evidence.recovery && state !== 'RUNNING' && state !== 'UNKNOWN') {
    const judged = judgeRecovery({ state, action, summary: text }, evidence.recovery, fold.deadOrphans, evidence.nowMs);
    ({ state, action, summary: text, exitCode } = judged);
    recovered = {
      attempts: judged.attempts,
      inputs: judged.inputs,
      retryAfterSeconds: judged.retryAfterSeconds,
    };
  }
  // Field order is the JSON's: stable, as documented.
  return {
    run: verdict.run,
    state,
    action,
    exitCode,
    summary: text,
    final: verdict.final,
    orphans: files,
    orphanTotals: orphanTotalsOfFold(fold, files.length),
    anomalies: verdict.anomalies,
    ...(verdict.unlistedAnomalies === undefined ? {} : { unlistedAnomalies: verdict.unlistedAnomalies }),
    runbook: RUNBOOKS[state],
    ...recovered,
  };
}

/** What the output and its marker say about this run, before any state is named. */
interface OutputFacts {
  /** The output's age; undefined when its time is unknown. */
  readonly finalAgeMs: number | undefined;
  /** Changed within --fresh-within; null when its time is unknown. */
  readonly fresh: boolean | null;
  readonly finalIsFile: boolean;
  /** The output is this run's: its name carries the key, or it is fresh. */
  readonly belongsToRun: boolean;
  /** No marker is expected, or one vouches for this output. */
  readonly markerVouches: boolean;
}

function judgeOutput(evidence: SummarisedRunEvidence): OutputFacts {
  const { nowMs, rules, final, marker } = evidence;
  const finalAgeMs = final.mtimeMs === undefined ? undefined : nowMs - final.mtimeMs;
  const fresh = finalAgeMs === undefined ? null : finalAgeMs <= rules.freshWithinMs;
  const finalIsFile = isRegularFile(final);
  const belongsToRun = finalIsFile && (evidence.finalKeyed || fresh === true);
  // A fixed-name output replaced after its marker was written was published
  // by an earlier run; the marker does not vouch for the new content.
  const markerVouches
    = marker === null
      || (isRegularFile(marker)
        && (evidence.finalKeyed || (marker.mtimeMs ?? 0) + CLOCK_SLACK_MS >= (final.mtimeMs ?? 0)));
  return { finalAgeMs, fresh, finalIsFile, belongsToRun, markerVouches };
}

/**
 * The findings about the output and the first of the staging entries', sorted
 * by path; how many there were in all, and how many of them are not listed.
 */
function collectAnomalies(
  evidence: SummarisedRunEvidence,
): { anomalies: Anomaly[]; anomalyCount: number; unlisted: number } {
  const { staging } = evidence;
  const kept = staging.anomalies.first();
  const anomalies = [...outputAnomalies(evidence), ...kept].sort(byPath);
  const unlisted = staging.anomalyCount - kept.length;
  return { anomalies, anomalyCount: anomalies.length + unlisted, unlisted };
}

type Named = Pick<RunVerdict, 'state' | 'action' | 'summary'>;

/** RUNNING or UNKNOWN, which win over all the disk's shape says: a live writer, or anything outside the model. */
function nameUnsettled(staging: StagingSummary, anomalyCount: number): Named | undefined {
  if (staging.aliveCount > 0) {
    const more = staging.aliveCount - staging.alivePids.length;
    return {
      state: 'RUNNING',
      action: 'wait',
      summary: `A writer is still alive (PID ${staging.alivePids.join(', ')}${more > 0 ? ` and ${more} more` : ''}): this run is in progress, not crashed. Touch nothing.`,
    };
  }
  if (anomalyCount > 0) {
    return {
      state: 'UNKNOWN',
      action: 'investigate',
      summary: `Something here is outside the staging-rename model (${anomalyCount} finding${anomalyCount === 1 ? '' : 's'}); a person must look before anything is changed.`,
    };
  }
  return undefined;
}

/**
 * The state the disk's shape names, in the order its rules win: published
 * (with or without orphans), unpublished, orphans alone, nothing.
 */
function nameByShape(evidence: SummarisedRunEvidence, output: OutputFacts): Named {
  const { staging, marker, final, rules } = evidence;
  const dead = staging.deadCount;
  const orphans = `${dead} orphaned staging file${dead === 1 ? '' : 's'}`;
  if (output.belongsToRun && output.markerVouches) {
    return dead > 0
      ? {
          state: 'D-race',
          action: 'clean-only',
          summary: `The output is published, but ${orphans} with a dead writer remain: delete them; do not re-run.`,
        }
      : {
          state: 'DONE',
          action: 'none',
          summary: `The output is published${marker ? ' with its success marker' : ''} and nothing is left in staging: this run completed.`,
        };
  }
  if (output.belongsToRun) {
    const why
      = marker?.status === 'missing'
        ? 'its success marker is missing'
        : 'its success marker is older than the output, left by an earlier publish';
    return {
      state: 'UNPUBLISHED',
      action: dead > 0 ? 'clean-then-rerun' : 'rerun',
      summary: `The output exists but ${why}: downstream treats it as not published. Re-run pinned to the same run key${dead > 0 ? ' after deleting the orphans' : ''}.`,
    };
  }
  if (dead > 0) {
    return {
      state: 'D',
      action: 'clean-then-rerun',
      summary: `The run died while writing: ${orphans} with a dead writer and no published output. Delete the orphans, then re-run.`,
    };
  }
  return {
    state: 'A/B/C',
    action: 'rerun',
    summary: output.finalIsFile
      ? `The output ${final.path} is ${formatDuration(output.finalAgeMs ?? 0)} old, older than ${formatDuration(rules.freshWithinMs)}: it belongs to an earlier run. Nothing of this run is on disk: re-run it.`
      : 'Nothing of this run is on disk (it crashed before writing, or never ran): re-run it, pinned to the same run key.',
  };
}

/** Names the state of a run from its staging summary: the one set of state rules, for diagnose and scan alike. */
export function classifySummary(evidence: SummarisedRunEvidence): RunVerdict {
  const { nowMs, final, marker, staging } = evidence;
  const { anomalies, anomalyCount, unlisted } = collectAnomalies(evidence);
  const output = judgeOutput(evidence);
  const { state, action, summary } = nameUnsettled(staging, anomalyCount) ?? nameByShape(evidence, output);
  return {
    run: evidence.runKey,
    state,
    action,
    exitCode: EXIT_CODES[state],
    summary,
    final: {
      path: final.path,
      exists: final.status === 'present',
      bytes: final.bytes ?? null,
      ageSeconds: ageSeconds(final, nowMs),
      fresh: output.fresh,
      belongsToRun: output.belongsToRun,
      marker: marker
        ? { path: marker.path, exists: marker.status === 'present', ageSeconds: ageSeconds(marker, nowMs) }
        : null,
    },
    anomalies,
    ...(unlisted > 0 ? { unlistedAnomalies: unlisted } : {}),
    runbook: RUNBOOKS[state],
    totals: {
      orphanCount: staging.deadCount,
      orphanBytes: staging.deadBytes,
      oldestOrphanAgeSeconds: staging.oldestDeadAgeSeconds,
      liveWriters: staging.aliveCount,
      anomalyCount,
    },
  };
}
