import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { EXIT_CODES, STATES, type State } from '../../../src/core/states.js';
import { generateRefundsCsv } from '../generate-input.js';
import { lastStep, readJournal, S3_STEPS, STEPS, type Step } from '../journal.js';
import { createRandom } from '../random.js';
import { settleRefundsCsv } from '../transform.js';
import { allowedStates, type Mode } from './expected-states.js';
import { createS3Workspace, type S3Site, s3StagingObjects } from './s3-workspace.js';
import type { Finished } from './processes.js';
import { diagnose, fix, runJournaledJob, runPipelineProcess, type Tools } from './tools.js';
import {
  createWorkspace,
  describeDisk,
  hasMarker,
  makeTempRoot,
  readOutput,
  removeTree,
  stagingFilesFor,
  type Workspace,
} from './workspace.js';

export interface CampaignOptions {
  runs: number;
  seed: string;
  /** Kills in flight at once. */
  jobs: number;
  tools: Tools;
  /** Pacing of the killed runs, so that uniform kill moments reach every step. */
  stepDelayMs: number;
  /** Run only this kill (1-based), to replay a failure. */
  only?: number | undefined;
  /** Keep the workspaces of failed kills for a post-mortem. */
  keepFailures?: boolean;
  /**
   * S3 mode: out/ and staging are prefixes in this bucket (one pair per
   * kill); the journal, the input and crashdiag's lock and audit log stay local.
   */
  site?: S3Site | undefined;
  /**
   * What a campaign must have shown (kills landed mid-run, steps and states
   * reached) to prove what it is run for. When the planned runs fall short
   * (a machine whose load changed after the clean run was timed, so kills
   * drawn from it came after the job had finished), more kills are run, a
   * few at a time, each planned from (seed, index) as any other, up to
   * `maxRuns` in all.
   */
  until?: { readonly enough: (outcomes: readonly KillOutcome[]) => boolean; readonly maxRuns: number } | undefined;
  onProgress?: (done: number, total: number) => void;
}

export interface KillOutcome {
  index: number;
  key: string;
  publishedBefore: boolean;
  killAtMs: number;
  /** false: the run finished before the kill landed. */
  killed: boolean;
  lastStep: Step | null;
  state: State | null;
  allowed: readonly State[];
  problems: string[];
  workspace: string | null;
}

export interface CampaignResult {
  options: Omit<CampaignOptions, 'tools' | 'onProgress' | 'site'>;
  mode: Mode;
  keys: readonly string[];
  cleanRunMs: number;
  outcomes: KillOutcome[];
  passed: number;
  failed: number;
  wallMs: number;
}

const KEYS = ['2026-04-22', '2026-04-23', '2026-04-24'];
/** Share of kills aimed at the very start, before the process has journaled anything. */
const PRE_START_SHARE = 0.05;
/** Share of kills on a key an earlier, completed run already published. */
const PUBLISHED_BEFORE_SHARE = 0.3;
/** Kill moments run to a little past a clean run's length, so some land after it ends. */
const OVERSHOOT = 1.1;

interface Plan {
  index: number;
  key: string;
  publishedBefore: boolean;
  killAtMs: number;
}

/** Each kill's plan comes from (seed, index) alone: replaying one kill needs nothing else. */
export function planKill(seed: string, index: number, cleanRunMs: number): Plan {
  const random = createRandom(`${seed}/kill/${index}`);
  const key = random.pick(KEYS);
  const publishedBefore = random.next() < PUBLISHED_BEFORE_SHARE;
  const killAtMs = random.next() < PRE_START_SHARE ? 0 : Math.round(random.next() * cleanRunMs * OVERSHOOT);
  return { index, key, publishedBefore, killAtMs };
}

