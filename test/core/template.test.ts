import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import {
  compileFinalTemplate,
  compileMarkerTemplate,
  compileStagingTemplate,
} from '../../src/core/template.js';

const KEY = '2026-04-24';

describe('compileStagingTemplate', () => {
  const ours = compileStagingTemplate('{date}.{pid}.csv').matcherFor(KEY);

  it('matches a staging name for the key and reads the PID from it', () => {
    expect(ours('2026-04-24.91247.csv')).toEqual({ runKey: KEY, pid: 91247, host: undefined });
    expect(ours('2026-04-24.1.csv')).toEqual({ runKey: KEY, pid: 1, host: undefined });
  });

  it.each([
    ['2026-04-240.123.csv', 'a key that only starts like ours'],
    ['2026-04-24.backup.csv', 'no PID'],
    ['2026-04-24.12x.csv', 'a PID with a letter in it'],
    ['2026-04-23.123.csv', 'another day\'s key'],
    ['2026-04-24.123.csv.bak', 'an extra suffix'],
    ['x2026-04-24.123.csv', 'a prefix'],
    ['2026-04-24..csv', 'an empty PID'],
    ['2026-04-24.-123.csv', 'a negative PID'],
    ['2026-04-24.+123.csv', 'a signed PID'],
    ['2026-04-24.1e3.csv', 'a PID in exponent form'],
    ['2026-04-24. 123.csv', 'a PID with a space'],
    ['2026-04-24.123.CSV', 'another extension'],
    ['2026-04-24.123.csv\n', 'a trailing newline'],
    ['2026-04-24.0123.csv', 'a PID with a leading zero, which no process prints'],
    ['2026-04-24.0.csv', 'PID 0, which no writer has'],
    ['2026-04-24.20260425.csv', 'a number above 4,194,304, the kernel\'s PID limit: a date, not a PID'],
    ['2026-04-24.4194305.csv', 'one above the PID limit'],
    ['2026-04-24.99999999999999999999.csv', 'a number no PID reaches'],
    ['2026-04-24', 'the bare key'],
    ['', 'an empty name'],
  ])('ignores %j (%s)', (name) => {
    expect(ours(name)).toBeUndefined();
  });

  it('attack (issue 9.1): a number that cannot be a Linux PID does not make a staging name, for one key or any', () => {
    const template = compileStagingTemplate('{date}.{pid}.csv');
    expect(template.matcherFor('K')('K.20260425.csv')).toBeUndefined();
    expect(template.matchAny('K.20260425.csv')).toBeUndefined();
    expect(template.matchAny('K.0.csv')).toBeUndefined();
    // The largest PID the kernel can hand out is still one.
    expect(template.matcherFor('K')('K.4194304.csv')).toEqual({ runKey: 'K', pid: 4_194_304, host: undefined });
    expect(template.matchAny('K.4194304.csv')).toEqual({ runKey: 'K', pid: 4_194_304, host: undefined });
    // A key that ends in a number is still its own key, never a PID.
    expect(template.matchAny('K.20260425.123.csv')).toEqual({ runKey: 'K.20260425', pid: 123, host: undefined });
  });

  it('escapes the run key: a dot in the key is not a wildcard', () => {
    const matcher = compileStagingTemplate('{date}.{pid}.csv').matcherFor('run.1');
    expect(matcher('run.1.42.csv')).toEqual({ runKey: 'run.1', pid: 42, host: undefined });
    expect(matcher('runX1.42.csv')).toBeUndefined();
  });

  it('matches any key in one pass, for listings', () => {
    const template = compileStagingTemplate('{date}.{pid}.csv');
    expect(template.matchAny('2026-04-23.555.csv')).toEqual({
      runKey: '2026-04-23',
      pid: 555,
      host: undefined,
    });
    expect(template.matchAny('2026-04-23.backup.csv')).toBeUndefined();
    expect(template.matchAny('README')).toBeUndefined();
  });

  it('gives the literal prefix every name for a key starts with', () => {
    expect(compileStagingTemplate('{date}.{pid}.csv').prefixFor(KEY)).toBe('2026-04-24.');
    expect(compileStagingTemplate('part-{date}-{pid}.tmp').prefixFor(KEY)).toBe('part-2026-04-24-');
    expect(compileStagingTemplate('{pid}.{date}.csv').prefixFor(KEY)).toBe('');
  });

  it('matches templates that put the PID first', () => {
    const matcher = compileStagingTemplate('{pid}.{date}.csv').matcherFor(KEY);
    expect(matcher('777.2026-04-24.csv')).toEqual({ runKey: KEY, pid: 777, host: undefined });
    expect(matcher('777.2026-04-23.csv')).toBeUndefined();
    expect(matcher('777.2026-04-240.csv')).toBeUndefined();
  });

  describe('with {host}', () => {
    const template = compileStagingTemplate('{date}.{host}.{pid}.csv');
    const matcher = template.matcherFor(KEY);

    it('reads the host beside the PID', () => {
      expect(matcher('2026-04-24.batch-01.91247.csv')).toEqual({ runKey: KEY, pid: 91247, host: 'batch-01' });
      expect(matcher('2026-04-24.batch-01.example.com.7.csv')).toEqual({
        runKey: KEY,
        pid: 7,
        host: 'batch-01.example.com',
      });
    });

    it.each([
      '2026-04-24.91247.csv',
      '2026-04-24..91247.csv',
      '2026-04-24.-batch.91247.csv',
      '2026-04-24.batch 01.91247.csv',
      '2026-04-23.batch-01.91247.csv',
      '2026-04-24.batch-01.x.csv',
    ])('ignores %j', (name) => {
      expect(matcher(name)).toBeUndefined();
    });

    it('attack (issue 9.11): a name where both the key and the host may hold dots belongs to one key only', () => {
      const name = '2026-04-24.retry.otherhost.123.csv';
      expect(template.matchAny(name)).toEqual({ runKey: KEY, pid: 123, host: 'retry.otherhost' });
      expect(matcher(name)).toEqual({ runKey: KEY, pid: 123, host: 'retry.otherhost' });
      // The other reading's key is refused under this template, in one sentence.
      expect(() => template.matcherFor('2026-04-24.retry')).toThrow(UsageError);
      expect(() => template.matcherFor('2026-04-24.retry')).toThrow(
        /"2026-04-24\.retry" contains "\.", which --staging "\{date\}\.\{host\}\.\{pid\}\.csv" also puts between the key and the host/,
      );
    });
  });

  it.each([
    ['{date}.csv', /must contain \{pid\} exactly once/],
    ['{pid}.csv', /must contain \{date\} exactly once/],
    ['{date}.{pid}.{date}.csv', /must contain \{date\} exactly once/],
    ['{date}.{pid}.{pid}.csv', /must contain \{pid\} exactly once/],
    ['{date}.{host}.{pid}.{host}', /\{host\} at most once/],
    ['{date}.{pid}.{user}.csv', /uses \{user\}, which it does not know/],
    ['{final}.{date}.{pid}', /uses \{final\}, which it does not know/],
    ['{Date}.{pid}.csv', /uses \{Date\}/],
    ['tmp/{date}.{pid}.csv', /path separator/],
    ['..\\{date}.{pid}.csv', /path separator/],
    ['{date}{pid}.csv', /side by side/],
    ['{date}.{pid}{host}.csv', /side by side/],
    // "K1123.csv" would read as key K, PID 123 and as key K1, PID 23.
    ['{date}1{pid}.csv', /puts a digit beside \{pid\}/],
    ['{date}.{pid}7.csv', /puts a digit beside \{pid\}/],
    ['{date}-v2{pid}.csv', /puts a digit beside \{pid\}/],
    ['{date}.{pid}.csv}', /unmatched brace/],
    ['{date.{pid}.csv', /unmatched brace/],
    ['{date}.{pid}.{csv', /unmatched brace/],
    ['{}.{date}.{pid}', /uses \{\}/],
    ['', /is empty/],
    ['{date}.{pid}\n.csv', /control character/],
  ])('refuses the staging template %j', (template, message) => {
    expect(() => compileStagingTemplate(template)).toThrow(UsageError);
    expect(() => compileStagingTemplate(template)).toThrow(message);
  });

  it('names the flag in its errors', () => {
    expect(() => compileStagingTemplate('{date}.csv')).toThrow(/^--staging "\{date\}\.csv"/);
    expect(() => compileStagingTemplate('{date}.csv', 'pipelines.x.staging')).toThrow(
      /^pipelines\.x\.staging/,
    );
  });
});

