/**
 * A leaf's directory in renew's output: key (0600), cert, chain (leaf +
 * intermediate), each replaced atomically but not fsynced (out-write.ts has the
 * one barrier). node:fs only, so worker threads write their own chunk's leaves.
 */
import fs from 'node:fs';
import path from 'node:path';

const EXCLUSIVE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
// O_NONBLOCK: a FIFO planted as a spare fails the open instead of hanging renew (isFile() then refuses it).
const REUSE = fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
let counter = 0;

// pid, thread and a counter name a temp file: unique among writers, without a random draw per file.
const tempName = (file: string, ext: string) =>
  path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${threadTag}-${counter++}.${ext}`);
const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** Replaces `file` with `content` atomically (never a half-written file), not yet durably. */
export function replaceFileNow(file: string, content: string, mode = 0o644): void {
  const tmp = tempName(file, 'tmp');
  const fd = fs.openSync(tmp, EXCLUSIVE, mode);
  fill(fd, tmp, file, content, mode, false);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Writes `content` into the open `fd` of `at` (a temp or spare for `file`) and closes it; on failure removes `at`. */
function fill(fd: number, at: string, file: string, content: string, mode: number, reused: boolean): void {
  try {
    fs.fchmodSync(fd, mode); // before the content: a key never sits in a looser inode, even for a moment
    fs.writeFileSync(fd, content);
    // A reused spare may hold a longer previous content.
    if (reused) fs.ftruncateSync(fd, Buffer.byteLength(content));
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(at, { force: true });
    (e as NodeJS.ErrnoException).path ??= file;
    throw e;
  }
  fs.closeSync(fd);
}

/** The hidden file beside a leaf file that keeps the inode of its previous content for the next renew to write into. */
export const spareOf = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.spare`);

/**
 * The spare of `file`, opened for writing: the previous content's inode when
 * it is a plain file of ours with no other name, else a new one; undefined
 * when neither can be had (replaceFileNow's temp file does then).
 */
function openSpare(spare: string, mode: number): { fd: number; reused: boolean } | undefined {
  try {
    const fd = fs.openSync(spare, REUSE);
    const st = fs.fstatSync(fd);
    // Another name on the inode (a hard link) would see this write: never reuse it.
    if (st.isFile() && st.nlink === 1 && (!process.getuid || st.uid === process.getuid())) return { fd, reused: true };
    fs.closeSync(fd);
    return undefined;
  } catch (e) {
    if (code(e) !== 'ENOENT') return undefined;
  }
  try {
    return { fd: fs.openSync(spare, EXCLUSIVE, mode), reused: false };
  } catch (e) {
    if (code(e) === 'EEXIST') return undefined;
    throw e;
  }
}

/**
 * Replaces `file` atomically like replaceFileNow, but frees no inode: the new
 * content is written into the spare (the inode the previous content of `file`
 * left), the spare takes the name, and the replaced inode becomes the next
 * spare (`scrub`: its content zeroed, for a key). Re-minting N leaves then
 * allocates and frees nothing. On ext4 without a journal, as on this
 * project's CI machine, every freed inode makes later allocations in its
 * group scan past it for a minute or more (the kernel's recently_deleted
 * check) and every freed block costs a discard with `-o discard`: replacing
 * the 30k files of a 10k-leaf renew by create-and-rename took 3–5× writing
 * them into a new directory (docs/performance.md, "Re-minting an existing store").
 */
export function replaceRecycling(file: string, content: string, mode: number, scrub: boolean): void {
  const spare = spareOf(file);
  const opened = openSpare(spare, mode);
  if (opened === undefined) {
    replaceFileNow(file, content, mode);
    return;
  }
  fill(opened.fd, spare, file, content, mode, opened.reused);
  // The replaced inode keeps a second name while the spare takes its place, so the rename frees nothing.
  const old = tempName(file, 'old');
  // A crash of an earlier run with the same pid, thread and counter may have left this name: it is ours and stale.
  fs.rmSync(old, { force: true });
  let kept = true;
  try {
    fs.linkSync(file, old);
  } catch (e) {
    if (code(e) !== 'ENOENT') {
      fs.rmSync(spare, { force: true });
      (e as NodeJS.ErrnoException).path ??= file;
      throw e;
    }
    kept = false; // a first mint: nothing to replace
  }
  try {
    fs.renameSync(spare, file);
  } catch (e) {
    fs.rmSync(spare, { force: true });
    if (kept) fs.rmSync(old, { force: true });
    throw e;
  }
  if (!kept) return;
  fs.renameSync(old, spare);
  if (scrub) zero(spare);
}

/**
 * Overwrites the file's content with zeros in place (same length, same blocks): a replaced key is not kept beside its
 * successor.
 */
function zero(file: string): void {
  const fd = fs.openSync(file, REUSE);
  try {
    const st = fs.fstatSync(fd);
    // An inode someone else also named is theirs too: drop our name instead of zeroing their file.
    if (st.nlink !== 1) fs.rmSync(file, { force: true });
    else if (st.size) fs.writeSync(fd, Buffer.alloc(st.size), 0, st.size, 0);
  } finally {
    fs.closeSync(fd);
  }
}

let threadTag = 0;
/** Set once per worker thread: temp names stay unique across threads of one process. */
export function setThreadTag(n: number): void {
  threadTag = n;
}

/** Makes `dir` 0700 whatever the umask (it holds plaintext keys); true when it was made, false when it was there. */
export function makeKeyDir(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (code(e) !== 'EEXIST') throw e;
    return false;
  }
  fs.chmodSync(dir, 0o700);
  return true;
}

const LEAF_FILES = ['key.pem', 'cert.pem', 'chain.pem'] as const;

/** The files of a leaf's directory: a host-held key (no keyPem) has no key.pem. */
export const leafFilesOf = (l: { keyPem?: string }): readonly string[] =>
  l.keyPem === undefined ? LEAF_FILES.filter((f) => f !== 'key.pem') : LEAF_FILES;

/**
 * Writes `<scopeDir>/<service>/{key,cert,chain}.pem`: into a new directory directly, into an existing one through the
 * spares (replaceRecycling).
 */
export function writeLeafDir(
  scopeDir: string,
  l: { service: string; certPem: string; keyPem?: string },
  intermediatePem: string,
): void {
  const dir = path.join(scopeDir, l.service);
  const fresh = makeKeyDir(dir);
  // A directory just made holds nothing to replace: a first mint costs what it always did.
  const put = fresh ? (f: string, c: string, mode: number) => replaceFileNow(f, c, mode) : replaceRecycling;
  if (l.keyPem !== undefined) put(path.join(dir, 'key.pem'), l.keyPem, 0o600, true);
  // A service that moved to key: host keeps no CI-made key beside its new certificate.
  else for (const f of [path.join(dir, 'key.pem'), spareOf(path.join(dir, 'key.pem'))]) fs.rmSync(f, { force: true });
  put(path.join(dir, 'cert.pem'), l.certPem, 0o644, false);
  put(path.join(dir, 'chain.pem'), l.certPem + intermediatePem, 0o644, false);
}
