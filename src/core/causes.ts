// Why a run died: what each witness (the kernel log, the file systems, the
// audit log, the inputs) says. Only reads; a witness that cannot be asked is a
// note, never an error: causes are advice, the state is the disk's.
import type { Deps } from './deps.js';
import type { DeadOrphan } from './attempts.js';
import type { Diagnosis } from './diagnosis.js';
import { errnoCode, UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import { describeOomKill, type KernelLog, matchOomKill, parseOomKills } from './kernel-log.js';
import { IO_CONCURRENCY, mapPool } from './pool.js';
import { listInBatches } from './probe.js';
import type { Attempt } from './recovery.js';
import type { PipelineSettings } from './settings.js';

/** What killed a run, as far as the evidence says. */
export type CauseKind
  = | 'oom-kill'
    | 'disk-full'
    | 'partial-write'
    | 'rerun-failed'
    | 'killed-by-signal'
    | 'input-missing';

export interface Cause {
  readonly kind: CauseKind;
  /** The writer (or re-run) it is about, when it is about one. */
  readonly pid?: number;
  /** When it happened, ISO-8601, when known. */
  readonly at?: string;
  readonly detail: string;
}

/** A file system's space, as statfs(2) says it. */
export interface SpaceFacts {
  readonly bavail: number;
  readonly blocks: number;
  readonly bsize: number;
}

/** What causes are read from: the disk, the kernel log and free space (absent: not consulted, a note says so). */
export type CauseWitnesses = Pick<Deps, 'fs' | 'readKernelLog' | 'statfs'>;

export interface CauseFindings {
  readonly causes: Cause[];
  readonly notes: string[];
}

/** findCauses' answer: the causes listed, and how many more there are. */
export interface FoundCauses extends CauseFindings {
  /** Causes past the `listed` asked for: a crash loop's partial writes or OOM kills, one per attempt. */
  readonly unlisted: number;
}

const LOW_SPACE_SHARE = 0.05;

/** States where something died: the others have no cause of death to look for. */
const DIED = new Set(['D', 'A/B/C', 'UNPUBLISHED', 'RERUN-FAILED', 'CRASH-LOOP', 'BLOCKED']);

function iso(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

interface PublishedOutput {
  readonly name: string;
  readonly bytes: number;
  readonly mtimeMs: number;
}

/** What the causes ask of this pipeline's other published outputs. */
interface PublishedFacts {
  /** The newest (ties: the first by name), the one a partial write is measured against. */
  readonly newest: PublishedOutput | undefined;
  /** The largest one's size: what a run needs free on the file systems. */
  readonly largestBytes: number;
}

/**
 * Published outputs of this pipeline (any run key but this one): one
 * synchronous streaming listing, as the probe's, and an lstat each. A promise
 * per entry made this 100 ms of a 1M-entry diagnose that has 2,000 outputs.
 */
async function publishedOutputs(fs: FileSystem, settings: PipelineSettings, runKey: string): Promise<PublishedFacts> {
  let newest: PublishedOutput | undefined;
  let largestBytes = 0;
  const consider = async (name: string): Promise<void> => {
    const path = `${settings.outDir}/${name}`;
    let stats: { size: number; mtimeMs: number; isFile(): boolean };
    try {
      stats = fs.lstatSync ? fs.lstatSync(path) : await fs.lstat(path);
    } catch (error) {
      // Gone, or not ours to look at, since it was listed: not a witness.
      if (errnoCode(error)) return;
      throw error;
    }
    if (!stats.isFile()) return;
    largestBytes = Math.max(largestBytes, stats.size);
    if (!newest || stats.mtimeMs > newest.mtimeMs || (stats.mtimeMs === newest.mtimeMs && name < newest.name)) {
      newest = { name, bytes: stats.size, mtimeMs: stats.mtimeMs };
    }
  };
  const match = (name: string): true | undefined => {
    const key = settings.final.runKeyOf(name);
    return key === undefined || key === runKey ? undefined : true;
  };
  try {
    await listInBatches(fs, settings.outDir, 'output directory', match, async (batch) => {
      for (const { name } of batch) await consider(name);
    });
  } catch (error) {
    // An output directory that cannot be listed has no witness to give.
    if (!(error instanceof UsageError) && !errnoCode(error)) throw error;
  }
  return { newest, largestBytes };
}

/** The earliest moment each attempt's writer can have died: known already, or found by looking at its file. */
interface DeathBound {
  readonly known: (attempt: Attempt) => number | undefined;
  readonly look: (attempt: Attempt) => Promise<number>;
  /** A moment no later than any of theirs, without looking at a file; undefined where only looking tells. */
  readonly earliest: (attempts: readonly Attempt[]) => number | undefined;
}

async function deathBounds(attempts: readonly Attempt[], bound: DeathBound): Promise<number[]> {
  const bounds = attempts.map(bound.known);
  const unknown: number[] = [];
  bounds.forEach((b, i) => {
    if (b === undefined) unknown.push(i);
  });
  // Bounded: a crash loop left alone can have 100,000 attempts, each a file to look at.
  const looked = await mapPool(unknown, IO_CONCURRENCY, (i) => bound.look(attempts[i] as Attempt));
  unknown.forEach((i, j) => {
    bounds[i] = looked[j];
  });
  return bounds as number[];
}

const earliestOf = (bounds: readonly number[]) => bounds.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);

type Finish = () => Promise<CauseFindings>;

const found = (findings: CauseFindings): Finish => () => Promise.resolve(findings);

/**
 * oom-kill: the kernel log's record of each attempt's PID, no earlier than
 * the attempt began. Only the attempts whose PID the log names are bounded
 * one by one: a crash loop's 100,000 are matched against a handful of kills.
 * Resolves once the log has been asked for, to what reads the answer: the
 * reader may be a child process, which runs while the caller goes on.
 */
async function requestOomCauses(
  witnesses: CauseWitnesses,
  attempts: readonly Attempt[],
  notBefore: DeathBound,
): Promise<Finish> {
  const withPid = attempts.filter((a) => a.pid !== null);
  if (withPid.length === 0) return found({ causes: [], notes: [] });
  const reader = witnesses.readKernelLog;
  if (!reader) return found({ causes: [], notes: ['the kernel log was not consulted'] });
  const earliest = notBefore.earliest(withPid);
  const all = earliest === undefined ? await deathBounds(withPid, notBefore) : undefined;
  // Settled into a value at once: a failure while the caller is busy must
  // not count as unhandled; it is thrown where the answer is read.
  const reading = reader(earliest ?? earliestOf(all ?? [])).then(
    (log) => ({ log }),
    (error: unknown) => ({ error }),
  );
  return async () => {
    const read = await reading;
    if ('error' in read) throw read.error;
    return oomCausesIn(read.log, withPid, all, notBefore);
  };
}

async function oomCausesIn(
  log: KernelLog,
  withPid: readonly Attempt[],
  all: readonly number[] | undefined,
  notBefore: DeathBound,
): Promise<CauseFindings> {
  if ('unavailable' in log) return { causes: [], notes: [log.unavailable] };
  const kills = parseOomKills(log.lines, log.bootTimeMs);
  const killed = new Set(kills.map((kill) => kill.pid));
  const named: number[] = [];
  withPid.forEach((attempt, i) => {
    if (killed.has(attempt.pid as number)) named.push(i);
  });
  const suspects = named.map((i) => withPid[i] as Attempt);
  const bounds = all ? named.map((i) => all[i] as number) : await deathBounds(suspects, notBefore);
  const causes: Cause[] = [];
  suspects.forEach((attempt, i) => {
    const kill = matchOomKill(kills, attempt.pid as number, bounds[i] as number);
    if (!kill) return;
    causes.push({
      kind: 'oom-kill',
      pid: kill.pid,
      ...(kill.atMs === null ? {} : { at: iso(kill.atMs) }),
      detail: `${describeOomKill(kill)} (${log.source})`,
    });
  });
  return { causes, notes: [] };
}

/** disk-full: free space on the staging and output file systems, against the outputs this pipeline writes. */
async function diskCauses(
  witnesses: CauseWitnesses,
  settings: PipelineSettings,
  largestOutput: number,
): Promise<CauseFindings> {
  if (!witnesses.statfs) return { causes: [], notes: [] };
  const causes: Cause[] = [];
  const notes: string[] = [];
  const dirs = settings.outDir === settings.stagingDir ? [settings.stagingDir] : [settings.stagingDir, settings.outDir];
  for (const dir of dirs) {
    let space: SpaceFacts;
    try {
      space = await witnesses.statfs(dir);
    } catch (error) {
      if (!errnoCode(error)) throw error;
      notes.push(`free space of ${dir} cannot be read (${errnoCode(error)})`);
      continue;
    }
    const free = space.bavail * space.bsize;
    const share = space.blocks > 0 ? space.bavail / space.blocks : 1;
    const tooSmall = largestOutput > 0 && free < largestOutput;
    if (share < LOW_SPACE_SHARE || tooSmall) {
      causes.push({
        kind: 'disk-full',
        detail: `${dir} has ${mib(free)} free (${(share * 100).toFixed(1)} % of ${mib(space.blocks * space.bsize)})${tooSmall ? `, less than this pipeline's largest output (${mib(largestOutput)})` : ''}`,
      });
    }
  }
  return { causes, notes };
}

/** partial-write: how far each orphan got, by size, against the last published output. */
/**
 * partial-write: how far each attempt got, by size, against the last
 * published output, for the first `room` attempts (oldest first); the rest
 * only counted.
 */
function partialWrites(
  attempts: readonly Attempt[],
  previous: { name: string; bytes: number } | undefined,
  room: number,
): { causes: Cause[]; unlisted: number } {
  if (!previous || previous.bytes <= 0) return { causes: [], unlisted: 0 };
  const causes: Cause[] = [];
  let unlisted = 0;
  for (const a of attempts) {
    if (a.bytes === null || a.source === 'rerun') continue;
    if (causes.length >= room) {
      unlisted++;
      continue;
    }
    causes.push({
      kind: 'partial-write',
      ...(a.pid === null ? {} : { pid: a.pid }),
      at: iso(a.atMs),
      detail: `wrote ${a.bytes} bytes: got about ${Math.min(99, Math.round((a.bytes / previous.bytes) * 100))} % through, by size (the last published output, ${previous.name}, has ${previous.bytes})`,
    });
  }
  return { causes, unlisted };
}

/** rerun-failed, killed-by-signal: the last attempt crashdiag started, and how it ended. */
function rerunCause(attempts: readonly Attempt[]): Cause[] {
  const last = [...attempts].reverse().find((a) => a.ended !== null);
  if (!last || last.ended === null) return [];
  const signal = last.ended.startsWith('SIG');
  return [
    {
      kind: signal ? 'killed-by-signal' : 'rerun-failed',
      ...(last.pid === null ? {} : { pid: last.pid }),
      at: iso(last.atMs),
      detail: signal
        ? `the last re-run crashdiag started was killed by ${last.ended}${last.ended === 'SIGKILL' ? ' (the OOM killer, an orchestrator\'s hard kill, or kill -9)' : ''}`
        : `the last re-run crashdiag started ended with ${last.ended}`,
    },
  ];
}

/** The earliest its writer can have died: the file's creation where known (0: not kept), else its last write. */
function bornBy(birthtimeMs: number, atMs: number): number {
  return birthtimeMs > 0 ? Math.min(birthtimeMs, atMs) : atMs;
}

/** By PID, the earliest creation the probe saw of its writer's files (0: none kept). */
function bornByPid(probed: readonly DeadOrphan[]): Map<number, number> {
  const born = new Map<number, number>();
  for (const orphan of probed) born.set(orphan.pid, earlierBirth(born.get(orphan.pid), orphan.bornMs));
  return born;
}

/** The earlier of two creation times, where known (0: the file system keeps none). */
function earlierBirth(seen: number | undefined, at: number | undefined): number {
  const known = at !== undefined && at > 0 ? at : 0;
  if (seen === undefined || seen === 0) return known;
  return known === 0 ? seen : Math.min(seen, known);
}

/** By PID, the paths of its dead writer's files among those the diagnosis lists. */
function deadPathsByPid(diagnosis: Diagnosis): Map<number, string[]> {
  const paths = new Map<number, string[]>();
  for (const o of diagnosis.orphans) {
    if (o.writer !== 'dead') continue;
    const list = paths.get(o.pid);
    if (list) list.push(o.path);
    else paths.set(o.pid, [o.path]);
  }
  return paths;
}

/**
 * When each attempt's writer can have died at the earliest: its files'
 * creation, as the probe saw it, or as a look now says; or its last write.
 */
function deathBoundFor(fs: FileSystem, diagnosis: Diagnosis, probed: readonly DeadOrphan[] | undefined): DeathBound {
  // Built only when asked: for the few attempts the kernel log names.
  let born: Map<number, number> | undefined;
  let pathsOf: Map<number, string[]> | undefined;
  const orphanOf = (attempt: Attempt) => (attempt.source === 'orphan' && attempt.pid !== null ? attempt.pid : undefined);
  return {
    known: (attempt) => {
      const pid = orphanOf(attempt);
      if (pid === undefined) return attempt.atMs;
      if (!probed) return undefined;
      born ??= bornByPid(probed);
      // A file's creation bounds its writer's death from below; without it, its last write does.
      const at = born.get(pid);
      return at === undefined ? undefined : bornBy(at, attempt.atMs);
    },
    look: async (attempt) => {
      const pid = orphanOf(attempt);
      // By PID, its dead writers' files (a search per attempt was quadratic over 100,000).
      pathsOf ??= deadPathsByPid(diagnosis);
      const paths = pid === undefined ? undefined : pathsOf.get(pid);
      if (paths === undefined) return attempt.atMs;
      // The earliest creation of any of them, as `known` takes it from the
      // probe: one PID's files (a container's every attempt is PID 7) must
      // not bound its death by whichever comes first by path.
      let earliest = 0;
      for (const path of paths) {
        try {
          // Synchronously where the file system allows: one per attempt, and a crash loop can have 100,000.
          const stats = fs.lstatSync ? fs.lstatSync(path) : await fs.lstat(path);
          earliest = earlierBirth(earliest, stats.birthtimeMs);
        } catch {
          // Gone since the probe: the others still bound it.
        }
      }
      return bornBy(earliest, attempt.atMs);
    },
    // No later than every bound: the earliest last write, and the earliest
    // creation the probe saw of a dead writer's file (each orphan attempt's files are among them).
    earliest: (list) => {
      if (!probed && list.some((attempt) => orphanOf(attempt) !== undefined)) return undefined;
      let min = Number.POSITIVE_INFINITY;
      for (const attempt of list) min = Math.min(min, attempt.atMs);
      for (const orphan of probed ?? []) if ((orphan.bornMs ?? 0) > 0) min = Math.min(min, orphan.bornMs as number);
      return min;
    },
  };
}

/**
 * Why a run died, as far as the kernel log, the file systems, the audit log
 * and the inputs say. Read-only, and never fails a diagnosis for a witness
 * that cannot be asked.
 */
export async function findCauses(
  witnesses: CauseWitnesses,
  settings: PipelineSettings,
  diagnosis: Diagnosis,
  /**
   * The dead writers' files as the probe that made `diagnosis` saw them
   * (StagingFold.deadOrphans): their birth times, so a crash loop's 100,000
   * orphans are not looked at twice. Without them, each is looked at here.
   */
  probed?: readonly DeadOrphan[],
  /**
   * How many causes to list; past that they are counted. OOM kills come
   * first and partial writes last, both one per attempt: only they are cut
   * for the few kinds between them.
   */
  listed = Number.POSITIVE_INFINITY,
): Promise<FoundCauses> {
  if (!DIED.has(diagnosis.state)) return { causes: [], notes: [], unlisted: 0 };
  const attempts = diagnosis.attempts?.list ?? [];
  const notBefore = deathBoundFor(witnesses.fs, diagnosis, probed);
  // The kernel log is read by a child process: asked for first, it runs
  // while the output directory is listed here.
  const finishOom = await requestOomCauses(witnesses, attempts, notBefore);
  const outputs = await publishedOutputs(witnesses.fs, settings, diagnosis.run);
  const oom = await finishOom();
  const disk = await diskCauses(witnesses, settings, outputs.largestBytes);
  const inputs: Cause[] = (diagnosis.inputs ?? [])
    .filter((i) => i.status !== 'ok')
    .map((i) => ({ kind: 'input-missing', detail: `the input ${i.path} ${i.detail}` }));
  const few = [...disk.causes, ...rerunCause(attempts), ...inputs];
  // Kills are one per attempt too: a crash loop the kernel killed every time
  // has more than the bound, and they must not crowd out a full disk or a
  // missing input. Listed first, as far as the few leave room.
  const room = Math.max(0, listed - few.length);
  const kills = oom.causes.slice(0, room);
  const partial = partialWrites(attempts, outputs.newest, room - kills.length);
  const causes = [...kills, ...few, ...partial.causes];
  const cut = Math.max(0, causes.length - listed);
  if (cut > 0) causes.length -= cut;
  const unlisted = oom.causes.length - kills.length + partial.unlisted + cut;
  return { causes, notes: [...oom.notes, ...disk.notes], unlisted };
}
