/**
 * The one output-path policy: every file trellis writes on a user's behalf
 * (report --out, check/renew --metrics, bundle --out, deploy --sealed-out and
 * --manifests, deploy's dir targets, init's and rekey's identity files) goes
 * through here. A write never follows a link at its last component, nor at a
 * directory below its anchor (the store, where a pull request can commit a
 * link, or the allow-listed directory a deploy target lies under); it never
 * lands on a device, FIFO, socket or directory; files and directories get
 * explicit modes whatever the umask; plaintext keys and identities stay out of
 * the store's tracked tree. Above the anchor the path is the operator's own
 * filesystem, and its links are followed. See docs/decisions.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TrellisError } from '../model/errors.js';
import { linkRefusal, trackedTreeRefusal } from '../custody/out-paths.js';
import { writeFileAtomic } from './store.js';

export interface OutPath {
  /** The flag (or field) that named the path: messages and hints say it. */
  flag: string;
  /** Plaintext keys or identities: 0600 files in 0700 directories, never in the store's tracked tree. */
  secret?: boolean;
  /** The store: below it no link is followed; a secret must lie outside its tracked tree. */
  store?: string;
  /**
   * A directory below which no link is followed: the one the flag named (--sealed-out), or the allow-listed one a
   * deploy target lies under.
   */
  anchor?: string;
  /** The anchor is the custodian's allow-list: a link below it is a custody refusal of the allow-list's. */
  allowList?: boolean;
  /** The store file that named the path (a scope file, for a deploy target), for messages. */
  file?: string;
}

