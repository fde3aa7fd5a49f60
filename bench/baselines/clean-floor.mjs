// The least clean can ask of node for each orphan while keeping its guards,
// and no more: one streaming listing; an lstat to judge it (type, age) and
// signal 0 to its writer; its intent appended to an audit log, fsynced once
// per 1,024 files before any of them is unlinked; one more lstat right
// before each unlink (the same file?); the unlink; an outcome line per file.
// No template, no permission check, no lock, no report.
// Usage: node clean-floor.mjs DIR AUDIT_LOG
import { closeSync, fsyncSync, lstatSync, openSync, opendirSync, unlinkSync, writeSync } from 'node:fs';

const [dir = '.', audit = 'audit.jsonl'] = process.argv.slice(2);
const BATCH = 1024;
const kill = process._kill.bind(process);
const log = openSync(audit, 'w');
const handle = opendirSync(dir, { bufferSize: 256 });
let removed = 0;
let batch = [];

function removeBatch() {
  writeSync(log, batch.map((b) => `{"op":"intent","path":"${b.path}","ino":${b.ino}}\n`).join(''));
  fsyncSync(log);
  const outcomes = [];
  for (const { path, ino } of batch) {
    if (lstatSync(path).ino !== ino) continue;
    unlinkSync(path);
    outcomes.push(`{"op":"delete","path":"${path}"}\n`);
    removed++;
  }
  writeSync(log, outcomes.join(''));
  batch = [];
}

for (let entry = handle.readSync(); entry; entry = handle.readSync()) {
  if (!entry.name.endsWith('.csv')) continue;
  const path = `${dir}/${entry.name}`;
  const stats = lstatSync(path);
  if (!stats.isFile() || kill(Number(entry.name.split('.')[1]), 0) === 0) continue;
  batch.push({ path, ino: stats.ino });
  if (batch.length === BATCH) removeBatch();
}
handle.closeSync();
if (batch.length > 0) removeBatch();
fsyncSync(log);
closeSync(log);
console.log(removed);
