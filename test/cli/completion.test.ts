import { execFile, spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_EXIT_HELP, COMMANDS } from '../../src/cli/command-specs.js';
import { completionScript } from '../../src/cli/completion.js';
import { renderManPage } from '../../src/cli/man-page.js';
import { run } from '../../src/cli/run.js';
import { useBuiltBin } from '../support/built-bin.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';
import { recordingIo } from './cli-io.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const has = (shell: string) => spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;
const built = useBuiltBin();

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('crashdiag-completion-');
  // `crashdiag` on the PATH, as the scripts expect, and a config with two pipelines where they run.
  await fsp.mkdir(join(dir, 'bin'));
  await fsp.writeFile(join(dir, 'bin', 'crashdiag'), `#!/bin/sh\nexec "${process.execPath}" "${built.bin}" "$@"\n`, { mode: 0o755 });
  const pipeline = { outDir: '/o', stagingDir: '/s', final: 'r_{date}.csv' };
  await fsp.writeFile(join(dir, 'crashdiag.config.json'), JSON.stringify({ pipelines: { refunds: pipeline, payments: pipeline } }));
});
afterAll(() => removeTempDir(dir));

/** What bash completes for the words so far (the last one being typed). */
async function bashCompletes(words: string[]): Promise<string[]> {
  const script = `source /dev/stdin <<'EOS'\n${completionScript('bash')}EOS
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _crashdiag; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const { stdout } = await exec('bash', ['-c', script], { cwd: dir, env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` } });
  return stdout.split('\n').filter(Boolean);
}

describe('crashdiag completion', () => {
  it('bash: commands, flags, values and pipeline names from the config', async () => {
    expect(await bashCompletes(['crashdiag', 'dia'])).toEqual(['diagnose']);
    expect(await bashCompletes(['crashdiag', 'diagnose', '2026-04-24', '--pip'])).toEqual(['--pipeline']);
    expect((await bashCompletes(['crashdiag', 'scan', '--pipeline', ''])).sort()).toEqual(['payments', 'refunds']);
    expect(await bashCompletes(['crashdiag', 'scan', '--format', ''])).toEqual(['table', 'json', 'prom']);
    expect(await bashCompletes(['crashdiag', 'runbook', 'D-'])).toEqual(['D-race']);
  });

  it.skipIf(!has('zsh'))('zsh: the script parses', () => {
    expect(spawnSync('zsh', ['-n'], { input: completionScript('zsh') }).status).toBe(0);
  });

  it.skipIf(!has('fish'))('fish: completes commands, flags and pipeline names', async () => {
    const script = `${completionScript('fish')}\ncomplete -C'crashdiag diagnose 2026-04-24 --pipeline '\ncomplete -C'crashdiag sc'`;
    const { stdout } = await exec('fish', ['-c', script], { cwd: dir, env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` } });
    expect(stdout).toMatch(/^payments\t/m);
    expect(stdout).toMatch(/^refunds\t/m);
    expect(stdout).toMatch(/^scan\t/m);
  });

  it('`crashdiag completion` prints the script for $SHELL, and refuses a shell it does not know', async () => {
    const zsh = recordingIo({ env: { SHELL: '/usr/bin/zsh' } });
    expect(await run(['completion'], zsh.io)).toBe(0);
    expect(zsh.stdout()).toMatch(/^#compdef crashdiag/);
    const tcsh = recordingIo();
    expect(await run(['completion', 'tcsh'], tcsh.io)).toBe(2);
    expect(tcsh.stderr()).toContain('bash, zsh, fish');
  });
});

describe('the man page', () => {
  it('is built into dist/ from the command specs: every command and flag', () => {
    const page = readFileSync(join(ROOT, 'dist', 'crashdiag.1'), 'utf8');
    expect(page).toBe(renderManPage(page.match(/^\.TH CRASHDIAG 1 "([^"]+)"/)?.[1] ?? ''));
    for (const command of COMMANDS) {
      expect(page).toContain(`.SS ${command.name}`);
      for (const option of command.options.filter((o) => !o.hidden))
        expect(page).toContain(`\\fB\\-\\-${option.name.replace(/-/g, '\\-')}\\fR`);
    }
  });

  it('gives each command\'s exit codes once, and all of them (clean\'s 30 too)', () => {
    const page = renderManPage('2026-11-30');
    const status = page.slice(page.indexOf('.SH EXIT STATUS'), page.indexOf('.SH FILES'));
    for (const line of CLEAN_EXIT_HELP.split('\n').slice(1)) expect(status).toContain(line.trim().replace(/-/g, '\\-'));
    expect(page.split('another janitor holds the lock').length - 1).toBe(1);
    expect(page.split('the highest state code among the runs').length - 1).toBe(1);
  });
});

describe('help fits the terminal', () => {
  it.each([[[]], ...COMMANDS.map((c) => [[c.name]])])('`crashdiag %j -h` at 80 columns has no line over 80', async (args) => {
    const { io, stdout } = recordingIo({ env: { COLUMNS: '80' } });
    expect(await run([...(args as string[]), '-h'], io)).toBe(0);
    for (const line of stdout().split('\n')) expect([...line].length, line).toBeLessThanOrEqual(80);
  });

  it('follows a wider terminal', async () => {
    const { io, stdout } = recordingIo({}, { isTTY: true, columns: 160 });
    expect(await run(['diagnose', '-h'], io)).toBe(0);
    expect(Math.max(...stdout().split('\n').map((l) => l.length))).toBeGreaterThan(80);
  });
});
