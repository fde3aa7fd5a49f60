import type { Identity } from '../../src/core/permission.js';

/** The test process's own identity, as the bin reads it: effective ids and supplementary groups. */
export function ownIdentity(): Identity {
  return {
    uid: process.geteuid?.() ?? 0,
    gid: process.getegid?.() ?? 0,
    groups: process.getgroups?.() ?? [],
  };
}

/** An unprivileged user: nobody, in no supplementary group. */
export const NOBODY: Identity = { uid: 65534, gid: 65534, groups: [] };
