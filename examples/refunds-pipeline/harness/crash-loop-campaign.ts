import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateRefundsCsv } from '../generate-input.js';
import { createRandom } from '../random.js';
import { settleRefundsCsv } from '../transform.js';
import { layoutFlags, rerunCommand, runCrashdiag, runPipelineProcess, type Tools } from './tools.js';
import {
  createWorkspace,
  makeTempRoot,
  markerPath,
  readOutput,
  removeTree,
  stagingFilesFor,
  type Workspace,
} from './workspace.js';

/**
 * One key killed again and again. Each sequence is a seeded list of what a
 * wrapper and an on-call engineer do to it:
 * - `kill`: the scheduled job dies mid-write (an OOM kill, say): one more orphan;
 * - `clean`: `diagnose --fix` without a re-run command: the orphans go, the count must not;
 * - `rerun`: `diagnose --fix --rerun` with the job still crashing: a failed re-run (14),
 *   or, once the key is a crash loop, no re-run at all (15).
 * After every step the attempts diagnose counts must be exactly the failures
 * so far, and the state CRASH-LOOP from the third on; finally `--fix --retry`
 * must publish the clean bytes.
 */
export type LoopAction = 'kill' | 'clean' | 'rerun';

export interface LoopOptions {
  sequences: number;
  seed: string;
  tools: Tools;
}

export interface LoopOutcome {
  index: number;
  actions: LoopAction[];
  problems: string[];
}

const KEY = '2026-04-24';
const MAX_ATTEMPTS = 3;

export function planSequence(seed: string, index: number): LoopAction[] {
  const random = createRandom(`${seed}/loop/${index}`);
  const actions: LoopAction[] = ['kill'];
  for (let i = random.int(3, 6); i > 0; i--) actions.push(random.pick(['kill', 'clean', 'rerun'] as const));
  return actions;
}

interface Counted {
  code: number | null;
  state: string | null;
  attempts: number | null;
}

async function crashdiag(tools: Tools, ws: Workspace, extra: string[], env: NodeJS.ProcessEnv = {}): Promise<Counted> {
  const run = await runCrashdiag(tools, ['diagnose', KEY, ...layoutFlags(ws), '--json', ...extra], {
    env,
    timeoutMs: 30_000,
  });
  try {
    const report = JSON.parse(run.stdout) as { state: string; attempts?: { count: number } };
    return { code: run.code, state: report.state, attempts: report.attempts?.count ?? null };
  } catch {
    return { code: run.code, state: null, attempts: null };
  }
}

async function rerunRecords(ws: Workspace): Promise<number> {
  const text = await readFile(join(ws.stagingDir, '.crashdiag', 'audit.jsonl'), 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.includes('"op":"rerun"')).length;
}

async function runSequence(tools: Tools, ws: Workspace, actions: readonly LoopAction[], reference: Buffer) {
  const problems: string[] = [];
  let failures = 0;
  const loop = () => failures >= MAX_ATTEMPTS;
  for (const [step, action] of actions.entries()) {
    const at = `step ${step + 1} (${action}, ${failures} failure(s) before)`;
    if (action === 'kill') {
      const run = await runPipelineProcess(tools, ws, KEY, { env: { REFUNDS_CRASH_AT: 'mid-write' } });
      if (run.signal !== 'SIGKILL') problems.push(`${at}: the job was not killed (exit ${run.code})`);
      failures++;
    } else if (action === 'clean') {
      const fixed = await crashdiag(tools, ws, ['--fix']);
      const want = loop() ? 15 : 10;
      if (fixed.code !== want) problems.push(`${at}: --fix exited ${fixed.code}, expected ${want}`);
      if ((await stagingFilesFor(ws, KEY)).length > 0) problems.push(`${at}: --fix left orphans`);
    } else {
      const before = await rerunRecords(ws);
      const fixed = await crashdiag(tools, ws, ['--fix', '--rerun', rerunCommand(tools, ws)], {
        REFUNDS_CRASH_AT: 'mid-write',
      });
      const reran = (await rerunRecords(ws)) - before;
      if (loop()) {
        if (fixed.code !== 15) problems.push(`${at}: --fix --rerun on a crash loop exited ${fixed.code}, expected 15`);
        if (reran !== 0) problems.push(`${at}: a crash loop was re-run`);
      } else {
        if (fixed.code !== 14) problems.push(`${at}: a re-run that died exited ${fixed.code}, expected 14`);
        if (reran !== 1) problems.push(`${at}: ${reran} re-runs recorded, expected 1`);
        failures++;
      }
    }
    const seen = await crashdiag(tools, ws, []);
    if (seen.attempts !== failures) problems.push(`${at}: diagnose counts ${seen.attempts} attempts, expected ${failures}`);
    const wantState = loop() ? 'CRASH-LOOP' : null;
    if (wantState && seen.state !== wantState) problems.push(`${at}: state ${seen.state}, expected ${wantState}`);
    if (!wantState && seen.state === 'CRASH-LOOP') problems.push(`${at}: CRASH-LOOP after only ${failures} failure(s)`);
  }
  const retried = await crashdiag(tools, ws, ['--fix', '--retry', '--rerun', rerunCommand(tools, ws)]);
  if (retried.code !== 0) problems.push(`--fix --retry exited ${retried.code}, expected 0`);
  const output = await readOutput(ws, KEY);
  if (!output?.equals(reference)) problems.push('after --fix --retry the output is not the clean run\'s');
  if (!(await readFile(markerPath(ws, KEY)).then(() => true, () => false))) problems.push('no marker after --retry');
  if ((await stagingFilesFor(ws, KEY)).length > 0) problems.push('orphans left after --retry');
  return problems;
}

/** Runs the sequences one after another (each is a chain: its steps cannot overlap). */
export async function runCrashLoopCampaign(options: LoopOptions): Promise<LoopOutcome[]> {
  const root = await makeTempRoot('refunds-crash-loop-');
  try {
    const input = join(root, 'input.csv');
    const text = generateRefundsCsv({ seed: options.seed, runDate: KEY });
    await writeFile(input, text);
    const reference = Buffer.from(settleRefundsCsv(text, KEY));
    const outcomes: LoopOutcome[] = [];
    for (let index = 1; index <= options.sequences; index++) {
      const actions = planSequence(options.seed, index);
      const ws = await createWorkspace(join(root, `loop-${index}`), input);
      outcomes.push({ index, actions, problems: await runSequence(options.tools, ws, actions, reference) });
    }
    return outcomes;
  } finally {
    await removeTree(root);
  }
}

export function formatCrashLoopReport(outcomes: readonly LoopOutcome[]): string {
  const lines = outcomes.map(
    (o) => `${o.problems.length === 0 ? 'ok  ' : 'FAIL'} sequence ${o.index}: ${o.actions.join(' ')}${o.problems.map((p) => `\n  - ${p}`).join('')}`,
  );
  const failed = outcomes.filter((o) => o.problems.length > 0).length;
  return `${['repeated kills of one key (crash loop after 3 failed attempts):', ...lines, `${outcomes.length - failed} passed, ${failed} failed`].join('\n')}\n`;
}
