import { describe, expect, it } from 'vitest';
import {
  classifyFolded,
  classifyRun,
  classifySummary,
  emptyStagingSummary,
  foldRunEntry,
  foldStagingEntry,
  judgeStagingEntry,
  KEPT_ANOMALIES,
  newStagingFold,
} from '../../src/core/classify.js';
import type { RunEvidence } from '../../src/core/evidence.js';
import { type Action, EXIT_CODES, RUNBOOKS, STATES, type State } from '../../src/core/states.js';
import type { WriterVerdict } from '../../src/core/writer.js';
import {
  DAY,
  entry,
  evidence,
  FINAL_PATH,
  file,
  fixedNameEvidence,
  GONE,
  HOUR,
  KEY,
  LATEST_MARKER_PATH,
  LATEST_PATH,
  MARKER_PATH,
  MINUTE,
  NO_PID_CHECK,
  NOW,
  OTHER_HOST,
  RULES,
  RUNNING_NO_START,
  runningSince,
  SECOND,
  STAGING,
  staged,
  unreadable,
  ZOMBIE,
  failedRerun,
  inputFact,
  recovery,
  removedOrphan,
  rerunOutcome,
} from '../support/run-evidence.js';

/** The published contract, written out rather than read back from states.ts. */
const CONTRACT_EXIT_CODES: Readonly<Record<State, number>> = {
  'DONE': 0,
  'A/B/C': 10,
  'D': 11,
  'D-race': 12,
  'UNPUBLISHED': 13,
  'RERUN-FAILED': 14,
  'CRASH-LOOP': 15,
  'BLOCKED': 16,
  'RUNNING': 20,
  'UNKNOWN': 30,
};

interface Row {
  readonly situation: string;
  readonly evidence: RunEvidence;
  readonly state: State;
  readonly action: Action;
  /** Each staging file's verdict, in path order. */
  readonly writers?: readonly WriterVerdict[];
  /** What each staging file's writerReason must say, in path order. */
  readonly reasons?: readonly RegExp[];
  /** Every anomaly expected, in path order: its path and what its reason must say. None if absent. */
  readonly anomalies?: ReadonlyArray<readonly [string, RegExp]>;
}

// The writer started an hour ago and last wrote two minutes ago: it can be the writer.
const aliveWriter = (pid: number) => staged(pid, 2 * MINUTE, runningSince(NOW - HOUR));
const deadWriter = (pid: number) => staged(pid, 3 * HOUR, GONE);
const published = { final: file(FINAL_PATH, HOUR), marker: file(MARKER_PATH, HOUR - SECOND) };
const fiftyDaysOld = { final: file(FINAL_PATH, 50 * DAY), marker: file(MARKER_PATH, 50 * DAY) };
const latestStale = { final: file(LATEST_PATH, 7 * HOUR), marker: file(LATEST_MARKER_PATH, 7 * HOUR) };
const latestFresh = { final: file(LATEST_PATH, HOUR), marker: file(LATEST_MARKER_PATH, HOUR) };

