import { readFileSync } from 'node:fs';
import type { Identity } from '../core/permission.js';

// CAP_DAC_OVERRIDE (1) and CAP_FOWNER (3): past mode bits, and past the sticky rule.
const BYPASS_CAPABILITIES = (1n << 1n) | (1n << 3n);
// The initial user namespace maps every id onto itself; in any other, files
// owned by ids outside the map are beyond the namespace root's capabilities.
const INITIAL_USER_NAMESPACE = '0 0 4294967295';

/**
 * Whether uid 0 really bypasses permission checks: holding both
 * capabilities, in the initial user namespace. "root" in a rootless
 * container, or root with the capabilities dropped, is then held to the mode
 * bits like anyone (at worst a removal the kernel would allow is refused up
 * front; never one it refuses attempted halfway through a fix). Without
 * /proc (not Linux), uid 0 is trusted as before.
 */
function rootBypassesPermissions(): boolean {
  let status: string;
  let uidMap: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
    uidMap = readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return true;
  }
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (effective === undefined) return true;
  const held = (BigInt(`0x${effective}`) & BYPASS_CAPABILITIES) === BYPASS_CAPABILITIES;
  return held && uidMap.trim().split(/\s+/).join(' ') === INITIAL_USER_NAMESPACE;
}

/** Who is acting, as the kernel sees it: effective ids, supplementary groups, and whether root's powers hold. */
export function currentIdentity(): Identity {
  // Effective ids: the kernel checks permissions with them, not the real ones.
  const uid = process.geteuid?.() ?? process.getuid?.() ?? 0;
  const gid = process.getegid?.() ?? process.getgid?.() ?? 0;
  const groups = process.getgroups?.() ?? [];
  return uid === 0 ? { uid, gid, groups, bypassesPermissions: rootBypassesPermissions() } : { uid, gid, groups };
}
