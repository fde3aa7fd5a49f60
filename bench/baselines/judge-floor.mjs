// The least a diagnose of one key can ask of node about each of its files,
// and no more: one streaming listing (readSync), one lstat (its size, times
// and type: what the judgement reads) and signal 0 to the writer's PID
// (process._kill, as crashdiag's process table asks: no exception per dead
// PID). No judgement, no model, no output but a count.
// Usage: node judge-floor.mjs DIR PREFIX
import { lstatSync, opendirSync } from 'node:fs';

const [dir = '.', prefix = ''] = process.argv.slice(2);
const kill = process._kill.bind(process);
const handle = opendirSync(dir, { bufferSize: 256 });
let files = 0;
let dead = 0;
let bytes = 0;
for (let entry = handle.readSync(); entry; entry = handle.readSync()) {
  if (!entry.name.startsWith(prefix)) continue;
  const stats = lstatSync(`${dir}/${entry.name}`);
  bytes += stats.size;
  files++;
  const pid = Number(entry.name.slice(prefix.length).split('.')[1]);
  if (kill(pid, 0) !== 0) dead++;
}
handle.closeSync();
console.log(files, dead, bytes);
