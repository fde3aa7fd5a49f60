import { StoreError, type StoreFailure } from './store.js';

/** What a request was for, so a failure can say what to check. */
export interface S3Operation {
  /** "list keys in", as in "... to list keys in bucket b". */
  readonly verb: string;
  /** The API call, for "does not support ...". */
  readonly api: string;
  /** The IAM permission it needs, for "access denied". */
  readonly permission: string;
}

export const S3_OPERATIONS = {
  list: { verb: 'list keys in', api: 'ListObjectsV2', permission: 's3:ListBucket' },
  stat: { verb: 'read an object in', api: 'HeadObject', permission: 's3:GetObject' },
  remove: { verb: 'delete an object in', api: 'DeleteObject', permission: 's3:DeleteObject' },
  copy: {
    verb: 'copy an object into',
    api: 'CopyObject',
    permission: 's3:GetObject on the source and s3:PutObject on the target',
  },
  listUploads: {
    verb: 'list multipart uploads in',
    api: 'ListMultipartUploads',
    permission: 's3:ListBucketMultipartUploads',
  },
  abortUpload: { verb: 'abort a multipart upload in', api: 'AbortMultipartUpload', permission: 's3:AbortMultipartUpload' },
} as const satisfies Record<string, S3Operation>;

export interface FailureContext {
  readonly operation: S3Operation;
  readonly bucket: string;
  readonly endpoint: string;
  readonly timeoutMs: number;
  readonly afterPages: number;
}

// Socket errors that mean "no server answered there" (after the SDK's retries).
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'ECONNABORTED',
  'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'EPROTO',
]);
const ACCESS_CODES = new Set([
  'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired',
  'AllAccessDisabled', 'AccountProblem',
]);
const UNSUPPORTED_CODES = new Set(['NotImplemented', 'MethodNotAllowed']);

/** The parts of an SDK or socket error the mapping reads. */
export interface ErrorFacts {
  readonly name: string;
  readonly code: string | undefined;
  readonly status: number | undefined;
  readonly message: string;
}

export function factsOf(error: unknown): ErrorFacts {
  if (!(error instanceof Error)) return { name: 'Error', code: undefined, status: undefined, message: String(error) };
  const fields = error as Error & { code?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: number } };
  const code = typeof fields.code === 'string' ? fields.code : typeof fields.Code === 'string' ? fields.Code : undefined;
  return { name: error.name, code, status: fields.$metadata?.httpStatusCode, message: error.message };
}

/** Any failure of a request, as one sentence naming the bucket or endpoint and what to check. */
export function storeErrorOf(error: unknown, context: FailureContext): StoreError {
  if (error instanceof StoreError) return error;
  const facts = factsOf(error);
  const failure = failureOf(facts);
  const { message, hint } = sentenceFor(failure, facts, context);
  return new StoreError(failure, message, hint, context.afterPages, facts.status);
}

function failureOf(facts: ErrorFacts): StoreFailure {
  if (facts.name === 'CredentialsProviderError' || /could not load credentials/i.test(facts.message)) {
    return 'no-credentials';
  }
  if (/region is missing/i.test(facts.message)) return 'no-region';
  if (facts.name === 'TimeoutError' || facts.code === 'ETIMEDOUT' || facts.name === 'AbortError') return 'timeout';
  if (facts.code !== undefined && UNREACHABLE_CODES.has(facts.code)) return 'unreachable';
  if (facts.name === 'NoSuchBucket' || facts.code === 'NoSuchBucket') return 'no-such-bucket';
  if (ACCESS_CODES.has(facts.name) || facts.status === 403) return 'access-denied';
  if (UNSUPPORTED_CODES.has(facts.name) || facts.status === 501 || facts.status === 405) return 'unsupported';
  return 'failed';
}

interface Sentence {
  readonly message: string;
  readonly hint: string;
}

function sentenceFor(failure: StoreFailure, facts: ErrorFacts, context: FailureContext): Sentence {
  const { operation, bucket, endpoint } = context;
  const why = facts.code ?? facts.name;
  switch (failure) {
    case 'unreachable':
      return {
        message: `Cannot reach the S3 endpoint ${endpoint} to ${operation.verb} bucket ${bucket} (${why}).`,
        hint: 'Check the endpoint (s3.endpoint in the config, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) and that the server is up.',
      };
    case 'timeout':
      return {
        message: `The S3 endpoint ${endpoint} did not answer within ${context.timeoutMs / 1000}s when asked to ${operation.verb} bucket ${bucket}.`,
        hint: 'Check the endpoint and the network, or allow more time with --timeout.',
      };
    case 'no-credentials':
      return {
        message: `No AWS credentials were found to ${operation.verb} bucket ${bucket}.`,
        hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance or pod role.',
      };
    case 'no-region':
      return {
        message: `No AWS region is set to ${operation.verb} bucket ${bucket}.`,
        hint: 'Set AWS_REGION, or s3.region in the config.',
      };
    case 'access-denied':
      return {
        message: `Access was denied to ${operation.verb} bucket ${bucket} at ${endpoint} (${why}).`,
        hint: `Check the credentials, and that their policy allows ${operation.permission} on this bucket and prefix.`,
      };
    case 'no-such-bucket':
      return {
        message: `The bucket ${bucket} does not exist at ${endpoint}.`,
        hint: 'Check the bucket name in the s3:// URL, and the endpoint and region.',
      };
    case 'unsupported':
      return {
        message: `The S3 endpoint ${endpoint} does not support ${operation.api} (${why}), needed to ${operation.verb} bucket ${bucket}.`,
        hint: 'Use a server that implements it, or leave out the option that needs it.',
      };
    default:
      return {
        message: `S3 failed to ${operation.verb} bucket ${bucket} at ${endpoint} (${why}${facts.status === undefined ? '' : `, HTTP ${facts.status}`}).`,
        hint: 'Try again; if it persists, check the health of the endpoint.',
      };
  }
}
