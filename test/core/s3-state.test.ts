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
