import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { startLiveProcess } from '../support/live-process.js';
import { recordingIo } from './cli-io.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const shipped = (name: string) => readFileSync(`${ROOT}runbooks/${name}`, 'utf8');

const CONFIG = {
  pipelines: {
    payments: {
      outDir: '/srv/payments/out',
      stagingDir: '/srv/payments/tmp',
      final: 'settled_{date}.parquet',
      staging: '{date}-{pid}.part',
      marker: '_SUCCESS_{date}',
      rerun: 'python3 /opt/payments/job.py --day {date}',
    },
  },
};

async function runbook(args: string[]) {
  const vol = Volume.fromJSON({ '/etc/payments/crashdiag.json': JSON.stringify(CONFIG) });
  const { io, stdout, stderr } = recordingIo({ fs: vol.promises as unknown as FileSystem });
  const code = await run(['runbook', ...args], io);
  return { code, stdout: stdout(), stderr: stderr() };
}

describe('crashdiag runbook', () => {
  it('prints the shipped runbook as it is without a layout', async () => {
    const { code, stdout } = await runbook(['D']);
    expect(code).toBe(0);
    expect(stdout).toBe(shipped('D.md'));
  });

  it('with --pipeline, fills in the pipeline\'s paths, templates and command instead of the example\'s', async () => {
    const { code, stdout, stderr } = await runbook(['D', '--config', '/etc/payments/crashdiag.json', '--pipeline', 'payments']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('OUT_DIR=/srv/payments/out STAGING_DIR=/srv/payments/tmp');
    expect(stdout).toContain('PIPELINE=payments');
    expect(stdout).toContain('"$OUT_DIR/settled_$RUN_KEY.parquet"');
    expect(stdout).toContain('"$STAGING_DIR/$RUN_KEY-$PID.part"');
    expect(stdout).toContain('--rerun \'python3 /opt/payments/job.py --day {date}\'');
    expect(stdout).toContain('python3 /opt/payments/job.py --day "$RUN_KEY"');
    for (const example of ['/data/refunds', 'refunds_settled', 'JOB_CMD --date', '.csv.success', '--pipeline refunds'])
      expect(stdout).not.toContain(example);
  });

  it('with layout flags, the commands carry the flags instead of --pipeline', async () => {
    const { stdout } = await runbook(['A/B/C', '--out-dir', '/o', '--staging-dir', '/s', '--final', 'x_{date}.csv']);
    expect(stdout).toContain('OUT_DIR=/o STAGING_DIR=/s');
    expect(stdout).toContain('crashdiag diagnose "$RUN_KEY" --out-dir "$OUT_DIR" --staging-dir "$STAGING_DIR" --final \'x_{date}.csv\'');
    expect(stdout).not.toContain('--pipeline');
    expect(stdout).not.toContain('refunds_settled');
  });
});

describe('the process table', () => {
  it('reads a live process\'s command line from /proc', async () => {
    const writer = await startLiveProcess();
    try {
      const facts = createProcessTable().inspect(writer.pid);
      expect(facts.exists).toBe(true);
      expect(facts.command).toMatch(/^sleep \d+$/);
    } finally {
      await writer.stop();
    }
  });
});
