// The same listing as list-readsync.mjs in the idiomatic for-await form: one
// promise per entry, which is what it costs on a huge directory.
// Usage: node list-for-await.mjs DIR PREFIX [SUFFIX]
import { promises as fs } from 'node:fs';

const [dir = '.', prefix = '', suffix = ''] = process.argv.slice(2);
let count = 0;
for await (const entry of await fs.opendir(dir, { bufferSize: 256 })) {
  if (entry.name.startsWith(prefix) && entry.name.endsWith(suffix)) count++;
}
console.log(count);
