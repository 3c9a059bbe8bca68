/**
 * A leaf's directory in renew's output: key (0600), cert, chain (leaf +
 * intermediate), each replaced atomically but not fsynced (out-write.ts has the
 * one barrier). node:fs only, so worker threads write their own chunk's leaves.
 */
import fs from 'node:fs';
import path from 'node:path';

const EXCLUSIVE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
let counter = 0;

/** Replaces `file` with `content` atomically (never a half-written file), not yet durably. */
export function replaceFileNow(file: string, content: string, mode = 0o644): void {
  // pid, thread and a counter name the temp file: unique among writers, without a random draw per file.
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${threadTag}-${counter++}.tmp`);
  const fd = fs.openSync(tmp, EXCLUSIVE, mode);
  try {
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    (e as NodeJS.ErrnoException).path ??= file;
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

let threadTag = 0;
/** Set once per worker thread: temp names stay unique across threads of one process. */
export function setThreadTag(n: number): void {
  threadTag = n;
}

export const LEAF_FILES = ['key.pem', 'cert.pem', 'chain.pem'] as const;

/** Writes `<scopeDir>/<service>/{key,cert,chain}.pem`. */
export function writeLeafDir(scopeDir: string, l: { service: string; certPem: string; keyPem: string }, intermediatePem: string): void {
  const dir = path.join(scopeDir, l.service);
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  replaceFileNow(path.join(dir, 'key.pem'), l.keyPem, 0o600);
  replaceFileNow(path.join(dir, 'cert.pem'), l.certPem);
  replaceFileNow(path.join(dir, 'chain.pem'), l.certPem + intermediatePem);
}
