import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/command-specs.js';
import { run } from '../../src/cli/run.js';
import { editDistance, suggestCommand } from '../../src/cli/suggest.js';
import { recordingIo } from './cli-io.js';

async function cli(args: string[]) {
  const { io, stdout, stderr } = recordingIo();
  const code = await run(args, io);
  return { code, stdout: stdout(), stderr: stderr() };
}

describe('help and version', () => {
  it.each([[['-h']], [['--help']], [['diagnose', '-h']], [['diagnose', '--help']], [['scan', '-h']], [['clean', '-h']],
    [['history', '-h']], [['runbook', '-h']], [['diagnose', '2026-04-24', '--out-dir', 'x', '-h']]])(
    '%j prints help, exit 0',
    async (args) => {
      const { code, stdout, stderr } = await cli(args);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toMatch(/^crashdiag/);
      expect(stdout).toContain('--help');
    },
  );

  it.each([[['-V']], [['--version']]])('%j prints package.json\'s version', async (args) => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const { code, stdout } = await cli(args);
    expect(code).toBe(0);
    expect(stdout).toBe(`${version}\n`);
  });
});

describe('an unknown command', () => {
  it.each([
    ['diag', 'crashdiag diagnose'],
    ['dia', 'crashdiag diagnose'],
    ['diagnoes', 'crashdiag diagnose'],
    ['scna', 'crashdiag scan'],
    ['histroy', 'crashdiag history'],
    ['runbok', 'crashdiag runbook'],
  ])('%s is answered with %s', async (word, expected) => {
    const { code, stderr } = await cli([word]);
    expect(code).toBe(2);
    expect(stderr).toContain(expected);
  });

  it.each(['check', 'status', 'inspect', 'show', 'info', 'state', 'verify', 'look', 'chek', 'cheque'])(
    'the question %s is never answered with a command that modifies files',
    (word) => {
      const modifying = COMMANDS.filter((c) => c.modifiesFiles).map((c) => c.name);
      expect(modifying).toContain('clean');
      const hint = suggestCommand(word, COMMANDS) ?? '';
      for (const name of modifying) expect(hint).not.toContain(`crashdiag ${name}`);
    },
  );

  it('check points to diagnose and scan', async () => {
    const { code, stderr } = await cli(['check']);
    expect(code).toBe(2);
    expect(stderr).toContain('crashdiag diagnose <run-key>');
    expect(stderr).toContain('crashdiag scan');
    expect(stderr).not.toContain('clean');
  });

  it('counts a transposition as one edit', () => {
    expect(editDistance('scna', 'scan')).toBe(1);
    expect(editDistance('check', 'clean')).toBe(3);
  });
});

describe('an unknown flag or value', () => {
  it.each([
    [['diagnose', '2026-04-24', '--pipline', 'refunds'], '--pipline', '--pipeline'],
    [['diagnose', '2026-04-24', '--out-diir', '/x'], '--out-diir', '--out-dir'],
    [['scan', '--al'], '--al', '--all'],
    [['clean', '--older-then', '2d'], '--older-then', '--older-than'],
  ])('%j names %s and suggests %s, no parser internals', async (args, given, near) => {
    const { code, stdout, stderr } = await cli(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(given);
    expect(stderr).toContain(`Did you mean ${near}?`);
    expect(stderr).not.toMatch(/outDiir|Unknown argument|pipline,/);
  });

  it('a bad choice is one plain sentence listing the allowed values', async () => {
    const { code, stderr } = await cli(['scan', '--format', 'xml']);
    expect(code).toBe(2);
    expect(stderr).toBe('crashdiag: --format "xml" is not one of table, json or prom.\n');
  });

  it('a missing run key says what is missing, not "Not enough non-option arguments"', async () => {
    const { code, stderr } = await cli(['diagnose']);
    expect(code).toBe(2);
    expect(stderr).toContain('crashdiag diagnose needs a run-key');
    expect(stderr).not.toContain('non-option');
  });

  it('a flag of another command says which command it goes with', async () => {
    const { code, stderr } = await cli(['scan', '--fix']);
    expect(code).toBe(2);
    expect(stderr).toContain('it goes with crashdiag diagnose');
  });

  it.each([
    [['diagnose', '2026-04-24', '--out-dir', 'o', '--lock-timeout', '-5s', '--fix'], '--lock-timeout'],
    [['clean', '--out-dir', 'o', '--staging-dir', 's', '--older-than', '-2h'], '--older-than'],
    [['scan', '--out-dir', 'o', '--staging-dir', 's', '--since', '-3d'], '--since'],
  ])('a value after a space that starts with "-" (%j) is named as read as a flag, with the way to write it', async (args, flag) => {
    const { code, stderr } = await cli(args);
    expect(code).toBe(2);
    const value = args[args.indexOf(flag) + 1] ?? '';
    expect(stderr).toContain(`${flag} needs a value, and "${value}" is read as a flag.`);
    expect(stderr).toContain(`${flag}=${value}`);
  });

  it('a flag with nothing after it still says only that it needs a value', async () => {
    const { code, stderr } = await cli(['diagnose', '2026-04-24', '--out-dir']);
    expect(code).toBe(2);
    expect(stderr).toContain('--out-dir needs a value.');
  });
});
