// A crash loop left alone, or a directory full of what no job wrote, gives a
// key thousands of findings and causes. The README's promise: --json lists up
// to 1,000 of each with their totals, the human view the first few and a
// total; never 100,000 rows, never a shorter list that passes for the whole.
import { promises as fsp } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deadPids } from '../support/dead-pids.js';
import { crashdiagInProcess } from '../support/in-process.js';
import { FINAL_TEMPLATE, KEY, publish, stagingPathFor, writeAged } from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';

let layout: Layout;
useTempLayout('crashdiag-long-findings-', (made) => {
  layout = made;
});

const LISTED = 1000;
const flags = () => ['--out-dir', layout.outDir, '--staging-dir', layout.stagingDir, '--final', FINAL_TEMPLATE];

interface Json {
  state: string;
  anomalies: Array<{ path: string; reason: string }>;
  anomalyTotals?: { count: number; listed: number };
  causes: Array<{ kind: string; pid?: number }>;
  causeTotals?: { count: number; listed: number };
}

async function diagnoseJson(extra: readonly string[] = []): Promise<Json> {
  const ran = await crashdiagInProcess(['diagnose', KEY, ...flags(), '--json', ...extra], layout.root);
  expect(ran.stderr).toBe('');
  return JSON.parse(ran.stdout) as Json;
}

describe('attack: 1,200 symlinks named like staging files (1,200 findings)', () => {
  it('--json lists the first 1,000 by path and counts all of them; read-only and --fix --dry-run agree; the human view says so', async () => {
    const target = `${layout.root}/elsewhere`;
    await fsp.writeFile(target, 'not ours');
    const paths: string[] = [];
    for (let i = 0; i < 1200; i++) {
      const path = stagingPathFor(layout, 200_000 + i);
      await fsp.symlink(target, path);
      paths.push(path);
    }
    paths.sort();
    for (const extra of [[], ['--fix', '--dry-run']]) {
      const json = await diagnoseJson(extra);
      expect(json.anomalies.map((a) => a.path)).toEqual(paths.slice(0, LISTED));
      expect(json.anomalyTotals).toEqual({ count: 1200, listed: LISTED });
    }
    const human = await crashdiagInProcess(['diagnose', KEY, ...flags()], layout.root);
    expect(human.stdout).toMatch(/\.\.\. and 1180 more findings \(--json lists the first 1000 and the totals\)/);
  });

  it('a handful of findings: all listed, and the totals say every one is', async () => {
    await fsp.symlink(layout.root, stagingPathFor(layout, 424_242));
    const json = await diagnoseJson();
    expect(json.anomalies).toHaveLength(1);
    expect(json.anomalyTotals).toEqual({ count: 1, listed: 1 });
  });
});

describe('attack: a crash loop of 1,200 dead writers after a day that published (1,200 partial writes)', () => {
  it('--json lists the first 1,000 causes and counts all of them; the human view says so', async () => {
    await publish(layout, '2026-04-23', 'x'.repeat(1000));
    for (const pid of deadPids(1200)) await writeAged(stagingPathFor(layout, pid), 'y'.repeat(100));
    const json = await diagnoseJson(['--max-attempts', '0']);
    const partial = json.causes.filter((c) => c.kind === 'partial-write');
    expect(json.causes.length).toBeLessThanOrEqual(LISTED);
    expect(partial.length).toBeGreaterThan(900);
    expect(json.causeTotals).toEqual({ count: json.causes.length - partial.length + 1200, listed: json.causes.length });
    expect(json.causeTotals?.count).toBeGreaterThan(LISTED);
    const human = await crashdiagInProcess(['diagnose', KEY, ...flags(), '--max-attempts', '0'], layout.root);
    expect(human.stdout).toMatch(/\.\.\. and \d+ more causes \(--json lists the first 1000 and the totals\)/);
  });
});