describe('compileFinalTemplate', () => {
  it('names a keyed output after the run key', () => {
    const final = compileFinalTemplate('refunds_settled_{date}.csv');
    expect(final.keyed).toBe(true);
    expect(final.nameFor(KEY)).toBe('refunds_settled_2026-04-24.csv');
    expect(final.runKeyOf('refunds_settled_2026-04-24.csv')).toBe(KEY);
    expect(final.runKeyOf('refunds_settled_2026-04-24.csv.success')).toBeUndefined();
    expect(final.runKeyOf('refunds_2026-04-24.csv')).toBeUndefined();
  });

  it('allows a fixed name, which does not carry the key', () => {
    const final = compileFinalTemplate('latest.csv');
    expect(final.keyed).toBe(false);
    expect(final.nameFor(KEY)).toBe('latest.csv');
    expect(final.nameFor('2026-04-23')).toBe('latest.csv');
  });

  it('with {date} twice, only a name whose keys agree belongs to a key', () => {
    const final = compileFinalTemplate('{date}_x_{date}.csv');
    expect(final.nameFor('k1')).toBe('k1_x_k1.csv');
    expect(final.runKeyOf('k1_x_k1.csv')).toBe('k1');
    expect(final.runKeyOf('k1_x_k2.csv')).toBeUndefined();
  });

  it.each([
    ['out/{date}.csv', /path separator/],
    ['{pid}.csv', /uses \{pid\}/],
    ['{host}.csv', /uses \{host\}/],
    ['{final}.csv', /uses \{final\}/],
    ['{date.csv', /unmatched brace/],
    ['..', /not a file name/],
    ['.', /not a file name/],
    ['', /is empty/],
    [`${'x'.repeat(256)}`, /longer than 255 bytes/],
    [`${'é'.repeat(128)}`, /longer than 255 bytes/],
  ])('refuses the output template %j', (template, message) => {
    expect(() => compileFinalTemplate(template)).toThrow(UsageError);
    expect(() => compileFinalTemplate(template)).toThrow(message);
  });
});

