import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/core/states.js';
import { crashdiagInProcess } from '../support/in-process.js';
import { removeTempDir } from '../support/temp-dir.js';
import { type Layout, makeTempLayout } from '../support/temp-layout.js';

let layout: Layout;
beforeEach(async () => {
  layout = await makeTempLayout('crashdiag-config-keys-');
});
afterEach(() => removeTempDir(layout.root));

const PIPELINE = '"outDir": "out", "stagingDir": "_staging", "final": "r_{date}.csv"';

async function withConfig(text: string) {
  await fsp.writeFile(join(layout.root, 'crashdiag.config.json'), text);
  return crashdiagInProcess(['diagnose', '2026-04-24', '--pipeline', 'p'], layout.root);
}

describe('config keys that live on Object.prototype, through the CLI', () => {
  it.each([
    ['"constructor": "x"', 'constructor'],
    ['"toString": 5', 'toString'],
    ['"__proto__": {}', '__proto__'],
    ['"hasOwnProperty": 1', 'hasOwnProperty'],
    ['"__defineGetter__": "x"', '__defineGetter__'],
  ])('%s in a pipeline is an unknown setting: exit 2, one sentence', async (entry, key) => {
    const finished = await withConfig(`{"pipelines": {"p": {${PIPELINE}, ${entry}}}}`);
    expect(finished.code).toBe(2);
    expect(finished.stdout).toBe('');
    expect(finished.stderr).toMatch(new RegExp(`^crashdiag: .*: pipelines\\.p\\.${key} is not a known setting\\.\\n`));
    expect(finished.stderr).not.toMatch(/unexpected error|TypeError/);
  });

  it('--pipeline constructor is not found on Object.prototype', async () => {
    await fsp.writeFile(join(layout.root, 'crashdiag.config.json'), `{"pipelines": {"p": {${PIPELINE}}}}`);
    const finished = await crashdiagInProcess(['diagnose', '2026-04-24', '--pipeline', 'constructor'], layout.root);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/has no pipeline named "constructor"/);
  });

  it('reads a config file that starts with a UTF-8 byte-order mark', async () => {
    const finished = await withConfig(`\uFEFF{"pipelines": {"p": {${PIPELINE}}}}`);
    expect(finished.stderr).toBe('');
    expect(finished.code).toBe(EXIT_CODES['A/B/C']);
  });
});
