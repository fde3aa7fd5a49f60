// Each self-kill point once, with its exact state and the exact result of
// --fix --rerun. Real processes, real SIGKILL, real directories.
import { stat, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRefundsCsv } from '../../examples/refunds-pipeline/generate-input.js';
import { CRASH_POINT_OUTCOMES } from '../../examples/refunds-pipeline/harness/expected-states.js';
import { diagnose, fix, runPipelineProcess } from '../../examples/refunds-pipeline/harness/tools.js';
import {
  createWorkspace,
  exists,
  finalPath,
  makeTempRoot,
  markerPath,
  readOutput,
  removeTree,
  stagingFilesFor,
} from '../../examples/refunds-pipeline/harness/workspace.js';
import { lastStep, readJournal } from '../../examples/refunds-pipeline/journal.js';
import { CRASH_POINTS } from '../../examples/refunds-pipeline/pipeline.js';
import { settleRefundsCsv } from '../../examples/refunds-pipeline/transform.js';
import { builtTools } from './dist.js';

const KEY = '2026-04-24';
const tools = builtTools();
let root: string;
let input: string;

beforeAll(async () => {
  root = await makeTempRoot('refunds-crash-steps-');
  input = generateRefundsCsv({ seed: 'crash-steps', runDate: KEY });
  await writeFile(`${root}/input.csv`, input);
});
afterAll(async () => {
  await removeTree(root);
});

describe.each(CRASH_POINTS)('REFUNDS_CRASH_AT=%s', (point) => {
  const expected = CRASH_POINT_OUTCOMES[point];

  it(`leaves ${expected.state}, and --fix --rerun ends DONE with the clean bytes`, async () => {
    const ws = await createWorkspace(`${root}/${point}`, `${root}/input.csv`);
    const run = await runPipelineProcess(tools, ws, KEY, { journal: true, env: { REFUNDS_CRASH_AT: point } });
    expect(run.signal).toBe('SIGKILL');
    expect(lastStep(await readJournal(ws.journalPath))).toBe(expected.lastStep);

    const { finished, report } = await diagnose(tools, ws, KEY);
    expect(report?.state, finished.stdout + finished.stderr).toBe(expected.state);
    expect(finished.code).toBe(expected.exitCode);
    expect(report?.orphans.map((o) => [o.pid, o.writer])).toEqual(
      Array.from({ length: expected.orphans }, () => [run.pid, 'dead']),
    );

    expect(report?.action).toBe(expected.action);
    const before = await stat(finalPath(ws, KEY)).catch(() => null);

    const fixed = await fix(tools, ws, KEY);
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
    expect((await readOutput(ws, KEY))?.toString('utf8')).toBe(settleRefundsCsv(input, KEY));
    expect(await exists(markerPath(ws, KEY))).toBe(true);
    expect(await stagingFilesFor(ws, KEY)).toEqual([]);
    const after = await diagnose(tools, ws, KEY);
    expect(after.report?.state).toBe('DONE');
    // A re-run publishes by rename, so a new inode; DONE must be left as it was.
    const published = await stat(finalPath(ws, KEY));
    if (expected.action === 'none') expect(published.ino).toBe(before?.ino);
    else expect(published.ino).not.toBe(before?.ino);
  });
});
