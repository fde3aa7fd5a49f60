// A workspace whose out/ and staging are S3 prefixes: the harness's side of
// the job's S3 mode. The harness reads the bucket with its own client (the
// role of a person looking), never through crashdiag or the job.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { finalName, isStagingNameFor, markerName } from '../names.js';
import { loadS3Sdk, s3UrlOf } from '../s3-objects.js';
import type { S3Place, Workspace } from './workspace.js';

/** An S3 server and bucket the harness may use, with the keys that open it. */
export interface S3Site {
  endpoint: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
}

/**
 * `name/out/` and `name/_staging/` in the site's bucket; the input, the
 * journal and crashdiag's local state (lock, audit log) in `dir`.
 */
export async function createS3Workspace(
  dir: string,
  site: S3Site,
  name: string,
  inputPath = join(dir, 'input.csv'),
): Promise<Workspace> {
  const s3: S3Place = { site, outPrefix: `${name}/out/`, stagingPrefix: `${name}/_staging/` };
  await mkdir(join(dir, 'state'), { recursive: true });
  return {
    dir,
    outDir: s3UrlOf(site.bucket, s3.outPrefix),
    stagingDir: s3UrlOf(site.bucket, s3.stagingPrefix),
    inputPath,
    journalPath: join(dir, 'journal.jsonl'),
    s3,
  };
}

/**
 * What the job and crashdiag need to reach the site, and nothing of the
 * machine's own AWS set-up (a profile, a session token, another endpoint).
 * crashdiag's lock and audit log go to the workspace, not to ~/.local/state.
 */
export function s3Env(ws: Workspace, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (!ws.s3) return env;
  const { site } = ws.s3;
  const clean = Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('AWS_')));
  return {
    ...clean,
    AWS_ENDPOINT_URL_S3: site.endpoint,
    AWS_REGION: site.region,
    AWS_ACCESS_KEY_ID: site.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: site.credentials.secretAccessKey,
    // No instance-metadata probing when something is misconfigured: fail at once.
    AWS_EC2_METADATA_DISABLED: 'true',
    // The pinned SDK's warning about node 20 after January 2027 (known).
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    XDG_STATE_HOME: join(ws.dir, 'state'),
  };
}

const clients = new Map<string, Promise<S3Client>>();

function clientFor(site: S3Site): Promise<S3Client> {
  const key = `${site.endpoint}|${site.credentials.accessKeyId}`;
  let client = clients.get(key);
  if (!client) {
    client = loadS3Sdk().then((sdk) => new sdk.S3Client({
      endpoint: site.endpoint,
      region: site.region,
      forcePathStyle: true,
      credentials: site.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }));
    clients.set(key, client);
  }
  return client;
}

/** Lets go of the harness's clients (pooled sockets), e.g. before the S3 server stops. */
export async function closeS3Clients(): Promise<void> {
  const all = [...clients.values()];
  clients.clear();
  for (const client of all) (await client).destroy();
}

async function getObject(place: S3Place, key: string): Promise<Buffer | null> {
  const sdk = await loadS3Sdk();
  const client = await clientFor(place.site);
  try {
    const answer = await client.send(new sdk.GetObjectCommand({ Bucket: place.site.bucket, Key: key }));
    return Buffer.from(answer.Body ? await answer.Body.transformToByteArray() : []);
  } catch (error) {
    if (error instanceof sdk.NoSuchKey || (error as Error).name === 'NoSuchKey') return null;
    throw error;
  }
}

/** Every key under the prefix (one level), with its size. */
async function listKeys(place: S3Place, prefix: string): Promise<{ name: string; bytes: number }[]> {
  const sdk = await loadS3Sdk();
  const client = await clientFor(place.site);
  const found: { name: string; bytes: number }[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new sdk.ListObjectsV2Command({
      Bucket: place.site.bucket,
      Prefix: prefix,
      Delimiter: '/',
      ...(token === undefined ? {} : { ContinuationToken: token }),
    }));
    for (const object of page.Contents ?? []) {
      if (object.Key) found.push({ name: object.Key.slice(prefix.length), bytes: object.Size ?? 0 });
    }
    for (const common of page.CommonPrefixes ?? []) {
      if (common.Prefix) found.push({ name: common.Prefix.slice(prefix.length), bytes: 0 });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function readS3Output(place: S3Place, key: string): Promise<Buffer | null> {
  return getObject(place, `${place.outPrefix}${finalName(key)}`);
}

export async function hasS3Marker(place: S3Place, key: string): Promise<boolean> {
  return (await getObject(place, `${place.outPrefix}${markerName(key)}`)) !== null;
}

export async function s3StagingObjectsFor(place: S3Place, key: string): Promise<string[]> {
  return (await listKeys(place, place.stagingPrefix)).map((o) => o.name).filter((n) => isStagingNameFor(n, key));
}

/** Everything under the staging prefix, any run key: a recovered S3 workspace has nothing there at all. */
export async function s3StagingObjects(place: S3Place): Promise<string[]> {
  return (await listKeys(place, place.stagingPrefix)).map((o) => o.name);
}

/** A one-line-per-object picture of both prefixes, for failure reports and the demo. */
export async function describeS3(place: S3Place): Promise<string[]> {
  const lines: string[] = [];
  for (const prefix of [place.outPrefix, place.stagingPrefix]) {
    const objects = await listKeys(place, prefix);
    if (objects.length === 0) lines.push(`  ${s3UrlOf(place.site.bucket, prefix)}  (empty)`);
    for (const o of objects) lines.push(`  ${s3UrlOf(place.site.bucket, prefix + o.name)}  ${o.bytes} bytes`);
  }
  return lines;
}
