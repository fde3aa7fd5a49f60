import type { Action, State } from '../../../src/core/states.js';
import type { Step } from '../journal.js';
import type { CrashPoint } from '../pipeline.js';

/**
 * The states crashdiag may name after a kill, given the last step the journal
 * shows complete. A journal line is written just after its step, so the
 * step in flight may already have changed the disk: each row allows the state
 * of "last step done" and of "next step done, not yet journaled".
 */
const FRESH: Readonly<Record<Step | 'none', readonly State[]>> = {
  'none': ['A/B/C'],
  'start': ['A/B/C'],
  'extracted': ['A/B/C'],
  // open(2) of the staging file may have run before its journal line
  'transformed': ['A/B/C', 'D'],
  'staging-created': ['D'],
  // rename(2) may have run before its journal line
  'staged': ['D', 'UNPUBLISHED'],
  // the marker may have been created before its journal line
  'renamed': ['UNPUBLISHED', 'DONE'],
  'marked': ['DONE'],
  'done': ['DONE'],
};

/**
 * When an earlier run of the same key is already published (output and
 * marker), the killed run can only add orphans or atomically replace the
 * output with the same bytes under the earlier marker.
 */
const PUBLISHED_BEFORE: Readonly<Record<Step | 'none', readonly State[]>> = {
  'none': ['DONE'],
  'start': ['DONE'],
  'extracted': ['DONE'],
  'transformed': ['DONE', 'D-race'],
  'staging-created': ['D-race'],
  'staged': ['D-race', 'DONE'],
  'renamed': ['DONE'],
  'marked': ['DONE'],
  'done': ['DONE'],
};

export function allowedStates(last: Step | null, publishedBefore: boolean): readonly State[] {
  return (publishedBefore ? PUBLISHED_BEFORE : FRESH)[last ?? 'none'];
}

/** What each self-kill point must leave on a fresh key, exactly. */
export const CRASH_POINT_OUTCOMES: Readonly<
  Record<CrashPoint, { lastStep: Step; state: State; action: Action; exitCode: number; orphans: number }>
> = {
  'before-staging': { lastStep: 'transformed', state: 'A/B/C', action: 'rerun', exitCode: 10, orphans: 0 },
  'mid-write': {
    lastStep: 'staging-created',
    state: 'D',
    action: 'clean-then-rerun',
    exitCode: 11,
    orphans: 1,
  },
  'after-rename': { lastStep: 'renamed', state: 'UNPUBLISHED', action: 'rerun', exitCode: 13, orphans: 0 },
  'after-marker': { lastStep: 'marked', state: 'DONE', action: 'none', exitCode: 0, orphans: 0 },
};
