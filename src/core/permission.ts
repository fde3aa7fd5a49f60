/**
 * Who is acting: passed in from the CLI's io, never read from `process`
 * inside the core, so a test can ask "may uid 65534 remove this?" in process.
 */
export interface Identity {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups. */
  readonly groups: readonly number[];
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
 * uid 0 is taken to hold CAP_DAC_OVERRIDE and CAP_FOWNER, which bypass both
 * checks. What mode bits cannot show (a read-only mount, chattr +i, root
 * squashed on NFS or without capabilities in a container, ACLs) still fails
 * at the unlink itself; the fixer stops there, records it and exits 30.
 */
export function removalPermitted(dir: OwnedMode, file: OwnedMode, who: Identity): PermissionVerdict {
  if (who.uid === 0) return undefined;
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
  if (who.uid === 0) return undefined;
  if (!may(quarantineDir, who, WRITE | SEARCH)) {
    return `permission denied: uid ${who.uid} may not create entries in the quarantine directory (mode ${octal(quarantineDir.mode)}, owner uid ${quarantineDir.uid})`;
  }
  if (!may(file, who, READ)) {
    return `permission denied: uid ${who.uid} may not read it (mode ${octal(file.mode)}, owner uid ${file.uid}), and a move into quarantine may have to copy it`;
  }
  return undefined;
}

/** Creating a directory or file in `dir` (the quarantine directory's nearest existing ancestor). */
export function createPermitted(dir: OwnedMode, who: Identity): boolean {
  return who.uid === 0 || may(dir, who, WRITE | SEARCH);
}
