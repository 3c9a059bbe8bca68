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
import { writePoint } from '@trellis/core/store';
import { replaceFileNow } from './leaf-files.js';

/** Replaces `file` atomically, not yet durably: see `outputBarrier`. A crash-sweep point precedes the rename. */
export function replaceFile(file: string, content: string, mode = 0o644): void {
  writePoint('rename');
  replaceFileNow(file, content, mode);
}

/**
 * The one durability barrier: syncfs(2) of the filesystem holding `dir`
 * (coreutils `sync -f`), or, where that is unavailable, an fsync of each of
 * `files` and their directories.
 */
export function outputBarrier(dir: string, files: string[]): void {
  if (!files.length) return;
  writePoint('fsync');
  const r = spawnSync('sync', ['-f', dir], { stdio: 'ignore' });
  if (r.status === 0) return;
  const dirs = new Set<string>();
  for (const f of files) {
    fsyncPath(f);
    dirs.add(path.dirname(f));
  }
  for (const d of dirs) fsyncPath(d);
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
