/**
 * The store on disk: finding it, reading it, a lock so two runs cannot
 * interleave, and all-or-nothing multi-file writes.
 *
 * A write goes through a journal: every new file is staged and fsynced in a
 * fresh `.trellis/journal.tmp-XXXX`, the directory is renamed to
 * `.trellis/journal` (the commit point), then each file is renamed into place. A crash before the
 * commit point leaves the old store; after it, the next run under the lock
 * replays the journal and completes the new one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TrellisError } from '../model/errors.js';
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../crypto/crypto.js';
import { writePoint } from './fault-seam.js';
import { mergeWrites, type FileWrite } from '../model/file-write.js';
import { STORE_FILE } from '../model/paths.js';

export type { FileWrite };

export { STORE_FILE };

const MiB = 1024 * 1024;
/** The most trellis reads from one file, by kind: a larger one is refused before it is read (docs/input-limits.md). */
export const READ_LIMITS = {
  /** Any store file: leaves.yaml of a 50,000-service scope is about 25 MB. */
  store: 256 * MiB,
  /** An identity file (a few lines), a pinned roots file, a host's state file. */
  small: 1 * MiB,
  /** A sealed release (a few KB; a scope's bundle of many anchors stays far below). */
  release: 64 * MiB,
} as const;

/** The code of readBounded's refusals. */
const UNREADABLE = 'TRELLIS_UNREADABLE';

/**
 * Reads a regular file of at most `limit` bytes. A symbolic link at `file`
 * (unless `followLink`: files the operator names, such as identities mounted by
 * a secret store), a device, a FIFO or a directory is refused before a byte is
 * read (O_NOFOLLOW, O_NONBLOCK, fstat), and so is a file over the limit; the read stops at the
 * limit even if the file grows meanwhile. ENOENT is thrown as it is.
 */