const ROWS: readonly Row[] = [
  // DONE
  {
    situation: 'keyed output and its marker, nothing in staging',
    evidence: evidence(published),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'keyed output, --no-marker, nothing in staging',
    evidence: evidence({ final: file(FINAL_PATH, HOUR), marker: null }),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'a 50-day-old keyed backfill with its marker: an old, completed run, not unknown',
    evidence: evidence(fiftyDaysOld),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'keyed output whose marker is older than it: a keyed marker always vouches',
    evidence: evidence({ final: file(FINAL_PATH, HOUR), marker: file(MARKER_PATH, 2 * HOUR) }),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'fixed name, fresh, marker written after it, no orphans',
    evidence: fixedNameEvidence(latestFresh),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'fixed name exactly --fresh-within old still counts as fresh',
    evidence: fixedNameEvidence({ final: file(LATEST_PATH, 6 * HOUR), marker: file(LATEST_MARKER_PATH, 0) }),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'fixed name, marker older than the output by under a second (clock slack)',
    evidence: fixedNameEvidence({
      final: file(LATEST_PATH, HOUR),
      marker: file(LATEST_MARKER_PATH, HOUR + SECOND / 2),
    }),
    state: 'DONE',
    action: 'none',
  },

  // A/B/C
  {
    situation: 'nothing at all on disk',
    evidence: evidence(),
    state: 'A/B/C',
    action: 'rerun',
  },
  {
    situation: 'nothing on disk, --no-marker',
    evidence: evidence({ marker: null }),
    state: 'A/B/C',
    action: 'rerun',
  },
  {
    situation: 'fixed name older than --fresh-within, no orphans: an earlier run',
    evidence: fixedNameEvidence(latestStale),
    state: 'A/B/C',
    action: 'rerun',
  },
  {
    situation: 'fixed name older than --fresh-within without a marker, no orphans',
    evidence: fixedNameEvidence({ final: file(LATEST_PATH, 2 * DAY) }),
    state: 'A/B/C',
    action: 'rerun',
  },

  // D
  {
    situation: 'a dead orphan, no output',
    evidence: evidence({ staging: [deadWriter(91247)] }),
    state: 'D',
    action: 'clean-then-rerun',
    writers: ['dead'],
    reasons: [/PID 91247 is not running/],
  },
  {
    situation: 'one orphan per retry, every writer dead, no output',
    evidence: evidence({
      staging: [
        staged(10001, 3 * DAY, GONE),
        staged(10002, 2 * DAY, ZOMBIE),
        staged(10003, DAY, runningSince(NOW - MINUTE)),
      ],
    }),
    state: 'D',
    action: 'clean-then-rerun',
    writers: ['dead', 'dead', 'dead'],
    reasons: [/not running/, /zombie/, /reused PID/],
  },
  {
    situation: 'fixed name older than --fresh-within with dead orphans',
    evidence: fixedNameEvidence({ ...latestStale, staging: [deadWriter(91247)] }),
    state: 'D',
    action: 'clean-then-rerun',
    writers: ['dead'],
  },
  {
    situation: 'a dead orphan and a marker-less fixed name from an earlier run',
    evidence: fixedNameEvidence({ final: file(LATEST_PATH, 2 * DAY), staging: [deadWriter(91247)] }),
    state: 'D',
    action: 'clean-then-rerun',
  },

  // D-race
  {
    situation: 'published keyed output and a dead orphan',
    evidence: evidence({ ...published, staging: [deadWriter(91247)] }),
    state: 'D-race',
    action: 'clean-only',
    writers: ['dead'],
  },
  {
    situation: 'published output without markers (--no-marker) and a dead orphan',
    evidence: evidence({ final: file(FINAL_PATH, HOUR), marker: null, staging: [deadWriter(91247)] }),
    state: 'D-race',
    action: 'clean-only',
  },
  {
    situation: 'fresh fixed name with dead orphans',
    evidence: fixedNameEvidence({ ...latestFresh, staging: [deadWriter(91247), deadWriter(91248)] }),
    state: 'D-race',
    action: 'clean-only',
    writers: ['dead', 'dead'],
  },
  {
    situation: '50-day-old keyed backfill with a dead orphan',
    evidence: evidence({ ...fiftyDaysOld, staging: [staged(91247, 50 * DAY, GONE)] }),
    state: 'D-race',
    action: 'clean-only',
  },

  // UNPUBLISHED
  {
    situation: 'keyed output without its marker',
    evidence: evidence({ final: file(FINAL_PATH, HOUR) }),
    state: 'UNPUBLISHED',
    action: 'rerun',
  },
  {
    situation: 'keyed output without its marker, and dead orphans',
    evidence: evidence({ final: file(FINAL_PATH, HOUR), staging: [deadWriter(91247)] }),
    state: 'UNPUBLISHED',
    action: 'clean-then-rerun',
    writers: ['dead'],
  },
  {
    situation: 'fresh fixed name whose marker is older than it by more than a second',
    evidence: fixedNameEvidence({
      final: file(LATEST_PATH, HOUR),
      marker: file(LATEST_MARKER_PATH, HOUR + 2 * SECOND),
    }),
    state: 'UNPUBLISHED',
    action: 'rerun',
  },
  {
    situation: 'fresh fixed name with a day-old marker and a dead orphan',
    evidence: fixedNameEvidence({
      final: file(LATEST_PATH, HOUR),
      marker: file(LATEST_MARKER_PATH, DAY),
      staging: [deadWriter(91247)],
    }),
    state: 'UNPUBLISHED',
    action: 'clean-then-rerun',
  },
  {
    situation: 'fresh fixed name without a marker',
    evidence: fixedNameEvidence({ final: file(LATEST_PATH, HOUR) }),
    state: 'UNPUBLISHED',
    action: 'rerun',
  },

  // RUNNING
  {
    situation: 'a live writer, no output',
    evidence: evidence({ staging: [aliveWriter(91247)] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
    reasons: [/PID 91247 is running and started 58m before the file's last change/],
  },
  {
    situation: 'a live writer beside a published output and marker (RUNNING beats DONE)',
    evidence: evidence({ ...published, staging: [aliveWriter(91247)] }),
    state: 'RUNNING',
    action: 'wait',
  },
  {
    situation: 'a live writer beside an output without marker (RUNNING beats UNPUBLISHED)',
    evidence: evidence({ final: file(FINAL_PATH, HOUR), staging: [aliveWriter(91247)] }),
    state: 'RUNNING',
    action: 'wait',
  },
  {
    situation: 'a live writer beside dead orphans (RUNNING beats D)',
    evidence: evidence({ staging: [deadWriter(10001), aliveWriter(91247)] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['dead', 'alive'],
  },
  {
    situation: 'a live writer beside a published output and dead orphans (RUNNING beats D-race)',
    evidence: evidence({ ...published, staging: [deadWriter(10001), aliveWriter(91247)] }),
    state: 'RUNNING',
    action: 'wait',
  },
  {
    situation: 'a live writer beside a marker without output (RUNNING beats UNKNOWN)',
    evidence: evidence({ marker: file(MARKER_PATH, HOUR), staging: [aliveWriter(91247)] }),
    state: 'RUNNING',
    action: 'wait',
    anomalies: [[MARKER_PATH, /success marker without its output/]],
  },
  {
    situation: 'a live writer beside a staging directory and an unjudgeable file (RUNNING beats UNKNOWN)',
    evidence: evidence({
      staging: [
        staged(10001, HOUR, GONE, { kind: 'directory' }),
        staged(10002, -DAY, NO_PID_CHECK),
        aliveWriter(91247),
      ],
    }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['unknown', 'alive'],
    anomalies: [
      [`${STAGING}/${KEY}.10001.csv`, /a directory where a staging file should be/],
      [`${STAGING}/${KEY}.10002.csv`, /writer cannot be judged/],
    ],
  },

  // Writer liveness by PID
  {
    situation: 'reused PID: a live process that started after the file was last written',
    evidence: evidence({ staging: [staged(91247, HOUR, runningSince(NOW - HOUR + 1001))] }),
    state: 'D',
    action: 'clean-then-rerun',
    writers: ['dead'],
    reasons: [/started 1s after the file's last change \(1h ago\), and the file has been quiet for 1h, over 15m: a reused PID/],
  },
  {
    situation: 'a process that started within the 1s slack after the last write is still the writer',
    evidence: evidence({ staging: [staged(91247, HOUR, runningSince(NOW - HOUR + SECOND / 2))] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
  },
  {
    situation: 'a process that started exactly 1s after the last write is within the slack',
    evidence: evidence({ staging: [staged(91247, HOUR, runningSince(NOW - HOUR + SECOND))] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
  },
  {
    situation: 'a long-running writer whose file is days old is still alive (PID beats age)',
    evidence: evidence({ staging: [staged(91247, 3 * DAY, runningSince(NOW - 4 * DAY))] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
  },
  {
    situation: 'a zombie writer is dead',
    evidence: evidence({ staging: [staged(91247, MINUTE, ZOMBIE)] }),
    state: 'D',
    action: 'clean-then-rerun',
    writers: ['dead'],
    reasons: [/PID 91247 has exited \(a zombie/],
  },
  {
    situation: 'a PID that is not running is dead, however recent the file',
    evidence: evidence({ staging: [staged(91247, 0, GONE)] }),
    state: 'D',
    action: 'clean-then-rerun',
    writers: ['dead'],
  },

  // Writer liveness by age (no PID verdict)
  {
    situation: '--no-pid-check, modified within --stale-after: alive',
    evidence: evidence({ staging: [staged(91247, 5 * MINUTE, NO_PID_CHECK)] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
    reasons: [/--no-pid-check.*modified 5m ago, within 15m/],
  },
  {
    situation: '--no-pid-check, modified exactly --stale-after ago: still alive',
    evidence: evidence({ staging: [staged(91247, 15 * MINUTE, NO_PID_CHECK)] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
  },
  {
    situation: '--no-pid-check, untouched for longer than --stale-after: dead',
    evidence: evidence({ staging: [staged(91247, 20 * MINUTE, NO_PID_CHECK)] }),
    state: 'D',
    action: 'clean-then-rerun',
    writers: ['dead'],
    reasons: [/untouched for 20m, over 15m/],
  },
  {
    situation: 'written on another host, recently: judged alive by age',
    evidence: evidence({ staging: [staged(91247, MINUTE, OTHER_HOST, { host: 'batch-02' })] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
    reasons: [/host batch-02/],
  },
  {
    situation: 'written on another host, long ago, beside a published output: D-race',
    evidence: evidence({ ...published, staging: [staged(91247, HOUR, OTHER_HOST, { host: 'batch-02' })] }),
    state: 'D-race',
    action: 'clean-only',
    writers: ['dead'],
  },
  {
    situation: 'a running PID whose start time cannot be read falls back to age: recent is alive',
    evidence: evidence({ staging: [staged(91247, MINUTE, RUNNING_NO_START)] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
    reasons: [/start time cannot be read/],
  },
  {
    // A stalled writer and a reused PID look alike: nothing proves the running PID is not the writer.
    situation: 'attack: a running PID whose start time cannot be read (hidepid=2), the file quiet past --stale-after: unknown, never dead',
    evidence: evidence({ staging: [staged(91247, HOUR, RUNNING_NO_START)] }),
    state: 'UNKNOWN',
    action: 'investigate',
    writers: ['unknown'],
    reasons: [/cannot be ruled out as the writer/],
    anomalies: [[`${STAGING}/${KEY}.91247.csv`, /writer cannot be judged/]],
  },
  {
    situation: 'no PID verdict, modified a little in the future (within --stale-after): alive',
    evidence: evidence({ staging: [staged(91247, -5 * MINUTE, NO_PID_CHECK)] }),
    state: 'RUNNING',
    action: 'wait',
    writers: ['alive'],
  },

  // UNKNOWN
  {
    situation: 'no PID verdict and an mtime far in the future: the writer cannot be judged',
    evidence: evidence({ staging: [staged(91247, -HOUR, OTHER_HOST, { host: 'batch-02' })] }),
    state: 'UNKNOWN',
    action: 'investigate',
    writers: ['unknown'],
    reasons: [/in the future/],
    anomalies: [[`${STAGING}/${KEY}.batch-02.91247.csv`, /writer cannot be judged/]],
  },
  {
    situation: 'a success marker without its output',
    evidence: evidence({ marker: file(MARKER_PATH, HOUR) }),
    state: 'UNKNOWN',
    action: 'investigate',
    anomalies: [[MARKER_PATH, /success marker without its output/]],
  },
  {
    situation: 'a fixed-name marker without its output',
    evidence: fixedNameEvidence({ marker: file(LATEST_MARKER_PATH, DAY) }),
    state: 'UNKNOWN',
    action: 'investigate',
    anomalies: [[LATEST_MARKER_PATH, /success marker without its output/]],
  },
  {
    situation: 'a directory where a staging file should be',
    evidence: evidence({ staging: [staged(91247, HOUR, GONE, { kind: 'directory' })] }),
    state: 'UNKNOWN',
    action: 'investigate',
    writers: [],
    anomalies: [[`${STAGING}/${KEY}.91247.csv`, /a directory where a staging file should be/]],
  },
  {
    situation: 'a symlink where a staging file should be',
    evidence: evidence({ staging: [staged(91247, HOUR, GONE, { kind: 'symlink' })] }),
    state: 'UNKNOWN',
    action: 'investigate',
    writers: [],
    anomalies: [
      [`${STAGING}/${KEY}.91247.csv`, /a symlink where a staging file should be; it is never followed/],
    ],
  },
  {
    situation: 'a special file (fifo, socket, device) where a staging file should be',
    evidence: evidence({ staging: [staged(91247, HOUR, GONE, { kind: 'other' })] }),
    state: 'UNKNOWN',
    action: 'investigate',
    writers: [],
    anomalies: [[`${STAGING}/${KEY}.91247.csv`, /a special file where a staging file should be/]],
  },
  {
    situation: 'a staging entry that cannot be read',
    evidence: evidence({ staging: [staged(91247, HOUR, GONE, { unreadable: 'EACCES' })] }),
    state: 'UNKNOWN',
    action: 'investigate',
    writers: [],
    anomalies: [[`${STAGING}/${KEY}.91247.csv`, /cannot be read \(EACCES\)/]],
  },
  {
    situation:
      'an unreadable staging entry beside a dead orphan and a published output (UNKNOWN beats D-race)',
    evidence: evidence({
      ...published,
      staging: [staged(10001, HOUR, GONE, { unreadable: 'EIO' }), deadWriter(91247)],
    }),
    state: 'UNKNOWN',
    action: 'investigate',
    writers: ['dead'],
    anomalies: [[`${STAGING}/${KEY}.10001.csv`, /cannot be read \(EIO\)/]],
  },
  {
    situation: 'the output is a directory',
    evidence: evidence({ final: entry(FINAL_PATH, 'directory'), marker: file(MARKER_PATH, HOUR) }),
    state: 'UNKNOWN',
    action: 'investigate',
    anomalies: [[FINAL_PATH, /the output is a directory, not a regular file/]],
  },
  {
    situation: 'the output is a symlink',
    evidence: evidence({ final: entry(FINAL_PATH, 'symlink'), marker: file(MARKER_PATH, HOUR) }),
    state: 'UNKNOWN',
    action: 'investigate',
    anomalies: [[FINAL_PATH, /the output is a symlink, not a regular file/]],
  },
  {
    situation: 'the output cannot be read',
    evidence: evidence({ final: unreadable(FINAL_PATH), marker: file(MARKER_PATH, HOUR) }),
    state: 'UNKNOWN',
    action: 'investigate',
    anomalies: [[FINAL_PATH, /the output cannot be read \(EACCES\)/]],
  },
  {
    situation: 'the success marker is a directory',
    evidence: evidence({ final: file(FINAL_PATH, HOUR), marker: entry(MARKER_PATH, 'directory') }),
    state: 'UNKNOWN',
    action: 'investigate',
    anomalies: [[MARKER_PATH, /the success marker is a directory/]],
  },

  // The recovery loop: RERUN-FAILED
  {
    situation: 'the re-run --fix started exited 1 and left an orphan',
    evidence: evidence({ staging: [deadWriter(5101)], recovery: recovery({ rerun: rerunOutcome(1) }) }),
    state: 'RERUN-FAILED',
    action: 'investigate',
  },
  {
    situation: 'the re-run --fix started was SIGKILLed before writing anything',
    evidence: evidence({ recovery: recovery({ rerun: rerunOutcome(null, 'SIGKILL') }) }),
    state: 'RERUN-FAILED',
    action: 'investigate',
  },
  {
    situation: 'the re-run exited 1 after publishing: it still failed, a person must look',
    evidence: evidence({ ...published, recovery: recovery({ rerun: rerunOutcome(1) }) }),
    state: 'RERUN-FAILED',
    action: 'investigate',
  },
  {
    situation: 'the re-run exited 0 and published',
    evidence: evidence({ ...published, recovery: recovery({ rerun: rerunOutcome(0) }) }),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'the re-run failed but a writer of the key is alive: RUNNING wins',
    evidence: evidence({ staging: [aliveWriter(5102)], recovery: recovery({ rerun: rerunOutcome(1) }) }),
    state: 'RUNNING',
    action: 'wait',
  },
  {
    situation: 'the re-run failed and left a marker without its output: UNKNOWN wins',
    evidence: evidence({ marker: file(MARKER_PATH, MINUTE), recovery: recovery({ rerun: rerunOutcome(1) }) }),
    state: 'UNKNOWN',
    action: 'investigate',
    anomalies: [[MARKER_PATH, /a success marker without its output/]],
  },

  // CRASH-LOOP
  {
    situation: 'three dead writers of the key, --max-attempts 3',
    evidence: evidence({ staging: [deadWriter(5201), deadWriter(5202), deadWriter(5203)], recovery: recovery() }),
    state: 'CRASH-LOOP',
    action: 'fix-root-cause',
  },
  {
    situation: 'one orphan on disk and two the audit log says were removed',
    evidence: evidence({
      staging: [deadWriter(5211)],
      recovery: recovery({ recorded: [removedOrphan(5212, 5 * HOUR), removedOrphan(5213, 4 * HOUR)] }),
    }),
    state: 'CRASH-LOOP',
    action: 'fix-root-cause',
  },
  {
    situation: 'an orphan still on disk and its removal recorded count once',
    evidence: evidence({
      staging: [deadWriter(5221), deadWriter(5222)],
      recovery: recovery({ recorded: [removedOrphan(5221, 3 * HOUR)] }),
    }),
    state: 'D',
    action: 'clean-then-rerun',
  },
  {
    situation: 'a failed re-run and the orphan it wrote while running count once',
    evidence: evidence({
      staging: [deadWriter(5231), deadWriter(5232)],
      recovery: recovery({ recorded: [failedRerun(3 * HOUR - MINUTE, 'SIGKILL', 3 * HOUR + MINUTE)] }),
    }),
    state: 'D',
    action: 'clean-then-rerun',
  },
  {
    situation: 'three failed re-runs that wrote nothing: a loop before Load',
    evidence: evidence({
      recovery: recovery({ recorded: [failedRerun(3 * HOUR), failedRerun(2 * HOUR), failedRerun(HOUR)] }),
    }),
    state: 'CRASH-LOOP',
    action: 'fix-root-cause',
  },
  {
    situation: 'an output without its marker, after three failed attempts',
    evidence: evidence({
      final: file(FINAL_PATH, HOUR),
      staging: [deadWriter(5241), deadWriter(5242), deadWriter(5243)],
      recovery: recovery(),
    }),
    state: 'CRASH-LOOP',
    action: 'fix-root-cause',
  },
  {
    situation: 'three dead writers, --max-attempts 0 turns the loop check off',
    evidence: evidence({
      staging: [deadWriter(5251), deadWriter(5252), deadWriter(5253)],
      recovery: recovery({ maxAttempts: 0 }),
    }),
    state: 'D',
    action: 'clean-then-rerun',
  },
  {
    situation: 'three dead writers, --max-attempts 4',
    evidence: evidence({
      staging: [deadWriter(5261), deadWriter(5262), deadWriter(5263)],
      recovery: recovery({ maxAttempts: 4 }),
    }),
    state: 'D',
    action: 'clean-then-rerun',
  },
  {
    situation: 'three orphans written before a --retry reset',
    evidence: evidence({
      staging: [deadWriter(5271), deadWriter(5272), deadWriter(5273)],
      recovery: recovery({ sinceMs: NOW - HOUR }),
    }),
    state: 'D',
    action: 'clean-then-rerun',
  },
  {
    situation: 'published, with three dead orphans: a published run is never a crash loop',
    evidence: evidence({
      ...published,
      staging: [deadWriter(5281), deadWriter(5282), deadWriter(5283)],
      recovery: recovery(),
    }),
    state: 'D-race',
    action: 'clean-only',
  },
  {
    situation: 'published after three recorded failures',
    evidence: evidence({
      ...published,
      recovery: recovery({ recorded: [removedOrphan(5291, 5 * HOUR), failedRerun(4 * HOUR), failedRerun(3 * HOUR)] }),
    }),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'three earlier attempts, and a writer alive now: RUNNING wins',
    evidence: evidence({
      staging: [aliveWriter(5301)],
      recovery: recovery({ recorded: [failedRerun(4 * HOUR), failedRerun(3 * HOUR), failedRerun(2 * HOUR)] }),
    }),
    state: 'RUNNING',
    action: 'wait',
  },
  {
    situation: 'three dead writers and a staging entry that is a directory: UNKNOWN wins',
    evidence: evidence({
      staging: [deadWriter(5311), deadWriter(5312), deadWriter(5313), staged(5314, HOUR, GONE, { kind: 'directory' })],
      recovery: recovery(),
    }),
    state: 'UNKNOWN',
    action: 'investigate',
    anomalies: [[`${STAGING}/${KEY}.5314.csv`, /a directory where a staging file should be/]],
  },

  // BLOCKED
  {
    situation: 'D, and the input the re-run reads is missing',
    evidence: evidence({ staging: [deadWriter(5401)], recovery: recovery({ inputs: [inputFact('missing')] }) }),
    state: 'BLOCKED',
    action: 'fix-upstream',
  },
  {
    situation: 'nothing on disk, and the input is empty',
    evidence: evidence({ recovery: recovery({ inputs: [inputFact('ok', '/data/in/a.csv'), inputFact('empty')] }) }),
    state: 'BLOCKED',
    action: 'fix-upstream',
  },
  {
    situation: 'nothing on disk, and the input is a directory',
    evidence: evidence({ recovery: recovery({ inputs: [inputFact('not-a-file')] }) }),
    state: 'BLOCKED',
    action: 'fix-upstream',
  },
  {
    situation: 'nothing on disk, and the input cannot be read',
    evidence: evidence({ recovery: recovery({ inputs: [inputFact('unreadable')] }) }),
    state: 'BLOCKED',
    action: 'fix-upstream',
  },
  {
    situation: 'nothing on disk, the input is there',
    evidence: evidence({ recovery: recovery({ inputs: [inputFact('ok')] }) }),
    state: 'A/B/C',
    action: 'rerun',
  },
  {
    situation: 'published, and today the input is gone: nothing needs a re-run',
    evidence: evidence({ ...published, recovery: recovery({ inputs: [inputFact('missing')] }) }),
    state: 'DONE',
    action: 'none',
  },
  {
    situation: 'a missing input and three failed attempts: the input is the more precise diagnosis',
    evidence: evidence({
      staging: [deadWriter(5411), deadWriter(5412), deadWriter(5413)],
      recovery: recovery({ inputs: [inputFact('missing')] }),
    }),
    state: 'BLOCKED',
    action: 'fix-upstream',
  },
  {
    situation: 'a failed re-run with the input missing now: the failed re-run is reported',
    evidence: evidence({ recovery: recovery({ rerun: rerunOutcome(2), inputs: [inputFact('missing')] }) }),
    state: 'RERUN-FAILED',
    action: 'investigate',
  },
];

describe('classifyRun', () => {
  it.each(ROWS)('$situation -> $state', (row) => {
    const diagnosis = classifyRun(row.evidence);
    expect(diagnosis.state).toBe(row.state);
    expect(diagnosis.action).toBe(row.action);
    expect(diagnosis.exitCode).toBe(CONTRACT_EXIT_CODES[row.state]);
    expect(diagnosis.runbook).toBe(RUNBOOKS[row.state]);
    expect(diagnosis.run).toBe(KEY);
    expect(diagnosis.summary.length).toBeGreaterThan(0);
    if (row.writers) expect(diagnosis.orphans.map((o) => o.writer)).toEqual(row.writers);
    row.reasons?.forEach((reason, i) => {
      expect(diagnosis.orphans[i]?.writerReason).toMatch(reason);
    });
    const anomalies = row.anomalies ?? [];
    expect(diagnosis.anomalies.map((a) => a.path)).toEqual(anomalies.map(([path]) => path));
    anomalies.forEach(([, reason], i) => {
      expect(diagnosis.anomalies[i]?.reason).toMatch(reason);
    });
  });

  it('has a row for every state', () => {
    expect(new Set(ROWS.map((r) => r.state))).toEqual(new Set(STATES));
  });

  it('uses the published exit codes', () => {
    expect(EXIT_CODES).toEqual(CONTRACT_EXIT_CODES);
  });

  it('reports the output, its marker and each staging file with the facts behind the verdict', () => {
    const diagnosis = classifyRun(
      evidence({
        final: file(FINAL_PATH, 90 * MINUTE, 5000),
        marker: file(MARKER_PATH, 90 * MINUTE),
        staging: [
          staged(10001, 3 * HOUR, GONE, { bytes: 123 }),
          staged(20002, 2 * MINUTE, OTHER_HOST, { host: 'batch-02' }),
        ],
      }),
    );
    expect(diagnosis.final).toEqual({
      path: FINAL_PATH,
      exists: true,
      bytes: 5000,
      ageSeconds: 5400,
      fresh: true,
      belongsToRun: true,
      marker: { path: MARKER_PATH, exists: true, ageSeconds: 5400 },
    });
    expect(diagnosis.orphans).toEqual([
      {
        path: `${STAGING}/${KEY}.10001.csv`,
        pid: 10001,
        host: null,
        bytes: 123,
        ageSeconds: 3 * 3600,
        writer: 'dead',
        writerReason: 'PID 10001 is not running',
        writerJudgedBy: 'pid',
      },
      {
        path: `${STAGING}/${KEY}.batch-02.20002.csv`,
        pid: 20002,
        host: 'batch-02',
        bytes: 4096,
        ageSeconds: 120,
        writer: 'alive',
        writerReason: expect.stringMatching(/host batch-02.*modified 2m ago, within 15m/),
        writerJudgedBy: 'age',
      },
    ]);
  });

  it('reports a missing output with no age, no freshness and no bytes', () => {
    const { final } = classifyRun(evidence({ marker: null }));
    expect(final).toEqual({
      path: FINAL_PATH,
      exists: false,
      bytes: null,
      ageSeconds: null,
      fresh: null,
      belongsToRun: false,
      marker: null,
    });
  });

  it('says a stale fixed-name output belongs to an earlier run', () => {
    const diagnosis = classifyRun(fixedNameEvidence(latestStale));
    expect(diagnosis.final.fresh).toBe(false);
    expect(diagnosis.final.belongsToRun).toBe(false);
    expect(diagnosis.summary).toMatch(/7h old, older than 6h: it belongs to an earlier run/);
  });

  it('says an old keyed output is not fresh, and still belongs to the run', () => {
    const { final } = classifyRun(evidence(fiftyDaysOld));
    expect(final.fresh).toBe(false);
    expect(final.belongsToRun).toBe(true);
    expect(final.ageSeconds).toBe(50 * 86_400);
  });

  it('judges freshness against the rules it is given', () => {
    const stale = fixedNameEvidence(latestStale);
    expect(classifyRun(stale).state).toBe('A/B/C');
    expect(classifyRun({ ...stale, rules: { ...RULES, freshWithinMs: 8 * HOUR } }).state).toBe('DONE');
  });

  it('judges staleness against the rules it is given', () => {
    const quiet = evidence({ staging: [staged(91247, 20 * MINUTE, NO_PID_CHECK)] });
    expect(classifyRun(quiet).state).toBe('D');
    expect(classifyRun({ ...quiet, rules: { ...RULES, staleAfterMs: HOUR } }).state).toBe('RUNNING');
  });

  it('sorts anomalies by path', () => {
    const diagnosis = classifyRun(
      evidence({
        final: entry(FINAL_PATH, 'symlink'),
        marker: file(MARKER_PATH, HOUR),
        staging: [staged(10001, HOUR, GONE, { kind: 'directory' })],
      }),
    );
    const paths = diagnosis.anomalies.map((a) => a.path);
    expect(paths).toEqual([`${STAGING}/${KEY}.10001.csv`, FINAL_PATH]);
    expect(paths).toEqual([...paths].sort());
  });

  it('is pure: the same evidence gets the same answer and is not changed', () => {
    const input = evidence({ ...published, staging: [deadWriter(10001), aliveWriter(91247)] });
    const copy = structuredClone(input);
    const first = classifyRun(input);
    expect(classifyRun(input)).toEqual(first);
    expect(input).toEqual(copy);
  });
});

/** What scan does with a run's staging entries: fold each into a summary and drop it. */
function summarise(evidence: RunEvidence, anomalyCap = KEPT_ANOMALIES) {
  const staging = emptyStagingSummary(anomalyCap);
  for (const entry of evidence.staging)
    foldStagingEntry(staging, judgeStagingEntry(entry, evidence.rules, evidence.nowMs));
  const { recovery: _recovery, ...rest } = evidence;
  return classifySummary({ ...rest, staging });
}

describe('classifySummary: the per-key summary scan keeps is judged as the full evidence is', () => {
  // Scan gathers no recovery facts: compare with classifyRun on the disk alone.
  it.each(ROWS)('$situation', (row) => {
    const { recovery: _recovery, ...disk } = row.evidence;
    const full = classifyRun(disk);
    const verdict = summarise(row.evidence);
    expect([verdict.state, verdict.action, verdict.exitCode, verdict.summary])
      .toEqual([full.state, full.action, full.exitCode, full.summary]);
    expect(verdict.anomalies).toEqual(full.anomalies);
    const dead = full.orphans.filter((o) => o.writer === 'dead');
    expect(verdict.totals).toEqual({
      orphanCount: dead.length,
      orphanBytes: dead.reduce((n, o) => n + o.bytes, 0),
      oldestOrphanAgeSeconds: dead.length === 0 ? null : Math.max(...dead.map((o) => o.ageSeconds)),
      liveWriters: full.orphans.filter((o) => o.writer === 'alive').length,
      anomalyCount: full.anomalies.length,
    });
  });

  it('keeps the first anomalies and counts the rest: 1,000 unreadable entries are one UNKNOWN with 1,000 findings', () => {
    const many = Array.from({ length: 1000 }, (_, i) => staged(1000 + i, HOUR, GONE, { unreadable: 'EACCES' }));
    const verdict = summarise(evidence({ staging: many }));
    expect(verdict.state).toBe('UNKNOWN');
    expect(verdict.totals.anomalyCount).toBe(1000);
    expect(verdict.anomalies).toHaveLength(KEPT_ANOMALIES);
    expect(verdict.summary).toContain('1000 findings');
    expect(classifyRun(evidence({ staging: many })).summary).toBe(verdict.summary);
  });

  it('names the first live writers and counts the others', () => {
    const many = Array.from({ length: 25 }, (_, i) => aliveWriter(5000 + i));
    const verdict = summarise(evidence({ staging: many }));
    expect(verdict.state).toBe('RUNNING');
    expect(verdict.totals.liveWriters).toBe(25);
    expect(verdict.summary).toMatch(/PID 5000, .*5019 and 5 more\)/);
  });
});

describe('classifyRun: --retry-backoff (exit 21, not a state)', () => {
  const orphanAt = (pid: number, ageMs: number) => staged(pid, ageMs, GONE);
  it.each([
    ['one attempt 4 min ago, backoff 10m: wait 6 min', [4 * MINUTE], 10 * MINUTE, 'wait', 21, 6 * 60],
    ['one attempt 11 min ago, backoff 10m: re-run now', [11 * MINUTE], 10 * MINUTE, 'clean-then-rerun', 11, 0],
    ['two attempts, the last 30 min ago, backoff 10m: 5x, wait 20 min', [90 * MINUTE, 30 * MINUTE], 10 * MINUTE, 'wait', 21, 20 * 60],
    ['two attempts, the last 51 min ago: re-run now', [90 * MINUTE, 51 * MINUTE], 10 * MINUTE, 'clean-then-rerun', 11, 0],
  ] as const)('%s', (_, ages, backoffMs, action, exitCode, wait) => {
    const diagnosis = classifyRun(
      evidence({
        staging: ages.map((age, i) => orphanAt(6100 + i, age)),
        recovery: recovery({ backoffMs }),
      }),
    );
    expect(diagnosis.state).toBe('D');
    expect(diagnosis.action).toBe(action);
    expect(diagnosis.exitCode).toBe(exitCode);
    expect(diagnosis.retryAfterSeconds).toBe(wait);
  });

  it('off by default: retryAfterSeconds is null', () => {
    const diagnosis = classifyRun(evidence({ staging: [orphanAt(6200, MINUTE * 20)], recovery: recovery() }));
    expect(diagnosis.retryAfterSeconds).toBeNull();
    expect(diagnosis.exitCode).toBe(11);
  });

  it('a crash loop is not softened into a wait', () => {
    const diagnosis = classifyRun(
      evidence({
        staging: [orphanAt(6301, 3 * MINUTE), orphanAt(6302, 2 * MINUTE), orphanAt(6303, MINUTE)],
        recovery: recovery({ backoffMs: HOUR }),
      }),
    );
    expect(diagnosis.state).toBe('CRASH-LOOP');
    expect(diagnosis.exitCode).toBe(15);
  });
});

/** A fixed shuffle (no randomness in tests): the order a hashed directory lists names in. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** What a read-only diagnose does: judge each entry in listing order into a fold that lists `keep`. */
function folded(input: RunEvidence, keep: number, seed: number) {
  const fold = newStagingFold(keep);
  for (const entry of shuffled(input.staging, seed)) foldRunEntry(fold, entry, input.rules, input.nowMs);
  return classifyFolded(input, fold);
}

describe('classifyFolded: a diagnosis judged while listing, in any order, listing only the first files', () => {
  it.each(ROWS)('$situation: the same diagnosis as classifyRun, whatever the listing order', (row) => {
    const full = classifyRun(row.evidence);
    for (const seed of [1, 2, 3]) expect(folded(row.evidence, Number.POSITIVE_INFINITY, seed)).toEqual(full);
  });

  it('attack: 2,500 files listed in hash order keep the first 1,000 by path, and count every one', () => {
    const dead = Array.from({ length: 2000 }, (_, i) => staged(100_000 + i, 2 * HOUR, GONE, { bytes: 10 }));
    const live = runningSince(10 * MINUTE);
    const alive = Array.from({ length: 500 }, (_, i) => staged(300_000 + i, MINUTE, live, { bytes: 1 }));
    const input = evidence({ staging: [...dead, ...alive].sort((a, b) => (a.path < b.path ? -1 : 1)) });
    const full = classifyRun(input);
    for (const seed of [7, 8]) {
      const diagnosis = folded(input, 1000, seed);
      expect(diagnosis.orphans).toEqual(full.orphans.slice(0, 1000));
      expect(diagnosis.orphanTotals)
        .toEqual({ count: 2500, listed: 1000, bytes: 20_500, dead: 2000, alive: 500, unknown: 0 });
      const { orphans: _a, orphanTotals: _b, ...rest } = diagnosis;
      const { orphans: _c, orphanTotals: _d, ...fullRest } = full;
      expect(rest).toEqual(fullRest);
    }
  });

  it('attack: the listed files never include one past the first `keep` by path, however late the small names come', () => {
    const files = Array.from({ length: 50 }, (_, i) => staged(5000 + i, 2 * HOUR, GONE));
    const input = evidence({ staging: files });
    const fold = newStagingFold(3);
    // Largest names first: every cut must make room for the smaller ones met later.
    for (const entry of [...files].reverse()) foldRunEntry(fold, entry, input.rules, input.nowMs);
    const diagnosis = classifyFolded(input, fold);
    expect(diagnosis.orphans.map((o) => o.pid)).toEqual([5000, 5001, 5002]);
    expect(diagnosis.orphanTotals.listed).toBe(3);
    expect(diagnosis.orphanTotals.count).toBe(50);
  });

  it('attack: 2,500 findings (symlinks where staging files should be) listed in hash order keep the first 1,000 by path, and count every one', () => {
    const odd = Array.from({ length: 2500 }, (_, i) => staged(100_000 + i, HOUR, GONE, { kind: 'symlink' }));
    const input = evidence({ staging: odd });
    const full = classifyRun(input);
    expect(full.anomalies).toHaveLength(2500);
    expect(full.unlistedAnomalies).toBeUndefined();
    for (const seed of [5, 6]) {
      const diagnosis = folded(input, 1000, seed);
      expect(diagnosis.anomalies).toEqual(full.anomalies.slice(0, 1000));
      expect(diagnosis.unlistedAnomalies).toBe(1500);
      expect([diagnosis.state, diagnosis.summary]).toEqual([full.state, full.summary]);
    }
  });

  it('attack: the listed findings never include one past the first `keep` by path, however late the small names come', () => {
    const odd = Array.from({ length: 50 }, (_, i) => staged(5000 + i, HOUR, GONE, { kind: 'directory' }));
    const input = evidence({ staging: odd });
    const fold = newStagingFold(3);
    for (const entry of [...odd].reverse()) foldRunEntry(fold, entry, input.rules, input.nowMs);
    const diagnosis = classifyFolded(input, fold);
    expect(diagnosis.anomalies.map((a) => a.path)).toEqual(odd.slice(0, 3).map((e) => e.path));
    expect(diagnosis.unlistedAnomalies).toBe(47);
  });

  it('a crash loop judged while listing counts 1,200 attempts, whatever the order, and lists the oldest first', () => {
    const files = Array.from({ length: 1200 }, (_, i) => staged(10_000 + i, DAY - i * SECOND, GONE));
    const input = evidence({ staging: files, recovery: recovery() });
    const full = classifyRun(input);
    const diagnosis = folded(input, 1000, 11);
    expect(diagnosis.state).toBe('CRASH-LOOP');
    expect(diagnosis.attempts).toEqual(full.attempts);
    expect(diagnosis.summary).toBe(full.summary);
  });
});
