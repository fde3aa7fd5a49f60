import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import { formatLocalTime } from '../../src/render/time.js';
import { recordingIo } from './cli-io.js';

const STAGING = '/data/refunds/_staging';
const LOG = `${STAGING}/.crashdiag/audit.jsonl`;

function auditVolume(): FileSystem {
  const record = (extra: Record<string, unknown>) =>
    JSON.stringify({
      time: '2026-04-24T06:08:00.000Z',
      user: 'oncall',
      host: 'batch-01',
      pid: 777,
      pipeline: null,
      run: '2026-04-24',
      ...extra,
    });
  const lines = [
    record({ op: 'delete', path: `${STAGING}/2026-04-24.91247.csv`, bytes: 8192, writerPid: 91247 }),
    record({ op: 'rerun', command: ['node', 'job.js', '--date', '2026-04-24'], exitStatus: 0 }),
  ];
  return Volume.fromJSON({ [LOG]: `${lines.join('\n')}\n` }).promises as unknown as FileSystem;
}

async function history(args: string[], env: Record<string, string> = {}) {
  const { io, stdout, stderr } = recordingIo({ fs: auditVolume(), env: { NO_COLOR: '1', ...env } });
  const code = await run(['history', '--staging-dir', STAGING, ...args], io);
  return { code, stdout: stdout(), stderr: stderr() };
}

describe('crashdiag history', () => {
  it('shows sizes like the rest of the tool (8.0 KiB, not 8192)', async () => {
    const { code, stdout } = await history([]);
    expect(code).toBe(0);
    expect(stdout).toContain('8.0 KiB');
    expect(stdout).not.toContain('8192');
  });

  it('shows local times with their offset, from $TZ', async () => {
    const { stdout } = await history([], { TZ: 'Europe/Berlin' });
    expect(stdout).toContain('2026-04-24 08:08:00 +02:00');
    expect(stdout).not.toContain('2026-04-24T06:08:00.000Z');
  });

  it('--utc shows UTC', async () => {
    const { stdout } = await history(['--utc'], { TZ: 'America/New_York' });
    expect(stdout).toContain('2026-04-24 06:08:00 +00:00');
  });

  it('prints the directory once and the files by name', async () => {
    const { stdout } = await history([]);
    expect(stdout).toContain(`directory: ${STAGING}`);
    expect(stdout).toContain(' 2026-04-24.91247.csv ');
  });

  it('at 80 columns no table line is wider than 80', async () => {
    const { stdout } = await history([], { COLUMNS: '80', TZ: 'Asia/Kolkata' });
    expect(stdout).toContain('+05:30');
    for (const line of stdout.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(80);
  });

  it('formats a time in a zone with a negative offset', () => {
    expect(formatLocalTime(Date.parse('2026-01-15T03:00:00Z'), 'America/New_York')).toBe('2026-01-14 22:00:00 -05:00');
  });
});

describe('errors under --json', () => {
  it('a usage error is one JSON object on stdout with the same exit code; the sentence still goes to stderr', async () => {
    const { io, stdout, stderr } = recordingIo();
    const code = await run(['diagnose', '2026-04-24', '--json', '--stale-after', '15'], io);
    expect(code).toBe(2);
    expect(stderr()).toContain('crashdiag: Missing --out-dir');
    expect(JSON.parse(stdout())).toEqual({
      schemaVersion: 1,
      exitCode: 2,
      error: {
        code: 'usage',
        message: expect.stringContaining('Missing --out-dir'),
        hint: expect.any(String),
      },
    });
  });

  it('a parse error (unknown flag) under --json is JSON too', async () => {
    const { io, stdout } = recordingIo();
    const code = await run(['scan', '--json', '--pipline', 'x'], io);
    expect(code).toBe(2);
    const body = JSON.parse(stdout()) as { error: { message: string; hint: string } };
    expect(body.error.message).toContain('--pipline');
    expect(body.error.hint).toContain('--pipeline');
  });

  it('an unexpected failure under --format json is JSON too, exit 1', async () => {
    const broken = new Proxy({} as FileSystem, {
      get: () => async () => {
        throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
      },
    });
    const { io, stdout, stderr } = recordingIo({ fs: broken });
    const code = await run(['scan', '--out-dir', '/o', '--staging-dir', '/s', '--final', 'x_{date}', '--format', 'json'], io);
    expect(code).toBe(1);
    expect(stderr()).toMatch(/^crashdiag: unexpected error/);
    expect(JSON.parse(stdout())).toMatchObject({ exitCode: 1, error: { code: 'unexpected' } });
  });

  it('without --json, stdout stays empty', async () => {
    const { io, stdout } = recordingIo();
    expect(await run(['diagnose', '2026-04-24'], io)).toBe(2);
    expect(stdout()).toBe('');
  });
});

describe('clean --json when another janitor holds the lock', () => {
  it('prints one JSON object saying so, exit 20, and removes nothing', async () => {
    const now = Date.parse('2026-04-24T06:08:00Z');
    const orphan = `${STAGING}/2026-04-20.91247.csv`;
    const vol = Volume.fromJSON({
      [orphan]: 'partial',
      [`${STAGING}/.crashdiag/.clean.lock`]: JSON.stringify({ pid: 4242, host: 'batch-01', token: 't', since: '2026-04-24T06:00:00Z' }),
      '/data/refunds/out/.keep': '',
    });
    vol.utimesSync(orphan, (now - 4 * 86_400_000) / 1000, (now - 4 * 86_400_000) / 1000);
    const { io, stdout, stderr } = recordingIo({
      fs: vol.promises as unknown as FileSystem,
      processes: { hostname: 'batch-01', inspect: (pid) => (pid === 4242 ? { exists: true, startMs: 0 } : { exists: false }) },
      // The lock wait reads the real clock between its (instant) sleeps: let it move.
      now: (() => {
        let clock = now;
        return () => (clock += 100);
      })(),
    });
    const args = ['clean', '--out-dir', '/data/refunds/out', '--staging-dir', STAGING, '--final', 'r_{date}.csv', '--lock-timeout', '1s', '--json'];
    expect(await run(args, io)).toBe(20);
    expect(stderr()).toContain('Another janitor is at work');
    expect(JSON.parse(stdout())).toMatchObject({ schemaVersion: 1, exitCode: 20, error: { code: 'lock-timeout' } });
    expect(vol.existsSync(orphan)).toBe(true);
  });
});
