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

describe('runbooks come through io', () => {
  const runbooks = {
    pathOf: (relative: string) => `/opt/crashdiag/${relative}`,
    read: async (relative: string) => `# ${relative} from io\n`,
  };

  it('`runbook D` prints what io.runbooks reads, and opens no file itself', async () => {
    const { io, stdout } = recordingIo({ runbooks });
    expect(await run(['runbook', 'D'], io)).toBe(0);
    expect(stdout()).toBe('# runbooks/D.md from io\n');
  });

  it('a runbook io cannot read is a missing installation, named by io\'s path', async () => {
    const { io, stderr } = recordingIo({ runbooks: { ...runbooks, read: async () => Promise.reject(new Error('ENOENT')) } });
    expect(await run(['runbook', 'D'], io)).toBe(1);
    expect(stderr()).toContain('runbook runbooks/D.md is missing from the installation (/opt/crashdiag/runbooks/D.md)');
  });

  it('diagnose --json names the runbook where io says it is installed', async () => {
    const vol = Volume.fromJSON({ '/o/.keep': '', '/s/.keep': '' });
    const { io, stdout } = recordingIo({ fs: vol.promises as unknown as FileSystem, runbooks });
    await run(['diagnose', '2026-04-24', '--out-dir', '/o', '--staging-dir', '/s', '--final', 'r_{date}.csv', '--json'], io);
    expect((JSON.parse(stdout()) as { runbook: string }).runbook).toMatch(/^\/opt\/crashdiag\/runbooks\/.+\.md$/);
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
