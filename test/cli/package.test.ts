import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileBundle, unpackCodeCache } from '../../src/bin/code-cache.js';
import { copyBuiltBin, runBin } from '../support/built-bin.js';
import { deadPids } from '../support/dead-pids.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const npm = (args: string[], cwd: string) =>
  run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, env: { ...process.env, npm_config_update_notifier: 'false' } });

let tmp: string;
let packed: { filename: string; files: Array<{ path: string }> };
let prefix: string;

/**
 * The package as a user gets it: packed from this checkout (with the dist/
 * that `npm test` built), installed globally into a temporary prefix
 * without the network, run from another directory.
 */
beforeAll(async () => {
  tmp = await makeTempDir('crashdiag-pack-');
  // A private copy of the checkout's shipped files: a rebuild swapping dist/ mid-pack cannot tear the tarball.
  const source = join(tmp, 'source');
  const { dir } = await copyBuiltBin();
  await fsp.mkdir(source);
  await fsp.rename(join(dir, 'dist'), join(source, 'dist'));
  await removeTempDir(dir);
  for (const name of ['package.json', 'README.md', 'LICENSE', 'runbooks'])
    await fsp.cp(join(ROOT, name), join(source, name), { recursive: true });
  const { stdout } = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], source);
  packed = (JSON.parse(stdout) as (typeof packed)[])[0] as typeof packed;
  prefix = join(tmp, 'prefix');
  await npm(
    ['install', '-g', '--prefix', prefix, '--offline', '--ignore-scripts', '--cache', join(tmp, 'cache'), join(tmp, packed.filename)],
    tmp,
  );
}, 120_000);

afterAll(() => removeTempDir(tmp));

describe('the npm package', () => {
  it('ships the CLI, its runbooks, the man page and the LICENSE, and no dev builds', () => {
    const files = packed.files.map((f) => f.path).sort();
    for (const file of ['LICENSE', 'dist/crashdiag.cjs', 'dist/crashdiag-main.cjs', 'dist/crashdiag-main.cjs.cache', 'dist/crashdiag-yargs.cjs', 'dist/crashdiag-human.cjs', 'dist/crashdiag.1', 'runbooks/D.md', 'runbooks/field-guide.md'])
      expect(files).toContain(file);
    for (const file of files) expect(file).not.toMatch(/demo|bench|crash-campaign|refunds-pipeline|chunks\/|^src\/|^test\/|dist-dev/);
  });

  it('depends on nothing at run time: the bin bundles what it uses', async () => {
    const manifest = JSON.parse(await fsp.readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest.man).toEqual(['./dist/crashdiag.1']);
    expect(manifest.license).toBe('MIT');
  });

  it('installs offline into a prefix, with its man page', () => {
    expect(existsSync(join(prefix, 'bin', 'crashdiag'))).toBe(true);
    expect(existsSync(join(prefix, 'share', 'man', 'man1', 'crashdiag.1'))).toBe(true);
  });

  it('starts from its code cache once installed: npm rewrites file times, never the bytes the cache is checked against', async () => {
    const bundle = join(prefix, 'lib', 'node_modules', 'crashdiag', 'dist', 'crashdiag-main.cjs');
    const bytes = await fsp.readFile(bundle);
    const data = unpackCodeCache(await fsp.readFile(`${bundle}.cache`), bytes);
    expect(data).toBeDefined();
    expect(compileBundle(bytes.toString('utf8'), data).cachedDataRejected).toBe(false);
  });

  it('runs `crashdiag diagnose` from another directory, and JSON names the installed runbook', async () => {
    const elsewhere = join(tmp, 'elsewhere');
    await fsp.mkdir(join(elsewhere, 'out'), { recursive: true });
    await fsp.mkdir(join(elsewhere, '_staging'));
    const [dead] = deadPids(1);
    await fsp.writeFile(join(elsewhere, '_staging', `2026-04-24.${dead}.csv`), 'partial');
    const args = ['diagnose', '2026-04-24', '--out-dir', 'out', '--staging-dir', '_staging', '--final', 'r_{date}.csv'];
    const json = await runBin(join(prefix, 'bin', 'crashdiag'), [...args, '--json'], { cwd: elsewhere });
    expect(json.stderr).toBe('');
    expect(json.code).toBe(11);
    const { runbook } = JSON.parse(json.stdout) as { runbook: string };
    expect(runbook).toBe(join(prefix, 'lib', 'node_modules', 'crashdiag', 'runbooks', 'D.md'));
    expect(existsSync(runbook)).toBe(true);
    const human = await runBin(join(prefix, 'bin', 'crashdiag'), args, { cwd: elsewhere });
    expect(human.stdout).toContain('runbook: crashdiag runbook D');
  });

  it('prints package.json\'s version for --version: the build put it in, no copy in the source', async () => {
    const { version } = JSON.parse(await fsp.readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const { code, stdout } = await runBin(join(prefix, 'bin', 'crashdiag'), ['--version'], { cwd: tmp });
    expect(code).toBe(0);
    expect(stdout).toBe(`${version}\n`);
  });

  it('runs `crashdiag runbook D` from another directory', async () => {
    const { code, stdout } = await runBin(join(prefix, 'bin', 'crashdiag'), ['runbook', 'D'], { cwd: tmp });
    expect(code).toBe(0);
    expect(stdout).toBe(await fsp.readFile(join(ROOT, 'runbooks', 'D.md'), 'utf8'));
  });
});
