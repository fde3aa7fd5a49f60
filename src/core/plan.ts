import { rerunArgv } from './command-words.js';
import type { Diagnosis } from './diagnosis.js';
import type { State } from './states.js';

/** One staging file the fix will remove (delete, or move to quarantine). */
export interface PlannedRemoval {
  readonly path: string;
  readonly bytes: number;
  readonly pid: number;
  readonly writerReason: string;
}

/** What --fix will do for one diagnosis, decided before anything is touched. */
export interface FixPlan {
  readonly run: string;
  readonly state: State;
  readonly removals: readonly PlannedRemoval[];
  /** Move orphans here instead of deleting them. */
  readonly quarantineDir: string | undefined;
  /** The re-run's argv, the run key in place; null when the state needs none. */
  readonly rerun: readonly string[] | null;
  /** The state needs a re-run but no command is known. */
  readonly rerunMissing: boolean;
}

/**
 * The safe action for a state, as a list of concrete steps. Pure. RUNNING and
 * UNKNOWN plan nothing; D-race, CRASH-LOOP and BLOCKED never re-run; only dead
 * writers' files are removed.
 */
export function planFix(
  diagnosis: Diagnosis,
  rerunWords: readonly string[] | undefined,
  quarantineDir: string | undefined,
): FixPlan {
  // A crash loop and a blocked run still lose their orphans (recorded, so the
  // attempts stay counted), but are never re-run.
  const cleans = ['clean-then-rerun', 'clean-only', 'fix-root-cause', 'fix-upstream'].includes(diagnosis.action);
  const reruns = diagnosis.action === 'rerun' || diagnosis.action === 'clean-then-rerun';
  const removals = cleans
    ? diagnosis.orphans
        .filter((o) => o.writer === 'dead')
        .map((o) => ({ path: o.path, bytes: o.bytes, pid: o.pid, writerReason: o.writerReason }))
    : [];
  return {
    run: diagnosis.run,
    state: diagnosis.state,
    removals,
    quarantineDir: removals.length > 0 ? quarantineDir : undefined,
    rerun: reruns && rerunWords ? rerunArgv(rerunWords, diagnosis.run) : null,
    rerunMissing: reruns && !rerunWords,
  };
}
