import type { Action, State } from '../../../src/core/states.js';
import type { S3_STEPS, Step, STEPS } from '../journal.js';
import type { CRASH_POINTS, S3_CRASH_POINTS } from '../pipeline.js';

/** Where the job keeps out/ and staging: directories, or S3 prefixes. */
export type Mode = 'local' | 's3';
type Table<S extends string> = Readonly<Record<S | 'none', readonly State[]>>;

/**
 * The states crashdiag may name after a kill, given the last step the journal
 * shows complete. A journal line is written just after its step, so the
 * step in flight may already have changed the disk: each row allows the state
 * of "last step done" and of "next step done, not yet journaled".
 */
const FRESH: Table<(typeof STEPS)[number]> = {
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
const PUBLISHED_BEFORE: Table<(typeof STEPS)[number]> = {
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

/**
 * S3 mode, fresh key. The copy is the S3 rename, but it does not take the
 * staging object away: between CopyObject and DeleteObject the output stands
 * unmarked beside a dead orphan, which crashdiag calls UNPUBLISHED (clean,
 * then re-run). A request the server has received completes even when the
 * job dies waiting for the answer, hence the "next step done" column.
 */
const S3_FRESH: Table<(typeof S3_STEPS)[number]> = {
  'none': ['A/B/C'],
  'start': ['A/B/C'],
  'extracted': ['A/B/C'],
  // the staging PutObject may have landed before its journal line
  'transformed': ['A/B/C', 'D'],
  // the CopyObject may have landed before its journal line
  'staged': ['D', 'UNPUBLISHED'],
  // output and orphan; the DeleteObject may have landed: UNPUBLISHED either way
  'copied': ['UNPUBLISHED'],
  // the marker's PutObject may have landed before its journal line
  'staging-deleted': ['UNPUBLISHED', 'DONE'],
  'marked': ['DONE'],
  'done': ['DONE'],
};

/** S3 mode, key published before: the copy replaces the output with the same bytes under the earlier marker. */
const S3_PUBLISHED_BEFORE: Table<(typeof S3_STEPS)[number]> = {
  'none': ['DONE'],
  'start': ['DONE'],
  'extracted': ['DONE'],
  'transformed': ['DONE', 'D-race'],
  'staged': ['D-race'],
  // the DeleteObject may have landed before its journal line
  'copied': ['D-race', 'DONE'],
  'staging-deleted': ['DONE'],
  'marked': ['DONE'],
  'done': ['DONE'],
};

const TABLES: Readonly<Record<Mode, { fresh: Table<string>; publishedBefore: Table<string> }>> = {
  local: { fresh: FRESH, publishedBefore: PUBLISHED_BEFORE },
  s3: { fresh: S3_FRESH, publishedBefore: S3_PUBLISHED_BEFORE },
};

/** A step of the other mode's journal allows nothing: that journal cannot come from this job. */
export function allowedStates(last: Step | null, publishedBefore: boolean, mode: Mode = 'local'): readonly State[] {
  const table = publishedBefore ? TABLES[mode].publishedBefore : TABLES[mode].fresh;
  return table[last ?? 'none'] ?? [];
}

interface CrashPointOutcome {
  lastStep: Step;
  state: State;
  action: Action;
  exitCode: number;
  orphans: number;
}

/** What each self-kill point must leave on a fresh key, exactly. */
export const CRASH_POINT_OUTCOMES: Readonly<Record<(typeof CRASH_POINTS)[number], CrashPointOutcome>> = {
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

/** The same for S3 mode. */
export const S3_CRASH_POINT_OUTCOMES: Readonly<Record<(typeof S3_CRASH_POINTS)[number], CrashPointOutcome>> = {
  'before-staging': { lastStep: 'transformed', state: 'A/B/C', action: 'rerun', exitCode: 10, orphans: 0 },
  'after-staging': { lastStep: 'staged', state: 'D', action: 'clean-then-rerun', exitCode: 11, orphans: 1 },
  'after-copy': { lastStep: 'copied', state: 'UNPUBLISHED', action: 'clean-then-rerun', exitCode: 13, orphans: 1 },
  'after-delete': { lastStep: 'staging-deleted', state: 'UNPUBLISHED', action: 'rerun', exitCode: 13, orphans: 0 },
  'after-marker': { lastStep: 'marked', state: 'DONE', action: 'none', exitCode: 0, orphans: 0 },
};