/** A workspace for one run: local directories, or a pair of prefixes named after its directory. */
function workspaceMaker(site: S3Site | undefined, root: string) {
  return (dir: string, input: string): Promise<Workspace> =>
    site ? createS3Workspace(dir, site, `${basename(root)}/${basename(dir)}`, input) : createWorkspace(dir, input);
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const started = performance.now();
  const { tools, seed } = options;
  const mode: Mode = options.site ? 's3' : 'local';
  const root = await makeTempRoot(mode === 's3' ? 'refunds-s3-campaign-' : 'refunds-campaign-');
  const makeWorkspace = workspaceMaker(options.site, root);
  const outcomes: KillOutcome[] = [];
  let keptSomething = false;
  try {
    const inputs = join(root, 'inputs');
    await mkdir(inputs);
    const references = new Map<string, Buffer>();
    for (const key of KEYS) {
      const input = generateRefundsCsv({ seed, runDate: key });
      await writeFile(join(inputs, `${key}.csv`), input);
      references.set(
        key,
        await referenceOutput(
          tools,
          await makeWorkspace(join(root, `reference-${key}`), join(inputs, `${key}.csv`)),
          key,
          input,
        ),
      );
    }
    const cleanRunMs = await measureCleanRun(
      tools,
      (i) => makeWorkspace(join(root, `timing-${i}`), join(inputs, `${KEYS[0]}.csv`)),
      options,
      mode,
    );

    const indexes = options.only ? [options.only] : Array.from({ length: options.runs }, (_, i) => i + 1);
    let next = 0;
    const worker = async () => {
      while (next < indexes.length) {
        const index = indexes[next++] as number;
        const plan = planKill(seed, index, cleanRunMs);
        const dir = join(root, `kill-${String(index).padStart(5, '0')}`);
        const ws = await makeWorkspace(dir, join(inputs, `${plan.key}.csv`));
        const outcome = await runKill(
          tools,
          ws,
          plan,
          references.get(plan.key) as Buffer,
          options.stepDelayMs,
          mode,
        );
        if (outcome.problems.length > 0 && options.keepFailures) {
          outcome.workspace = dir;
          keptSomething = true;
        } else {
          await removeTree(dir);
        }
        outcomes.push(outcome);
        options.onProgress?.(outcomes.length, indexes.length);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.jobs) }, worker));
    const until = options.only ? undefined : options.until;
    while (until && indexes.length < until.maxRuns && !until.enough(outcomes)) {
      const more = Math.min(Math.max(1, options.jobs), until.maxRuns - indexes.length);
      for (let i = 0; i < more; i++) indexes.push(indexes.length + 1);
      await Promise.all(Array.from({ length: more }, worker));
    }
    outcomes.sort((a, b) => a.index - b.index);
    const failed = outcomes.filter((o) => o.problems.length > 0).length;
    const { tools: _tools, onProgress: _onProgress, site: _site, ...shown } = options;
    return {
      options: shown,
      mode,
      keys: KEYS,
      cleanRunMs,
      outcomes,
      passed: outcomes.length - failed,
      failed,
      wallMs: performance.now() - started,
    };
  } finally {
    if (!keptSomething) await removeTree(root);
  }
}

/** A clean run's bytes, checked against the pure transform: the binary and the module must agree. */
async function referenceOutput(tools: Tools, ws: Workspace, key: string, text: string): Promise<Buffer> {
  const run = await runPipelineProcess(tools, ws, key);
  if (run.code !== 0) throw new Error(`the reference run for ${key} failed: ${run.stderr}`);
  const bytes = (await readOutput(ws, key)) as Buffer;
  if (!bytes.equals(Buffer.from(settleRefundsCsv(text, key)))) {
    throw new Error(`the pipeline's output for ${key} differs from the pure transform's`);
  }
  await removeTree(ws.dir);
  return bytes;
}

/**
 * A paced run of the job, killed `killAtMs` into it. Locally the clock starts
 * at the spawn; in S3 mode at the journal's first line (see runJournaledJob).
 */
async function runPaced(
  tools: Tools,
  ws: Workspace,
  key: string,
  stepDelayMs: number,
  mode: Mode,
  killAtMs?: number,
): Promise<Finished> {
  const env = { REFUNDS_STEP_DELAY_MS: String(stepDelayMs) };
  if (mode === 's3') {
    const run = await runJournaledJob(tools, ws, key, env, killAtMs);
    return { ...run, ms: run.sinceStartMs ?? run.ms };
  }
  return runPipelineProcess(tools, ws, key, {
    journal: true,
    env,
    ...(killAtMs === undefined ? {} : { killAfterMs: killAtMs }),
  });
}

