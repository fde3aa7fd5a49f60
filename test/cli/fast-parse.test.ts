import { describe, expect, it } from 'vitest';
import { COMMANDS, camelCase } from '../../src/cli/command-specs.js';
import { parseFast } from '../../src/cli/fast-parse.js';
import { parseWithYargs } from '../../src/cli/yargs-parser.js';

/** The fields both parsers must agree on: the command, the positional, and every declared option. */
function comparable(argv: Record<string, unknown>): Record<string, unknown> {
  const command = COMMANDS.find((c) => c.name === (argv._ as unknown[])[0]);
  const out: Record<string, unknown> = { command: command?.name };
  if (command?.positional) out.positional = argv[camelCase(command.positional.name)];
  for (const option of command?.options ?? []) {
    const value = argv[camelCase(option.name)];
    if (value !== undefined) out[option.name] = value;
  }
  return out;
}

const AGREE: string[][] = [
  ['diagnose', '2026-04-24', '--out-dir', 'out', '--staging-dir', 'st', '--final', 'r_{date}.csv', '--json'],
  ['diagnose', '2026-04-24', '--out-dir=out', '--staging-dir=st', '--final=r_{date}.csv'],
  ['diagnose', '2026-04-24', '--pipeline', 'refunds', '--no-marker', '--no-pid-check', '--stale-after', '1h'],
  [
    'diagnose',
    '2026-04-24',
    '--pipeline',
    'refunds',
    '--fix',
    '--dry-run',
    '--rerun',
    'node job.js --date {date}',
  ],
  ['diagnose', '--pipeline', 'refunds', '2026-04-24', '--fix', '--quarantine', 'q', '--lock-timeout', '5s'],
  ['scan', '--all', '--since', '30d', '--daily', '--format', 'prom', '--prom-file', 'x.prom'],
  ['clean', '--pipeline', 'p', '--older-than', '2h', '--dry-run', '--json'],
  ['history', '--staging-dir', 'st', '--limit', '5', '--run', '2026-04-24'],
  ['history', '--staging-dir', 'st'],
  ['runbook', 'D'],
  ['pipelines'],
  ['pipelines', '--config', 'c.json', '--json'],
  ['runbook', 'CRASH-LOOP'],
  [
    'diagnose',
    '2026-04-24',
    '--pipeline',
    'refunds',
    '--fix',
    '--retry',
    '--max-attempts',
    '0',
    '--retry-backoff',
    '10m',
    '--input',
    'in/refunds_{date}.csv',
  ],
  ['runbook', 'D', '--pipeline', 'refunds'],
  ['scan', '--state', 'D', '--state', 'D-race', '--problems', '--daily', '--tz', 'UTC', '--until', 'today'],
  ['scan', '--state', 'D'],
  ['history', '--staging-dir', 'st', '--utc'],
  ['completion', 'bash'],
  ['completion'],
];

describe('parseFast', () => {
  it.each(AGREE)('reads %s exactly as yargs does', async (...args) => {
    const fast = parseFast(args);
    expect(fast).toBeDefined();
    const slow = await parseWithYargs(args);
    expect(comparable(fast as Record<string, unknown>)).toEqual(comparable(slow.argv));
  });

  it.each([
    [['--help']],
    [['diagnose', '--help']],
    [['--version']],
    [['diagnose']],
    [['diagnose', 'a', 'b']],
    [['diagnose', 'k', '--bogus']],
    [['diagnose', 'k', '--out-dir']],
    [['diagnose', 'k', '--out-dir', '--json']],
    [['diagnose', 'k', '--json', 'false']],
    [['diagnose', 'k', '--out-dir', 'a', '--out-dir', 'b']],
    [['diagnose', 'k', '-x']],
    [['diagnose', 'k', '--', '--json']],
    [['scan', '--format', 'xml']],
    [['history', '--limit', 'ten']],
    [['nonsense']],
    [[]],
  ])('leaves %j to yargs', (args) => {
    expect(parseFast(args)).toBeUndefined();
  });
});
