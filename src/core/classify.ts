import { judgeRecovery } from './classify-recovery.js';
import type { Anomaly, Diagnosis, StagingFileReport } from './diagnosis.js';
import { formatDuration } from './duration.js';
import type { PathFacts, RunEvidence } from './evidence.js';
import { type Action, EXIT_CODES, RUNBOOKS, type State } from './states.js';
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
function outputAnomalies(evidence: RunEvidence): Anomaly[] {
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

/**
 * Names the state a run key is in. Pure: every fact, the clock included, is
 * in the evidence, so the same evidence always gets the same answer.
 */
export function classifyRun(evidence: RunEvidence): Diagnosis {
  const { nowMs, rules, final, marker } = evidence;
  const anomalies = outputAnomalies(evidence);
  const files: StagingFileReport[] = [];
  for (const entry of evidence.staging) {
    if (entry.status === 'unreadable') {
      anomalies.push({ path: entry.path, reason: `a staging entry that cannot be read (${entry.error})` });
      continue;
    }
    if (entry.alsoPublishedAs === undefined && entry.alsoPublishedBy !== undefined) {
      anomalies.push({
        path: entry.path,
        reason: `the name fits the staging template, and pipeline ${entry.alsoPublishedBy} publishes into this directory under names the config does not give (no final): it may be its output, and is never treated as an orphan`,
      });
      continue;
    }
    if (entry.alsoPublishedAs !== undefined) {
      anomalies.push({
        path: entry.path,
        reason: `the name fits the staging template and is also the published name for ${entry.alsoPublishedAs === '' ? 'every run (a fixed name)' : `run ${entry.alsoPublishedAs}`}${entry.alsoPublishedBy === undefined ? '' : ` of pipeline ${entry.alsoPublishedBy}`} (staging and output share a directory): it is never treated as an orphan`,
      });
      continue;
    }
    if (entry.kind !== 'file') {
      anomalies.push({
        path: entry.path,
        reason: `${KIND_WORDS[entry.kind ?? 'other']} where a staging file should be; it is never followed or deleted`,
      });
      continue;
    }
    const { writer, reason, by } = judgeWriter(
      entry,
      entry.staleAfterMs === undefined ? rules : { ...rules, staleAfterMs: entry.staleAfterMs },
      nowMs,
    );
    if (writer === 'unknown')
      anomalies.push({ path: entry.path, reason: `the writer cannot be judged: ${reason}` });
    files.push({
      path: entry.path,
      pid: entry.pid,
      host: entry.host ?? null,
      bytes: entry.bytes ?? 0,
      ageSeconds: ageSeconds(entry, nowMs) ?? 0,
      writer,
      writerReason: reason,
      writerJudgedBy: by,
      ...(entry.pidCheck.checked && entry.pidCheck.facts.command !== undefined
        ? { writerCommand: entry.pidCheck.facts.command }
        : {}),
    });
  }
  anomalies.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

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

  const alive = files.filter((f) => f.writer === 'alive');
  const dead = files.filter((f) => f.writer === 'dead');
  const finalName = final.path;

  let state: State;
  let action: Action;
  let summary: string;
  if (alive.length > 0) {
    state = 'RUNNING';
    action = 'wait';
    summary = `A writer is still alive (PID ${alive.map((f) => f.pid).join(', ')}): this run is in progress, not crashed. Touch nothing.`;
  } else if (anomalies.length > 0) {
    state = 'UNKNOWN';
    action = 'investigate';
    summary = `Something here is outside the staging-rename model (${anomalies.length} finding${anomalies.length === 1 ? '' : 's'}); a person must look before anything is changed.`;
  } else if (belongsToRun && markerVouches) {
    if (dead.length > 0) {
      state = 'D-race';
      action = 'clean-only';
      summary = `The output is published, but ${dead.length} orphaned staging file${dead.length === 1 ? '' : 's'} with a dead writer remain: delete them; do not re-run.`;
    } else {
      state = 'DONE';
      action = 'none';
      summary = `The output is published${marker ? ' with its success marker' : ''} and nothing is left in staging: this run completed.`;
    }
  } else if (belongsToRun) {
    state = 'UNPUBLISHED';
    action = dead.length > 0 ? 'clean-then-rerun' : 'rerun';
    const why
      = marker?.status === 'missing'
        ? 'its success marker is missing'
        : 'its success marker is older than the output, left by an earlier publish';
    summary = `The output exists but ${why}: downstream treats it as not published. Re-run pinned to the same run key${dead.length > 0 ? ' after deleting the orphans' : ''}.`;
  } else if (dead.length > 0) {
    state = 'D';
    action = 'clean-then-rerun';
    summary = `The run died while writing: ${dead.length} orphaned staging file${dead.length === 1 ? '' : 's'} with a dead writer and no published output. Delete the orphans, then re-run.`;
  } else {
    state = 'A/B/C';
    action = 'rerun';
    summary = finalIsFile
      ? `The output ${finalName} is ${formatDuration(finalAgeMs ?? 0)} old, older than ${formatDuration(rules.freshWithinMs)}: it belongs to an earlier run. Nothing of this run is on disk: re-run it.`
      : 'Nothing of this run is on disk (it crashed before writing, or never ran): re-run it, pinned to the same run key.';
  }

  let exitCode = EXIT_CODES[state];
  let recovered: Partial<Diagnosis> = {};
  // Hook: the recovery loop (classify-recovery.ts). RUNNING and UNKNOWN win over it.
  if (evidence.recovery && state !== 'RUNNING' && state !== 'UNKNOWN') {
    const deadOrphans = dead.map((f) => ({
      pid: f.pid,
      bytes: f.bytes,
      mtimeMs: evidence.staging.find((e) => e.path === f.path)?.mtimeMs ?? nowMs,
    }));
    const verdict = judgeRecovery({ state, action, summary }, evidence.recovery, deadOrphans, nowMs);
    ({ state, action, summary, exitCode } = verdict);
    recovered = {
      attempts: verdict.attempts,
      inputs: verdict.inputs,
      retryAfterSeconds: verdict.retryAfterSeconds,
    };
  }

  return {
    run: evidence.runKey,
    state,
    action,
    exitCode,
    summary,
    final: {
      path: final.path,
      exists: final.status === 'present',
      bytes: final.bytes ?? null,
      ageSeconds: ageSeconds(final, nowMs),
      fresh,
      belongsToRun,
      marker: marker
        ? { path: marker.path, exists: marker.status === 'present', ageSeconds: ageSeconds(marker, nowMs) }
        : null,
    },
    orphans: files,
    anomalies,
    runbook: RUNBOOKS[state],
    ...recovered,
  };
}