describe('compileMarkerTemplate', () => {
  const final = compileFinalTemplate('refunds_settled_{date}.csv');

  it('names the marker after the output by default', () => {
    const marker = compileMarkerTemplate('{final}.success');
    expect(marker.nameFor(KEY, final.nameFor(KEY))).toBe('refunds_settled_2026-04-24.csv.success');
    expect(marker.runKeyOf('refunds_settled_2026-04-24.csv.success', final)).toBe(KEY);
    expect(marker.runKeyOf('refunds_settled_2026-04-24.csv', final)).toBeUndefined();
    expect(marker.runKeyOf('other_2026-04-24.csv.success', final)).toBeUndefined();
  });

  it('may name the marker after the run key instead', () => {
    const marker = compileMarkerTemplate('_SUCCESS_{date}');
    expect(marker.nameFor(KEY, final.nameFor(KEY))).toBe('_SUCCESS_2026-04-24');
    expect(marker.runKeyOf('_SUCCESS_2026-04-24', final)).toBe(KEY);
  });

  it('reads the run key of a marker {final}.{date} beside a fixed-name output', () => {
    const latest = compileFinalTemplate('latest.csv');
    const marker = compileMarkerTemplate('{final}.{date}');
    expect(marker.nameFor(KEY, latest.nameFor(KEY))).toBe(`latest.csv.${KEY}`);
    expect(marker.runKeyOf(`latest.csv.${KEY}`, latest)).toBe(KEY);
    expect(marker.runKeyOf('latest.csv.a.b', latest)).toBe('a.b');
    expect(marker.runKeyOf(`other.csv.${KEY}`, latest)).toBeUndefined();
    expect(compileMarkerTemplate('{date}.{final}.{date}').runKeyOf('k.latest.csv.j', latest)).toBeUndefined();
  });

  it('reads the run key of a marker {date}.{final}, whose output name has dots of its own', () => {
    const marker = compileMarkerTemplate('{date}.{final}');
    const name = marker.nameFor(KEY, final.nameFor(KEY));
    expect(name).toBe(`${KEY}.refunds_settled_${KEY}.csv`);
    expect(marker.runKeyOf(name, final)).toBe(KEY);
    expect(marker.runKeyOf(`${KEY}.refunds_settled_2026-04-25.csv`, final)).toBeUndefined();
  });

  it('gives a fixed-name output a fixed-name marker', () => {
    const latest = compileFinalTemplate('latest.csv');
    expect(compileMarkerTemplate('{final}.success').nameFor(KEY, latest.nameFor(KEY))).toBe(
      'latest.csv.success',
    );
    expect(compileMarkerTemplate('_SUCCESS').nameFor(KEY, 'latest.csv')).toBe('_SUCCESS');
  });

  it.each([
    ['{pid}.success', /uses \{pid\}/],
    ['{host}.ok', /uses \{host\}/],
    ['done/{final}', /path separator/],
    ['{final.success', /unmatched brace/],
    ['', /is empty/],
  ])('refuses the marker template %j', (template, message) => {
    expect(() => compileMarkerTemplate(template)).toThrow(UsageError);
    expect(() => compileMarkerTemplate(template)).toThrow(message);
    expect(() => compileMarkerTemplate(template)).toThrow(/^--marker/);
  });
});

