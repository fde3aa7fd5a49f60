import { describe, expect, it } from 'vitest';
import { S3_OPERATIONS, storeErrorOf } from '../../src/core/s3-errors.js';

// The failures the real-server tests cannot provoke with s3rver; the shapes
// are those the SDK produces (name, code, $metadata.httpStatusCode).
function sdkError(name: string, status?: number, code?: string): Error {
  return Object.assign(new Error(`${name} from the server`), {
    ...(code === undefined ? {} : { code }),
    ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
    name,
  });
}

const context = { bucket: 'refunds-data', endpoint: 'AWS S3 (eu-west-1)', timeoutMs: 30_000, afterPages: 0 };

describe('storeErrorOf', () => {
  it.each([
    ['AccessDenied from a policy', sdkError('AccessDenied', 403), 'access-denied'],
    ['a bare 403 to a HEAD (no body, no code)', sdkError('Unknown', 403), 'access-denied'],
    ['an expired session token', sdkError('ExpiredToken', 400), 'access-denied'],
    ['a missing region', new Error('Region is missing'), 'no-region'],
    ['a DNS failure', sdkError('Error', undefined, 'ENOTFOUND'), 'unreachable'],
    ['a reset connection', sdkError('Error', undefined, 'ECONNRESET'), 'unreachable'],
    ['a request timeout', sdkError('TimeoutError', undefined, 'ETIMEDOUT'), 'timeout'],
    ['a 501 NotImplemented', sdkError('NotImplemented', 501), 'unsupported'],
    ['a 500 after all retries', sdkError('InternalError', 500), 'failed'],
    ['a 503 SlowDown after all retries', sdkError('SlowDown', 503), 'failed'],
  ])('%s is %s', (_why, error, failure) => {
    const mapped = storeErrorOf(error, { ...context, operation: S3_OPERATIONS.stat });
    expect(mapped.failure).toBe(failure);
    expect(mapped.message).toContain('refunds-data');
    expect(mapped.message).not.toContain('from the server');
    expect(mapped.message).toMatch(/^[A-Z][^\n]*\.$/);
  });

  it('says which permission to check for the operation that was denied', () => {
    const mapped = storeErrorOf(sdkError('AccessDenied', 403), { ...context, operation: S3_OPERATIONS.remove });
    expect(mapped.message).toBe('Access was denied to delete an object in bucket refunds-data at AWS S3 (eu-west-1) (AccessDenied).');
    expect(mapped.hint).toContain('s3:DeleteObject');
  });

  it('keeps how far a listing got, so a partial listing is never read as the whole', () => {
    const mapped = storeErrorOf(sdkError('InternalError', 500), { ...context, afterPages: 3, operation: S3_OPERATIONS.list });
    expect(mapped.afterPages).toBe(3);
    expect(mapped.message).toBe('S3 failed to list keys in bucket refunds-data at AWS S3 (eu-west-1) (InternalError, HTTP 500).');
  });
});
