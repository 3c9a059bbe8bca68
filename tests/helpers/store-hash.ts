/** "The store is byte-identical afterwards": a hash of every file under a directory, for before/after comparisons. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Relative path → sha256 of its bytes, for every file under `dir` (work files under .trellis/ included). */
export function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() && !e.isSymbolicLink()) continue;
    const abs = path.join(e.parentPath, e.name);
    out[path.relative(dir, abs)] = e.isSymbolicLink()
      ? `symlink:${fs.readlinkSync(abs)}`
      : crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
  }
  return out;
}

/** Snapshots `dir` now; the returned function gives the snapshot taken now again, to compare with `toEqual`. */
export function snapshotStore(dir: string): { before: Record<string, string>; now: () => Record<string, string> } {
  return { before: hashTree(dir), now: () => hashTree(dir) };
}