const fileMode = (o: OutPath) => (o.secret ? 0o600 : 0o644);
const dirMode = (o: OutPath) => (o.secret ? 0o700 : 0o755);
const within = (base: string, p: string) => {
  const rel = path.relative(base, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/** What lstat found, in words, or undefined when nothing is there. */
function kindAt(p: string): { what: string; link: boolean; file: boolean; dir: boolean } | undefined {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (e) {
    // ENOTDIR: a file where a directory goes, on the way; makeOutDir names it.
    if (['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw e;
  }
  const what = st.isSymbolicLink()
    ? 'a symbolic link'
    : st.isDirectory()
      ? 'a directory'
      : st.isFIFO()
        ? 'a FIFO'
        : st.isCharacterDevice() || st.isBlockDevice()
          ? 'a device'
          : st.isSocket()
            ? 'a socket'
            : 'a regular file';
  return { what, link: st.isSymbolicLink(), file: st.isFile(), dir: st.isDirectory() };
}

/**
 * The directory below which no link is followed: the store when the path lies in it (a pull request can commit a link
 * there), else the anchor given.
 */
function anchorOf(p: string, o: OutPath): string | undefined {
  if (o.store !== undefined && within(path.resolve(o.store), p)) return path.resolve(o.store);
  return o.anchor === undefined ? undefined : path.resolve(o.anchor);
}

/**
 * Refuses a link at any existing directory strictly below the anchor on the way to `p` (and `p` itself when `self`).
 */
function refuseLinksBelowAnchor(p: string, o: OutPath, self: boolean): void {
  const anchor = anchorOf(p, o);
  if (anchor === undefined) return;
  const parts = path.relative(anchor, p).split(path.sep).filter(Boolean);
  let at = anchor;
  for (const [i, part] of parts.entries()) {
    at = path.join(at, part);
    if (i === parts.length - 1 && !self) return;
    const k = kindAt(at);
    if (k === undefined) return;
    if (k.link) throw linkRefusal(o, p, at, anchor);
  }
}

/**
 * Where plaintext keys may be written: outside the store, or under its
 * git-ignored .trellis/. Anywhere else in the store a `git add` (the renew
 * workflow's `git add bundles`) would commit them. Judged on the real path of
 * the nearest existing ancestor (of the store too, which init has yet to
 * create), so a committed link cannot route around it.
 */
export function assertOutsideTrackedTree(dir: string, storeDir: string, flag: string): void {
  const real = (p: string) => {
    let existing = path.resolve(p);
    const rest: string[] = [];
    while (!fs.existsSync(existing)) {
      rest.unshift(path.basename(existing));
      existing = path.dirname(existing);
    }
    return path.join(fs.realpathSync(existing), ...rest);
  };
  const store = real(storeDir);
  const rel = path.relative(store, real(dir));
  if (within(store, path.join(store, rel)) && rel !== '.trellis' && !rel.startsWith(`.trellis${path.sep}`)) {
    throw trackedTreeRefusal(dir, flag, rel);
  }
}

/**
 * Checks that `file` may be written, before any work is done: refuses a link
 * at it or below its anchor, anything there but a regular file (which is
 * replaced, as a re-run replaces its own output), and a secret inside the
 * store's tracked tree. Returns the absolute path.
 */
export function checkOutFile(file: string, o: OutPath): string {
  const p = path.resolve(file);
  if (o.secret && o.store !== undefined) assertOutsideTrackedTree(p, o.store, o.flag);
  refuseLinksBelowAnchor(p, o, false);
  const k = kindAt(p);
  if (k?.link) throw linkRefusal(o, p, p, undefined);
  if (k && !k.file) {
    throw new TrellisError(
      'usage',
      `cannot write ${p}: it is ${k.what}, not a regular file, and trellis writes only regular files`,
      {
        file: o.file,
        field: o.flag,
        hint: k.dir ? `name a file inside it (${o.flag} ${path.join(file, '…')})` : `point ${o.flag} at a regular file`,
      },
    );
  }
  return p;
}

/**
 * Checks, before any work is done, that `dir` may be written under: no link
 * below its anchor (nor at it when `named`: the directory a flag named), and a
 * directory when it exists. Returns the absolute path.
 */
export function checkOutDir(dir: string, o: OutPath, named = false): string {
  const p = path.resolve(dir);
  refuseLinksBelowAnchor(p, o, true);
  const k = kindAt(p);
  if (k === undefined) return p;
  if (named && k.link) throw linkRefusal(o, p, p, undefined);
  // A link here lies above the anchor (refuseLinksBelowAnchor judged the rest): the operator's, followed.
  let isDir = false;
  try {
    isDir = fs.statSync(p).isDirectory();
  } catch {
    /* a dangling link: no directory */
  }
  if (!isDir)
    throw new TrellisError('usage', `cannot write under ${p}: it is ${kindAt(p)!.what}, not a directory`, {
      file: o.file,
      field: o.flag,
      hint: `point ${o.flag} elsewhere`,
    });
  return p;
}

/**
 * Makes `dir` and its missing parents, each 0755 (0700 for a secret) whatever
 * the umask, after checkOutDir. Existing directories keep their modes: they
 * are the operator's.
 */
export function makeOutDir(dir: string, o: OutPath): string {
  const p = checkOutDir(dir, o);
  const missing: string[] = [];
  for (let at = p; kindAt(at) === undefined && path.dirname(at) !== at; at = path.dirname(at)) missing.unshift(at);
  for (const at of missing) {
    try {
      fs.mkdirSync(at, { mode: dirMode(o) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue; // made meanwhile by another writer; the checks above judged the path
      if (code === 'ENOTDIR')
        throw new TrellisError('usage', `cannot write under ${p}: ${path.dirname(at)} is not a directory`, {
          file: o.file,
          field: o.flag,
          hint: `point ${o.flag} elsewhere`,
        });
      throw e;
    }
    fs.chmodSync(at, dirMode(o)); // mkdir's mode met the umask: say exactly what it is
  }
  return p;
}

/**
 * Writes `content` to `file` under the policy: checked (checkOutFile), its
 * directory made (makeOutDir), then written whole to a temp file created
 * exclusively with its mode and renamed over the old one (rename never follows
 * a link). Mode 0644, or 0600 for a secret, unless `mode` says otherwise.
 */
export function writeOutFile(file: string, content: string | Uint8Array, o: OutPath & { mode?: number }): string {
  const p = checkOutFile(file, o);
  makeOutDir(path.dirname(p), o);
  writeFileAtomic(p, content, o.mode ?? fileMode(o));
  return p;
}
