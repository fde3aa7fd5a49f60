// The kernel's record of OOM kills: the one witness to a SIGKILL that leaves
// no exit code and no last log line. Parsing is pure; reading the log is the
// injected KernelLogReader's job (src/bin/kernel-log-reader.ts).

/** The kernel log as one source gave it. */
export type KernelLog
  = | {
    readonly source: string;
    readonly lines: readonly string[];
    /**
     * dmesg and /dev/kmsg stamp lines in seconds since boot: the boot's wall
     * time turns them into instants. journalctl stamps wall time itself.
     */
    readonly bootTimeMs: number | null;
  }
  | {
    /** Why no source could be read, and how to allow it. */
    readonly unavailable: string;
  };

/** Reads the kernel log from `sinceMs` on (a hint; a source may give more). */
export type KernelLogReader = (sinceMs: number) => Promise<KernelLog>;

/** One OOM kill, as the kernel logged it. */
export interface OomKill {
  readonly pid: number;
  readonly comm: string;
  /** When, as a wall-clock instant (ms); null when the line had no usable time. */
  readonly atMs: number | null;
  /** `Memory cgroup out of memory` (a cgroup's limit), not the whole machine's memory. */
  readonly memcg: boolean;
  readonly totalVmKb: number | null;
  readonly anonRssKb: number | null;
  /** The victim's cgroup (task_memcg=, or "Task in ... killed"), when the log says. */
  readonly cgroup: string | null;
  /** `CONSTRAINT_MEMCG`, `CONSTRAINT_NONE`, ... (kernels from 4.19). */
  readonly constraint: string | null;
}

interface Stamped {
  readonly text: string;
  readonly atMs: number | null;
}

// `[12345.678901] text` (dmesg), `6,1234,12345678901,-;text` (/dev/kmsg, microseconds),
// `1714000000.123456 host kernel: text` (journalctl -o short-unix).
const DMESG = /^\[\s*(\d+\.\d+)\]\s?(.*)$/;
const KMSG = /^\d+,\d+,(\d+),[^;]*;(.*)$/;
const JOURNAL = /^(\d{9,}\.\d+)\s+\S+\s+kernel:\s?(.*)$/;

function stamp(line: string, bootTimeMs: number | null): Stamped {
  const sinceBoot = (seconds: number) => (bootTimeMs === null ? null : bootTimeMs + seconds * 1000);
  let m = JOURNAL.exec(line);
  if (m) return { text: m[2] ?? '', atMs: Math.round(Number(m[1]) * 1000) };
  m = KMSG.exec(line);
  if (m) return { text: m[2] ?? '', atMs: sinceBoot(Number(m[1]) / 1e6) };
  m = DMESG.exec(line);
  if (m) return { text: m[2] ?? '', atMs: sinceBoot(Number(m[1])) };
  return { text: line, atMs: null };
}

// Both forms, old and new: "Out of memory: Kill process N (comm) score S or
// sacrifice child" (to 5.0) and "Out of memory: Killed process N (comm)
// total-vm:..." (5.1 on), each also as "Memory cgroup out of memory: ...".
// A process names itself (prctl, at most 15 bytes), ')' and spaces included:
// its name is the longest of at most 15 that the line's known continuation
// follows (the continuation itself holds no ')'), so a name holding "), " or
// ") total-vm:1kB" is read whole and not taken for the figures. /dev/kmsg
// writes each byte that is not printable ASCII as \xNN: one byte of the 15.
// A line whose continuation is unknown falls back to the first ')'.
const NAME = String.raw`\(((?:\\x[0-9a-f]{2}|[^\\]|\\(?!x[0-9a-f]{2})){0,15})\)(?=\s+total-vm:|\s+score\s|,|\s*$)`;
// Bounded, as the kernel's are (15 bytes, each \xNN at worst; the one
// parenthesis it puts there, "(oom_kill_allocating_task)"): unbounded, a long
// line of repeated openings took time in the square of its length.
const FIRST_PAREN_NAME = String.raw`\(([^)]{0,60})\)`;
const HEADLINE_START = String.raw`(Memory cgroup out of memory|Out of memory)(?: \([^)]{0,64}\))?: Kill(?:ed)? process (\d+) `;
const HEADLINES = [new RegExp(`${HEADLINE_START}${NAME}(.*)$`), new RegExp(`${HEADLINE_START}${FIRST_PAREN_NAME}(.*)$`)];
// Before 5.1 the figures come on a line of their own.
const KILLEDS = [new RegExp(`^Killed process (\\d+) ${NAME}(.*)$`), new RegExp(`^Killed process (\\d+) ${FIRST_PAREN_NAME}(.*)$`)];

const firstMatch = (patterns: readonly RegExp[], text: string) => {
  for (const pattern of patterns) {
    const m = pattern.exec(text);
    if (m) return m;
  }
  return null;
};
// 4.19 on: the line before the headline.
// Bounded, for the reason above, by twice what one kernel record holds (printk: 1,024 bytes).
const OOM_KILL = /oom-kill:constraint=([^,]{1,64}),.{0,2048}?task_memcg=([^,]*),task=([^,]*),pid=(\d+)/;
// Before 4.19, under a memory cgroup.
const TASK_IN = /^Task in (\S+) killed as a result of limit of (\S+)/;

const kb = (text: string, name: string): number | null => {
  const m = new RegExp(`${name}:(\\d+)kB`).exec(text);
  return m ? Number(m[1]) : null;
};

