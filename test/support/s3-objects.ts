import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
  const before = await server.requestCount();
  await action();
  return [...(await server.requests(before))];
}

/** Where s3rver keeps an object: its LastModified is that file's mtime. */
export function s3rverFile(server: S3TestServer, bucket: string, key: string): string {
  const parts = key.split('/');
  const last = parts.pop() as string;
  return join(server.directory, bucket, ...parts, `${last}._S3rver_object`);
}

/**
 * Sets an object's LastModified `seconds` into the past (negative: the
 * future). s3rver answers a PUT before its write to the backing file has
 * landed (it resolves on the stream it pipes from, not on the file's close),
 * and a write landing after the utimes made the object new again: a flake
 * under load. So the file is first waited for to hold all `bytes` and to be
 * open in the server no more.
 */
export async function ageS3rverObject(
  server: S3TestServer,
  bucket: string,
  key: string,
  seconds: number,
  bytes?: number,
): Promise<void> {
  const file = await s3rverObjectLanded(server, bucket, key, bytes);
  const then = new Date(Date.now() - seconds * 1000);
  await fsp.utimes(file, then, then);
}

/**
 * Waits until the backing file of an object s3rver has answered a PUT for
 * holds all `bytes` and is open in the server no more (see ageS3rverObject);
 * returns its path.
 */
export async function s3rverObjectLanded(
  server: S3TestServer,
  bucket: string,
  key: string,
  bytes?: number,
): Promise<string> {
  const file = s3rverFile(server, bucket, key);
  for (;;) {
    const size = await fsp.stat(file).then((s) => s.size, () => -1);
    if (size >= 0 && (bytes === undefined || size === bytes) && !(await openIn(server.pid, file))) return file;
    await sleep(2);
  }
}

/** Whether process `pid` holds `file` open, read from /proc/PID/fd. */
async function openIn(pid: number, file: string): Promise<boolean> {
  const fds = await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    if ((await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === file) return true;
  }
  return false;
}
