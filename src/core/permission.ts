/**
 * Who is acting: passed in from the CLI's io, never read from `process`
 * inside the core, so a test can ask "may uid 65534 remove this?" in process.
 */
export interface Identity {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups. */
  readonly groups: readonly number[];
  /**
   * Whether the kernel lets this user past mode bits and the sticky rule
   * (CAP_DAC_OVERRIDE and CAP_FOWNER over these files). Not given: uid 0
   * is taken to. uid 0 in a user namespace (a rootless container), or root
   * with those capabilities dropped, is not: the bin says so.
   */
  readonly bypassesPermissions?: boolean;
}

function bypasses(who: Identity): boolean {
  return who.bypassesPermissions ?? who.uid === 0;
}

/** The part of an lstat that decides permissions. */
export interface OwnedMode {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** Undefined when permitted; otherwise why not, as a clause that follows a file's path. */
export type PermissionVerdict = string | undefined;

const WRITE = 2;
const SEARCH = 1;
const READ = 4;
// S_ISVTX; node's fs.constants does not carry it.
const STICKY = 0o1000;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** The rwx bits (0-7) that apply to `who`: the owner's, else the group's, else everyone else's, as the kernel picks. */
function bitsFor(target: OwnedMode, who: Identity): number {
  if (who.uid === target.uid) return (target.mode >> 6) & 7;
  if (who.gid === target.gid || who.groups.includes(target.gid)) return (target.mode >> 3) & 7;
  return target.mode & 7;
}

function may(target: OwnedMode, who: Identity, wanted: number): boolean {
  return (bitsFor(target, who) & wanted) === wanted;
}

/**
 * Whether `who` may unlink (or rename away) a file from a directory, by the
 * kernel's rules: write and search permission on the directory, and in a
 * sticky directory (a 1777 staging directory shared by several users)
 * owning the file or the directory. One home for the rule: the fixer and the
 * janitor both ask it, before the first removal, so a removal that would fail
 * on permissions is refused up front instead of failing halfway.
 *
 * A user holding CAP_DAC_OVERRIDE and CAP_FOWNER over the files (root, as
 * the bin finds out: not uid 0 in a user namespace) bypasses both checks.
 * What mode bits cannot show (a read-only mount, chattr +i, root squashed on
 * NFS, ACLs) still fails at the unlink itself; the fixer stops there,
 * records it and exits 30.
 */
export function removalPermitted(dir: OwnedMode, file: OwnedMode, who: Identity): PermissionVerdict {
  if (bypasses(who)) return undefined;
  if (!may(dir, who, WRITE | SEARCH)) {
    return `permission denied: uid ${who.uid} may not remove entries from its directory (mode ${octal(dir.mode)}, owner uid ${dir.uid}, gid ${dir.gid})`;
  }
  if ((dir.mode & STICKY) !== 0 && who.uid !== file.uid && who.uid !== dir.uid) {
    return `permission denied: its directory is sticky (mode ${octal(dir.mode)}) and uid ${who.uid} owns neither the file (owner uid ${file.uid}) nor the directory (owner uid ${dir.uid})`;
  }
  return undefined;
}

/**
 * Whether `who` may move a file into a quarantine directory, on top of
 * removing it from staging: create an entry there (write and search), and
 * read the file, since across file systems (or where the kernel refuses to
 * hard-link another user's file) the move is a copy.
 */
export function quarantinePermitted(
  quarantineDir: OwnedMode,
  file: OwnedMode,
  who: Identity,
): PermissionVerdict {
  if (bypasses(who)) return undefined;
  if (!may(quarantineDir, who, WRITE | SEARCH)) {
    return `permission denied: uid ${who.uid} may not create entries in the quarantine directory (mode ${octal(quarantineDir.mode)}, owner uid ${quarantineDir.uid})`;
  }
  if (!may(file, who, READ)) {
    return `permission denied: uid ${who.uid} may not read it (mode ${octal(file.mode)}, owner uid ${file.uid}), and a move into quarantine may have to copy it`;
  }
  return undefined;
}

/** The owner and mode of an lstat, as numbers (bigint stats included). */
export function ownedModeOf(stats: { mode: number | bigint; uid: number | bigint; gid: number | bigint }): OwnedMode {
  return { mode: Number(stats.mode), uid: Number(stats.uid), gid: Number(stats.gid) };
}

/** Someone other than the acting user and root who could swap a path, and how. */
export interface Replaceable {
  /** Who: `uid N`, or `other users`. */
  readonly by: string;
  /** Why, naming the directory. */
  readonly why: string;
}

/**
 * Whether someone other than `who` and root could rename `entry` out of
 * `dir` and put something else (a symlink) in its place: the owner of `dir`
 * (who may always chmod it), or anyone who may write it, unless it is sticky
 * and `entry` is owned by `who` or root. Group-writable counts as others:
 * who else is in the group cannot be seen from here.
 */
export function othersMayReplace(
  dir: OwnedMode,
  entry: OwnedMode,
  who: Identity,
  names: { readonly dir: string; readonly entry: string },
): Replaceable | undefined {
  const trusted = (uid: number) => uid === 0 || uid === who.uid;
  if (!trusted(dir.uid)) return { by: `uid ${dir.uid}`, why: `${names.dir} is owned by uid ${dir.uid}` };
  if ((dir.mode & 0o022) === 0) return undefined;
  const writable = `${names.dir} is writable by others (mode ${octal(dir.mode)})`;
  if ((dir.mode & STICKY) === 0) return { by: 'other users', why: writable };
  if (trusted(entry.uid)) return undefined;
  return { by: `uid ${entry.uid}`, why: `${writable} and uid ${entry.uid} owns ${names.entry}` };
}

/** Someone other than `who` and root who owns `entry`, named `name`; undefined when no one. */
export function othersOwn(entry: OwnedMode, who: Identity, name: string): Replaceable | undefined {
  if (entry.uid === 0 || entry.uid === who.uid) return undefined;
  return { by: `uid ${entry.uid}`, why: `${name} is owned by uid ${entry.uid}` };
}

/** Creating a directory or file in `dir` (the quarantine directory's nearest existing ancestor). */
export function createPermitted(dir: OwnedMode, who: Identity): boolean {
  return bypasses(who) || may(dir, who, WRITE | SEARCH);
}
