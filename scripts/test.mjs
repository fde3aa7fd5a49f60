// `npm test`: the type check and lint (scripts/check.mjs) beside the build and
// then vitest. The check needs nothing from either: it reads the sources, and
// the build's dist/, dist-dev/ and their scratch copies (dist.*/) are outside
// the TypeScript program and ignored by the lint. The check's report is held
// back and printed after vitest's, so the two never interleave; any of the
// three failing fails the whole.
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
// The check reads the sources only (the build's dist/ and its scratch dist.*/ are outside
// the program and ignored by the lint): it starts with the build, not after it.
const checked = run(node, ['scripts/check.mjs'], true);
const built = await run(node, ['scripts/build.mjs'], false);
let testsOk = false;
if (built.ok) {
  const vitestBin = new URL('../node_modules/vitest/vitest.mjs', import.meta.url).pathname;
  // Arguments after `npm test --` are vitest's (CI asks for its JSON report so).
  testsOk = (await run(node, [vitestBin, 'run', ...process.argv.slice(2)], false)).ok;
}
const check = await checked;
process.stdout.write(check.output);
process.stdout.write(`type check and lint: ${check.ok ? 'passed' : `FAILED (${check.why})`}\n`);
if (!check.ok || !built.ok || !testsOk) process.exitCode = 1;