/**
 * The median paced run, to its reaped exit: the span kill moments are drawn
 * from. Measured `jobs` at a time, as the kills run: on a loaded machine a
 * lone run starts faster than four together, and kill moments drawn from the
 * lone figure then land mostly before the job has written anything.
 */
async function measureCleanRun(
  tools: Tools,
  makeWorkspace: (index: number) => Promise<Workspace>,
  options: CampaignOptions,
  mode: Mode,
): Promise<number> {
  const times: number[] = [];
  const together = Math.max(1, options.jobs);
  for (let round = 0; round < 2; round++) {
    const runs = await Promise.all(Array.from({ length: together }, async (_, i) => {
      const ws = await makeWorkspace(round * together + i);
      const run = await runPaced(tools, ws, KEYS[0] as string, options.stepDelayMs, mode);
      await removeTree(ws.dir);
      return run;
    }));
    for (const run of runs) {
      if (run.code !== 0) throw new Error(`a clean paced run failed: ${run.stderr}`);
      times.push(run.ms);
    }
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)] as number;
}

async function runKill(
  tools: Tools,
  ws: Workspace,
  plan: Plan,
  reference: Buffer,
  stepDelayMs: number,
  mode: Mode,
) {
  const { key, publishedBefore } = plan;
  const outcome: KillOutcome = {
    ...plan,
    killed: false,
    lastStep: null,
    state: null,
    allowed: [],
    problems: [],
    workspace: null,
  };
  const problems = outcome.problems;

  if (publishedBefore) {
    const earlier = await runPipelineProcess(tools, ws, key);
    if (earlier.code !== 0) problems.push(`the earlier run failed: ${earlier.stderr.trim()}`);
  }

  const run = await runPaced(tools, ws, key, stepDelayMs, mode, plan.killAtMs);
  outcome.killed = run.signal === 'SIGKILL';
  if (!outcome.killed && run.code !== 0)
    problems.push(`the run failed on its own (exit ${run.code}): ${run.stderr.trim()}`);

  outcome.lastStep = lastStep(await readJournal(ws.journalPath));
  if (!outcome.killed && run.code === 0 && outcome.lastStep !== 'done') {
    problems.push(`the run exited 0 but its journal ends at ${outcome.lastStep ?? 'nothing'}`);
  }
  outcome.allowed = allowedStates(outcome.lastStep, publishedBefore, mode);

  const { finished, report } = await diagnose(tools, ws, key);
  // An error document (a usage error, an unreachable endpoint) is JSON too, but no diagnosis.
  if (report === null || !Array.isArray(report.orphans)) {
    problems.push(
      `diagnose printed no diagnosis (exit ${finished.code}): ${finished.stdout.trim()} ${finished.stderr.trim()}`,
    );
  } else {
    outcome.state = report.state;
    if (!outcome.allowed.includes(report.state)) {
      problems.push(`diagnosed ${report.state}, but the journal allows only ${outcome.allowed.join(' or ')}`);
    }
    if (finished.code !== EXIT_CODES[report.state] || report.exitCode !== finished.code) {
      problems.push(`exit code ${finished.code} for ${report.state} (JSON says ${report.exitCode})`);
    }
    for (const orphan of report.orphans) {
      // The killed run is the only writer that can have left a staging file here.
      if (orphan.pid !== run.pid)
        problems.push(`orphan ${orphan.path} names PID ${orphan.pid}, not ${run.pid}`);
      if (orphan.writer !== 'dead')
        problems.push(`the writer of ${orphan.path} is "${orphan.writer}": ${orphan.writerReason}`);
    }
  }
  const diskAfterKill = problems.length > 0 ? await describeDisk(ws) : '';

  const fixed = await fix(tools, ws, key);
  if (fixed.code !== 0) {
    // The tool's own one-line messages (stderr) say why; its report tables add nothing here.
    const why = (fixed.stderr.trim() || fixed.stdout.trim()).split('\n').slice(-4).join(' | ');
    problems.push(`--fix --rerun exited ${fixed.code}: ${why}`);
  }
  const output = await readOutput(ws, key);
  if (output === null) problems.push('after --fix there is no output');
  else if (!output.equals(reference))
    problems.push(
      `after --fix the output differs from a clean run's (${output.length} vs ${reference.length} bytes)`,
    );
  if (!(await hasMarker(ws, key))) problems.push('after --fix the success marker is missing');
  // Each S3 kill has a staging prefix of its own, and crashdiag keeps nothing there: it must be empty.
  const leftovers = ws.s3 ? await s3StagingObjects(ws.s3) : await stagingFilesFor(ws, key);
  if (leftovers.length > 0) problems.push(`after --fix staging still holds ${leftovers.join(', ')}`);
  if (diskAfterKill) problems.push(`disk after the kill:\n${diskAfterKill}`);
  return outcome;
}

