import { describe, expect, it } from 'vitest';
import { describeOomKill, matchOomKill, parseOomKills, readOomLine } from '../../src/core/kernel-log.js';
import {
  JOURNALCTL_SHORT_UNIX,
  KERNEL_3_10_DMESG,
  KERNEL_4_19_MEMCG_DMESG,
  KERNEL_4_4_MEMCG_DMESG,
  KERNEL_5_4_DMESG,
  KERNEL_6_18_MEMCG_DMESG,
  KERNEL_6_18_MEMCG_KMSG,
} from './fixtures/oom-kernel-logs.js';

const BOOT = Date.parse('2026-04-24T00:00:00Z');

describe('parseOomKills: both forms, several kernel versions', () => {
  it.each([
    ['3.10 global', KERNEL_3_10_DMESG, { pid: 91247, comm: 'python3', memcg: false, anonRssKb: 7345678, totalVmKb: 8123456, cgroup: null }, 1234567.123456],
    ['4.4 memcg', KERNEL_4_4_MEMCG_DMESG, { pid: 4242, comm: 'node', memcg: true, anonRssKb: 520100, totalVmKb: 1324500, cgroup: '/batch/refunds' }, 5012.3459],
    ['4.19 memcg', KERNEL_4_19_MEMCG_DMESG, { pid: 3131, comm: 'node', memcg: true, anonRssKb: 262144, totalVmKb: 1024000, cgroup: '/batch/refunds', constraint: 'CONSTRAINT_MEMCG' }, 777.1235],
    ['5.4 global', KERNEL_5_4_DMESG, { pid: 91247, comm: 'python3', memcg: false, anonRssKb: 7345678, cgroup: '/user.slice/user-1000.slice/session-3.scope', constraint: 'CONSTRAINT_NONE' }, 1045.330226],
    ['6.18 memcg (captured)', KERNEL_6_18_MEMCG_DMESG, { pid: 6775, comm: 'node', memcg: true, anonRssKb: 97208, totalVmKb: 1116448, cgroup: '/crashdiag-oom-test-6719' }, 1505.933566],
  ])('%s: one kill, with its PID, figures and cgroup', (_, lines, expected, seconds) => {
    const kills = parseOomKills(lines, BOOT);
    expect(kills).toHaveLength(1);
    expect(kills[0]).toMatchObject(expected);
    expect(kills[0]?.atMs).toBeCloseTo(BOOT + seconds * 1000, -1);
  });

  it('reads /dev/kmsg records: microseconds since boot', () => {
    const [kill] = parseOomKills(KERNEL_6_18_MEMCG_KMSG, BOOT);
    expect(kill).toMatchObject({ pid: 6775, memcg: true, cgroup: '/crashdiag-oom-test-6719', anonRssKb: 97208 });
    expect(kill?.atMs).toBe(BOOT + 1505933.566);
  });

  it('reads journalctl short-unix lines: wall-clock time, no boot time needed', () => {
    const [kill] = parseOomKills(JOURNALCTL_SHORT_UNIX, null);
    expect(kill).toMatchObject({ pid: 5150, comm: 'node', memcg: true, cgroup: '/system.slice/refunds.service' });
    expect(kill?.atMs).toBe(1777010045330);
  });

  it('keeps two kills of the same PID at different times apart (PIDs are reused)', () => {
    const later = KERNEL_5_4_DMESG.map((l) => l.replace('1045.', '9045.'));
    expect(parseOomKills([...KERNEL_5_4_DMESG, ...later], BOOT)).toHaveLength(2);
  });

  it('finds nothing in a log without OOM kills, and in garbage', () => {
    expect(parseOomKills(['[    1.0] Linux version 6.18', 'random words', ''], BOOT)).toEqual([]);
  });

  it('without a boot time, a dmesg kill has no instant and matches nothing', () => {
    const kills = parseOomKills(KERNEL_5_4_DMESG, null);
    expect(kills[0]?.atMs).toBeNull();
    expect(matchOomKill(kills, 91247, 0)).toBeUndefined();
  });
});

