// `npm test`: build, then the type check and lint (scripts/check.mjs) while
// vitest runs. The two need nothing from each other, and vitest spends most of
// its time waiting on child processes, fsyncs and paced jobs: the check's CPU
// fits into those waits. The check's report is held back and printed after
// vitest's, so the two never interleave; either failing fails the whole.
import { spawn } from 'node:child_process';

function run(command, args, capture) {
  const child = spawn(command, args, { stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
  let output = '';
  if (capture) {
    child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk));
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ ok: code === 0, output, why: signal ?? `exit ${code}` }));
  });
}

const node = process.execPath;
const built = await run(node, ['scripts/build.mjs'], false);
if (!built.ok) {
  process.exitCode = 1;
} else {
  const vitestBin = new URL('../node_modules/vitest/vitest.mjs', import.meta.url).pathname;
  const [check, tests] = await Promise.all([
    run(node, ['scripts/check.mjs'], true),
    // Arguments after `npm test --` are vitest's (CI asks for its JSON report so).
    run(node, [vitestBin, 'run', ...process.argv.slice(2)], false),
  ]);
  process.stdout.write(check.output);
  process.stdout.write(`type check and lint: ${check.ok ? 'passed' : `FAILED (${check.why})`}\n`);
  if (!check.ok || !tests.ok) process.exitCode = 1;
}
