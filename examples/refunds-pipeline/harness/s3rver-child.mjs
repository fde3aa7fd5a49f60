// Runs s3rver in a process of its own for harness/s3rver.ts. It is a
// child, not part of the test process, because s3rver's ListObjectsV2
// continuation tokens use DES, which Node 17+ only offers under
// --openssl-legacy-provider (without it every truncated page is a 500), and
// that flag is not one to set for the whole suite.
//
// Protocol over the IPC channel: it sends {type: 'listening', port} once;
// it answers {type: 'requests', id} with the requests seen so far (in the
// order they arrived, from the `from`th on), {type: 'seed', id, bucket,
// keys, body, mtimeMs} by writing those objects straight into s3rver's store
// (see seed), and {type: 'stop'} by closing and exiting. When the parent
// goes away (it stopped the server, or it exited without: a test worker
// sharing one server among its files), it removes its store and exits.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import S3rver from 's3rver';
import S3Object from 's3rver/lib/models/object.js';

const directory = process.argv[2];
if (!directory) throw new Error('usage: s3rver-child.mjs DIRECTORY');

const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true });
const requests = [];
const address = await server.run();
server.httpServer.on('request', (req) => {
  requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
});

process.on('message', (message) => {
  if (message.type === 'requests') {
    process.send({ type: 'requests', id: message.id, requests: requests.slice(message.from ?? 0), total: requests.length });
  } else if (message.type === 'seed') {
    seed(message);
    process.send({ type: 'seeded', id: message.id });
  } else if (message.type === 'stop') {
    server.close().finally(() => process.disconnect());
  }
});
process.on('disconnect', () => {
  server.close().catch(() => {}).finally(() => {
    rmSync(directory, { recursive: true, force: true });
    process.exit(0);
  });
});
process.send({ type: 'listening', port: address.port });

/**
 * Writes the objects as the store's putObject writes a PUT of `body` with no
 * headers (the object, its .md5 and its metadata.json, at the paths the
 * store's own getResourcePath names), but synchronously and with the digest
 * and the metadata computed once: putObject took a few ms of this process's
 * CPU per object, and a test file seeds thousands. Each object is on disk,
 * closed, before the reply; `mtimeMs` dates them all (LastModified).
 */
function seed({ bucket, keys, body, mtimeMs }) {
  const content = Buffer.from(body);
  const md5 = createHash('md5').update(content).digest('hex');
  const { metadata } = new S3Object(bucket, keys[0] ?? 'seed', content, {});
  // What the store's putMetadata keeps of it.
  const kept = Object.fromEntries(Object.entries(metadata)
    .filter(([name]) => S3Object.ALLOWED_METADATA.includes(name) || name.startsWith('x-amz-meta-')));
  const metadataJson = JSON.stringify(kept, null, 2);
  const made = new Set();
  for (const key of keys) {
    const object = server.store.getResourcePath(bucket, key, 'object');
    const directory = dirname(object);
    if (!made.has(directory)) {
      mkdirSync(directory, { recursive: true });
      made.add(directory);
    }
    writeFileSync(object, content);
    writeFileSync(server.store.getResourcePath(bucket, key, 'object.md5'), md5);
    writeFileSync(server.store.getResourcePath(bucket, key, 'metadata.json'), metadataJson);
    if (mtimeMs !== undefined) utimesSync(object, mtimeMs / 1000, mtimeMs / 1000);
  }
}