describe('readOomLine: what one line says of a kill', () => {
  it.each([
    [
      '4.19 on: the cgroup line before the headline, with the victim\'s PID',
      'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/b,task_memcg=/b/r,task=node,pid=3131,uid=0',
      { kind: 'cgroup', constraint: 'CONSTRAINT_MEMCG', cgroup: '/b/r', pid: 3131 },
    ],
    [
      'before 4.19: the cgroup line names no PID',
      'Task in /batch/refunds killed as a result of limit of /batch',
      { kind: 'cgroup', constraint: null, cgroup: '/batch/refunds', pid: null },
    ],
    [
      'the old headline, figures to follow',
      'Out of memory: Kill process 91247 (python3) score 912 or sacrifice child',
      { kind: 'headline', pid: 91247, comm: 'python3', memcg: false, rest: ' score 912 or sacrifice child' },
    ],
    [
      'the new headline under a cgroup, figures on it',
      'Memory cgroup out of memory: Killed process 6775 (node) total-vm:1116448kB, anon-rss:97208kB',
      { kind: 'headline', pid: 6775, comm: 'node', memcg: true, rest: ' total-vm:1116448kB, anon-rss:97208kB' },
    ],
    [
      'the figures line of the old form',
      'Killed process 4242 (node) total-vm:1324500kB, anon-rss:520100kB',
      { kind: 'figures', pid: 4242, comm: 'node', rest: ' total-vm:1324500kB, anon-rss:520100kB' },
    ],
    // A process names itself (prctl PR_SET_NAME, up to 15 bytes): ')' and spaces included.
    [
      'a name with a parenthesis, new headline',
      'Out of memory: Killed process 8123 (work) er) total-vm:1116448kB, anon-rss:97208kB',
      { kind: 'headline', pid: 8123, comm: 'work) er', memcg: false, rest: ' total-vm:1116448kB, anon-rss:97208kB' },
    ],
    [
      'a name with a parenthesis, old headline',
      'Out of memory: Kill process 8123 (a (b) c) score 912 or sacrifice child',
      { kind: 'headline', pid: 8123, comm: 'a (b) c', memcg: false, rest: ' score 912 or sacrifice child' },
    ],
    [
      'a name with a parenthesis, the figures line',
      'Killed process 8123 (x)) total-vm:1324500kB, anon-rss:520100kB',
      { kind: 'figures', pid: 8123, comm: 'x)', rest: ' total-vm:1324500kB, anon-rss:520100kB' },
    ],
    [
      'a name ending the line',
      'Memory cgroup out of memory: Killed process 8123 (a) b)',
      { kind: 'headline', pid: 8123, comm: 'a) b', memcg: true, rest: '' },
    ],
    // Attack: names holding what follows a name: read whole (the longest the
    // continuation follows), never taken for the figures.
    [
      'a name holding ") total-vm:1kB": its figures are not taken for the line\'s',
      'Killed process 8123 (a) total-vm:1kB) total-vm:1324500kB, anon-rss:520100kB',
      { kind: 'figures', pid: 8123, comm: 'a) total-vm:1kB', rest: ' total-vm:1324500kB, anon-rss:520100kB' },
    ],
    [
      'a name holding "), "',
      'Out of memory: Killed process 8123 (a), b) total-vm:1116448kB, anon-rss:97208kB',
      { kind: 'headline', pid: 8123, comm: 'a), b', memcg: false, rest: ' total-vm:1116448kB, anon-rss:97208kB' },
    ],
    [
      'a name holding ") score 1"',
      'Out of memory: Kill process 8123 (a) score 1) score 912 or sacrifice child',
      { kind: 'headline', pid: 8123, comm: 'a) score 1', memcg: false, rest: ' score 912 or sacrifice child' },
    ],
    [
      'a name of 15 bytes in 7 characters, with a parenthesis',
      'Out of memory: Killed process 8123 (éé) ééééx) total-vm:1116448kB, anon-rss:97208kB',
      { kind: 'headline', pid: 8123, comm: 'éé) ééééx', memcg: false, rest: ' total-vm:1116448kB, anon-rss:97208kB' },
    ],
    [
      'the one parenthesis the kernel puts before the headline\'s colon',
      'Out of memory (oom_kill_allocating_task): Kill process 8123 (a) b) score 912 or sacrifice child',
      { kind: 'headline', pid: 8123, comm: 'a) b', memcg: false, rest: ' score 912 or sacrifice child' },
    ],
    ['the reaper, after the kill: not a kill', 'oom_reaper: reaped process 91247 (python3), now anon-rss:0kB', undefined],
    ['the invocation: not a kill', 'java invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0', undefined],
    ['an empty line', '', undefined],
  ])('%s', (_, text, expected) => {
    expect(readOomLine(text)).toEqual(expected);
  });
});

