/**
 * Writes into renew's output directory. It is not the store: it can be minted
 * again, so its files are replaced atomically (temp file, rename) but not
 * fsynced one by one; one barrier (syncfs) makes all of them durable before
 * the store records the leaves, so a crash never records a leaf whose key was
 * lost, and a crash before the barrier leaves the store old: renew re-mints.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { writePoint } from '@trellis/core';

const EXCLUSIVE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
let counter = 0;

/** Files written since the last barrier: the fallback fsyncs them one by one. */
const unsynced = new Set<string>();

/** Replaces `file` with `content` atomically (never a half-written file), not yet durably: see `outputBarrier`. */
export function replaceFile(file: string, content: string, mode = 0o644): void {
  // pid and a counter name the temp file: unique among writers, without a random draw per file.
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${counter++}.tmp`);
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
    writePoint('rename');
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  unsynced.add(file);
}

/**
 * The one durability barrier: syncfs(2) of the filesystem holding `dir`
 * (coreutils `sync -f`), or, where that is unavailable, an fsync of every file
 * and directory written since the last barrier.
 */
export function outputBarrier(dir: string): void {
  if (!unsynced.size) return;
  writePoint('fsync');
  const r = spawnSync('sync', ['-f', dir], { stdio: 'ignore' });
  if (r.status !== 0) {
    const dirs = new Set<string>();
    for (const f of unsynced) {
      fsyncPath(f);
      dirs.add(path.dirname(f));
    }
    for (const d of dirs) fsyncPath(d);
  }
  unsynced.clear();
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
