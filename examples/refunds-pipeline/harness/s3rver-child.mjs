// Runs s3rver in a process of its own for harness/s3rver.ts. It is a
// child, not part of the test process, because s3rver's ListObjectsV2
// continuation tokens use DES, which Node 17+ only offers under
// --openssl-legacy-provider (without it every truncated page is a 500), and
// that flag is not one to set for the whole suite.
//
// Protocol over the IPC channel: it sends {type: 'listening', port} once;
// it answers {type: 'requests', id} with the requests seen so far (in the
// order they arrived), {type: 'seed', id, bucket, keys, body} by writing
// those objects straight into s3rver's store (the same code a PUT ends in,
// minus thousands of HTTP round trips), and {type: 'stop'} by closing and
// exiting. It exits on its own when the parent goes away.
import { Buffer } from 'node:buffer';
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
    process.send({ type: 'requests', id: message.id, requests });
  } else if (message.type === 'seed') {
    seed(message).then(() => process.send({ type: 'seeded', id: message.id }));
  } else if (message.type === 'stop') {
    server.close().finally(() => process.disconnect());
  }
});
process.on('disconnect', () => {
  server.close().catch(() => {}).finally(() => process.exit(0));
});
process.send({ type: 'listening', port: address.port });

async function seed({ bucket, keys, body }) {
  for (const key of keys) {
    await server.store.putObject(new S3Object(bucket, key, Buffer.from(body), {}));
  }
}
