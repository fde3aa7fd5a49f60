import { resolve } from 'node:path';
import { auditLogFor } from '../../core/audit.js';
import { findCauses } from '../../core/causes.js';
import { classifyRun } from '../../core/classify.js';
import { DEFAULT_LOCK_TIMEOUT } from '../../core/defaults.js';
import type { Diagnosis } from '../../core/diagnosis.js';
import { parseDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { fixRun } from '../../core/fix.js';
import { LockTimeoutError } from '../../core/lock.js';
import { probeRun } from '../../core/probe.js';
import { gatherRecovery } from '../../core/recovery-probe.js';
import { validateRunKey } from '../../core/run-key.js';
import { EXIT_CODES } from '../../core/states.js';
import { type CliIo, terminalWidth } from '../io.js';
import { type PipelineFlags, resolveNow, settingsFromFlags } from '../pipeline-options.js';
import { escapeText } from '../../render/format.js';
import { installedPath } from '../runbook-files.js';

interface DiagnoseFlags extends PipelineFlags {
  runKey?: string;
  json?: boolean;
  fix?: boolean;
  dryRun?: boolean;
  quarantine?: string;
  lockTimeout?: string;
  auditLog?: string;
  retry?: boolean;
}

/** Flags in the order a person would retype them, for the commands we print. */
const ECHOED_FLAGS: ReadonlyArray<[keyof PipelineFlags, string]> = [
  ['config', '--config'],
  ['pipeline', '--pipeline'],
  ['outDir', '--out-dir'],
  ['stagingDir', '--staging-dir'],
  ['final', '--final'],
  ['staging', '--staging'],
  ['marker', '--marker'],
  ['freshWithin', '--fresh-within'],
  ['staleAfter', '--stale-after'],
  ['rerun', '--rerun'],
  ['retryBackoff', '--retry-backoff'],
  ['input', '--input'],
];

export function invocationWords(command: string, runKey: string, flags: PipelineFlags): string[] {
  const words = ['crashdiag', command, runKey];
  for (const [key, flag] of ECHOED_FLAGS) {
    const value = flags[key];
    if (value === false) words.push(`--no-${flag.slice(2)}`);
    else if (typeof value === 'string') words.push(flag, value);
  }
  if (flags.pidCheck === false) words.push('--no-pid-check');
  if (flags.maxAttempts !== undefined) words.push('--max-attempts', String(flags.maxAttempts));
  return words;
}

/** Flag combinations are checked before any I/O. */
function checkCombinations(flags: DiagnoseFlags): void {
  if (!flags.fix) {
    for (const [value, flag] of [
      [flags.dryRun, '--dry-run'],
      [flags.quarantine, '--quarantine'],
      [flags.lockTimeout, '--lock-timeout'],
      [flags.auditLog, '--audit-log'],
      [flags.retry, '--retry'],
    ] as const) {
      if (value !== undefined && value !== false) {
        throw new UsageError(`${flag} goes with --fix; without --fix, diagnose changes nothing.`);
      }
    }
  }
  if (flags.fix && flags.now !== undefined) {
    // A fake clock makes a file written a second ago look long dead: never let it decide a deletion.
    throw new UsageError(
      `--now is for reading only: --fix${flags.dryRun ? ' --dry-run shows what the real run would do, so it too' : ''} judges every file against the real clock.`,
      'Drop --now, or drop --fix to read the run as of that time.',
    );
  }
  if (flags.quarantine !== undefined && flags.quarantine.trim() === '')
    throw new UsageError('--quarantine is empty.');
  if (flags.auditLog !== undefined && flags.auditLog.trim() === '')
    throw new UsageError('--audit-log is empty.');
}

export async function diagnoseCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as DiagnoseFlags;
  checkCombinations(flags);
  const runKey = validateRunKey(String(flags.runKey ?? ''));
  const fixedNow = flags.now === undefined ? undefined : resolveNow(flags.now, io);
  const lockTimeoutMs = parseDuration(flags.lockTimeout ?? DEFAULT_LOCK_TIMEOUT, '--lock-timeout');
  const settings = await settingsFromFlags(flags, io);
  const now = () => fixedNow ?? io.now();
  const invocation = invocationWords('diagnose', runKey, flags);
  const where = { width: terminalWidth(io), localHost: io.processes.hostname };
  const view = async () => {
    const human = await import('../../render/human.js');
    return { ...human, chalk: human.chalkFor(io.stdout, io.env) };
  };

  const auditLog = auditLogFor(flags.auditLog, settings, io.cwd);
  // Hook: why it died (causes.ts), beside the state; advice only, never the exit code.
  const witnesses = {
    fs: io.fs,
    ...(io.readKernelLog ? { readKernelLog: io.readKernelLog } : {}),
    ...(io.statfs ? { statfs: io.statfs } : {}),
  };
  const withCauses = async (diagnosis: Diagnosis): Promise<Diagnosis> => {
    const found = await findCauses(witnesses, settings, diagnosis);
    return { ...diagnosis, causes: found.causes, causeNotes: found.notes };
  };
  if (!flags.fix) {
    const nowMs = now();
    const evidence = await probeRun({ fs: io.fs, processes: io.processes, nowMs }, settings, runKey);
    const diagnosis = await withCauses(
      classifyRun({
        ...evidence,
        recovery: await gatherRecovery(io.fs, settings, runKey, { auditLog, retry: false, nowMs }),
      }),
    );
    if (flags.json) {
      const { renderDiagnosisJson } = await import('../../render/json.js');
      io.stdout.write(renderDiagnosisJson(diagnosis, installedPath));
    } else {
      const { renderDiagnosisHuman, chalk } = await view();
      io.stdout.write(
        renderDiagnosisHuman(
          { diagnosis, pipeline: settings.pipeline, rerun: settings.rerun, invocation, ...where },
          chalk,
        ),
      );
    }
    return diagnosis.exitCode;
  }

  const resolvePath = (path: string | undefined) => (path === undefined ? undefined : resolve(io.cwd, path));
  let report: Awaited<ReturnType<typeof fixRun>>;
  try {
    report = await fixRun(
      {
        fs: io.fs,
        processes: io.processes,
        clock: io.now,
        sleep: io.sleep,
        runCommand: (words, env) => io.runCommand(words, env, flags.json === true),
        user: io.user,
        identity: io.identity,
        pid: io.pid,
        randomToken: io.randomToken,
        every: io.every,
        progress: (line) => {
          if (!flags.json) io.stderr.write(`crashdiag: ${escapeText(line)}\n`);
        },
      },
      settings,
      runKey,
      {
        dryRun: flags.dryRun === true,
        quarantineDir: resolvePath(flags.quarantine) ?? settings.quarantine,
        lockTimeoutMs,
        auditLog,
        retry: flags.retry === true,
      },
    );
  } catch (error) {
    if (!(error instanceof LockTimeoutError)) throw error;
    // Another fixer is acting on this run right now: for a gate that means "wait".
    io.stderr.write(`crashdiag: ${escapeText(error.message)}\n  Try again once it finishes; nothing was changed.\n`);
    if (flags.json) {
      // A gate that parses stdout still gets one object, in the diagnosis' shape.
      const { renderLockTimeoutJson } = await import('../../render/json.js');
      io.stdout.write(renderLockTimeoutJson(runKey, error, installedPath));
    }
    return EXIT_CODES.RUNNING;
  }
  const after = await withCauses(report.after);
  // A dry run's "after" is its "before": one look for both.
  report = { ...report, after, ...(report.dryRun ? { before: after } : {}) };
  if (flags.json) {
    const { renderFixJson } = await import('../../render/json.js');
    io.stdout.write(renderFixJson(report, installedPath));
  } else {
    const { renderFixHuman, renderDiagnosisHuman, chalk } = await view();
    io.stdout.write(renderFixHuman(report, chalk));
    io.stdout.write(
      renderDiagnosisHuman(
        { diagnosis: report.after, pipeline: settings.pipeline, rerun: settings.rerun, invocation, ...where },
        chalk,
      ),
    );
  }
  return report.exitCode;
}
