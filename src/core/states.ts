// The contract scripts and orchestrators depend on: state names, action names
// and exit codes. Changing any string or number here is a breaking change.

/** The --json documents' version: a change a script must notice bumps it. */
export const SCHEMA_VERSION = 1;

export const STATES = [
  'DONE',
  'A/B/C',
  'D',
  'D-race',
  'UNPUBLISHED',
  'RERUN-FAILED',
  'CRASH-LOOP',
  'BLOCKED',
  'RUNNING',
  'UNKNOWN',
] as const;
export type State = (typeof STATES)[number];

export const ACTIONS = [
  'none',
  'rerun',
  'clean-then-rerun',
  'clean-only',
  'wait',
  'investigate',
  'fix-root-cause',
  'fix-upstream',
] as const;
export type Action = (typeof ACTIONS)[number];

export const EXIT_CODES: Readonly<Record<State, number>> = {
  'DONE': 0,
  'A/B/C': 10,
  'D': 11,
  'D-race': 12,
  'UNPUBLISHED': 13,
  // 14-16: the recovery loop. None of them means "run the job now": a wrapper
  // that re-runs on them is the tight retry loop these states exist to stop.
  'RERUN-FAILED': 14,
  'CRASH-LOOP': 15,
  'BLOCKED': 16,
  'RUNNING': 20,
  'UNKNOWN': 30,
};

/** Exit codes that are not states. */
export const EXIT_UNEXPECTED = 1;
export const EXIT_USAGE = 2;
/**
 * --retry-backoff is in force: a re-run is due, but not yet (JSON
 * retryAfterSeconds says when). Beside RUNNING's 20: both mean "wait, then
 * ask again", never "run now".
 */
export const EXIT_BACKOFF = 21;

/** The runbook for each state, relative to the package root. */
export const RUNBOOKS: Readonly<Record<State, string>> = {
  'DONE': 'runbooks/DONE.md',
  'A/B/C': 'runbooks/ABC.md',
  'D': 'runbooks/D.md',
  'D-race': 'runbooks/D-race.md',
  'UNPUBLISHED': 'runbooks/UNPUBLISHED.md',
  'RERUN-FAILED': 'runbooks/RERUN-FAILED.md',
  'CRASH-LOOP': 'runbooks/CRASH-LOOP.md',
  'BLOCKED': 'runbooks/BLOCKED.md',
  'RUNNING': 'runbooks/RUNNING.md',
  'UNKNOWN': 'runbooks/UNKNOWN.md',
};

export const FIELD_GUIDE = 'runbooks/field-guide.md';
