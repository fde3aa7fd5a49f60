// The settlement job's object-store side: the few S3 calls its S3 mode makes
// (PutObject, CopyObject, DeleteObject), behind one small interface so the
// steps in pipeline.ts read the same for both modes. The SDK is imported
// only when an s3:// directory is given: a local run never loads it.
import type { S3Client } from '@aws-sdk/client-s3';

type Sdk = typeof import('@aws-sdk/client-s3');

/** The SDK, loaded on first use. */
export async function loadS3Sdk(): Promise<Sdk> {
  const loaded = (await import('@aws-sdk/client-s3')) as Sdk & { default?: Sdk };
  // Bundled into an ES module (dist-dev/), the CommonJS SDK arrives as the default export only.
  return typeof loaded.S3Client === 'function' ? loaded : (loaded.default as Sdk);
}

/** `s3://BUCKET/PREFIX/`, the prefix with its trailing slash ('' for the bucket's root). */
export interface S3Prefix {
  bucket: string;
  prefix: string;
}

export function isS3Url(value: string): boolean {
  return value.startsWith('s3://');
}

/** A prefix without a trailing slash is taken as the directory, as crashdiag takes it. */
export function parseS3Prefix(url: string): S3Prefix {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!match) throw new Error(`"${url}" is not an s3://BUCKET/PREFIX/ URL`);
  const path = match[2] ?? '';
  return { bucket: match[1] as string, prefix: path === '' || path.endsWith('/') ? path : `${path}/` };
}

export function s3UrlOf(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** What the job does to a bucket. Every call is one request; none is retried by the job itself. */
export interface ObjectWriter {
  /** Creates the object only if no object has the key (If-None-Match: *, where the server honours it). */
  putNew(bucket: string, key: string, body: Uint8Array): Promise<void>;
  /** Creates or replaces the object. */
  put(bucket: string, key: string, body: Uint8Array): Promise<void>;
  /** A server-side copy: the bytes never pass through the job. */
  copy(fromBucket: string, fromKey: string, toBucket: string, toKey: string): Promise<void>;
  remove(bucket: string, key: string): Promise<void>;
  close(): void;
}

/**
 * A client configured the way the SDKs configure themselves: credentials and
 * region from the standard chain, the endpoint from AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL. A custom endpoint means path-style addressing (MinIO,
 * Ceph and test servers have no per-bucket host names) and, without
 * AWS_REGION, us-east-1, as crashdiag does.
 */
export async function openObjectWriter(env: NodeJS.ProcessEnv): Promise<ObjectWriter> {
  const sdk = await loadS3Sdk();
  const endpoint = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true'
    ? undefined
    : env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const client: S3Client = new sdk.S3Client({
    ...(endpoint === undefined
      ? {}
      : { endpoint, forcePathStyle: true, ...(env.AWS_REGION ? {} : { region: 'us-east-1' }) }),
    // Checksum trailers (the newer default) trip servers that predate them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    async putNew(bucket, key, body) {
      await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: body, IfNoneMatch: '*' }));
    },
    async put(bucket, key, body) {
      await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async copy(fromBucket, fromKey, toBucket, toKey) {
      const source = `${fromBucket}/${fromKey.split('/').map(encodeURIComponent).join('/')}`;
      await client.send(new sdk.CopyObjectCommand({ Bucket: toBucket, Key: toKey, CopySource: source }));
    },
    async remove(bucket, key) {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    // Pooled keep-alive sockets would otherwise hold the process open after its last step.
    close: () => client.destroy(),
  };
}