describe('attack: names and lines as /dev/kmsg and a flooded log give them', () => {
  it('/dev/kmsg writes a name\'s bytes past ASCII as \\xNN: 15 bytes are up to 60 characters, and the name is read whole', () => {
    const [kill] = parseOomKills(
      ['6,1234,1505933566,-;Out of memory: Killed process 8123 (\\xc3\\xa9\\xc3\\xa9\\xc3\\xa9) a) total-vm:1116448kB, anon-rss:97208kB'],
      BOOT,
    );
    expect(kill).toMatchObject({ pid: 8123, comm: '\\xc3\\xa9\\xc3\\xa9\\xc3\\xa9) a', totalVmKb: 1116448, anonRssKb: 97208 });
  });

  // Lines of a megabyte of repeated openings, each with a real record at its
  // end: read in milliseconds now, where the unbounded patterns took time in
  // the square of the length (0.4 s at 100 KB, 6.6 s at 400 KB, measured).
  it.each([
    ['"Out of memory (" repeated', 'Out of memory ('],
    ['headlines without a name\'s closing parenthesis', 'Out of memory: Killed process 1 ('],
    ['cgroup lines without their task', 'oom-kill:constraint=x,task_memcg='],
    ['cgroup lines without a comma', 'oom-kill:constraint=x'],
  ])('a 1 MB line of %s, then a real kill: the kill is read', (_, unit) => {
    const flood = unit.repeat(Math.ceil(1_000_000 / unit.length));
    const kills = parseOomKills([
      `${flood}oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/b/r,task=node,pid=3131,uid=0`,
      `${flood}Memory cgroup out of memory: Killed process 3131 (node) total-vm:1024000kB, anon-rss:262144kB`,
    ], BOOT);
    expect(kills).toEqual([expect.objectContaining({ pid: 3131, comm: 'node', cgroup: '/b/r', anonRssKb: 262144 })]);
  });
});

describe('parseOomKills: which cgroup line belongs to which kill', () => {
  it.each([
    [
      'a cgroup line naming another PID is not this kill\'s',
      [
        '[ 1.0] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),task_memcg=/other,task=x,pid=1111,uid=0',
        '[ 1.1] Memory cgroup out of memory: Killed process 2222 (node) total-vm:10kB, anon-rss:5kB',
      ],
      [{ pid: 2222, cgroup: null, constraint: 'CONSTRAINT_MEMCG' }],
    ],
    [
      'a cgroup line is used once: the next kill does not inherit it',
      [
        '[ 1.0] Task in /batch/a killed as a result of limit of /batch',
        '[ 1.1] Memory cgroup out of memory: Kill process 11 (a) score 1 or sacrifice child',
        '[ 9.0] Memory cgroup out of memory: Kill process 12 (b) score 1 or sacrifice child',
      ],
      [{ pid: 11, cgroup: '/batch/a' }, { pid: 12, cgroup: null }],
    ],
    [
      'old-form figures take the headline\'s memcg, and merge into its kill',
      [
        '[ 1.0] Memory cgroup out of memory: Kill process 13 (c) score 1 or sacrifice child',
        '[ 1.1] Killed process 13 (c) total-vm:20kB, anon-rss:8kB',
      ],
      [{ pid: 13, comm: 'c', memcg: true, totalVmKb: 20, anonRssKb: 8 }],
    ],
  ])('%s', (_, lines, expected) => {
    const kills = parseOomKills(lines, BOOT);
    expect(kills).toHaveLength(expected.length);
    expected.forEach((kill, i) => expect(kills[i]).toMatchObject(kill));
  });
});

describe('matchOomKill: the PID, and no earlier than the writer began', () => {
  const kills = parseOomKills(KERNEL_5_4_DMESG, BOOT);
  const killedAt = BOOT + 1045330;
  it('matches a kill after the file was created', () => {
    expect(matchOomKill(kills, 91247, killedAt - 60_000)?.pid).toBe(91247);
  });
  it('does not match a kill of the same PID long before the file existed: another process', () => {
    expect(matchOomKill(kills, 91247, killedAt + 60_000)).toBeUndefined();
  });
  it('allows a few seconds of clock slack', () => {
    expect(matchOomKill(kills, 91247, killedAt + 2000)?.pid).toBe(91247);
  });
  it('does not match another PID', () => {
    expect(matchOomKill(kills, 91248, 0)).toBeUndefined();
  });
  it('describes the figures a person wants', () => {
    const [memcg] = parseOomKills(KERNEL_6_18_MEMCG_DMESG, BOOT);
    expect(describeOomKill(memcg as never)).toBe(
      'the memory cgroup\'s limit was reached, the kernel killed node, anon-rss 95 MiB, total-vm 1090 MiB, cgroup /crashdiag-oom-test-6719',
    );
  });
});
