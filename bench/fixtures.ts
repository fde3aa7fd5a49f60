import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  futimesSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { deadPids } from '../test/support/dead-pids.js';

// Bump when the layout below changes: old fixtures are then left alone and
// new ones built beside them, never half-reused.
export const FIXTURE_VERSION = 'v1';

export const FINAL_TEMPLATE = 'refunds_settled_{date}.csv';

const DAY_MS = 86_400_000;
const FIRST_KEY_MS = Date.UTC(2020, 0, 1);

/** One run key per day from 2020-01-01: all valid run keys, all in the past. */
export function keyFor(index: number): string {
  return new Date(FIRST_KEY_MS + index * DAY_MS).toISOString().slice(0, 10);
}

/** Noon on the key's own day: a run's files are as old as the run. */
function keyTime(index: number): number {
  return (FIRST_KEY_MS + index * DAY_MS + DAY_MS / 2) / 1000;
}

export interface Layout {
  readonly root: string;
  /** 1,000,000 entries: leftovers plus two staging files for each of `keys` run keys. */
  readonly big: {
    readonly staging: string;
    readonly out: string;
    readonly entries: number;
    readonly keys: number;
    /** Keys below this index have a published output and marker. */
    readonly published: number;
    /** The key diagnosed: two dead-writer orphans, no output (state D). */
    readonly key: string;
  };
  /** One output and its marker, an empty staging directory (state DONE). */
  readonly small: { readonly staging: string; readonly out: string; readonly key: string };
  /** Dead writers' orphans older than a day, rebuilt before every clean. */
  readonly orphans: {
    readonly staging: string;
    readonly out: string;
    /** One file per key, outside staging: what the orphans are linked from. */
    readonly pool: string;
    readonly keys: number;
    readonly perKey: number;
  };
  /**
   * The worst case for scan: every entry a matching dead writer's orphan,
   * `keys` x `perKey` of them (a crash loop left alone for weeks).
   */
  readonly worst: {
    readonly staging: string;
    readonly out: string;
    readonly keys: number;
    readonly perKey: number;
    /** Keys below this index have a published output and marker. */
    readonly published: number;
  };
  /** One run key with 100,000 dead writers' orphans, for diagnose. */
  readonly crowd: { readonly staging: string; readonly out: string; readonly key: string; readonly orphans: number };
}

const BIG_ENTRIES = 1_000_000;
const BIG_KEYS = 2_000;
const ORPHAN_KEYS = 2_000;
const ORPHANS_PER_KEY = 50;
const WORST_KEYS = 2_000;
const WORST_PER_KEY = 500;
const CROWD_ORPHANS = 100_000;
// PIDs for the worst-case fixtures: above this machine's pid_max (checked at
// build time), so never alive here however long the fixtures are kept, yet
// within what a kernel may hand out (4,194,304), so the names are staging
// names. A crash loop's orphans each carry another PID: so do these.
const WORST_FIRST_PID = 1_000_000;
const CROWD_FIRST_PID = 2_000_000;

export function layoutUnder(root: string): Layout {
  return {
    root,
    big: {
      staging: join(root, 'big', 'staging'),
      out: join(root, 'big', 'out'),
      entries: BIG_ENTRIES,
      keys: BIG_KEYS,
      published: BIG_KEYS / 2,
      key: keyFor(1_500),
    },
    small: { staging: join(root, 'small', 'staging'), out: join(root, 'small', 'out'), key: '2026-04-24' },
    orphans: {
      staging: join(root, 'orphans', 'staging'),
      out: join(root, 'orphans', 'out'),
      pool: join(root, 'orphans', 'pool-per-orphan'),
      keys: ORPHAN_KEYS,
      perKey: ORPHANS_PER_KEY,
    },
    worst: {
      staging: join(root, 'worst', 'staging'),
      out: join(root, 'worst', 'out'),
      keys: WORST_KEYS,
      perKey: WORST_PER_KEY,
      published: WORST_KEYS / 2,
    },
    crowd: {
      staging: join(root, 'crowd', 'staging'),
      out: join(root, 'crowd', 'out'),
      key: keyFor(100),
      orphans: CROWD_ORPHANS,
    },
  };
}

function pidMax(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  } catch {
    return 4_194_304;
  }
}

