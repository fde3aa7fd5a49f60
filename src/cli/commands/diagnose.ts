import { classifyRun } from '../../core/classify.js';
import { UsageError } from '../../core/errors.js';
import { probeRun } from '../../core/probe.js';
import { validateRunKey } from '../../core/run-key.js';
import type { CliIo } from '../io.js';
import { type PipelineFlags, resolveNow, settingsFromFlags } from '../pipeline-options.js';

interface DiagnoseFlags extends PipelineFlags {
  runKey?: string;
  json?: boolean;
  fix?: boolean;
  dryRun?: boolean;
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
];

export function invocationWords(command: string, runKey: string, flags: PipelineFlags): string[] {
  const words = ['crashdiag', command, runKey];
  for (const [key, flag] of ECHOED_FLAGS) {
    const value = flags[key];
    if (value === false) words.push(`--no-${flag.slice(2)}`);
    else if (typeof value === 'string') words.push(flag, value);
  }
  if (flags.pidCheck === false) words.push('--no-pid-check');
  return words;
}

export async function diagnoseCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const flags = argv as DiagnoseFlags;
  if (flags.dryRun && !flags.fix) {
    throw new UsageError('--dry-run goes with --fix: without --fix, diagnose changes nothing anyway.');
  }
  const runKey = validateRunKey(String(flags.runKey ?? ''));
  const nowMs = resolveNow(flags.now, io);
  const settings = await settingsFromFlags(flags, io);
  const evidence = await probeRun({ fs: io.fs, processes: io.processes, nowMs }, settings, runKey);
  const diagnosis = classifyRun(evidence);
  if (flags.json) {
    const { renderDiagnosisJson } = await import('../../render/json.js');
    io.stdout.write(renderDiagnosisJson(diagnosis));
  } else {
    const [{ renderDiagnosisHuman }, { chalkFor }] = await Promise.all([
      import('../../render/human-diagnosis.js'),
      import('../../render/colour.js'),
    ]);
    io.stdout.write(
      renderDiagnosisHuman(
        {
          diagnosis,
          pipeline: settings.pipeline,
          rerun: settings.rerun,
          invocation: invocationWords('diagnose', runKey, flags),
        },
        chalkFor(io.stdout, io.env),
      ),
    );
  }
  return diagnosis.exitCode;
}