/** One line of the kernel log that speaks of an OOM kill, read. */
export type OomLine
  = | {
    /** The victim's cgroup, said before the headline (`oom-kill:` from 4.19, `Task in` before). */
    readonly kind: 'cgroup';
    readonly cgroup: string;
    readonly constraint: string | null;
    /** The victim's PID, where the line names it. */
    readonly pid: number | null;
  }
  | { readonly kind: 'headline'; readonly pid: number; readonly comm: string; readonly memcg: boolean; readonly rest: string }
  /** `Killed process N (comm) total-vm:...`: before 5.1, the figures on a line of their own. */
  | { readonly kind: 'figures'; readonly pid: number; readonly comm: string; readonly rest: string };

/** What one line (its time stamp taken off) says of an OOM kill; undefined when it says nothing of one. */
export function readOomLine(text: string): OomLine | undefined {
  let m = OOM_KILL.exec(text);
  if (m) return { kind: 'cgroup', constraint: m[1] ?? null, cgroup: m[2] ?? '', pid: Number(m[4]) };
  m = TASK_IN.exec(text);
  if (m) return { kind: 'cgroup', constraint: null, cgroup: m[1] ?? '', pid: null };
  m = firstMatch(HEADLINES, text);
  if (m) {
    return { kind: 'headline', pid: Number(m[2]), comm: m[3] ?? '', memcg: m[1] === 'Memory cgroup out of memory', rest: m[4] ?? '' };
  }
  m = firstMatch(KILLEDS, text);
  if (m) return { kind: 'figures', pid: Number(m[1]), comm: m[2] ?? '', rest: m[3] ?? '' };
  return undefined;
}

/** Adds what a line says of a kill: to the last kill when it is the same one, else as a new one. */
function recordKill(kills: OomKill[], pid: number, fields: Partial<OomKill>, atMs: number | null): void {
  // The same kill spread over two lines (headline, then figures): same PID, same second.
  const last = kills.at(-1);
  const same = last && last.pid === pid && (last.atMs === null || atMs === null || Math.abs(last.atMs - atMs) < 2000);
  if (same) {
    const merged = { ...last };
    for (const [key, value] of Object.entries(fields)) {
      if (value !== null && value !== undefined) (merged as Record<string, unknown>)[key] = value;
    }
    kills[kills.length - 1] = merged;
    return;
  }
  kills.push({
    pid,
    comm: '',
    atMs,
    memcg: false,
    totalVmKb: null,
    anonRssKb: null,
    cgroup: null,
    constraint: null,
    ...fields,
  });
}

/** Every OOM kill in a kernel log, in log order, one per victim and moment. */
export function parseOomKills(lines: readonly string[], bootTimeMs: number | null): OomKill[] {
  const kills: OomKill[] = [];
  // A cgroup line waits for its headline; a headline says whether the figures that follow are a cgroup's.
  let pendingCgroup: Extract<OomLine, { kind: 'cgroup' }> | null = null;
  let memcgAnnounced = false;
  for (const line of lines) {
    const { text, atMs } = stamp(line.trimEnd(), bootTimeMs);
    const read = readOomLine(text);
    if (read?.kind === 'cgroup') {
      pendingCgroup = read;
    } else if (read?.kind === 'headline') {
      const { pid, memcg, rest } = read;
      memcgAnnounced = memcg;
      const cg = pendingCgroup && (pendingCgroup.pid === null || pendingCgroup.pid === pid) ? pendingCgroup : null;
      pendingCgroup = null;
      recordKill(kills, pid, {
        comm: read.comm,
        memcg,
        totalVmKb: kb(rest, 'total-vm'),
        anonRssKb: kb(rest, 'anon-rss'),
        cgroup: cg?.cgroup || null,
        constraint: cg?.constraint ?? (memcg ? 'CONSTRAINT_MEMCG' : null),
      }, atMs);
    } else if (read?.kind === 'figures') {
      const { rest } = read;
      recordKill(kills, read.pid, {
        comm: read.comm,
        memcg: memcgAnnounced,
        totalVmKb: kb(rest, 'total-vm'),
        anonRssKb: kb(rest, 'anon-rss'),
      }, atMs);
    }
  }
  return kills;
}

/** `anon-rss 512 MiB, total-vm 1.2 GiB, cgroup /batch/refunds`: the figures a person wants. */
export function describeOomKill(kill: OomKill): string {
  const mib = (value: number) => `${(value / 1024).toFixed(value < 10 * 1024 ? 1 : 0)} MiB`;
  const parts = [
    kill.memcg ? 'the memory cgroup\'s limit was reached' : 'the machine ran out of memory',
    `the kernel killed ${kill.comm || 'it'}`,
    ...(kill.anonRssKb === null ? [] : [`anon-rss ${mib(kill.anonRssKb)}`]),
    ...(kill.totalVmKb === null ? [] : [`total-vm ${mib(kill.totalVmKb)}`]),
    ...(kill.cgroup ? [`cgroup ${kill.cgroup}`] : []),
  ];
  return parts.join(', ');
}

/** How far a kernel timestamp and a file time may disagree (boot time rounded to the second, file-system rounding). */
export const KERNEL_CLOCK_SLACK_MS = 5000;

/**
 * The OOM kill of `pid` that can be the death of a writer first seen at
 * `notBeforeMs` (its file's creation, or a re-run's start): PIDs are reused,
 * so a kill of the same PID before then was another process.
 */
export function matchOomKill(kills: readonly OomKill[], pid: number, notBeforeMs: number): OomKill | undefined {
  return kills.find(
    (kill) => kill.pid === pid && kill.atMs !== null && kill.atMs >= notBeforeMs - KERNEL_CLOCK_SLACK_MS,
  );
}
