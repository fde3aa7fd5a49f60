import { describe, expect, it } from 'vitest';
import { isUsageError } from '../../src/core/errors.js';
import { describeEndpoint, resolveS3Connection } from '../../src/core/s3-connection.js';

describe('resolveS3Connection', () => {
  it.each([
    ['nothing set: AWS itself, the SDK picks the region', {}, {},
      { endpoint: undefined, region: undefined, forcePathStyle: false }],
    ['AWS_ENDPOINT_URL: a custom endpoint means path-style and a default region', {},
      { AWS_ENDPOINT_URL: 'http://127.0.0.1:9000' },
      { endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true }],
    ['AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL, as in the SDKs', {},
      { AWS_ENDPOINT_URL: 'http://general:1', AWS_ENDPOINT_URL_S3: 'http://s3only:2' },
      { endpoint: 'http://s3only:2', region: 'us-east-1', forcePathStyle: true }],
    ['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns both off', {},
      { AWS_ENDPOINT_URL_S3: 'http://s3only:2', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' },
      { endpoint: undefined, region: undefined, forcePathStyle: false }],
    ['the config wins over the environment', { endpoint: 'https://minio.internal:9000', region: 'eu-west-1' },
      { AWS_ENDPOINT_URL_S3: 'http://s3only:2' },
      { endpoint: 'https://minio.internal:9000', region: 'eu-west-1', forcePathStyle: true }],
    ['the config may keep virtual-host style for a custom endpoint', { endpoint: 'https://s3.example', forcePathStyle: false },
      {}, { endpoint: 'https://s3.example', region: 'us-east-1', forcePathStyle: false }],
    ['an empty variable counts as unset', {}, { AWS_ENDPOINT_URL_S3: '', AWS_ENDPOINT_URL: ' ' },
      { endpoint: undefined, region: undefined, forcePathStyle: false }],
  ])('%s', (_why, settings, env, expected) => {
    expect(resolveS3Connection(settings, env)).toEqual(expected);
  });

  it.each([
    [{ endpoint: 'minio:9000' }, {}, 'is not an http:// or https:// URL'],
    [{ endpoint: 'not a url' }, {}, 'is not a URL'],
    [{}, { AWS_ENDPOINT_URL_S3: 'ftp://x' }, 'AWS_ENDPOINT_URL_S3'],
  ])('refuses the endpoint %o %o as a usage error', (settings, env, why) => {
    let thrown: unknown;
    try {
      resolveS3Connection(settings, env);
    } catch (error) {
      thrown = error;
    }
    expect(isUsageError(thrown)).toBe(true);
    expect(`${(thrown as Error).message} ${(thrown as { hint?: string }).hint}`).toContain(why);
  });

  it('names the endpoint in messages: the URL, or AWS and its region', () => {
    expect(describeEndpoint({ endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true }))
      .toBe('http://127.0.0.1:9000');
    expect(describeEndpoint({ endpoint: undefined, region: 'eu-west-1', forcePathStyle: false })).toBe('AWS S3 (eu-west-1)');
    expect(describeEndpoint({ endpoint: undefined, region: undefined, forcePathStyle: false })).toBe('AWS S3');
  });
});