const ROW_STEPS: Readonly<Record<Mode, readonly (Step | null)[]>> = {
  local: [null, ...STEPS],
  s3: [null, ...S3_STEPS],
};

/** The (earlier run published × last journal step × state) table, failures, and the totals. */
export function formatCampaignReport(result: CampaignResult): string {
  const { options } = result;
  const seen = STATES.filter((s) => result.outcomes.some((o) => o.state === s));
  const columns = [
    ...seen,
    ...(result.outcomes.some((o) => o.state === null) ? ['no answer'] : []),
    'failed',
  ];
  const head = ['published before', 'last journal step', ...columns];
  const rows: string[][] = [];
  for (const publishedBefore of [false, true]) {
    for (const step of ROW_STEPS[result.mode]) {
      const group = result.outcomes.filter(
        (o) => o.publishedBefore === publishedBefore && o.lastStep === step,
      );
      if (group.length === 0) continue;
      const count = (pick: (o: KillOutcome) => boolean) => {
        const n = group.filter(pick).length;
        return n === 0 ? '' : String(n);
      };
      rows.push([
        publishedBefore ? 'yes' : 'no',
        step ?? '(nothing)',
        ...seen.map((s) => count((o) => o.state === s)),
        ...(columns.includes('no answer') ? [count((o) => o.state === null)] : []),
        count((o) => o.problems.length > 0),
      ]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();

  const out: string[] = [];
  const killed = result.outcomes.filter((o) => o.killed).length;
  out.push(
    `kill -9 campaign${result.mode === 's3' ? ' on S3' : ''}: ${result.outcomes.length} runs (${killed} killed mid-run, ${result.outcomes.length - killed} finished first), seed ${options.seed}, ${options.jobs} at a time`,
    `keys ${result.keys.join(', ')}; a clean paced run takes ${Math.round(result.cleanRunMs)} ms (${options.stepDelayMs} ms per step); kills drawn over 0-${Math.round(result.cleanRunMs * OVERSHOOT)} ms${result.mode === 's3' ? ' after the first journal line' : ''}`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
  );
  for (const o of result.outcomes.filter((x) => x.problems.length > 0)) {
    out.push(
      `FAIL kill ${o.index} (key ${o.key}, published before: ${o.publishedBefore ? 'yes' : 'no'}, kill at ${o.killAtMs} ms, last step ${o.lastStep ?? '(nothing)'}, state ${o.state ?? '-'})`,
      ...o.problems.map((p) => `  - ${p}`),
      ...(o.workspace ? [`  workspace kept: ${o.workspace}`] : []),
      `  replay: npm run crash-campaign -- ${result.mode === 's3' ? '--s3 ' : ''}--seed ${options.seed} --only ${o.index} --step-delay-ms ${options.stepDelayMs}`,
    );
  }
  out.push(`${result.passed} passed, ${result.failed} failed (${(result.wallMs / 1000).toFixed(1)} s)`);
  return `${out.join('\n')}\n`;
}