export function readBounded(file: string, limit: number, o: { followLink?: boolean } = {}): string {
  const refuse = (why: string) => Object.assign(new Error(why), { code: UNREADABLE });
  let fd: number;
  try {
    fd = fs.openSync(
      file,
      fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (o.followLink ? 0 : fs.constants.O_NOFOLLOW),
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP')
      throw refuse(`${file} is a symbolic link: trellis reads only regular files`);
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      const kind = st.isDirectory()
        ? 'directory'
        : st.isFIFO()
          ? 'FIFO'
          : st.isCharacterDevice() || st.isBlockDevice()
            ? 'device'
            : 'special file';
      throw refuse(`${file} is not a regular file (a ${kind})`);
    }
    if (st.size > limit) throw refuse(`${file} is ${st.size} bytes, over the limit of ${limit} for this file`);
    const buf = Buffer.alloc(Math.min(st.size, limit) + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = fs.readSync(fd, buf, n, buf.length - n, null);
    if (n > limit) throw refuse(`${file} grew past the limit of ${limit} bytes while it was read`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}
const WORK_DIR = '.trellis';

/** The nearest ancestor of `from` holding trellis.yaml, or `explicit` (`--store`, TRELLIS_STORE). */
export function findStore(from: string, explicit?: string): string {
  if (explicit) {
    const dir = path.resolve(explicit);
    if (!holdsStore(dir)) {
      throw new TrellisError('no-store', `${dir} holds no ${STORE_FILE}`, {
        hint: 'point --store (or TRELLIS_STORE) at the directory trellis-root init created',
      });
    }
    return dir;
  }
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (holdsStore(dir)) return dir;
    if (path.dirname(dir) === dir) break;
  }
  throw new TrellisError('no-store', `no ${STORE_FILE} in ${from} or any parent directory`, {
    hint: 'run inside the store, or pass --store DIR',
  });
}

/**
 * Whether `dir` is a store: it holds trellis.yaml, or a committed journal that
 * writes it (an init that died after its commit point, which the lock completes).
 */
export function holdsStore(dir: string): boolean {
  if (fs.existsSync(path.join(dir, STORE_FILE))) return true;
  try {
    const manifest = JSON.parse(
      fs.readFileSync(path.join(dir, WORK_DIR, 'journal', 'manifest.json'), 'utf8'),
    ) as JournalManifest;
    return manifest.writes.some((w) => w.path === STORE_FILE && w.data !== null);
  } catch {
    return false;
  }
}

interface JournalManifest {
  writes: { path: string; data: string | null; mode: number }[];
}

export class Store {
  /** Hash of each file as this run read it; null when it was absent. */
  private readonly seen = new Map<string, string | null>();

  constructor(readonly dir: string) {}

  abs(rel: string): string {
    return path.join(this.dir, rel);
  }

  read(rel: string): string | undefined {
    let text: string | undefined;
    try {
      text = readBounded(this.abs(rel), READ_LIMITS.store);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') text = undefined;
      else if (code === UNREADABLE)
        throw new TrellisError('corrupt-store', (e as Error).message, {
          file: rel,
          hint: 'restore it from git history as a regular file',
        });
      else throw e;
    }
    this.seen.set(rel, text === undefined ? null : sha256Hex(text));
    return text;
  }

  exists(rel: string): boolean {
    return fs.existsSync(this.abs(rel));
  }

  /** A read-only view of the store as it will be once `writes` are committed: plans are computed on it. */
  withPending(writes: FileWrite[]): Store {
    return new PendingView(this, writes);
  }

  /** Names of the entries of a store directory, sorted; empty when it does not exist. */
  list(rel: string, kind: 'file' | 'dir' = 'file'): string[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.abs(rel), { withFileTypes: true });
    } catch {
      return [];
    }
    // A link, a FIFO or a device among the files is refused, not skipped: a skipped scope file would read as a deleted
    // scope.
    const odd = kind === 'file' ? entries.find((d) => !d.isFile() && !d.isDirectory()) : undefined;
    if (odd)
      throw new TrellisError(
        'corrupt-store',
        `is ${odd.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: trellis reads only regular ` +
          `files in the store`,
        { file: `${rel}/${odd.name}`, hint: 'replace it with the regular file git history holds, or remove it' },
      );
    return entries
      .filter((d) => (kind === 'dir' ? d.isDirectory() : d.isFile()))
      .map((d) => d.name)
      .sort();
  }

  /**
   * Applies every write or none. Refuses (exit 4) when a file this run read
   * has changed since: someone else wrote the store underneath it.
   */
  commit(writes: FileWrite[]): void {
    // One entry per path: replay renames each staged file into place once, so a later write must not follow an earlier
    // one.
    writes = mergeWrites(writes);
    for (const w of writes) {
      if (!this.seen.has(w.path)) continue;
      const now = fs.existsSync(this.abs(w.path)) ? sha256Hex(fs.readFileSync(this.abs(w.path), 'utf8')) : null;
      if (now !== this.seen.get(w.path)) {
        throw new TrellisError('store-changed', 'changed on disk while this run was working', {
          file: w.path,
          hint: 'rerun the command on the current store',
        });
      }
    }
    const work = this.abs(WORK_DIR);
    fs.mkdirSync(work, { recursive: true });
    discardStaging(work);
    // mkdtemp: created exclusively under an unpredictable name.
    const staging = fs.mkdtempSync(path.join(work, STAGING_PREFIX));
    const journal = path.join(work, 'journal');
    try {
      const manifest: JournalManifest = { writes: [] };
      writes.forEach((w, i) => {
        const data = w.content === null ? null : `${i}.data`;
        if (data) writeDurably(path.join(staging, data), w.content!, w.mode ?? 0o644);
        manifest.writes.push({ path: w.path, data, mode: w.mode ?? 0o644 });
      });
      writeDurably(path.join(staging, 'manifest.json'), JSON.stringify(manifest), 0o600);
      fsyncDir(staging);
      renameDurably(staging, journal); // the commit point
    } catch (e) {
      // Before the commit point the store is untouched: give back the space a full disk needs.
      fs.rmSync(staging, { recursive: true, force: true });
      throw e;
    }
    fsyncDir(work);
    this.replayJournal();
    for (const w of writes) this.seen.set(w.path, w.content === null ? null : sha256Hex(w.content));
  }

  /**
   * Completes a committed journal and discards an uncommitted one. Idempotent:
   * each staged file is renamed into place (no copy, so a full disk cannot stop
   * it), and one already moved is simply gone from the journal.
   */
  replayJournal(): boolean {
    const work = this.abs(WORK_DIR);
    discardStaging(work);
    const journal = path.join(work, 'journal');
    if (!fs.existsSync(journal)) return false;
    const manifest = JSON.parse(fs.readFileSync(path.join(journal, 'manifest.json'), 'utf8')) as JournalManifest;
    for (const w of manifest.writes) {
      const target = this.abs(w.path);
      if (w.data === null) fs.rmSync(target, { force: true });
      else {
        const staged = path.join(journal, w.data);
        if (!fs.existsSync(staged)) continue; // moved into place by an earlier, interrupted replay
        const created = fs.mkdirSync(path.dirname(target), { recursive: true });
        if (created) fsyncDir(path.dirname(created));
        fs.chmodSync(staged, w.mode);
        renameDurably(staged, target);
        fsyncDir(path.dirname(target));
      }
    }
    fs.rmSync(journal, { recursive: true, force: true });
    fsyncDir(work);
    return true;
  }

  /**
   * Runs `fn` holding the store lock (exit 4 when another live run holds it).
   * A lock left by a dead process on this host is taken over.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const work = this.abs(WORK_DIR);
    fs.mkdirSync(work, { recursive: true });
    const lock = path.join(work, 'lock');
    // The lock is written whole under a private name, then linked into place: it is complete or absent, even on a full
    // disk.
    const mine = `${lock}.${process.pid}.${randomSuffix()}.tmp`;
    try {
      writeExclusive(
        mine,
        JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() }),
        0o644,
      );
      for (let attempt = 0; ; attempt++) {
        try {
          fs.linkSync(mine, lock);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          const judged = inode(lock);
          if (attempt > 0 || !lockIsStale(lock)) throw lockedError(lock);
          // Move the stale lock aside under a unique name: of two runs racing to take it over, only one rename
          // succeeds.
          const aside = `${lock}.stale-${process.pid}-${randomSuffix()}`;
          try {
            fs.renameSync(lock, aside);
          } catch {
            throw lockedError(lock);
          }
          if (inode(aside) !== judged) {
            // The race was lost: what moved is the winner's fresh lock. Put it back and yield.
            try {
              fs.linkSync(aside, lock);
            } finally {
              fs.rmSync(aside, { force: true });
            }
            throw lockedError(lock);
          }
          fs.rmSync(aside, { force: true });
        }
      }
    } finally {
      fs.rmSync(mine, { force: true });
    }
    try {
      this.replayJournal();
      return await fn();
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }
}

class PendingView extends Store {
  private readonly pending: Map<string, string | null>;

  constructor(
    private readonly base: Store,
    writes: FileWrite[],
  ) {
    super(base.dir);
    this.pending = new Map(mergeWrites(writes).map((w) => [w.path, w.content]));
  }

  override read(rel: string): string | undefined {
    return this.pending.has(rel) ? (this.pending.get(rel) ?? undefined) : this.base.read(rel);
  }

  override exists(rel: string): boolean {
    return this.pending.has(rel) ? this.pending.get(rel) !== null : this.base.exists(rel);
  }

  override commit(): never {
    throw new Error('a pending view is read-only: commit on the store it was made from');
  }
}

function inode(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

function lockedError(lock: string): TrellisError {
  let holder = 'another run';
  try {
    const h = JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid: number; host: string; since: string };
    holder = `pid ${h.pid} on ${h.host} since ${h.since}`;
  } catch {
    /* unreadable lock: still held */
  }
  return new TrellisError('store-locked', `the store is locked by ${holder}`, {
    file: path.join(WORK_DIR, 'lock'),
    hint: 'wait for that run to finish; if it died on another host, remove the lock file by hand',
  });
}

