#!/usr/bin/env node
import { promises as fs } from 'node:fs';
import { run } from '../cli/run.js';
import { createProcessTable } from '../core/process-table.js';

// The only place that touches process.argv and process.exitCode. No
// process.exit(): it can cut off JSON still being piped out.
process.on('unhandledRejection', (error) => {
  process.stderr.write(
    `crashdiag: unexpected error\n${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exitCode = 1;
});

process.exitCode = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  fs,
  processes: createProcessTable(),
  now: () => Date.now(),
});
