// A REAL OOM kill: the example job runs in a memory cgroup with too small a
// limit, allocates mid-write, and the kernel kills it. crashdiag must name the
// cause, oom-kill, with the PID the kernel log gives. Skipped, with the reason
// printed, where no memory cgroup can be made (not root, no controller).
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRefundsCsv } from '../../examples/refunds-pipeline/generate-input.js';
import { makeMemoryCage, type MemoryCage } from '../../examples/refunds-pipeline/harness/memory-cage.js';
import { cleanEnv, layoutFlags, pipelineArgs } from '../../examples/refunds-pipeline/harness/tools.js';
import { runToExit } from '../../examples/refunds-pipeline/harness/processes.js';
import {
  createWorkspace,
  makeTempRoot,
  removeTree,
  stagingFilesFor,
  type Workspace,
} from '../../examples/refunds-pipeline/harness/workspace.js';
import { builtTools } from './dist.js';

const KEY = '2026-04-24';
const LIMIT = 96 * 1024 * 1024;
const tools = builtTools();
let root: string;
let ws: Workspace;
let cage: MemoryCage | { skip: string };

beforeAll(async () => {
  root = await makeTempRoot('refunds-oom-');
  ws = await createWorkspace(root);
  await writeFile(ws.inputPath, generateRefundsCsv({ seed: 'oom', runDate: KEY }));
  cage = await makeMemoryCage(`crashdiag-oom-test-${process.pid}`, LIMIT);
  if ('skip' in cage) console.warn(`skipping the real OOM-kill test: ${cage.skip}`);
});
afterAll(async () => {
  if (cage && !('skip' in cage)) await cage.remove();
  await removeTree(root);
});

interface CauseJson {
  kind: string;
  pid?: number;
  at?: string;
  detail: string;
}

describe('a real OOM kill, in a memory cgroup', () => {
  it('dies mid-write; diagnose names oom-kill with the PID from the kernel log', async (ctx) => {
    if ('skip' in cage) {
      ctx.skip();
      return;
    }
    const died = await cage.run(tools.node, [tools.pipeline, ...pipelineArgs(ws, KEY, false)], {
      env: cleanEnv({ REFUNDS_HOG_MB: '1024' }),
      timeoutMs: 60_000,
    });
    expect(died.signal, died.stderr).toBe('SIGKILL');
    const orphans = await stagingFilesFor(ws, KEY);
    expect(orphans).toHaveLength(1);
    expect(orphans[0]).toContain(`.${died.pid}.`);

    const diagnosed = await runToExit(tools.node, [tools.crashdiag, 'diagnose', KEY, ...layoutFlags(ws), '--json'], {
      env: cleanEnv(),
      timeoutMs: 30_000,
    });
    expect(diagnosed.code, diagnosed.stderr).toBe(11);
    const report = JSON.parse(diagnosed.stdout) as { state: string; causes: CauseJson[]; causeNotes: string[] };
    expect(report.state).toBe('D');
    const oom = report.causes.find((c) => c.kind === 'oom-kill');
    expect(oom, JSON.stringify(report.causes.concat(report.causeNotes as never[]))).toBeDefined();
    expect(oom?.pid).toBe(died.pid);
    expect(oom?.detail).toMatch(/anon-rss \d/);
    expect(oom?.detail).toContain('memory cgroup');
    expect(oom?.at).toMatch(/^\d{4}-\d\d-\d\dT/);

    const human = await runToExit(tools.node, [tools.crashdiag, 'diagnose', KEY, ...layoutFlags(ws)], {
      env: cleanEnv(),
      timeoutMs: 30_000,
    });
    expect(human.stdout).toContain('Why it died');
    expect(human.stdout).toContain(`oom-kill PID ${died.pid}`);
  });
});
