import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  allowedStates,
  CRASH_POINT_OUTCOMES,
  S3_CRASH_POINT_OUTCOMES,
} from '../../examples/refunds-pipeline/harness/expected-states.js';
import { lastStep, openJournal, readJournal, S3_STEPS, STEPS } from '../../examples/refunds-pipeline/journal.js';
import { CRASH_POINTS, S3_CRASH_POINTS } from '../../examples/refunds-pipeline/pipeline.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('refunds-journal-');
});
afterEach(() => removeTempDir(dir));

describe('the step journal', () => {
  it('appends one JSON line per step and reads them back in order', async () => {
    const path = join(dir, 'journal.jsonl');
    const journal = await openJournal(path, 42, () => new Date('2026-04-24T06:00:00Z'));
    await journal.record('start');
    await journal.record('extracted', { rows: 3 });
    await journal.close();
    expect(await readFile(path, 'utf8')).toBe(
      '{"step":"start","pid":42,"at":"2026-04-24T06:00:00.000Z"}\n'
      + '{"step":"extracted","pid":42,"at":"2026-04-24T06:00:00.000Z","rows":3}\n',
    );
    expect(lastStep(await readJournal(path))).toBe('extracted');
  });

  it('counts a torn last line as a step that did not complete', async () => {
    const path = join(dir, 'journal.jsonl');
    await writeFile(path, '{"step":"start","pid":1,"at":"x"}\n{"step":"extr');
    expect(lastStep(await readJournal(path))).toBe('start');
  });

  it('reads a missing journal as a process that never started', async () => {
    expect(lastStep(await readJournal(join(dir, 'none.jsonl')))).toBeNull();
  });
});

describe('allowedStates', () => {
  it('allows exactly one state before anything is written and after the marker', () => {
    expect(allowedStates(null, false)).toEqual(['A/B/C']);
    expect(allowedStates('done', false)).toEqual(['DONE']);
    expect(allowedStates(null, true)).toEqual(['DONE']);
  });

  it('never allows RUNNING or UNKNOWN for a reaped process', () => {
    for (const step of [null, ...STEPS]) {
      for (const published of [false, true]) {
        expect(allowedStates(step, published)).not.toContain('RUNNING');
        expect(allowedStates(step, published)).not.toContain('UNKNOWN');
      }
    }
  });

  it('has an exact outcome for every self-kill point, consistent with the journal table', () => {
    for (const point of CRASH_POINTS) {
      const outcome = CRASH_POINT_OUTCOMES[point];
      expect(allowedStates(outcome.lastStep, false)).toContain(outcome.state);
    }
  });

  it('in S3 mode: the same ends, an unmarked output beside its orphan after the copy, and every self-kill point', () => {
    expect(allowedStates(null, false, 's3')).toEqual(['A/B/C']);
    expect(allowedStates('done', false, 's3')).toEqual(['DONE']);
    expect(allowedStates('copied', false, 's3')).toEqual(['UNPUBLISHED']);
    for (const step of [null, ...S3_STEPS]) {
      for (const published of [false, true]) {
        expect(allowedStates(step, published, 's3')).not.toContain('RUNNING');
        expect(allowedStates(step, published, 's3')).not.toContain('UNKNOWN');
      }
    }
    for (const point of S3_CRASH_POINTS) {
      const outcome = S3_CRASH_POINT_OUTCOMES[point];
      expect(allowedStates(outcome.lastStep, false, 's3')).toContain(outcome.state);
    }
  });

  it('allows nothing for a step of the other mode: that journal is not this job\'s', () => {
    expect(allowedStates('copied', false, 'local')).toEqual([]);
    expect(allowedStates('renamed', false, 's3')).toEqual([]);
  });
});
