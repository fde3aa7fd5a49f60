import { Volume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { loadConfig, pickPipeline } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import type { FileSystem } from '../../src/core/fs.js';

const PATH = '/etc/crashdiag/crashdiag.config.json';

function fsWith(files: Record<string, string>): FileSystem {
  return Volume.fromJSON(files).promises as unknown as FileSystem;
}

async function load(config: unknown, path = PATH) {
  const text = typeof config === 'string' ? config : JSON.stringify(config);
  return loadConfig(fsWith({ [path]: text }), path, true);
}

async function refusal(config: unknown): Promise<UsageError> {
  try {
    await load(config);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error('the config was accepted');
}

const REFUNDS = {
  outDir: '/data/out',
  stagingDir: '/data/_staging',
  final: 'refunds_settled_{date}.csv',
};

describe('loadConfig', () => {
  it('reads every setting of every pipeline', async () => {
    const config = await load({
      $schema: './schema.json',
      pipelines: {
        refunds: {
          ...REFUNDS,
          staging: '{date}.{host}.{pid}.csv',
          marker: '_SUCCESS_{date}',
          freshWithin: '12h',
          staleAfter: '30m',
          pidCheck: false,
          rerun: 'node job.js --date {date}',
        },
        latest: { outDir: 'out', stagingDir: '../tmp', final: 'latest.csv', marker: false },
      },
    });
    expect(config?.path).toBe(PATH);
    expect([...(config?.pipelines.keys() ?? [])]).toEqual(['refunds', 'latest']);
    expect(config?.pipelines.get('refunds')).toEqual({
      ...REFUNDS,
      staging: '{date}.{host}.{pid}.csv',
      marker: '_SUCCESS_{date}',
      freshWithin: '12h',
      staleAfter: '30m',
      pidCheck: false,
      rerun: ['node', 'job.js', '--date', '{date}'],
    });
    expect(config?.pipelines.get('latest')?.marker).toBe(false);
  });

  it('resolves relative directories against the config file, not the working directory', async () => {
    const config = await load({
      pipelines: {
        p: {
          outDir: 'out',
          stagingDir: '../_staging',
          final: 'x_{date}',
          quarantine: 'q',
          auditLog: 'a.jsonl',
        },
      },
    });
    expect(config?.pipelines.get('p')).toMatchObject({
      outDir: '/etc/crashdiag/out',
      stagingDir: '/etc/_staging',
      quarantine: '/etc/crashdiag/q',
      auditLog: '/etc/crashdiag/a.jsonl',
    });
  });

  it('reads a re-run command given as words, and a null marker as no marker', async () => {
    const config = await load({
      pipelines: { p: { ...REFUNDS, marker: null, rerun: ['node', 'my job.js', '{date}'] } },
    });
    expect(config?.pipelines.get('p')).toMatchObject({
      marker: false,
      rerun: ['node', 'my job.js', '{date}'],
    });
  });

  it('returns nothing for a missing file nobody asked for', async () => {
    expect(await loadConfig(fsWith({}), '/work/crashdiag.config.json', false)).toBeUndefined();
  });

  it('refuses a missing file that was asked for', async () => {
    const load = loadConfig(fsWith({}), '/nope/c.json', true);
    await expect(load).rejects.toThrow(UsageError);
    await expect(load).rejects.toThrow('The config file /nope/c.json does not exist.');
  });

  it('refuses a directory', async () => {
    const fs = fsWith({ '/etc/crashdiag/c.json/x': '' });
    await expect(loadConfig(fs, '/etc/crashdiag/c.json', true)).rejects.toThrow(/is a directory/);
  });

  it('refuses malformed JSON in one sentence naming the file', async () => {
    const error = await refusal('{"pipelines": {');
    expect(error.message).toMatch(
      /^The config file \/etc\/crashdiag\/crashdiag\.config\.json is not valid JSON: .+\.$/,
    );
    expect(error.message).not.toContain('\n');
  });

  it.each([
    [[], /must hold a JSON object/],
    [null, /must hold a JSON object/],
    ['"text"', /must hold a JSON object/],
    [{ pipelines: {}, pipeline: {} }, /unknown top-level key "pipeline"/],
    [{}, /"pipelines" must be an object/],
    [{ pipelines: [] }, /"pipelines" must be an object/],
    [{ pipelines: { 'bad name': REFUNDS } }, /pipelines\.bad name: a pipeline name may use/],
    [{ pipelines: { p: 'refunds' } }, /pipelines\.p must be an object/],
    [{ pipelines: { p: [] } }, /pipelines\.p must be an object/],
  ])('refuses the shape %j', async (config, message) => {
    expect((await refusal(config)).message).toMatch(message);
  });

  it.each([
    ['bogus', 1, /pipelines\.p\.bogus is not a known setting\./],
    ['outdir', 'x', /pipelines\.p\.outdir is not a known setting \(did you mean outDir\?\)/],
    [
      'fresh_within',
      '6h',
      /pipelines\.p\.fresh_within is not a known setting \(did you mean freshWithin\?\)/,
    ],
    ['outDir', '', /pipelines\.p\.outDir must be a non-empty string/],
    ['stagingDir', 42, /pipelines\.p\.stagingDir must be a non-empty string/],
    ['final', ['x'], /pipelines\.p\.final must be a non-empty string/],
    ['pidCheck', 'no', /pipelines\.p\.pidCheck must be true or false/],
    [
      'marker',
      true,
      /pipelines\.p\.marker \(a template, or false for no marker\) must be a non-empty string/,
    ],
    ['rerun', 'node job.js --date today', /pipelines\.p\.rerun does not mention \{date\}/],
    ['rerun', [], /pipelines\.p\.rerun must be a command string or a non-empty array of words/],
    ['rerun', ['job', 1], /pipelines\.p\.rerun must be a command string/],
    ['rerun', 'node \'job.js {date}', /pipelines\.p\.rerun .* has an unclosed single quote/],
    ['freshWithin', '6 hours', /pipelines\.p\.freshWithin "6 hours" is not a duration/],
    ['staleAfter', '15', /pipelines\.p\.staleAfter "15" is not a duration/],
    ['staleAfter', '0s', /pipelines\.p\.staleAfter must be longer than zero/],
    ['final', 'out/{date}.csv', /pipelines\.p\.final "out\/\{date\}\.csv" contains a path separator/],
    ['staging', '{date}.csv', /pipelines\.p\.staging "\{date\}\.csv" must contain \{pid\}/],
    ['marker', '{pid}.ok', /pipelines\.p\.marker "\{pid\}\.ok" uses \{pid\}/],
  ])('names the bad key: %s = %j', async (key, value, message) => {
    const error = await refusal({ pipelines: { p: { ...REFUNDS, [key]: value } } });
    expect(error.message).toMatch(message);
    expect(error.message).toContain(PATH);
  });

  it('lists the known settings when a key is unknown', async () => {
    const error = await refusal({ pipelines: { p: { ...REFUNDS, bogus: 1 } } });
    expect(error.hint).toMatch(/^Known settings: outDir, stagingDir, final, staging, marker, freshWithin/);
  });
});

describe('pickPipeline', () => {
  it('picks the named pipeline', async () => {
    const config = await load({ pipelines: { refunds: REFUNDS } });
    expect(pickPipeline(config, 'refunds', PATH)).toEqual(REFUNDS);
  });

  it('refuses a name the config does not have, and lists the ones it has', async () => {
    const config = await load({ pipelines: { refunds: REFUNDS, chargebacks: REFUNDS } });
    expect(() => pickPipeline(config, 'payouts', PATH)).toThrow(UsageError);
    expect(() => pickPipeline(config, 'payouts', PATH)).toThrow(
      `The config file ${PATH} has no pipeline named "payouts".`,
    );
    try {
      pickPipeline(config, 'payouts', PATH);
    } catch (error) {
      expect((error as UsageError).hint).toBe('It has: refunds, chargebacks.');
    }
  });

  it('refuses --pipeline without a config file', () => {
    expect(() => pickPipeline(undefined, 'refunds', '/work/crashdiag.config.json')).toThrow(
      '--pipeline refunds needs a config file, and /work/crashdiag.config.json does not exist.',
    );
  });
});

describe('config keys that live on Object.prototype', () => {
  const refunds = JSON.stringify(REFUNDS).slice(1, -1);
  it.each([
    ['"constructor": "x"'],
    ['"toString": 5'],
    ['"__proto__": {"outDir": "/elsewhere"}'],
    ['"hasOwnProperty": 1'],
    ['"__defineGetter__": "x"'],
    ['"valueOf": "x"'],
  ])('a pipeline setting %s is an unknown setting, in one sentence', async (entry) => {
    const error = await refusal(`{"pipelines": {"p": {${refunds}, ${entry}}}}`);
    const key = /^"([^"]+)"/.exec(entry)?.[1] ?? '';
    expect(error.message).toBe(`${PATH}: pipelines.p.${key} is not a known setting.`);
  });

  it.each([['constructor'], ['toString'], ['hasOwnProperty'], ['__proto__']])(
    'a top-level key %s is an unknown top-level key',
    async (key) => {
      const error = await refusal(`{"pipelines": {"p": {${refunds}}}, "${key}": {}}`);
      expect(error.message).toMatch(new RegExp(`unknown top-level key "${key}"`));
    },
  );

  it('a config whose only "pipelines" is inherited has none', async () => {
    const error = await refusal('{"__proto__": {"pipelines": {}}}');
    expect(error.message).toMatch(/unknown top-level key "__proto__"/);
  });

  it.each([['constructor'], ['toString'], ['hasOwnProperty']])(
    'a pipeline named %s is an ordinary pipeline, and only where the config names it',
    async (name) => {
      const config = await load(`{"pipelines": {"${name}": {${refunds}}}}`);
      expect(pickPipeline(config, name, PATH)).toEqual(REFUNDS);
      const other = await load(`{"pipelines": {"p": {${refunds}}}}`);
      expect(() => pickPipeline(other, name, PATH)).toThrow(`has no pipeline named "${name}"`);
    },
  );

  it('refuses a pipeline named __proto__ as a bad name', async () => {
    const error = await refusal(`{"pipelines": {"__proto__": {${refunds}}}}`);
    expect(error.message).toMatch(/pipelines\.__proto__: a pipeline name may use/);
  });

  it('reads a config file that starts with a UTF-8 byte-order mark', async () => {
    const config = await load(`\uFEFF{"pipelines": {"p": {${refunds}}}}`);
    expect(config?.pipelines.get('p')).toEqual(REFUNDS);
  });
});

