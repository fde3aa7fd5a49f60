// Bundles the CLI into dist/ so start-up does not pay for resolving hundreds of
// node_modules files (measured: 173 ms unbundled vs 73 ms bundled for our four
// runtime dependencies). Code splitting keeps chalk and cli-table3 out of the
// --json path: they load only when the human renderer is imported.

import { rename, rm } from 'node:fs/promises';
import { build } from 'esbuild';

// Build beside dist/ and swap it in, so a test or demo running the previous
// build never sees a half-written or missing bundle.
const root = new URL('../', import.meta.url);
const fresh = new URL(`dist.${process.pid}/`, root);
const old = new URL(`dist.old.${process.pid}/`, root);
await build({
  entryPoints: {
    'crashdiag': 'src/bin/crashdiag.ts',
    'refunds-pipeline': 'examples/refunds-pipeline/main.ts',
    'demo': 'scripts/demo.ts',
    'crash-campaign': 'scripts/crash-campaign.ts',
    'bench': 'bench/run.ts',
  },
  outdir: fresh.pathname,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  // cli-table3 is CommonJS and calls require() for node built-ins; an ESM
  // bundle has no require unless we provide one.
  banner: {
    js: 'import { createRequire as __crashdiagRequire } from \'node:module\'; const require = __crashdiagRequire(import.meta.url);',
  },
  logLevel: 'warning',
});
await rename(new URL('dist/', root), old).catch(() => {});
await rename(fresh, new URL('dist/', root));
await rm(old, { recursive: true, force: true });
