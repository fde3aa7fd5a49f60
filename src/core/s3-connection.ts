import { UsageError } from './errors.js';

/** Config `s3: {endpoint, region, forcePathStyle}`. */
export interface S3Settings {
  readonly endpoint?: string;
  readonly region?: string;
  readonly forcePathStyle?: boolean;
}

/** Where and how to talk to S3, resolved once from the config and the environment. */
export interface S3Connection {
  /** A custom endpoint URL, or undefined for AWS itself. */
  readonly endpoint: string | undefined;
  /** Undefined: the SDK's chain decides (AWS_REGION, the profile). */
  readonly region: string | undefined;
  readonly forcePathStyle: boolean;
}

// What MinIO, Ceph and test servers answer to whatever region is signed for;
// a custom endpoint without a region would otherwise fail before any request.
const CUSTOM_ENDPOINT_REGION = 'us-east-1';

/**
 * The config wins over the environment, as for every other setting; the
 * environment is read the way the SDKs read it (AWS_ENDPOINT_URL_S3 before
 * AWS_ENDPOINT_URL, both off under AWS_IGNORE_CONFIGURED_ENDPOINT_URLS). A
 * custom endpoint means path-style addressing unless the config says
 * otherwise: MinIO, Ceph and test servers have no per-bucket host names.
 */
export function resolveS3Connection(
  settings: S3Settings,
  env: Readonly<Record<string, string | undefined>>,
): S3Connection {
  const fromEnv = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true'
    ? undefined
    : nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  const endpoint = nonEmpty(settings.endpoint) ?? fromEnv;
  if (endpoint !== undefined) checkEndpoint(endpoint, settings.endpoint === endpoint);
  return {
    endpoint,
    region: nonEmpty(settings.region) ?? (endpoint === undefined ? undefined : CUSTOM_ENDPOINT_REGION),
    forcePathStyle: settings.forcePathStyle ?? endpoint !== undefined,
  };
}

/** How the endpoint is named in messages. */
export function describeEndpoint(connection: S3Connection): string {
  if (connection.endpoint !== undefined) return connection.endpoint;
  return connection.region === undefined ? 'AWS S3' : `AWS S3 (${connection.region})`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function checkEndpoint(endpoint: string, fromConfig: boolean): void {
  const source = fromConfig ? 's3.endpoint in the config' : 'AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL';
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(`The S3 endpoint ${endpoint} is not a URL.`, `Check ${source}, e.g. http://127.0.0.1:9000.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`The S3 endpoint ${endpoint} is not an http:// or https:// URL.`, `Check ${source}.`);
  }
}