describe('a staging name never belongs to two run keys', () => {
  const NAMES = [
    '2026-04-24.retry.otherhost.123.csv',
    '2026-04-24.batch-01.example.com.7.csv',
    '2026-04-24.h.1.2.csv',
    'a.b.c.1.csv',
    'K.1.2.h.csv',
    'h.1.2.K.csv',
    'a.b.2026-04-24.9.csv',
    'part-2026-04-24-host-1-9.tmp',
    'part-2026-04-24~web-01~9.tmp',
    '2026-04-24@web.01.9.csv',
    '2026-04-24.retry@web.01.9.csv',
    'x.-y.z.1.csv',
  ];
  const TEMPLATES = [
    '{date}.{host}.{pid}.csv',
    '{host}.{date}.{pid}.csv',
    '{date}.{pid}.{host}.csv',
    '{host}.{pid}.{date}.csv',
    '{date}@{host}.{pid}.csv',
    'part-{date}-{host}-{pid}.tmp',
    'part-{date}~{host}~{pid}.tmp',
    '{date}.{pid}.csv',
  ];

  /** Every key a name could belong to: every substring, asked of the matcher for that key. */
  function keysOf(template: ReturnType<typeof compileStagingTemplate>, name: string): string[] {
    const keys = new Set<string>();
    for (let start = 0; start < name.length; start++) {
      for (let end = start + 1; end <= name.length; end++) {
        const key = name.slice(start, end);
        let match;
        try {
          match = template.matcherFor(key)(name);
        } catch (error) {
          if (!(error instanceof UsageError)) throw error;
          continue; // a key this template refuses belongs to nothing
        }
        if (match) keys.add(match.runKey);
      }
    }
    return [...keys];
  }

  it.each(TEMPLATES)('%s: matcherFor and matchAny agree, and at most one key claims each name', (source) => {
    const template = compileStagingTemplate(source);
    for (const name of NAMES) {
      const keys = keysOf(template, name);
      expect(keys.length, `${name} under ${source}: ${keys.join(', ')}`).toBeLessThanOrEqual(1);
      const any = template.matchAny(name);
      expect(any?.runKey, `${name} under ${source}`).toBe(keys[0]);
      if (any) expect(template.matcherFor(any.runKey)(name)).toEqual(any);
    }
  });

  it.each([
    ['{date}.{host}.{pid}.csv', 'a.b', '{date}@{host}.{pid}.csv'],
    ['{date}.{pid}.{host}.csv', 'a.b', '{date}@{pid}.{host}.csv'],
    // Only the literal between the key and the host side changes: the suggested template must still
    // name the job's files, so the leading 'part-', 'x.' and the '.' before {pid} stay as they are.
    ['{host}.{date}.{pid}.csv', 'a.b', '{host}@{date}.{pid}.csv'],
    ['part-{date}-{host}-{pid}.tmp', 'a-b', 'part-{date}@{host}-{pid}.tmp'],
    ['x.{date}.{host}.{pid}', 'a.b', 'x.{date}@{host}.{pid}'],
  ])('attack: %s refuses the key %j, and its hint changes only the separator on the host side: %s', (source, key, suggested) => {
    const refused = (() => {
      try {
        compileStagingTemplate(source).matcherFor(key);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(refused).toBeInstanceOf(UsageError);
    expect((refused as UsageError).hint).toContain(JSON.stringify(suggested));
    // The suggestion is itself a template under which that key is refused nowhere.
    expect(() => compileStagingTemplate(suggested).matcherFor(key)).not.toThrow();
  });

  it('refuses keys holding the separator only where a host could hold it too', () => {
    expect(() => compileStagingTemplate('part-{date}-{host}-{pid}.tmp').matcherFor('2026-04-24')).toThrow(UsageError);
    expect(compileStagingTemplate('part-{date}~{host}-{pid}.tmp').matcherFor('2026-04-24')('part-2026-04-24~a-b-1.tmp')).toEqual(
      { runKey: '2026-04-24', pid: 1, host: 'a-b' },
    );
    expect(compileStagingTemplate('{date}@{host}.{pid}.csv').matcherFor('2026-04-24.retry')('2026-04-24.retry@web.01.9.csv')).toEqual(
      { runKey: '2026-04-24.retry', pid: 9, host: 'web.01' },
    );
    // Without {host}, keys with dots are as before.
    expect(compileStagingTemplate('{date}.{pid}.csv').matcherFor('run.1')('run.1.42.csv')).toEqual(
      { runKey: 'run.1', pid: 42, host: undefined },
    );
  });
});
