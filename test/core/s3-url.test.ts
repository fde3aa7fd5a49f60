import { describe, expect, it } from 'vitest';
import { isUsageError } from '../../src/core/errors.js';
import { isS3Url, parseS3Url, s3UrlOf } from '../../src/core/s3-url.js';

describe('parseS3Url', () => {
  it.each([
    ['s3://refunds-data/out/', 'refunds-data', 'out/'],
    ['s3://refunds-data/jobs/refunds/_staging/', 'refunds-data', 'jobs/refunds/_staging/'],
    // Without the trailing '/', the prefix would also match out-old/ and outbox/.
    ['s3://refunds-data/out', 'refunds-data', 'out/'],
    ['s3://refunds-data', 'refunds-data', ''],
    ['s3://refunds-data/', 'refunds-data', ''],
    ['S3://refunds-data/out/', 'refunds-data', 'out/'],
    ['s3://my.bucket.name/a b/', 'my.bucket.name', 'a b/'],
    ['s3://abc/x/', 'abc', 'x/'],
  ])('%s is bucket %s, prefix %s', (url, bucket, prefix) => {
    expect(parseS3Url(url)).toEqual({ bucket, prefix });
  });

  it.each([
    ['s3:///out/', 'names no bucket'],
    ['s3://ab/out/', 'must be 3 to 63 characters long'],
    [`s3://${'a'.repeat(64)}/out/`, 'must be 3 to 63 characters long'],
    ['s3://Refunds/out/', 'lowercase letters'],
    ['s3://refunds_data/out/', 'lowercase letters'],
    ['s3://-refunds/out/', 'start and end with a letter or digit'],
    ['s3://refunds-/out/', 'start and end with a letter or digit'],
    ['s3://re..funds/out/', 'two dots in a row'],
    ['s3://192.168.1.10/out/', 'IP address'],
    ['s3://xn--refunds/out/', 'reserved \'xn--\''],
    ['s3://refunds-s3alias/out/', 'reserved \'-s3alias\''],
    ['s3://refunds-data//out/', 'empty segment'],
    ['s3://refunds-data/out/../in/', '\'..\''],
    ['s3://refunds-data/./out/', '\'..\''],
    ['s3://refunds-data/out\n/', 'control character'],
    [`s3://refunds-data/${'k'.repeat(1024)}/`, 'a key holds at most 1024'],
    ['/var/data/out', 'not an s3:// URL'],
  ])('%s is refused as a usage error: %s', (url, why) => {
    let thrown: unknown;
    try {
      parseS3Url(url, '--out-dir');
    } catch (error) {
      thrown = error;
    }
    expect(isUsageError(thrown)).toBe(true);
    expect((thrown as Error).message).toContain(why);
    expect((thrown as Error).message).toContain('--out-dir');
  });
});

describe('isS3Url and s3UrlOf', () => {
  it.each([
    ['s3://b/p/', true],
    ['S3://b/p/', true],
    ['/s3://b/p/', false],
    ['./s3:/b', false],
    ['out', false],
  ])('%s: %s', (value, expected) => {
    expect(isS3Url(value)).toBe(expected);
  });

  it('joins bucket and key into the URL shown in output', () => {
    expect(s3UrlOf('refunds-data', 'out/x.csv')).toBe('s3://refunds-data/out/x.csv');
  });
});
