import {
  CreateMultipartUploadCommand, GetObjectCommand, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { S3RVER_CREDENTIALS, S3RVER_REGION, type LoggedRequest, type S3TestServer } from './s3-server.js';

/**
 * A client for setting up and reading back test objects: the role a batch
 * job or a person plays, not the code under test. Configured explicitly, so
 * the machine's AWS_* environment never leaks into a test.
 */
export function testClient(server: S3TestServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: S3RVER_REGION,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function putText(client: S3Client, bucket: string, key: string, body: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** Writes many objects, a bounded number at a time. */
export async function putMany(client: S3Client, bucket: string, keys: readonly string[], body: string): Promise<void> {
  const queue = [...keys];
  const worker = async () => {
    for (let key = queue.pop(); key !== undefined; key = queue.pop()) await putText(client, bucket, key, body);
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

export async function getText(client: S3Client, bucket: string, key: string): Promise<string> {
  const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return answer.Body ? answer.Body.transformToString() : '';
}

export async function startUpload(client: S3Client, bucket: string, key: string): Promise<string> {
  const answer = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  if (!answer.UploadId) throw new Error('no upload id');
  return answer.UploadId;
}

/** The requests the server saw while `action` ran (the server logs in arrival order). */
export async function requestsDuring(server: S3TestServer, action: () => Promise<unknown>): Promise<LoggedRequest[]> {
  const before = (await server.requests()).length;
  await action();
  return (await server.requests()).slice(before);
}
