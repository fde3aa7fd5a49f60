import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localStateDir, s3AuditLogPath, s3LockPath } from '../../src/core/s3-state.js';

describe('local state for S3 pipelines', () => {
  it.each([
    [{ XDG_STATE_HOME: '/var/lib/state' }, '/var/lib/state/crashdiag'],
    [{}, '/home/oncall/.local/state/crashdiag'],
    // The spec says a relative path there is invalid and to be ignored.
    [{ XDG_STATE_HOME: 'relative/state' }, '/home/oncall/.local/state/crashdiag'],
  ])('%o puts it in %s', (env, expected) => {
    expect(localStateDir(env, '/home/oncall')).toBe(expected);
  });

  it.each([
    [{}, ''],
    [{}, 'relative/home'],
    [{ XDG_STATE_HOME: 'relative/state' }, undefined],
    [{ XDG_STATE_HOME: '' }, undefined],
  ])('attack: %o with HOME %o: refused, never a directory relative to wherever it was started', (env, home) => {
    expect(() => localStateDir(env, home)).toThrow(/Neither XDG_STATE_HOME nor HOME is an absolute path/);
  });

  it('attack: the longest bucket, a long prefix and a 128-character run key of 4-byte characters: the lock name fits, with room for its side files', () => {
    const bucket = `long.bucket.${'x'.repeat(47)}.end`;
    const key = '\u{1F600}'.repeat(128);
    const path = s3LockPath('/s', { bucket, prefix: `${'p'.repeat(300)}/` }, key);
    expect(Buffer.byteLength(basename(path))).toBeLessThanOrEqual(200);
    expect(basename(path)).toMatch(/^s3-long\.bucket\.x+\.end-p+-[0-9a-f]{16}-(\u{1F600})+-[0-9a-f]{16}\.lock$/u);
    // Keys that share their first bytes stay apart.
    expect(s3LockPath('/s', { bucket, prefix: 'p/' }, `${'k'.repeat(127)}a`))
      .not.toBe(s3LockPath('/s', { bucket, prefix: 'p/' }, `${'k'.repeat(127)}b`));
  });

  it('names the lock after bucket, prefix and run key, readable by a person', () => {
    const path = s3LockPath('/s/crashdiag', { bucket: 'refunds-data', prefix: 'jobs/refunds/_staging/' }, '2026-04-24');
    expect(path).toMatch(/^\/s\/crashdiag\/locks\/s3-refunds-data-jobs_refunds__staging-[0-9a-f]{16}-2026-04-24\.lock$/);
  });

  it('gives prefixes that read alike once made file-safe different locks', () => {
    const a = s3LockPath('/s', { bucket: 'b1b', prefix: 'a/b/' }, '2026-04-24');
    const b = s3LockPath('/s', { bucket: 'b1b', prefix: 'a_b/' }, '2026-04-24');
    expect(a).not.toBe(b);
  });

  it('gives the same prefix in two buckets different locks, and keeps a long prefix within a file name', () => {
    const long = `${'deep/'.repeat(150)}`;
    const a = s3LockPath('/s', { bucket: 'bucket-one', prefix: long }, '2026-04-24');
    const b = s3LockPath('/s', { bucket: 'bucket-two', prefix: long }, '2026-04-24');
    expect(a).not.toBe(b);
    expect(Buffer.byteLength(basename(a))).toBeLessThanOrEqual(255);
  });

  it('keeps the audit log beside the locks', () => {
    expect(s3AuditLogPath('/s/crashdiag')).toBe('/s/crashdiag/audit.jsonl');
  });
});
