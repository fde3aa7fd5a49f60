import { describe, expect, it } from 'vitest';
import {
  checkRerunWords,
  rerunArgv,
  shellJoin,
  shellQuote,
  splitCommandWords,
} from '../../src/core/command-words.js';
import { UsageError } from '../../src/core/errors.js';

describe('splitCommandWords', () => {
  it.each([
    ['node job.js --date {date}', ['node', 'job.js', '--date', '{date}']],
    ['  node   job.js\t--date {date}  ', ['node', 'job.js', '--date', '{date}']],
    ['node \'my job.js\' {date}', ['node', 'my job.js', '{date}']],
    ['node "my job.js" {date}', ['node', 'my job.js', '{date}']],
    ['node my\\ job.js {date}', ['node', 'my job.js', '{date}']],
    ['echo \'it\'\\\'\'s\'', ['echo', 'it\'s']],
    ['echo "say \\"hi\\""', ['echo', 'say "hi"']],
    ['echo "a\\nb"', ['echo', 'a\\nb']],
    ['echo \'\' ""', ['echo', '', '']],
    ['a\'b\'"c"d', ['abcd']],
    // Nothing else a shell does: no variables, no globs, no separators, no substitution.
    ['echo $HOME *.csv', ['echo', '$HOME', '*.csv']],
    ['job {date}; rm -rf /', ['job', '{date};', 'rm', '-rf', '/']],
    ['job $(id) `id` a|b a&&b', ['job', '$(id)', '`id`', 'a|b', 'a&&b']],
  ])('splits %j', (text, words) => {
    expect(splitCommandWords(text)).toEqual(words);
  });

  it.each([
    ['node \'job.js', /unclosed single quote/],
    ['node "job.js', /unclosed double quote/],
    ['node job.js\\', /trailing backslash/],
    ['', /no command in it/],
    ['   ', /no command in it/],
  ])('refuses %j', (text, message) => {
    expect(() => splitCommandWords(text)).toThrow(UsageError);
    expect(() => splitCommandWords(text)).toThrow(message);
    expect(() => splitCommandWords(text)).toThrow(/^--rerun /);
  });
});

describe('checkRerunWords', () => {
  it('accepts a command pinned to the run key', () => {
    expect(checkRerunWords(['job', '--date={date}'])).toEqual(['job', '--date={date}']);
  });

  it('refuses a command that does not mention {date}', () => {
    expect(() => checkRerunWords(['job', '--date', 'today'])).toThrow(UsageError);
    expect(() => checkRerunWords(['job', '--date', 'today'])).toThrow(/not be pinned to the run key/);
    expect(() => checkRerunWords([])).toThrow(/is empty/);
  });
});

describe('rerunArgv', () => {
  it('puts the run key in place of every {date}, each word still one argument', () => {
    expect(rerunArgv(['job', '--date', '{date}', '--out=out/{date}/{date}.csv'], '2026-04-24')).toEqual([
      'job',
      '--date',
      '2026-04-24',
      '--out=out/2026-04-24/2026-04-24.csv',
    ]);
  });

  it('does not change the words it was given', () => {
    const words = ['job', '{date}'];
    rerunArgv(words, 'k');
    expect(words).toEqual(['job', '{date}']);
  });
});

describe('shellQuote and shellJoin', () => {
  it.each([
    ['2026-04-24', '2026-04-24'],
    ['/data/_staging/2026-04-24.91247.csv', '/data/_staging/2026-04-24.91247.csv'],
    ['--final=r_x.csv', '--final=r_x.csv'],
    ['r_{date}.csv', '\'r_{date}.csv\''],
    ['my file', '\'my file\''],
    ['it\'s', '\'it\'\\\'\'s\''],
    ['$(rm -rf /)', '\'$(rm -rf /)\''],
    ['', '\'\''],
  ])('quotes %j as %j', (word, quoted) => {
    expect(shellQuote(word)).toBe(quoted);
  });

  it('joins words so that splitting them again gives the same words', () => {
    const words = ['rm', '--', '/tmp/it\'s here/a b.csv', '', '$HOME', 'x"y', 'back\\slash', '*'];
    expect(splitCommandWords(shellJoin(words))).toEqual(words);
  });
});
