#!/usr/bin/env node
import { promises, lstatSync, unlinkSync } from 'node:fs';
import { userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../cli/run.js';
import { createProcessTable } from '../core/process-table.js';
import type { Identity } from '../core/permission.js';
import { currentIdentity } from './identity.js';
import { installedRunbooks } from './runbook-files.js';

// The only place that touches process.argv and process.exitCode. No
// process.exit(): it can cut off JSON still being piped out.
process.on('unhandledRejection', (error) => {
  process.stderr.write(
    `crashdiag: unexpected error\n${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exitCode = 1;
});

// A reader that stops early (`crashdiag scan | head -1`) closes the pipe: the
// rest of the output has nowhere to go, which is not an error of ours. The
// command still finishes (a --fix is never cut short) and keeps its exit code.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? String(process.getuid?.() ?? 'unknown');
  }
}

// Who acts, for the permission checks: read from /proc once, and only by what removes.
let identity: Identity | undefined;

// No top-level await: the bin is bundled as CommonJS, which starts faster on node 20.
void run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  fs: { ...promises, lstatSync, unlinkSync },
  processes: createProcessTable(),
  now: () => Date.now(),
  sleep: (ms) => sleep(ms),
  // child_process loads only when a re-run actually happens.
  runCommand: async (...args) => (await import('./command-runner.js')).runCommand(...args),
  user: currentUser(),
  get identity() {
    return (identity ??= currentIdentity());
  },
  pid: process.pid,
  // node:crypto is loaded only by what takes a lock: a plain diagnose never pays for it.
  randomToken: () => process.getBuiltinModule('node:crypto').randomBytes(8).toString('hex'),
  every: (ms, fn) => {
    const timer = setInterval(fn, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
  // Loaded only when a cause of death is looked for.
  readKernelLog: async (sinceMs) => (await import('./kernel-log-reader.js')).createKernelLogReader()(sinceMs),
  statfs: (path) => promises.statfs(path),
  runbooks: installedRunbooks(),
  loadS3: async () => {
    // SDK 3.1175.0 warns on Node 20 about its releases after January 2027, which do not concern a pinned build.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    return import('../core/s3-run.js');
  },
}).then((code) => {
  process.exitCode = code;
});
