import { readdir, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateRefundsCsv } from '../../examples/refunds-pipeline/generate-input.js';
import { runPipelineProcess } from '../../examples/refunds-pipeline/harness/tools.js';
import {
  createWorkspace,
  exists,
  makeTempRoot,
  markerPath,
  readOutput,
  removeTree,
  type Workspace,
} from '../../examples/refunds-pipeline/harness/workspace.js';
import { readJournal, STEPS } from '../../examples/refunds-pipeline/journal.js';
import { settleRefundsCsv } from '../../examples/refunds-pipeline/transform.js';
import { builtTools } from './dist.js';

const KEY = '2026-04-24';
const tools = builtTools();
let ws: Workspace;
let input: string;

beforeEach(async () => {
  ws = await createWorkspace(await makeTempRoot('refunds-pipeline-'));
  input = generateRefundsCsv({ seed: 'pipeline-test', runDate: KEY });
  await writeFile(ws.inputPath, input);
});
afterEach(async () => {
  await removeTree(ws.dir);
});

describe('the refunds pipeline, run clean', () => {
  it('publishes the transform of its input with a marker, journaling every step once, in order', async () => {
    const run = await runPipelineProcess(tools, ws, KEY, { journal: true });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect((await readOutput(ws, KEY))?.toString('utf8')).toBe(settleRefundsCsv(input, KEY));
    expect(await exists(markerPath(ws, KEY))).toBe(true);
    expect(await readdir(ws.stagingDir)).toEqual([]);
    const journal = await readJournal(ws.journalPath);
    expect(journal.map((e) => e.step)).toEqual([...STEPS]);
    expect(new Set(journal.map((e) => e.pid))).toEqual(new Set([run.pid]));
  });

  it('gives byte-identical output when re-run for the same key', async () => {
    await runPipelineProcess(tools, ws, KEY);
    const first = await readOutput(ws, KEY);
    const rerun = await runPipelineProcess(tools, ws, KEY);
    expect(rerun.code).toBe(0);
    expect(await readOutput(ws, KEY)).toEqual(first);
    expect(await readdir(ws.stagingDir)).toEqual([]);
  });

  it('refuses an unknown crash point instead of running clean', async () => {
    const run = await runPipelineProcess(tools, ws, KEY, { env: { REFUNDS_CRASH_AT: 'mid-wirte' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('REFUNDS_CRASH_AT="mid-wirte" is not one of');
    expect(await readdir(ws.outDir)).toEqual([]);
  });

  it('fails with one sentence, and leaves no staging file, when the input is missing', async () => {
    const run = await runPipelineProcess(tools, { ...ws, inputPath: `${ws.dir}/missing.csv` }, KEY);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^refunds-pipeline: ENOENT: no such file or directory/);
    expect(await readdir(ws.stagingDir)).toEqual([]);
  });
});
