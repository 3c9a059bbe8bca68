/**
 * The store on disk: finding it, reading it, a lock so two runs cannot
 * interleave, and all-or-nothing multi-file writes.
 *
 * A write goes through a journal: every new file is staged and fsynced under
 * `.trellis/journal.tmp`, the directory is renamed to `.trellis/journal` (the
 * commit point), then each file is renamed into place. A crash before the
 * commit point leaves the old store; after it, the next run under the lock
 * replays the journal and completes the new one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TrellisError } from './errors.js';
import { sha256Hex } from './crypto.js';

export const STORE_FILE = 'trellis.yaml';
const WORK_DIR = '.trellis';

/** The nearest ancestor of `from` holding trellis.yaml, or `explicit` (`--store`, TRELLIS_STORE). */
export function findStore(from: string, explicit?: string): string {
  if (explicit) {
    const dir = path.resolve(explicit);
    if (!fs.existsSync(path.join(dir, STORE_FILE))) {
      throw new TrellisError('no-store', `${dir} holds no ${STORE_FILE}`, { hint: 'point --store (or TRELLIS_STORE) at the directory trellis-root init created' });
    }
    return dir;
  }
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, STORE_FILE))) return dir;
    if (path.dirname(dir) === dir) break;
  }
  throw new TrellisError('no-store', `no ${STORE_FILE} in ${from} or any parent directory`, { hint: 'run inside the store, or pass --store DIR' });
}

export interface FileWrite {
  path: string;
  /** null removes the file. */
  content: string | null;
  mode?: number;
}

interface JournalManifest {
  writes: { path: string; data: string | null; mode: number }[];
}

/** Later writes to a path replace earlier ones; order of first appearance is kept. */
export function mergeWrites(...lists: FileWrite[][]): FileWrite[] {
  const byPath = new Map<string, FileWrite>();
  for (const w of lists.flat()) {
    byPath.delete(w.path);
    byPath.set(w.path, w);
  }
  return [...byPath.values()];
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
      text = fs.readFileSync(this.abs(rel), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
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
    try {
      return fs.readdirSync(this.abs(rel), { withFileTypes: true })
        .filter((d) => (kind === 'dir' ? d.isDirectory() : d.isFile()))
        .map((d) => d.name)
        .sort();
    } catch {
      return [];
    }
  }

  /**
   * Applies every write or none. Refuses (exit 4) when a file this run read
   * has changed since: someone else wrote the store underneath it.
   */
  commit(writes: FileWrite[]): void {
    for (const w of writes) {
      if (!this.seen.has(w.path)) continue;
      const now = fs.existsSync(this.abs(w.path)) ? sha256Hex(fs.readFileSync(this.abs(w.path), 'utf8')) : null;
      if (now !== this.seen.get(w.path)) {
        throw new TrellisError('store-changed', 'changed on disk while this run was working', { file: w.path, hint: 'rerun the command on the current store' });
      }
    }
    const work = this.abs(WORK_DIR);
    const staging = path.join(work, 'journal.tmp');
    const journal = path.join(work, 'journal');
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true });
    const manifest: JournalManifest = { writes: [] };
    writes.forEach((w, i) => {
      const data = w.content === null ? null : `${i}.data`;
      if (data) writeDurably(path.join(staging, data), w.content!, 0o600);
      manifest.writes.push({ path: w.path, data, mode: w.mode ?? 0o644 });
    });
    writeDurably(path.join(staging, 'manifest.json'), JSON.stringify(manifest), 0o600);
    fsyncDir(staging);
    fs.renameSync(staging, journal); // the commit point
    fsyncDir(work);
    this.replayJournal();
    for (const w of writes) this.seen.set(w.path, w.content === null ? null : sha256Hex(w.content));
  }

  /** Completes a committed journal and discards an uncommitted one. Idempotent. */
  replayJournal(): boolean {
    const work = this.abs(WORK_DIR);
    fs.rmSync(path.join(work, 'journal.tmp'), { recursive: true, force: true });
    const journal = path.join(work, 'journal');
    if (!fs.existsSync(journal)) return false;
    const manifest = JSON.parse(fs.readFileSync(path.join(journal, 'manifest.json'), 'utf8')) as JournalManifest;
    for (const w of manifest.writes) {
      const target = this.abs(w.path);
      if (w.data === null) fs.rmSync(target, { force: true });
      else {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        const tmp = `${target}.trellis-tmp`;
        writeDurably(tmp, fs.readFileSync(path.join(journal, w.data), 'utf8'), w.mode);
        fs.renameSync(tmp, target);
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
    const me = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() });
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(lock, me, { flag: 'wx' });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw lockedError(lock);
        if (!lockIsStale(lock)) throw lockedError(lock);
        // Move the stale lock aside under a unique name: of two runs racing to take it over, only one rename succeeds.
        try {
          fs.renameSync(lock, `${lock}.stale-${process.pid}-${Date.now()}`);
        } catch {
          throw lockedError(lock);
        }
      }
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

  constructor(private readonly base: Store, writes: FileWrite[]) {
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

/** An unreadable lock this old was left by a run that died while writing it. */
const UNREADABLE_LOCK_STALE_MS = 5 * 60_000;

function lockIsStale(lock: string): boolean {
  let h: { pid: number; host: string };
  try {
    h = JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid: number; host: string };
  } catch {
    try {
      return Date.now() - fs.statSync(lock).mtimeMs > UNREADABLE_LOCK_STALE_MS;
    } catch {
      return true;
    }
  }
  if (h.host !== os.hostname()) return false;
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function writeDurably(file: string, content: string, mode: number): void {
  const fd = fs.openSync(file, 'w', mode);
  try {
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes a file outside the store (renew --out, identity files) atomically. */
export function writeFileAtomic(file: string, content: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.trellis-tmp`;
  writeDurably(tmp, content, mode);
  fs.renameSync(tmp, file);
}