/**
 * Whether a lock was left by a run that is gone. Locks are linked into place
 * whole, so an unreadable one (empty, cut short) predates that and is stale.
 */
function lockIsStale(lock: string): boolean {
  let h: { pid: number; host: string };
  try {
    h = JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid: number; host: string };
  } catch {
    return true;
  }
  if (h.host !== os.hostname()) return false;
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

const STAGING_PREFIX = 'journal.tmp-';

/** Removes uncommitted staging directories (and the fixed-name one older versions used). */
function discardStaging(work: string): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(work);
  } catch {
    return;
  }
  for (const n of names)
    if (n === 'journal.tmp' || n.startsWith(STAGING_PREFIX))
      fs.rmSync(path.join(work, n), { recursive: true, force: true });
}

function randomSuffix(): string {
  return randomBytes(8).toString('hex');
}

// O_EXCL with O_CREAT never follows a symlink; O_NOFOLLOW says so twice.
const EXCLUSIVE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** Creates `file` (which must not exist, not even as a symlink) holding `content`. */
function writeExclusive(file: string, content: string | Uint8Array, mode: number, durable = false): void {
  const fd = fs.openSync(file, EXCLUSIVE, mode);
  try {
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode);
    if (durable) {
      writePoint('fsync');
      fs.fsyncSync(fd);
    }
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    (e as NodeJS.ErrnoException).path ??= file; // a write through an fd names no file: say which one
    throw e;
  }
  fs.closeSync(fd);
}

function writeDurably(file: string, content: string | Uint8Array, mode: number): void {
  writeExclusive(file, content, mode, true);
}

function renameDurably(from: string, to: string): void {
  writePoint('rename');
  fs.renameSync(from, to);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    writePoint('fsync');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes a file outside the store (renew --out, identity files, releases)
 * atomically: a private temp file beside it, created exclusively under an
 * unpredictable name, fsynced, then renamed over it.
 */
export function writeFileAtomic(file: string, content: string | Uint8Array, mode = 0o644): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  // A short name of its own: the target's name may already be as long as the file system allows.
  const tmp = path.join(dir, `.trellis-${randomSuffix()}.tmp`);
  writeDurably(tmp, content, mode);
  try {
    renameDurably(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** A store file by relative path, read as Store.read does (bounded, never through a link), for the pure verifiers. */
export function storeReader(dir: string): (rel: string) => string | undefined {
  const store = new Store(dir);
  return (rel) => store.read(rel);
}