describe('loadConfig: the recovery loop’s settings', () => {
  it('reads maxAttempts, retryBackoff and input (a string or a list, relative to the file)', async () => {
    const config = await load({
      pipelines: {
        one: { ...REFUNDS, maxAttempts: 0, retryBackoff: '10m', input: 'in/refunds_{date}.csv' },
        two: { ...REFUNDS, maxAttempts: 5, input: ['/data/in/a_{date}.csv', 'b.csv'] },
      },
    });
    expect(config?.pipelines.get('one')).toMatchObject({
      maxAttempts: 0,
      retryBackoff: '10m',
      input: ['/etc/crashdiag/in/refunds_{date}.csv'],
    });
    expect(config?.pipelines.get('two')).toMatchObject({
      maxAttempts: 5,
      input: ['/data/in/a_{date}.csv', '/etc/crashdiag/b.csv'],
    });
  });

  it.each([
    [{ maxAttempts: -1 }, /maxAttempts must be a whole number/],
    [{ maxAttempts: 2.5 }, /maxAttempts must be a whole number/],
    [{ maxAttempts: '3' }, /maxAttempts must be a whole number/],
    [{ retryBackoff: 'soon' }, /retryBackoff "soon" is not a duration/],
    [{ input: [] }, /input must be a path template or a non-empty list/],
    [{ input: ['a', 3] }, /input must be a path template or a non-empty list/],
  ])('refuses %j', async (setting, message) => {
    const error = await refusal({ pipelines: { refunds: { ...REFUNDS, ...setting } } });
    expect(error.message).toMatch(message);
  });
});
