// removalPermitted and quarantinePermitted are pure: one row per case the
// kernel decides, checked for real (as an unprivileged user) in test/cli/fix.test.ts.
import { describe, expect, it } from 'vitest';
import {
  createPermitted,
  type Identity,
  othersMayReplace,
  othersOwn,
  quarantinePermitted,
  removalPermitted,
} from '../../src/core/permission.js';

const ROOT: Identity = { uid: 0, gid: 0, groups: [] };
const ALICE: Identity = { uid: 1000, gid: 1000, groups: [] };
const ALICE_IN_STAFF: Identity = { uid: 1000, gid: 1000, groups: [50] };
const BOB = 1001;
const DIR = 0o040000;
const FILE = 0o100000;

const dir = (mode: number, uid: number, gid = uid) => ({ mode: DIR | mode, uid, gid });
const file = (uid: number, mode = 0o644, gid = uid) => ({ mode: FILE | mode, uid, gid });

describe('removalPermitted', () => {
  it.each([
    // who, directory, file, denied (null: permitted)
    ['alice, her own 0755 directory', ALICE, dir(0o755, 1000), file(BOB), null],
    ['alice, bob’s 0755 directory', ALICE, dir(0o755, BOB), file(1000), /may not remove entries from its directory \(mode 0755, owner uid 1001/],
    ['alice, bob’s 0777 directory, bob’s file', ALICE, dir(0o777, BOB), file(BOB), null],
    ['alice, a 0775 directory of her group', ALICE_IN_STAFF, dir(0o775, BOB, 50), file(BOB), null],
    ['alice, a 0755 directory of her group', ALICE_IN_STAFF, dir(0o755, BOB, 50), file(BOB), /may not remove entries/],
    ['alice, write without search (0776, not in group)', ALICE, dir(0o776, BOB), file(1000), /may not remove entries/],
    // The owner's bits decide for the owner, even when "other" would allow more.
    ['alice owns a 0577 directory', ALICE, dir(0o577, 1000), file(1000), /may not remove entries/],
    ['alice, sticky 1777, her own file', ALICE, dir(0o1777, 0), file(1000), null],
    ['alice, sticky 1777, root’s file', ALICE, dir(0o1777, 0), file(0), /its directory is sticky \(mode 1777\) and uid 1000 owns neither the file \(owner uid 0\) nor the directory \(owner uid 0\)/],
    ['alice, sticky 1777 directory she owns, bob’s file', ALICE, dir(0o1777, 1000), file(BOB), null],
    ['root, bob’s 0500 directory', ROOT, dir(0o500, BOB), file(BOB), null],
    ['root, sticky, bob’s file', ROOT, dir(0o1777, BOB), file(BOB), null],
  ] as const)('%s', (_, who, d, f, denied) => {
    const verdict = removalPermitted(d, f, who);
    if (denied === null) expect(verdict).toBeUndefined();
    else expect(verdict).toMatch(denied);
  });
});

describe('quarantinePermitted', () => {
  it.each([
    ['a writable quarantine, a readable file', ALICE, dir(0o755, 1000), file(BOB, 0o644), null],
    ['a quarantine of someone else', ALICE, dir(0o755, BOB), file(1000), /may not create entries in the quarantine directory/],
    ['an unreadable file (a move may be a copy)', ALICE, dir(0o755, 1000), file(BOB, 0o600), /may not read it/],
    ['root', ROOT, dir(0o500, BOB), file(BOB, 0o000), null],
  ] as const)('%s', (_, who, q, f, denied) => {
    const verdict = quarantinePermitted(q, f, who);
    if (denied === null) expect(verdict).toBeUndefined();
    else expect(verdict).toMatch(denied);
  });
});

describe('createPermitted', () => {
  it('needs write and search, unless root', () => {
    expect(createPermitted(dir(0o755, 1000), ALICE)).toBe(true);
    expect(createPermitted(dir(0o755, BOB), ALICE)).toBe(false);
    expect(createPermitted(dir(0o755, BOB), ROOT)).toBe(true);
  });
});

describe('othersMayReplace: who else could swap the quarantine (or a directory above it)', () => {
  const names = { dir: '/p', entry: '/p/q' };
  it.each([
    // who, the parent, the entry, who else may replace it (null: no one)
    ['root, root’s 0755 parent', ROOT, dir(0o755, 0), dir(0o755, 0), null],
    ['alice, her own 0755 parent', ALICE, dir(0o755, 1000), dir(0o755, BOB), null],
    ['root, bob’s 0755 parent', ROOT, dir(0o755, BOB), dir(0o755, 0), /^uid 1001: \/p is owned by uid 1001$/],
    ['root, a group-writable 0775 parent', ROOT, dir(0o775, 0, 50), dir(0o755, 0), /^other users: \/p is writable by others \(mode 0775\)$/],
    ['root, a 0777 parent', ROOT, dir(0o777, 0), dir(0o755, 0), /^other users: /],
    ['root, sticky 1777, root’s entry', ROOT, dir(0o1777, 0), dir(0o755, 0), null],
    ['alice, sticky 1777, her entry', ALICE, dir(0o1777, 0), dir(0o755, 1000), null],
    ['root, sticky 1777, bob’s entry', ROOT, dir(0o1777, 0), dir(0o755, BOB), /^uid 1001: \/p is writable by others \(mode 1777\) and uid 1001 owns \/p\/q$/],
  ] as const)('%s', (_, who, parent, entry, by) => {
    const verdict = othersMayReplace(parent, entry, who, names);
    if (by === null) expect(verdict).toBeUndefined();
    else expect(`${verdict?.by}: ${verdict?.why}`).toMatch(by);
  });
});

describe('uid 0 whose powers do not hold (a user namespace, capabilities dropped)', () => {
  const POWERLESS_ROOT: Identity = { uid: 0, gid: 0, groups: [], bypassesPermissions: false };
  it('is held to the sticky rule and the mode bits like anyone', () => {
    expect(removalPermitted(dir(0o1777, BOB), file(BOB), POWERLESS_ROOT)).toMatch(/its directory is sticky/);
    expect(removalPermitted(dir(0o1777, BOB), file(0), POWERLESS_ROOT)).toBeUndefined();
    expect(removalPermitted(dir(0o755, BOB), file(0), POWERLESS_ROOT)).toMatch(/may not remove entries/);
    expect(quarantinePermitted(dir(0o755, BOB), file(0), POWERLESS_ROOT)).toMatch(/may not create entries/);
    expect(createPermitted(dir(0o755, BOB), POWERLESS_ROOT)).toBe(false);
  });

  it('root whose powers hold passes, said or not', () => {
    expect(removalPermitted(dir(0o1777, BOB), file(BOB), { ...ROOT, bypassesPermissions: true })).toBeUndefined();
    expect(removalPermitted(dir(0o1777, BOB), file(BOB), ROOT)).toBeUndefined();
  });
});

describe('othersOwn: a quarantine directory of someone else’s', () => {
  it('is theirs to do as they like with; the acting user’s or root’s is not', () => {
    expect(othersOwn(dir(0o700, BOB), ALICE, '/q')).toEqual({ by: 'uid 1001', why: '/q is owned by uid 1001' });
    expect(othersOwn(dir(0o700, 1000), ALICE, '/q')).toBeUndefined();
    expect(othersOwn(dir(0o700, 0), ALICE, '/q')).toBeUndefined();
  });
});
