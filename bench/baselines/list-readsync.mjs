// The listing floor in node: one streaming pass over the directory, entries
// read in small batches, no promise per entry. Counts the names with the
// given prefix and suffix. Usage: node list-readsync.mjs DIR PREFIX [SUFFIX]
import { promises as fs } from 'node:fs';

const [dir = '.', prefix = '', suffix = ''] = process.argv.slice(2);
const handle = await fs.opendir(dir, { bufferSize: 256 });
let count = 0;
for (let entry = handle.readSync(); entry; entry = handle.readSync()) {
  if (entry.name.startsWith(prefix) && entry.name.endsWith(suffix)) count++;
}
handle.closeSync();
console.log(count);
