import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { readConfigFor } from '../../src/cli/pipeline-options.js';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import { recordingIo } from './cli-io.js';

const config = (outDir: string) =>
  JSON.stringify({ pipelines: { refunds: { outDir, stagingDir: `${outDir}/_staging`, final: 'r_{date}.csv' } } });

const PLACES = {
  flag: '/srv/flag.json',
  env: '/srv/env.json',
  cwd: '/work/crashdiag.config.json',
  xdg: '/xdg/crashdiag/config.json',
  home: '/home/oncall/.config/crashdiag/config.json',
  system: '/opt/etc/crashdiag/config.json',
} as const;

function recording(present: ReadonlyArray<keyof typeof PLACES>, env: Record<string, string> = {}) {
  const vol = Volume.fromJSON(Object.fromEntries(present.map((p) => [PLACES[p], config(`/data/${p}`)])));
  return recordingIo({
    fs: vol.promises as unknown as FileSystem,
    cwd: '/work',
    env: { NO_COLOR: '1', HOME: '/home/oncall', ...env },
    systemConfigDir: '/opt/etc/crashdiag',
  });
}

const setup = (present: ReadonlyArray<keyof typeof PLACES>, env: Record<string, string> = {}) =>
  recording(present, env).io;

describe('config discovery', () => {
  it.each([
    [['flag', 'env', 'cwd', 'xdg', 'home', 'system'], { config: PLACES.flag }, { CRASHDIAG_CONFIG: PLACES.env, XDG_CONFIG_HOME: '/xdg' }, PLACES.flag],
    [['env', 'cwd', 'xdg', 'system'], {}, { CRASHDIAG_CONFIG: PLACES.env, XDG_CONFIG_HOME: '/xdg' }, PLACES.env],
    [['cwd', 'xdg', 'system'], {}, { XDG_CONFIG_HOME: '/xdg' }, PLACES.cwd],
    [['xdg', 'home', 'system'], {}, { XDG_CONFIG_HOME: '/xdg' }, PLACES.xdg],
    [['home', 'system'], {}, {}, PLACES.home],
    [['home', 'system'], {}, { XDG_CONFIG_HOME: 'relative/ignored' }, PLACES.home],
    [['system'], {}, { XDG_CONFIG_HOME: '/xdg' }, PLACES.system],
  ] as const)('with %j present, takes the first in order', async (present, flags, env, expected) => {
    const { path, config: found } = await readConfigFor(flags, setup(present, env), true);
    expect(path).toBe(expected);
    expect(found?.pipelines.has('refunds')).toBe(true);
  });

  it('a named config that does not exist is an error, not a fall-through to the next place', async () => {
    await expect(readConfigFor({}, setup(['cwd'], { CRASHDIAG_CONFIG: '/nope.json' }), true)).rejects.toThrow(
      /\/nope\.json does not exist/,
    );
  });

  it('none found: one sentence naming every place looked, exit 2', async () => {
    const { io, stderr } = recording([]);
    expect(await run(['diagnose', '2026-04-24', '--pipeline', 'refunds'], io)).toBe(2);
    expect(stderr()).toContain(`--pipeline refunds needs a config file, and none was found; looked for ${PLACES.cwd}, ${PLACES.home}, ${PLACES.system}.`);
  });

  it('diagnose --pipeline uses the discovered file', async () => {
    const { io, stderr } = recording(['system']);
    // The system config's directories do not exist on this volume: the error names them.
    expect(await run(['diagnose', '2026-04-24', '--pipeline', 'refunds'], io)).toBe(2);
    expect(stderr()).toContain('/data/system');
  });
});