/** The worst case: a million orphans of 2,000 keys, and 100,000 of one key. */
function ensureWorstFixtures(layout: Layout, log: (line: string) => void): void {
  const max = pidMax();
  if (max >= WORST_FIRST_PID) {
    throw new Error(`pid_max is ${max}: the worst-case fixtures' PIDs (from ${WORST_FIRST_PID}) could be alive here`);
  }
  const worstDone = join(layout.root, 'worst.complete');
  if (!existsSync(worstDone)) {
    const started = Date.now();
    const { staging, out, keys, perKey, published } = layout.worst;
    mkdirSync(staging, { recursive: true });
    mkdirSync(out, { recursive: true });
    for (let k = 0; k < keys; k++) {
      const key = keyFor(k);
      const time = keyTime(k);
      for (let p = 0; p < perKey; p++) touch(join(staging, `${key}.${WORST_FIRST_PID + p}.csv`), time);
      if (k < published) {
        const final = FINAL_TEMPLATE.replace('{date}', key);
        touch(join(out, final), time);
        touch(join(out, `${final}.success`), time);
      }
      if ((k + 1) % 200 === 0) log(`fixtures: worst case, ${((k + 1) * perKey).toLocaleString('en')} orphans`);
    }
    writeFileSync(worstDone, JSON.stringify({ version: FIXTURE_VERSION, keys, perKey }));
    log(`fixtures: worst case (1M orphans) built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const crowdDone = join(layout.root, 'crowd.complete');
  if (!existsSync(crowdDone)) {
    const { staging, out, key, orphans } = layout.crowd;
    mkdirSync(staging, { recursive: true });
    mkdirSync(out, { recursive: true });
    const time = keyTime(100);
    for (let i = 0; i < orphans; i++) touch(join(staging, `${key}.${CROWD_FIRST_PID + i}.csv`), time);
    writeFileSync(crowdDone, JSON.stringify({ version: FIXTURE_VERSION, orphans }));
  }
}

function touch(path: string, timeSeconds?: number): void {
  const fd = openSync(path, 'w');
  try {
    if (timeSeconds !== undefined) futimesSync(fd, timeSeconds, timeSeconds);
  } finally {
    closeSync(fd);
  }
}

/**
 * Builds whatever is missing. Each fixture's completion marker is written
 * last, so an interrupted build is finished (files are created idempotently)
 * rather than trusted.
 */
export function ensureFixtures(layout: Layout, log: (line: string) => void): void {
  mkdirSync(layout.root, { recursive: true });
  const bigDone = join(layout.root, 'big.complete');
  if (!existsSync(bigDone)) {
    const started = Date.now();
    const { staging, out, entries, keys, published } = layout.big;
    mkdirSync(staging, { recursive: true });
    mkdirSync(out, { recursive: true });
    const pids = deadPids(16);
    for (let k = 0; k < keys; k++) {
      const key = keyFor(k);
      const time = keyTime(k);
      touch(join(staging, `${key}.${pids[k % pids.length]}.csv`), time);
      touch(join(staging, `${key}.${pids[(k + 1) % pids.length]}.csv`), time);
      if (k < published) {
        const final = FINAL_TEMPLATE.replace('{date}', key);
        touch(join(out, final), time);
        touch(join(out, `${final}.success`), time);
      }
    }
    const leftovers = entries - 2 * keys;
    for (let i = 1; i <= leftovers; i++) {
      touch(join(staging, `leftover-${String(i).padStart(7, '0')}.part`));
      if (i % 100_000 === 0)
        log(`fixtures: ${i.toLocaleString('en')} of ${leftovers.toLocaleString('en')} leftovers`);
    }
    writeFileSync(bigDone, JSON.stringify({ version: FIXTURE_VERSION, entries, keys, pids }));
    log(`fixtures: 1M-entry staging directory built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const smallDone = join(layout.root, 'small.complete');
  if (!existsSync(smallDone)) {
    const { staging, out, key } = layout.small;
    mkdirSync(staging, { recursive: true });
    mkdirSync(out, { recursive: true });
    const final = join(out, FINAL_TEMPLATE.replace('{date}', key));
    writeFileSync(final, 'refund_id,amount\n1,10.00\n');
    writeFileSync(`${final}.success`, '');
    writeFileSync(smallDone, FIXTURE_VERSION);
  }
  // Its own marker: the pool of one file per key (orphans.complete) it replaces
  // made every orphan of a key one inode, and the janitor's last look rightly
  // keeps a file whose ctime moved when a sibling link was removed.
  const orphansDone = join(layout.root, 'orphans-per-orphan.complete');
  if (!existsSync(orphansDone)) {
    const { staging, out, pool, keys, perKey } = layout.orphans;
    mkdirSync(staging, { recursive: true });
    mkdirSync(out, { recursive: true });
    mkdirSync(pool, { recursive: true });
    for (let k = 0; k < keys; k++)
      for (let p = 0; p < perKey; p++) touch(join(pool, `${keyFor(k)}.${p}`), keyTime(k));
    writeFileSync(orphansDone, FIXTURE_VERSION);
  }
  ensureWorstFixtures(layout, log);
}

/** The number of entries in the big staging directory, as a check the fixture is whole. */
export function bigFixtureInfo(layout: Layout): { entries: number; keys: number } {
  return JSON.parse(readFileSync(join(layout.root, 'big.complete'), 'utf8')) as {
    entries: number;
    keys: number;
  };
}

/**
 * Empties the orphan staging directory (and the janitor's own state, its
 * audit log and lock) and fills it again: keys x perKey dead writers' files,
 * each dated its run's day. Each is a hard link to a pool file of its own:
 * on the disk this was written on, allocating 100,000 fresh inodes took a
 * minute or more, linking them takes a second. Both clean and its baseline
 * then drop links rather than free inodes, alike. One inode per orphan, as a
 * crash loop leaves them: removing a link changes its inode's ctime, and the
 * janitor keeps a file that changed between its judgement and its unlink. Flushed to disk before
 * returning, so write-back does not land inside the next timing.
 */
export function rebuildOrphans(layout: Layout, pids: readonly number[]): number {
  const { staging, pool, keys, perKey } = layout.orphans;
  if (pids.length < perKey) throw new Error(`need ${perKey} dead PIDs, have ${pids.length}`);
  rmSync(join(staging, '.crashdiag'), { recursive: true, force: true });
  for (const name of readdirSync(staging)) unlinkSync(join(staging, name));
  for (let k = 0; k < keys; k++) {
    const key = keyFor(k);
    for (let p = 0; p < perKey; p++) linkSync(join(pool, `${key}.${p}`), join(staging, `${key}.${pids[p]}.csv`));
  }
  spawnSync('sync');
  return keys * perKey;
}
