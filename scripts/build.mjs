// Bundles everything into dist/ so start-up does not pay for resolving
// hundreds of node_modules files (measured: 173 ms unbundled vs 73 ms bundled
// for yargs, chalk and cli-table3).
//
// The crashdiag bin is one CommonJS file: node 20 loads an ES module graph
// file by file, asynchronously, and that alone made the start-up 1.45-1.5x
// `node -e 0`, against about 1.3x for the same code as CommonJS (BENCHMARKS.md).
// Its dynamic imports become lazy initialisers, so yargs, chalk and
// cli-table3 are parsed but never run on the --json path.
//
// The demo, the crash campaign, the bench and the example pipeline are ES
// modules (they use top-level await) and stay that way. They go to dist-dev/,
// not dist/: dist/ is what the package ships (the bin, its lazy parts and the
// man page), and none of them is for users.

import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

// Build beside dist/ (and dist-dev/) and swap each in, so a test or demo
// running the previous build never sees a half-written or missing bundle.
const root = new URL('../', import.meta.url);
const fresh = new URL(`dist.${process.pid}/`, root);
const old = new URL(`dist.old.${process.pid}/`, root);
const freshDev = new URL(`dist.dev.${process.pid}/`, root);
const oldDev = new URL(`dist.dev.old.${process.pid}/`, root);
const { version } = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));
// --version prints package.json's version: the source names it CRASHDIAG_VERSION.
const versionDefine = { CRASHDIAG_VERSION: JSON.stringify(version) };
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', define: versionDefine };

// The parts of the bin only some runs need live in files of their own, so
// the common path does not even parse them: yargs (help and error messages)
// and the human views (chalk, cli-table3). Each is a lazy import in the source.
const lazyParts = [
  { source: /\/yargs-parser\.js$/, file: 'crashdiag-yargs', entry: 'src/cli/yargs-parser.ts' },
  { source: /\/render\/human\.js$/, file: 'crashdiag-human', entry: 'src/render/human.ts' },
  // S3 (issue 12): the store code and the whole AWS SDK, bundled in, read
  // only when a directory is an s3:// URL. Bundled rather than left external,
  // so an installed crashdiag needs no node_modules beside it and the SDK
  // stays a devDependency (pinned at 3.1175.0, which supports Node 20).
  { source: /\/core\/s3-run\.js$/, file: 'crashdiag-s3', entry: 'src/core/s3-run.ts' },
];
const cjs = {
  ...common,
  outdir: fresh.pathname,
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  // import() of a lazy part becomes require(): going through the ES module
  // loader for it cost more than the whole rest of the start-up.
  supported: { 'dynamic-import': false },
  // The runbook reader finds runbooks/ relative to its own file.
  define: { ...versionDefine, 'import.meta.url': '__crashdiagUrl' },
  banner: { js: 'const __crashdiagUrl = require(\'node:url\').pathToFileURL(__filename).href;' },
};
await build({
  ...cjs,
  entryPoints: { 'crashdiag-main': 'src/bin/crashdiag.ts' },
  plugins: [
    {
      name: 'lazy-parts',
      setup(b) {
        for (const part of lazyParts) {
          b.onResolve({ filter: part.source }, () => ({ path: `./${part.file}.cjs`, external: true }));
        }
      },
    },
  ],
});
await build({ ...cjs, entryPoints: Object.fromEntries(lazyParts.map((p) => [p.file, p.entry])) });
// The bin itself only compiles crashdiag-main.cjs, from the V8 code cache
// made below where it fits (src/bin/code-cache.ts).
await build({ ...cjs, entryPoints: { crashdiag: 'src/bin/start.ts' } });
await writeCodeCache(new URL('crashdiag-main.cjs', fresh).pathname);
await build({
  ...common,
  entryPoints: {
    'refunds-pipeline': 'examples/refunds-pipeline/main.ts',
    'demo': 'scripts/demo.ts',
    'crash-campaign': 'scripts/crash-campaign.ts',
    'bench': 'bench/run.ts',
  },
  outdir: freshDev.pathname,
  splitting: true,
  format: 'esm',
  chunkNames: 'chunks/[name]-[hash]',
  // Bundled CommonJS packages call require() for node built-ins; an ESM
  // bundle has no require unless we provide one.
  banner: {
    js: 'import { createRequire as __crashdiagRequire } from \'node:module\'; const require = __crashdiagRequire(import.meta.url);',
  },
});

// crashdiag.1, from the same command table as --help: the build runs the
// generator once, from a scratch directory, and ships only its output.
const scratch = await mkdtemp(join(tmpdir(), 'crashdiag-man-'));
try {
  const generator = join(scratch, 'man-page.cjs');
  await build({ ...common, entryPoints: ['src/cli/man-page.ts'], outfile: generator, format: 'cjs' });
  const { renderManPage } = createRequire(import.meta.url)(generator);
  // The date of the build's source, not of the machine's wallClock: the same commit builds the same page.
  const date = process.env.SOURCE_DATE_EPOCH
    ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000).toISOString().slice(0, 10)
    : new Date().toISOString().slice(0, 10);
  await writeFile(new URL('crashdiag.1', fresh), renderManPage(date));
} finally {
  await rm(scratch, { recursive: true, force: true });
}

/**
 * The bundle's code cache, made by running it once on the command the bin
 * runs most (a diagnose --json of a published run, an orchestrator's gate)
 * in a scratch layout: the cache then holds the functions that run compiled.
 * A build that cannot make it still works: the bin compiles from source.
 */
async function writeCodeCache(bundle) {
  const dir = await mkdtemp(join(tmpdir(), 'crashdiag-code-cache-'));
  try {
    const writer = join(dir, 'code-cache-writer.cjs');
    await build({ ...common, entryPoints: ['src/bin/code-cache-writer.ts'], outfile: writer, format: 'cjs' });
    const key = '2026-04-24';
    await mkdir(join(dir, 'out'));
    await mkdir(join(dir, 'staging'));
    await writeFile(join(dir, 'out', `report_${key}.csv`), 'id,amount\n');
    await writeFile(join(dir, 'out', `report_${key}.csv.success`), '');
    const args = ['diagnose', key, '--out-dir', join(dir, 'out'), '--staging-dir', join(dir, 'staging'),
      '--final', 'report_{date}.csv', '--json'];
    const ran = spawnSync(process.execPath, [writer, bundle, `${bundle}.cache`, '--', ...args], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1' },
    });
    if (ran.status !== 0) {
      await rm(`${bundle}.cache`, { force: true });
      process.stderr.write(`build: no code cache (the warm-up diagnose exited ${ran.status}): ${ran.stderr}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const [dir, built, previous] of [
  ['dist/', fresh, old],
  ['dist-dev/', freshDev, oldDev],
]) {
  await rename(new URL(dir, root), previous).catch(() => {});
  await rename(built, new URL(dir, root));
  await rm(previous, { recursive: true, force: true });
}
